"""``sle_msc``: autoreactive B-cell / plasma-cell / antibody / kidney model of refractory SLE
under mesenchymal stem-cell (MSC) therapy.

The equations are written out in ``docs/model.md``; every parameter below has a unit, a default,
a plausible range and a source (``LITERATURE.md`` refers to ``shared/science/LITERATURE.md``, the
project's digest of the evidence). Time is in days.

The right-hand side :func:`rhs` is a Numba kernel with the signature ``rhs(t, y, p, dydt)``; it is
callable from plain Python with NumPy arrays, and :func:`rhs_py` wraps it for
``scipy.integrate.solve_ivp``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .._numba_config import JIT, JIT_INLINE
from .._vmath import pow_pos
from ._parameters import State
from .sle_msc_parameters import PARAMETERS

NAME = "sle_msc"

LN2 = math.log(2.0)

STATES: tuple[State, ...] = (
    State("msc", "1e6 cells/kg", "Infused MSCs (lung pool, potency-weighted)"),
    State("reg", "1", "MSC-induced regulatory activity (Treg/Breg)"),
    State("cd4", "1", "CD4 T-cell pool (healthy = 1)"),
    State("tfh", "1", "T follicular helper cells (healthy = 1)"),
    State("b_naive", "1", "Autoreactive naive B cells (healthy = 1)"),
    State("b_gc", "1", "Activated / germinal-centre autoreactive B cells"),
    State("b_mem", "1", "Autoreactive memory B cells"),
    State("plasmablast", "1", "Short-lived autoreactive plasmablasts"),
    State("llpc", "1", "Long-lived autoreactive plasma cells"),
    State("anti_dsdna", "IU/mL", "Anti-dsDNA IgG"),
    State("antigen", "1", "Nuclear self-antigen / apoptotic debris (healthy = 1)"),
    State("immune_complex", "1", "Circulating and deposited immune complexes"),
    State("c3", "mg/dL", "Complement C3"),
    State("damage", "1", "Renal tissue damage (fraction of nephron mass injured)"),
    State("inflammation", "1", "Systemic (extra-renal) inflammation"),
    State("gc_dose", "mg/d", "Glucocorticoid dose given (prednisone equivalent)"),
    State("gc", "mg/d", "Glucocorticoid effect compartment (prednisone equivalent)"),
    State("cyc", "mg/kg", "Cyclophosphamide effect exposure"),
    State("mmf_dose", "g/d", "Mycophenolate mofetil dose given"),
    State("mmf", "g/d", "Mycophenolate effect compartment"),
    State("hcq_dose", "mg/d", "Hydroxychloroquine dose given"),
    State("hcq", "mg/d", "Hydroxychloroquine accumulated (effect compartment)"),
    State("rtx", "1", "Rituximab effect (1 = just after a 1000 mg infusion)"),
    State("cart", "1e6 cells/kg", "CD19 CAR-T cells"),
)
STATE_NAMES: tuple[str, ...] = tuple(s.name for s in STATES)
STATE_INDEX: dict[str, int] = {n: i for i, n in enumerate(STATE_NAMES)}
N_STATES = len(STATES)

# State indices used by kernels and interventions (compile-time constants for Numba).
(MSC, REG, CD4, TFH, B_NAIVE, B_GC, B_MEM, PLASMABLAST, LLPC, ANTI_DSDNA, ANTIGEN, IC, C3, DAMAGE,
 INFLAMMATION, GC_DOSE, GC, CYC, MMF_DOSE, MMF, HCQ_DOSE, HCQ, RTX, CART) = range(N_STATES)

#: States that are drug doses or exposures (zero in the untreated steady state).
DRUG_STATES = (GC_DOSE, GC, CYC, MMF_DOSE, MMF, HCQ_DOSE, HCQ, RTX, CART)

PARAMETER_NAMES = PARAMETERS.names
N_PARAMS = len(PARAMETERS)


#: Discrete compartments of the B lineage: integer cell counts per clone in the agent-based
#: engine, concentrations (cells / system size) in the ODE. ``b_naive`` is the continuous source
#: that founds clones.
LINEAGE_STATES: tuple[int, ...] = (B_GC, B_MEM, PLASMABLAST, LLPC)
#: Sources a transition can draw from: the naive pool, then the lineage compartments.
LINEAGE_SOURCES: tuple[int, ...] = (B_NAIVE,) + LINEAGE_STATES
#: Compartments whose equilibrium cells the agent-based engine pools into one legacy clone at
#: the start of its burn-in: long-lived plasma cells live ~1.4 years, longer than any affordable
#: burn-in, and never divide, so their clone of origin cannot re-seed the disease.
LINEAGE_LEGACY: tuple[int, ...] = (LLPC,)


@dataclass(frozen=True)
class Transition:
    """One per-cell transition of the B lineage, shared by both engines.

    Attributes
    ----------
    name : str
    source : int
        State the cell leaves or acts from (an index into :data:`STATE_NAMES`); the propensity
        is ``rate * source`` (per model unit; times the system size in cells).
    change : tuple of int, one per :data:`LINEAGE_SOURCES`
        Cells gained (+) or lost (-) in each of ``b_naive, b_gc, b_mem, plasmablast, llpc``.
    founds_clone : bool
        True when the cell that arrives starts a new clone (activation of a naive cell).
    description : str
    """

    name: str
    source: int
    change: tuple[int, int, int, int, int]
    founds_clone: bool
    description: str


#: The B-lineage transitions, in the order of the rates :func:`lineage_rates_at` returns. The ODE
#: rows of these states are assembled from this table (:func:`rhs_at`); the agent-based engine
#: draws each cell's fate from it. ``tests/test_abm_model.py`` checks the drift identity.
TRANSITIONS: tuple[Transition, ...] = (
    Transition("activation", B_NAIVE, (-1, 1, 0, 0, 0), True,
               "naive B cell activated by antigen and Tfh help; founds a clone in the GC"),
    Transition("gc_division", B_GC, (0, 1, 0, 0, 0), False,
               "GC B-cell division (suppressed by MSCs and drugs, crowding by total GC size)"),
    Transition("gc_death", B_GC, (0, -1, 0, 0, 0), False,
               "GC B-cell death: apoptosis, drug kill, abortive differentiation, no LLPC niche"),
    Transition("gc_to_memory", B_GC, (0, -1, 1, 0, 0), False, "GC exit to memory"),
    Transition("gc_to_plasmablast", B_GC, (0, -1, 0, 1, 0), False,
               "GC exit to a short-lived plasmablast"),
    Transition("gc_to_llpc", B_GC, (0, -1, 0, 0, 1), False,
               "GC exit to a long-lived plasma cell (into a free niche)"),
    Transition("memory_reactivation", B_MEM, (0, 1, -1, 0, 0), False,
               "memory B cell re-enters the GC"),
    Transition("memory_death", B_MEM, (0, 0, -1, 0, 0), False, "memory B-cell death"),
    Transition("plasmablast_death", PLASMABLAST, (0, 0, 0, -1, 0), False, "plasmablast death"),
    Transition("llpc_death", LLPC, (0, 0, 0, 0, -1), False, "long-lived plasma-cell death"),
)
N_TRANSITIONS = len(TRANSITIONS)
#: ``TRANSITION_SOURCE[k]`` indexes :data:`LINEAGE_SOURCES`; ``TRANSITION_CHANGE[k][c]`` is the
#: change of ``LINEAGE_SOURCES[c]`` (compile-time constants for the kernels).
TRANSITION_SOURCE: tuple[int, ...] = tuple(LINEAGE_SOURCES.index(t.source) for t in TRANSITIONS)
TRANSITION_CHANGE: tuple[tuple[int, ...], ...] = tuple(t.change for t in TRANSITIONS)


@JIT_INLINE
def signals_at(y, p, l, s):
    """Treatment and feedback signals shared by the rows of :func:`rhs_at` (strided layout).

    Returns ``(sz, e_gc, e_mmf, lymph, kill_cyc, kill_rtx, kill_car, stim, help_)``: the
    saturated MSC signal, glucocorticoid and MMF effects, the lymphocyte suppression by drugs,
    the kill rates of cyclophosphamide, rituximab and CAR-T (1/d), the antigen stimulation and
    the Tfh help (all dimensionless unless stated).
    """
    msc = y[0 * s + l]
    e_msc = msc / (msc + p[1 * s + l]) if msc > 0.0 else 0.0
    zs = p[4 * s + l] * (e_msc + max(y[1 * s + l], 0.0))
    sz = zs / (zs + p[5 * s + l])
    gcp = max(y[16 * s + l], 0.0)
    e_gc = gcp / (gcp + p[57 * s + l])
    mmp = max(y[19 * s + l], 0.0)
    e_mmf = p[66 * s + l] * mmp / (mmp + p[65 * s + l])
    hqp = max(y[21 * s + l], 0.0)
    e_hcq = p[69 * s + l] * hqp / (hqp + p[68 * s + l])
    cyp = max(y[17 * s + l], 0.0)
    kill_cyc = p[63 * s + l] * cyp / (cyp + p[62 * s + l])  # proliferating cells
    rxp = max(y[22 * s + l], 0.0)
    kill_rtx = (p[71 * s + l] - 1.0) * p[19 * s + l] * rxp / (rxp + p[72 * s + l])  # CD20+ B
    cap = max(y[23 * s + l], 0.0)
    kill_car = p[76 * s + l] * cap / (cap + p[77 * s + l])  # CD19+ B cells and plasmablasts
    lymph = (1.0 - p[60 * s + l] * e_gc) * (1.0 - e_mmf)
    # Hill stimulation by the antigen that B cells sense (HCQ blunts TLR7/9 sensing): one power
    # per call, by pow_pos (libm-free, so that the lane loop vectorises; see immunosim._vmath).
    agp = pow_pos(max(y[10 * s + l], 0.0) * (1.0 - e_hcq) / p[21 * s + l], p[22 * s + l])
    stim = agp / (agp + 1.0)
    tp = max(y[3 * s + l], 0.0)
    help_ = tp / (tp + p[18 * s + l])
    return sz, e_gc, e_mmf, lymph, kill_cyc, kill_rtx, kill_car, stim, help_


@JIT_INLINE
def lineage_rates_from(y, p, l, s, sz, e_mmf, lymph, kill_cyc, kill_rtx, kill_car, stim, help_):
    """Per-cell rates (1/d) of :data:`TRANSITIONS`, given the signals of :func:`signals_at`.

    Crowding (GC capacity) and the LLPC niche read the compartment totals ``y`` (cells / system
    size), so that summed over clones the agent-based drift is the ODE's.
    """
    u = p[51 * s + l]
    drug = (1.0 - u) * lymph
    f_act = 1.0 - p[10 * s + l] * sz
    f_diff = 1.0 - p[11 * s + l] * sz
    d_g = p[24 * s + l]
    k_gp = p[25 * s + l]
    k_gm = p[26 * s + l]
    phi = p[31 * s + l]
    niche = y[8 * s + l] / p[33 * s + l]
    help_stim = stim * help_ * f_act * drug
    act = p[20 * s + l] * help_stim
    react = p[29 * s + l] * help_stim
    # Proliferation is a fraction (<= 1) of the exit rate times help (< 1): net growth < 0.
    prolif = p[23 * s + l] * (d_g + k_gp + k_gm) * help_ * (1.0 - p[9 * s + l] * sz) * (
        1.0 - u) * (1.0 - e_mmf) * (1.0 - y[5 * s + l] / p[27 * s + l])
    gc_death = d_g + kill_cyc + kill_rtx + kill_car + k_gp * (1.0 - f_diff + f_diff * phi * niche)
    to_pb = k_gp * f_diff * (1.0 - phi)
    to_pl = k_gp * f_diff * phi * (1.0 - niche)
    mem_death = p[28 * s + l] + kill_rtx + kill_car
    pb_death = 1.0 / p[30 * s + l] + kill_cyc + kill_car
    pl_death = LN2 / p[32 * s + l]
    return (act, prolif, gc_death, k_gm, to_pb, to_pl, react, mem_death, pb_death, pl_death)


@JIT_INLINE
def lineage_rates_at(y, p, l, s):
    """Per-cell rates (1/d) of :data:`TRANSITIONS` at state ``y`` (strided layout), a tuple."""
    sz, e_gc, e_mmf, lymph, kill_cyc, kill_rtx, kill_car, stim, help_ = signals_at(y, p, l, s)
    return lineage_rates_from(y, p, l, s, sz, e_mmf, lymph, kill_cyc, kill_rtx, kill_car, stim,
                              help_)


@JIT_INLINE
def lineage_drift(r, n, c):
    """``sum_k change[k][c] * r[k] * n[source[k]]``: the ODE rate of change of
    ``LINEAGE_SOURCES[c]`` from the transitions (its row of the drift identity)."""
    acc = 0.0
    for k in range(N_TRANSITIONS):
        nu = TRANSITION_CHANGE[k][c]
        if nu != 0:
            acc += nu * r[k] * n[TRANSITION_SOURCE[k]]
    return acc


@JIT_INLINE
def rhs_at(t, y, p, dydt, l, s):
    """Right-hand side of ``sle_msc`` for one trajectory in a strided layout (inlined into kernels).

    Element ``i`` of the trajectory in ``lane`` sits at ``i * s + l``: ``s = 1, l = 0`` for one
    trajectory (:func:`rhs`), ``s = LANES`` for the SIMD-lane layout of the batched engine, where
    a loop over ``l`` vectorises this body across trajectories. The model is autonomous (``t`` is
    unused but kept for the ODE contract). The equations are written out in ``docs/model.md``.

    Parameters
    ----------
    t : float
        Time (d).
    y : ndarray, shape (24 * s,)
        States, ordered as :data:`STATE_NAMES`.
    p : ndarray, shape (78 * s,)
        Parameters, ordered as :data:`PARAMETER_NAMES` (positions pinned by the tests).
    dydt : ndarray, shape (24 * s,)
        Output: time derivative (state unit per day).
    l, s : int
        Lane and stride.
    """
    # --- parameters of the rows outside the B lineage -------------------------------------------
    k_msc = LN2 / p[0 * s + l]
    msc_ec50 = p[1 * s + l]
    k_ind = p[6 * s + l]
    reg_max = p[7 * s + l]
    k_reg = LN2 / p[8 * s + l]
    e_sec = p[12 * s + l]
    e_tfh = p[13 * s + l]
    e_rep = p[14 * s + l]
    k_cd4 = LN2 / p[15 * s + l]
    d_t = p[16 * s + l]
    a_t = p[17 * s + l]
    d_n = p[19 * s + l]
    q_pb = p[34 * s + l]
    q_pl = p[35 * s + l]
    d_a = LN2 / p[36 * s + l]
    k_f = p[37 * s + l]
    d_ag = p[38 * s + l]
    a_d = p[39 * s + l]
    a_i = p[40 * s + l]
    sigma = p[41 * s + l]
    d_ic = p[42 * s + l]
    eps = p[43 * s + l]
    c3_0 = p[44 * s + l]
    k_c3 = p[45 * s + l]
    k_cons = p[46 * s + l]
    k_d = p[47 * s + l]
    ic_50 = p[48 * s + l]
    r_d = p[49 * s + l]
    k_inf = p[50 * s + l]
    # p[52], p[53]: proteinuria read-out; p[55]: extra-renal read-out (activity.py).
    renal_s = p[54 * s + l]
    k_gc = LN2 / p[56 * s + l]
    gc_inf = p[58 * s + l]
    gc_ren = p[59 * s + l]
    k_cyc = LN2 / p[61 * s + l]
    k_mmf = LN2 / p[64 * s + l]
    k_hcq = LN2 / p[67 * s + l]
    k_rtx = LN2 / p[70 * s + l]
    car_exp = p[73 * s + l]
    car_con = p[74 * s + l]
    car_t50 = p[75 * s + l]

    # --- states --------------------------------------------------------------------------------
    msc = y[0 * s + l]
    reg = y[1 * s + l]
    cd4 = y[2 * s + l]
    tfh = y[3 * s + l]
    bn = y[4 * s + l]
    bg = y[5 * s + l]
    bm = y[6 * s + l]
    pb = y[7 * s + l]
    pl = y[8 * s + l]
    ab = y[9 * s + l]
    ag = y[10 * s + l]
    ic = y[11 * s + l]
    c3 = y[12 * s + l]
    dmg = y[13 * s + l]
    infl = y[14 * s + l]
    gc_dose = y[15 * s + l]
    gc = y[16 * s + l]
    cyc = y[17 * s + l]
    mmf_dose = y[18 * s + l]
    mmf = y[19 * s + l]
    hcq_dose = y[20 * s + l]
    hcq = y[21 * s + l]
    rtx = y[22 * s + l]
    cart = y[23 * s + l]

    # --- signals: MSC (direct + induced regulatory state, scaled by the patient's response,
    # through saturating suppressions), drugs, antigen stimulation and Tfh help ----------------
    sz, e_gc, e_mmf, lymph, kill_cyc, kill_rtx, kill_car, stim, help_ = signals_at(y, p, l, s)
    e_msc = msc / (msc + msc_ec50) if msc > 0.0 else 0.0
    f_sec = 1.0 - e_sec * sz
    f_tfh = 1.0 - e_tfh * sz

    # --- the B lineage: per-cell rates of the declared transitions (shared with the agent-based
    # engine), assembled into the rows of b_naive, b_gc, b_mem, plasmablast and llpc ------------
    r = lineage_rates_from(y, p, l, s, sz, e_mmf, lymph, kill_cyc, kill_rtx, kill_car, stim,
                           help_)
    n = (bn, bg, bm, pb, pl)

    form = k_f * ab * ag
    c3_frac = c3 / c3_0
    icr = max(ic, 0.0) * renal_s * (1.0 - gc_ren * e_gc)
    injury = icr * icr / (icr * icr + ic_50 * ic_50)
    bt = max(bn, 0.0) + max(bm, 0.0)

    dydt[0 * s + l] = -k_msc * msc
    dydt[1 * s + l] = k_ind * e_msc * (1.0 - reg / reg_max) - k_reg * reg
    dydt[2 * s + l] = k_cd4 * (1.0 - cd4)
    dydt[3 * s + l] = d_t * max(cd4, 0.0) * (1.0 + a_t * stim) * f_tfh * lymph - (
        d_t + kill_cyc) * tfh
    dydt[4 * s + l] = d_n - (d_n + kill_rtx + kill_car) * bn + lineage_drift(r, n, 0)
    dydt[5 * s + l] = lineage_drift(r, n, 1)
    dydt[6 * s + l] = lineage_drift(r, n, 2)
    dydt[7 * s + l] = lineage_drift(r, n, 3)
    dydt[8 * s + l] = lineage_drift(r, n, 4)
    dydt[9 * s + l] = q_pb * pb * f_sec + q_pl * pl - d_a * ab - form
    dydt[10 * s + l] = d_ag * (1.0 + a_d * dmg + a_i * max(infl, 0.0)) - d_ag * ag - sigma * form
    dydt[11 * s + l] = form - d_ic * (eps + (1.0 - eps) * c3_frac) * ic
    dydt[12 * s + l] = k_c3 * (c3_0 - c3) - k_cons * ic * c3
    dydt[13 * s + l] = k_d * injury * (1.0 - dmg) - r_d * (1.0 + e_rep * sz) * dmg
    dydt[14 * s + l] = k_inf * (max(ic, 0.0) / ic_50 * (1.0 - gc_inf * e_gc) - infl)
    dydt[15 * s + l] = 0.0
    dydt[16 * s + l] = k_gc * (gc_dose - gc)
    dydt[17 * s + l] = -k_cyc * cyc
    dydt[18 * s + l] = 0.0
    dydt[19 * s + l] = k_mmf * (mmf_dose - mmf)
    dydt[20 * s + l] = 0.0
    dydt[21 * s + l] = k_hcq * (hcq_dose - hcq)
    dydt[22 * s + l] = -k_rtx * rtx
    dydt[23 * s + l] = (car_exp * bt / (bt + car_t50) - car_con) * cart
    return 0


@JIT
def rhs(t, y, p, dydt):
    """Right-hand side of ``sle_msc``: ``dydt = f(t, y; p)`` for one trajectory.

    Parameters
    ----------
    t : float
        Time (d).
    y : ndarray, shape (24,)
        State, ordered as :data:`STATE_NAMES`.
    p : ndarray, shape (n_params,)
        Parameters, ordered as :data:`PARAMETER_NAMES`.
    dydt : ndarray, shape (24,)
        Output: time derivative (state unit per day).
    """
    return rhs_at(t, y, p, dydt, 0, 1)


def rhs_py(t: float, y: np.ndarray, p: np.ndarray) -> np.ndarray:
    """Plain-Python view of :func:`rhs` for ``scipy.integrate.solve_ivp``: returns ``dy/dt``."""
    dydt = np.empty(N_STATES)
    rhs(float(t), np.asarray(y, dtype=np.float64), p, dydt)
    return dydt
