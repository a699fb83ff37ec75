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
    # --- parameters, in table order -----------------------------------------------------------
    k_msc = LN2 / p[0 * s + l]
    msc_ec50 = p[1 * s + l]
    # p[2], p[3]: cell-source potencies act on the dose, not here.
    r_msc = p[4 * s + l]
    z50 = p[5 * s + l]
    k_ind = p[6 * s + l]
    reg_max = p[7 * s + l]
    k_reg = LN2 / p[8 * s + l]
    e_prolif = p[9 * s + l]
    e_act = p[10 * s + l]
    e_diff = p[11 * s + l]
    e_sec = p[12 * s + l]
    e_tfh = p[13 * s + l]
    e_rep = p[14 * s + l]
    k_cd4 = LN2 / p[15 * s + l]
    d_t = p[16 * s + l]
    a_t = p[17 * s + l]
    k_help = p[18 * s + l]
    d_n = p[19 * s + l]
    k_act = p[20 * s + l]
    k_ag = p[21 * s + l]
    h_ag = p[22 * s + l]
    p_g = p[23 * s + l]
    d_g = p[24 * s + l]
    k_gp = p[25 * s + l]
    k_gm = p[26 * s + l]
    g_cap = p[27 * s + l]
    d_mem = p[28 * s + l]
    k_re = p[29 * s + l]
    d_pb = 1.0 / p[30 * s + l]
    phi = p[31 * s + l]
    d_pl = LN2 / p[32 * s + l]
    l_cap = p[33 * s + l]
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
    u = p[51 * s + l]
    # p[52], p[53]: proteinuria read-out; p[55]: extra-renal read-out (activity.py).
    renal_s = p[54 * s + l]
    k_gc = LN2 / p[56 * s + l]
    gc_50 = p[57 * s + l]
    gc_inf = p[58 * s + l]
    gc_ren = p[59 * s + l]
    gc_lym = p[60 * s + l]
    k_cyc = LN2 / p[61 * s + l]
    cyc_50 = p[62 * s + l]
    cyc_max = p[63 * s + l]
    k_mmf = LN2 / p[64 * s + l]
    mmf_50 = p[65 * s + l]
    mmf_max = p[66 * s + l]
    k_hcq = LN2 / p[67 * s + l]
    hcq_50 = p[68 * s + l]
    hcq_max = p[69 * s + l]
    k_rtx = LN2 / p[70 * s + l]
    rtx_fold = p[71 * s + l]
    rtx_50 = p[72 * s + l]
    car_exp = p[73 * s + l]
    car_con = p[74 * s + l]
    car_t50 = p[75 * s + l]
    car_kmax = p[76 * s + l]
    car_50 = p[77 * s + l]

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

    # --- MSC signal: direct + induced regulatory state, scaled by the patient's response,
    # acting through saturating (Emax) suppressions ---------------------------------------------
    e_msc = msc / (msc + msc_ec50) if msc > 0.0 else 0.0
    zs = r_msc * (e_msc + max(reg, 0.0))
    sz = zs / (zs + z50)
    f_prolif = 1.0 - e_prolif * sz
    f_act = 1.0 - e_act * sz
    f_diff = 1.0 - e_diff * sz
    f_sec = 1.0 - e_sec * sz
    f_tfh = 1.0 - e_tfh * sz

    # --- drug effects (each an Emax of its effect compartment) ---------------------------------
    gcp = max(gc, 0.0)
    e_gc = gcp / (gcp + gc_50)
    mmp = max(mmf, 0.0)
    e_mmf = mmf_max * mmp / (mmp + mmf_50)
    hqp = max(hcq, 0.0)
    e_hcq = hcq_max * hqp / (hqp + hcq_50)
    cyp = max(cyc, 0.0)
    kill_cyc = cyc_max * cyp / (cyp + cyc_50)  # proliferating cells (GC B, plasmablasts, Tfh)
    rxp = max(rtx, 0.0)
    kill_rtx = (rtx_fold - 1.0) * d_n * rxp / (rxp + rtx_50)  # CD20+ B cells
    cap = max(cart, 0.0)
    kill_car = car_kmax * cap / (cap + car_50)  # CD19+ B cells and plasmablasts
    lymph = (1.0 - gc_lym * e_gc) * (1.0 - e_mmf)
    drug = (1.0 - u) * lymph

    # Hill stimulation by the antigen that B cells sense (HCQ blunts TLR7/9 sensing): one power
    # per call, by pow_pos (libm-free, so that the lane loop vectorises; see immunosim._vmath).
    agp = pow_pos(max(ag, 0.0) * (1.0 - e_hcq) / k_ag, h_ag)
    stim = agp / (agp + 1.0)
    tp = max(tfh, 0.0)
    help_ = tp / (tp + k_help)

    act = k_act * stim * help_ * f_act * drug
    react = k_re * stim * help_ * f_act * drug
    # Proliferation is a fraction (<= 1) of the exit rate times help (< 1): net growth < 0.
    prolif = p_g * (d_g + k_gp + k_gm) * help_ * f_prolif * (1.0 - u) * (1.0 - e_mmf) * (
        1.0 - bg / g_cap)
    diff = k_gp * bg * f_diff
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
    dydt[4 * s + l] = d_n - (d_n + act + kill_rtx + kill_car) * bn
    dydt[5 * s + l] = act * bn + react * bm + (
        prolif - d_g - k_gp - k_gm - kill_cyc - kill_rtx - kill_car) * bg
    dydt[6 * s + l] = k_gm * bg - (d_mem + react + kill_rtx + kill_car) * bm
    dydt[7 * s + l] = (1.0 - phi) * diff - (d_pb + kill_cyc + kill_car) * pb
    dydt[8 * s + l] = phi * diff * (1.0 - pl / l_cap) - d_pl * pl
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
