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
from ._parameters import Parameter, ParameterTable, State

NAME = "sle_msc"

LN2 = math.log(2.0)

STATES: tuple[State, ...] = (
    State("msc", "1e6 cells/kg", "Infused MSCs (lung pool, potency-weighted)"),
    State("reg", "1", "MSC-induced regulatory activity (Treg/Breg)"),
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
)
STATE_NAMES: tuple[str, ...] = tuple(s.name for s in STATES)
STATE_INDEX: dict[str, int] = {n: i for i, n in enumerate(STATE_NAMES)}
N_STATES = len(STATES)

# State indices used by kernels and interventions (compile-time constants for Numba).
MSC, REG, TFH, B_NAIVE, B_GC, B_MEM, PLASMABLAST, LLPC, ANTI_DSDNA, ANTIGEN, IC, C3, DAMAGE = range(
    N_STATES
)

_LIT = "LITERATURE.md"
PARAMETERS = ParameterTable(
    (
        # --- infused MSCs -------------------------------------------------------------------
        Parameter("msc_half_life", 1.0, "d", 0.5, 2.0,
                  "Lee RH et al., Cell Stem Cell 2009; Eggenhofer E et al., Front Immunol 2012;3:297",
                  "Half-life of IV MSCs trapped in the lung"),
        Parameter("msc_ec50", 0.5, "1e6 cells/kg", 0.1, 3.0,
                  "assumed: no human exposure-response data; puts the clinical 1e6 cells/kg near "
                  "the top of the direct-effect curve and 1e5 cells/kg near its foot",
                  "MSC pool giving half the maximal direct effect"),
        Parameter("potency_bm", 1.0, "1", 0.5, 2.0,
                  "assumed: reference cell source (bone marrow), Liang J et al., Ann Rheum Dis 2010",
                  "Potency factor of bone-marrow MSCs"),
        Parameter("potency_uc", 1.0, "1", 0.5, 2.0,
                  "assumed: Wang D et al., Cell Transplant 2013 pooled BM and UC MSCs with similar "
                  "outcomes, so the same potency as BM by default",
                  "Potency factor of umbilical-cord MSCs"),
        Parameter("reg_induction", 0.6, "1/d", 0.2, 2.0,
                  "assumed: scaled so one 1e6 cells/kg infusion raises regulatory activity about "
                  "two-fold (Treg rise after MSC: Sun L et al., Arthritis Rheum 2010, " + _LIT + ")",
                  "Induction rate of the regulatory state by MSCs (PGE2, TGF-beta1, IDO)"),
        Parameter("reg_half_life", 90.0, "d", 30.0, 365.0,
                  "assumed: hit and run, clinical benefit lasts 6-12+ months after MSCs are "
                  "cleared (" + _LIT + " section 2)",
                  "Half-life of the MSC-induced regulatory state"),
        Parameter("theta_prolif", 2.0, "1", 0.0, 6.0,
                  "assumed strength; mechanism: Corcione A et al., Blood 2006;107:367",
                  "MSC suppression of B-cell proliferation (G0/G1 arrest)"),
        Parameter("theta_activation", 1.0, "1", 0.0, 4.0,
                  "assumed strength; mechanism: Corcione A et al., Blood 2006;107:367",
                  "MSC suppression of B-cell activation"),
        Parameter("theta_differentiation", 1.0, "1", 0.0, 4.0,
                  "assumed strength; mechanism: Rafei M et al., Blood 2008;112:4991 "
                  "(context-dependent, Luk F et al., Front Immunol 2017)",
                  "MSC suppression of plasma-cell differentiation"),
        Parameter("theta_secretion", 0.5, "1", 0.0, 2.0,
                  "assumed strength; mechanism: Rafei M et al., Blood 2008;112:4991",
                  "MSC suppression of plasmablast antibody output (not of LLPC)"),
        Parameter("theta_tfh", 1.0, "1", 0.0, 4.0,
                  "assumed strength; mechanism: Tfh/IL-21 inhibition in lupus mice, "
                  "Cell Transplant 2017;26:1031 (" + _LIT + ")",
                  "MSC inhibition of T follicular helper cells"),
        Parameter("theta_repair", 1.0, "1", 0.0, 4.0,
                  "assumed strength; MSC-assisted tissue repair (" + _LIT + ", the seed)",
                  "MSC enhancement of renal repair"),
        # --- T follicular helper cells ------------------------------------------------------
        Parameter("tfh_turnover", 0.1, "1/d", 0.05, 0.3,
                  "assumed: effector/memory CD4 T-cell turnover of days to weeks",
                  "Tfh loss rate (sets how fast Tfh follow antigen)"),
        Parameter("tfh_expansion", 3.0, "1", 1.0, 6.0,
                  "circulating Tfh expanded 2-4x in active SLE, Simpson N et al., Arthritis "
                  "Rheum 2010;62:234 [secondary]",
                  "Maximal antigen-driven Tfh expansion above healthy"),
        Parameter("tfh_help_k50", 1.0, "1", 0.5, 2.0,
                  "assumed: half-maximal help at the healthy Tfh level",
                  "Tfh level giving half-maximal B-cell help"),
        # --- B cells ------------------------------------------------------------------------
        Parameter("naive_turnover", 0.02, "1/d", 0.01, 0.04,
                  "Pan S et al., Br J Clin Pharmacol 2019;85:1790 (B-cell turnover 0.02/d)",
                  "Naive B-cell production and death rate"),
        Parameter("activation_rate", 0.05, "1/d", 0.01, 0.5,
                  "assumed: germinal centres form 7-10 d after antigen (MacLennan, Annu Rev "
                  "Immunol 1994;12:117), maximal activation a few percent of the pool a day; "
                  "the range spans healthy-only (< 0.012) to diseased-only (> 0.22) patients",
                  "Maximal antigen- and help-driven activation rate of naive B cells"),
        Parameter("antigen_k50", 2.0, "1", 1.5, 3.0,
                  "assumed: threshold of the damage-antigen loop (Arazi A, Neumann AU, J Theor "
                  "Biol 2010;267:426)",
                  "Self-antigen level giving half-maximal B-cell stimulation"),
        Parameter("antigen_hill", 3.0, "1", 2.0, 4.0,
                  "assumed: cooperative BCR/TLR9 stimulation; sigmoid as in Arazi & Neumann 2010",
                  "Hill coefficient of antigen stimulation"),
        Parameter("gc_renewal", 1.0, "1", 0.6, 1.0,
                  "assumed: GC proliferation replaces at most the cells leaving the GC (fraction "
                  "<= 1 of the exit rate), so GCs amplify but never sustain themselves and wane "
                  "in about 3 weeks without antigen (MacLennan 1994)",
                  "Maximal GC proliferation as a fraction of the GC exit rate"),
        Parameter("gc_death", 0.6, "1/d", 0.4, 0.9,
                  "assumed: GC selection death, GCs last ~3 weeks (MacLennan 1994)",
                  "Death rate of activated / GC B cells"),
        Parameter("gc_to_pc", 0.3, "1/d", 0.15, 0.5,
                  "assumed", "Differentiation rate of GC B cells to plasma cells"),
        Parameter("gc_to_memory", 0.05, "1/d", 0.02, 0.1,
                  "assumed", "Differentiation rate of GC B cells to memory B cells"),
        Parameter("gc_capacity", 100.0, "1", 30.0, 300.0,
                  "assumed: crowding limit that keeps GC expansion bounded",
                  "Carrying capacity of activated / GC B cells"),
        Parameter("memory_turnover", 0.01, "1/d", 0.005, 0.03,
                  "assumed from memory B division 2.66%/d balanced by self-renewal "
                  "(Macallan DC et al., Blood 2005;105:3633)",
                  "Net loss rate of memory B cells"),
        Parameter("memory_reactivation", 0.1, "1/d", 0.03, 0.3,
                  "assumed: memory B cells respond faster than naive ones",
                  "Maximal antigen-driven reactivation rate of memory B cells"),
        Parameter("plasmablast_lifespan", 3.0, "d", 2.0, 5.0,
                  "standard immunology: short-lived plasmablasts live days (" + _LIT + ")",
                  "Mean lifespan of short-lived plasmablasts"),
        Parameter("llpc_fraction", 0.003, "1", 0.001, 0.01,
                  "assumed: a minority of plasma-cell output enters survival niches; ~40% of "
                  "splenic ASC in NZB/W mice are LLPC (Hoyer BF et al., J Exp Med 2004;199:1577)",
                  "Fraction of differentiating cells that become long-lived plasma cells"),
        Parameter("llpc_half_life", 365.0, "d", 180.0, 3650.0,
                  "Hoyer BF et al., J Exp Med 2004 (>6 months, mice); Amanna IJ et al., NEJM "
                  "2007;357:1903 (years in humans)",
                  "Half-life of long-lived plasma cells"),
        Parameter("llpc_capacity", 5.0, "1", 1.0, 20.0,
                  "assumed: survival-niche limit", "Niche capacity for long-lived plasma cells"),
        Parameter("secretion_pb", 65.0, "IU/mL/d", 20.0, 150.0,
                  "assumed: scaled so the diseased state has anti-dsDNA of a few hundred IU/mL",
                  "Anti-dsDNA output per plasmablast unit"),
        Parameter("secretion_llpc", 65.0, "IU/mL/d", 20.0, 150.0,
                  "assumed: same per-cell output as plasmablasts",
                  "Anti-dsDNA output per long-lived plasma cell unit"),
        # --- antibody, antigen, immune complexes, complement --------------------------------
        Parameter("igg_half_life", 21.0, "d", 17.0, 26.0,
                  "standard IgG pharmacokinetics [secondary] (" + _LIT + ")",
                  "Serum half-life of anti-dsDNA IgG"),
        Parameter("ic_formation", 0.002, "1/d", 0.0005, 0.006,
                  "assumed: scaled so immune complexes deposit at a few hundred IU/mL anti-dsDNA",
                  "Rate constant of immune-complex formation (per antigen unit)"),
        Parameter("antigen_clearance", 0.5, "1/d", 0.2, 1.0,
                  "assumed: apoptotic debris cleared within days (Arazi & Neumann 2010)",
                  "Clearance rate of self-antigen"),
        Parameter("damage_antigen_release", 12.0, "1", 6.0, 18.0,
                  "assumed: strength of damage -> self-antigen feedback (Arazi & Neumann 2010)",
                  "Fold increase of antigen release per unit damage"),
        Parameter("antigen_consumption", 0.0, "1", 0.0, 0.5,
                  "assumed: antigen bound into complexes is negligible against release",
                  "Antigen units removed per immune-complex unit formed"),
        Parameter("ic_clearance", 0.5, "1/d", 0.2, 1.0,
                  "assumed: complement- and Fc-receptor-mediated clearance within days",
                  "Maximal clearance rate of immune complexes"),
        Parameter("ic_clearance_c3_independent", 0.3, "1", 0.1, 0.6,
                  "assumed: share of IC clearance that does not need complement",
                  "Fraction of immune-complex clearance independent of C3"),
        Parameter("c3_normal", 120.0, "mg/dL", 90.0, 180.0,
                  "standard reference range of serum C3 (90-180 mg/dL)",
                  "C3 level without immune complexes"),
        Parameter("c3_turnover", 0.4, "1/d", 0.2, 0.8,
                  "assumed from C3 fractional catabolic rate of about 2%/h",
                  "C3 synthesis / catabolic rate"),
        Parameter("c3_consumption", 0.05, "1/d", 0.02, 0.1,
                  "assumed: scaled so the diseased state has C3 near 60 mg/dL",
                  "C3 consumption per immune-complex unit"),
        Parameter("damage_rate", 0.03, "1/d", 0.015, 0.06,
                  "assumed: nephritis develops over weeks", "Maximal rate of IC-driven damage"),
        Parameter("ic_k50", 3.0, "1", 1.5, 6.0,
                  "assumed: immune-complex level giving half-maximal injury",
                  "Immune-complex level giving half-maximal renal injury"),
        Parameter("repair_rate", 0.02, "1/d", 0.01, 0.04,
                  "assumed: proteinuria halves over months after remission (Liang J et al., "
                  "Ann Rheum Dis 2010: 2.5 to 0.86 g/24h in 12 months)",
                  "Renal repair rate"),
        # --- background therapy and read-outs ----------------------------------------------
        Parameter("std_therapy", 0.0, "1", 0.0, 0.9,
                  "assumed: fractional suppression of B-cell activation and proliferation by "
                  "steroids / cyclophosphamide; 0 = none",
                  "Background standard-therapy suppression"),
        Parameter("proteinuria_base", 0.1, "g/24h", 0.05, 0.15,
                  "normal urinary protein < 0.15 g/24h",
                  "Proteinuria without renal damage"),
        Parameter("proteinuria_max", 4.0, "g/24h", 2.5, 6.0,
                  "assumed: nephrotic range at full damage; Liang 2010 baseline 2.5 g/24h",
                  "Proteinuria added at full renal damage"),
    )
)
PARAMETER_NAMES = PARAMETERS.names
N_PARAMS = len(PARAMETERS)


@JIT_INLINE
def rhs_at(t, y, p, dydt, l, s):
    """Right-hand side of ``sle_msc`` for one trajectory in a strided layout (inlined into kernels).

    Element ``i`` of the trajectory in ``lane`` sits at ``i * s + l``: ``s = 1, l = 0`` for one
    trajectory (:func:`rhs`), ``s = LANES`` for the SIMD-lane layout of the batched engine, where
    a loop over ``l`` vectorises this body across trajectories. The model is autonomous (``t`` is
    unused but kept for the ODE contract).

    Parameters
    ----------
    t : float
        Time (d).
    y : ndarray, shape (13 * s,)
        States, ordered as :data:`STATE_NAMES`.
    p : ndarray, shape (n_params * s,)
        Parameters, ordered as :data:`PARAMETER_NAMES`.
    dydt : ndarray, shape (13 * s,)
        Output: time derivative (state unit per day).
    l, s : int
        Lane and stride.
    """
    # Parameter unpacking in table order (tests check the order against PARAMETER_NAMES).
    k_msc = LN2 / p[0 * s + l]
    msc_ec50 = p[1 * s + l]
    # p[2], p[3]: cell-source potencies act on the dose, not here.
    k_ind = p[4 * s + l]
    k_reg = LN2 / p[5 * s + l]
    th_prolif = p[6 * s + l]
    th_act = p[7 * s + l]
    th_diff = p[8 * s + l]
    th_sec = p[9 * s + l]
    th_tfh = p[10 * s + l]
    th_rep = p[11 * s + l]
    d_t = p[12 * s + l]
    a_t = p[13 * s + l]
    k_help = p[14 * s + l]
    d_n = p[15 * s + l]
    k_act = p[16 * s + l]
    k_ag = p[17 * s + l]
    h_ag = p[18 * s + l]
    p_g = p[19 * s + l]
    d_g = p[20 * s + l]
    k_gp = p[21 * s + l]
    k_gm = p[22 * s + l]
    g_cap = p[23 * s + l]
    d_mem = p[24 * s + l]
    k_re = p[25 * s + l]
    d_pb = 1.0 / p[26 * s + l]
    phi = p[27 * s + l]
    d_pl = LN2 / p[28 * s + l]
    l_cap = p[29 * s + l]
    q_pb = p[30 * s + l]
    q_pl = p[31 * s + l]
    d_a = LN2 / p[32 * s + l]
    k_f = p[33 * s + l]
    d_ag = p[34 * s + l]
    a_d = p[35 * s + l]
    sigma = p[36 * s + l]
    d_ic = p[37 * s + l]
    eps = p[38 * s + l]
    c3_0 = p[39 * s + l]
    k_c3 = p[40 * s + l]
    k_cons = p[41 * s + l]
    k_d = p[42 * s + l]
    ic_50 = p[43 * s + l]
    r_d = p[44 * s + l]
    u = p[45 * s + l]

    msc = y[0 * s + l]
    reg = y[1 * s + l]
    tfh = y[2 * s + l]
    bn = y[3 * s + l]
    bg = y[4 * s + l]
    bm = y[5 * s + l]
    pb = y[6 * s + l]
    pl = y[7 * s + l]
    ab = y[8 * s + l]
    ag = y[9 * s + l]
    ic = y[10 * s + l]
    c3 = y[11 * s + l]
    dmg = y[12 * s + l]

    # MSC-derived suppressive signal: direct (short-lived) + induced regulatory state.
    e_msc = msc / (msc + msc_ec50) if msc > 0.0 else 0.0
    z = e_msc + max(reg, 0.0)
    f_prolif = 1.0 / (1.0 + th_prolif * z)
    f_act = 1.0 / (1.0 + th_act * z)
    f_diff = 1.0 / (1.0 + th_diff * z)
    f_sec = 1.0 / (1.0 + th_sec * z)
    f_tfh = 1.0 / (1.0 + th_tfh * z)

    # Hill stimulation (ag/K)^h / (1 + (ag/K)^h): one power per call, by pow_pos (libm-free, so
    # that the lane loop vectorises; within 2e-14 of ``**``, see immunosim._vmath).
    agp = pow_pos(max(ag, 0.0) / k_ag, h_ag)
    stim = agp / (agp + 1.0)
    tp = max(tfh, 0.0)
    help_ = tp / (tp + k_help)
    drug = 1.0 - u

    act = k_act * stim * help_ * f_act * drug
    react = k_re * stim * help_ * f_act * drug
    # Proliferation is a fraction (<= 1) of the exit rate times help (< 1): net growth < 0.
    prolif = p_g * (d_g + k_gp + k_gm) * help_ * f_prolif * drug * (1.0 - bg / g_cap)
    diff = k_gp * bg * f_diff
    form = k_f * ab * ag
    c3_frac = c3 / c3_0
    icp = max(ic, 0.0)
    injury = icp * icp / (icp * icp + ic_50 * ic_50)

    dydt[0 * s + l] = -k_msc * msc
    dydt[1 * s + l] = k_ind * e_msc - k_reg * reg
    dydt[2 * s + l] = d_t * (1.0 + a_t * stim) * f_tfh - d_t * tfh
    dydt[3 * s + l] = d_n - d_n * bn - act * bn
    dydt[4 * s + l] = act * bn + react * bm + (prolif - d_g - k_gp - k_gm) * bg
    dydt[5 * s + l] = k_gm * bg - d_mem * bm - react * bm
    dydt[6 * s + l] = (1.0 - phi) * diff - d_pb * pb
    dydt[7 * s + l] = phi * diff * (1.0 - pl / l_cap) - d_pl * pl
    dydt[8 * s + l] = q_pb * pb * f_sec + q_pl * pl - d_a * ab - form
    dydt[9 * s + l] = d_ag * (1.0 + a_d * dmg) - d_ag * ag - sigma * form
    dydt[10 * s + l] = form - d_ic * (eps + (1.0 - eps) * c3_frac) * ic
    dydt[11 * s + l] = k_c3 * (c3_0 - c3) - k_cons * ic * c3
    dydt[12 * s + l] = k_d * injury * (1.0 - dmg) - r_d * (1.0 + th_rep * z) * dmg
    return 0


@JIT
def rhs(t, y, p, dydt):
    """Right-hand side of ``sle_msc``: ``dydt = f(t, y; p)`` for one trajectory.

    Parameters
    ----------
    t : float
        Time (d).
    y : ndarray, shape (13,)
        State, ordered as :data:`STATE_NAMES`.
    p : ndarray, shape (n_params,)
        Parameters, ordered as :data:`PARAMETER_NAMES`.
    dydt : ndarray, shape (13,)
        Output: time derivative (state unit per day).
    """
    return rhs_at(t, y, p, dydt, 0, 1)


def rhs_py(t: float, y: np.ndarray, p: np.ndarray) -> np.ndarray:
    """Plain-Python view of :func:`rhs` for ``scipy.integrate.solve_ivp``: returns ``dy/dt``."""
    dydt = np.empty(N_STATES)
    rhs(float(t), np.asarray(y, dtype=np.float64), p, dydt)
    return dydt
