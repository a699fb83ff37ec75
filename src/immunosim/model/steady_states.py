"""Steady states of ``sle_msc`` without MSCs, found exactly by a one-dimensional reduction.

With no MSCs (``msc = reg = 0``) every state at equilibrium is an explicit function of the
self-antigen level ``Ag`` (see ``docs/model.md``, "Steady states"). The equilibria are therefore
the roots of the scalar map ``g(Ag) = Ag_implied(Ag) - Ag``, found by a dense log-spaced scan and
vectorised bisection. This finds every equilibrium, the unstable one between the healthy and
diseased states included, which is what the bistability figure and the virtual cohorts need
(patients start in their own diseased equilibrium).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numba
import numpy as np

from .._numba_config import JIT
from . import sle_msc as m

#: Scan grid of the antigen level (healthy = 1); the diseased state sits at a few units.
_AG_GRID = np.logspace(-1.0, np.log10(50.0), 800)
#: Its extension, scanned only for rows whose residual is still positive at the grid's end: a
#: diseased state above it (aggressive disease: about 2.5% of points drawn from the plausible
#: ranges) was otherwise missed, and the patient taken for one without a diseased state. Cells
#: are < 1% wide, like the grid's.
_AG_EXTENSION = np.logspace(np.log10(50.0), 6.0, 1000)
_BISECTIONS = 52  # grid cells are < 1% wide: 52 halvings reach double precision
#: Patients per vectorised pass: the scan keeps about 25 temporaries of ``_ROWS`` x 800 floats
#: (20 MB per thread; all patients at once took 160 kB per patient).
_ROWS = 128
#: States whose stability decides healthy vs diseased (all but the drug doses and exposures).
_DISEASE = np.array([i for i in range(m.N_STATES) if i not in m.DRUG_STATES])


def _positive_root(a, b, c):
    """Non-negative root of ``-a x^2 + b x + c = 0`` with ``a >= 0``, ``c >= 0`` (stable form,
    elementwise)."""
    a, b, c = np.broadcast_arrays(np.asarray(a, float), np.asarray(b, float), np.asarray(c, float))
    disc = np.sqrt(b * b + 4.0 * a * c)
    with np.errstate(divide="ignore", invalid="ignore"):
        small_b = np.where(disc - b > 0.0, 2.0 * c / (disc - b), 0.0)
        large_b = np.where(a > 0.0, (b + disc) / (2.0 * a), np.inf)
    return np.where(b <= 0.0, small_b, large_b)


def state_given_antigen(ag, p: np.ndarray, state: bool = True
                        ) -> tuple[np.ndarray | None, np.ndarray]:
    """Equilibrium of all other states at antigen level ``ag`` (no MSCs).

    Vectorised: ``p`` has shape ``(..., n_params)`` and ``ag`` any shape that broadcasts with
    ``p.shape[:-1]`` (e.g. ``p (P, 1, n)`` with ``ag (G,)`` evaluates a grid for every patient).

    Returns
    -------
    y : ndarray, shape ``np.shape(ag) + (n_states,)``
        The state, with ``antigen = ag`` (no MSCs, no drugs, CD4 pool at 1); None when
        ``state`` is False (only the residual is wanted: no (..., n_states) array is built).
    ag_implied : ndarray, shape ``np.shape(ag)``
        The antigen level this state would sustain; ``y`` is an equilibrium iff it equals ``ag``.
    """
    ag = np.asarray(ag, dtype=float)
    p = np.asarray(p, dtype=float)
    q = {name: p[..., i] for i, name in enumerate(m.PARAMETER_NAMES)}
    u = q["std_therapy"]
    h = q["antigen_hill"]
    stim = ag**h / (ag**h + q["antigen_k50"] ** h)
    tfh = 1.0 + q["tfh_expansion"] * stim  # CD4 pool at its healthy level 1
    help_ = tfh / (tfh + q["tfh_help_k50"])
    act = q["activation_rate"] * stim * help_ * (1.0 - u)
    react = q["memory_reactivation"] * stim * help_ * (1.0 - u)
    bn = q["naive_turnover"] / (q["naive_turnover"] + act)
    exits = q["gc_death"] + q["gc_to_pc"] + q["gc_to_memory"]
    g = q["gc_renewal"] * exits * help_ * (1.0 - u)
    mem_gain = react * q["gc_to_memory"] / (q["memory_turnover"] + react)
    # act*bn + (mem_gain + g - exits) bg - g/cap bg^2 = 0
    bg = _positive_root(g / q["gc_capacity"], mem_gain + g - exits, act * bn)
    bm = q["gc_to_memory"] * bg / (q["memory_turnover"] + react)
    diff = q["gc_to_pc"] * bg
    pb = (1.0 - q["llpc_fraction"]) * diff * q["plasmablast_lifespan"]
    d_pl = m.LN2 / q["llpc_half_life"]
    pl = q["llpc_fraction"] * diff / (d_pl + q["llpc_fraction"] * diff / q["llpc_capacity"])
    d_a = m.LN2 / q["igg_half_life"]
    prod = q["secretion_pb"] * pb + q["secretion_llpc"] * pl
    ab = prod / (d_a + q["ic_formation"] * ag)
    form = q["ic_formation"] * ab * ag
    # IC: d_ic x (eps + (1-eps) c) = form with c = k_c3 / (k_c3 + k_cons x)
    d_ic, eps, k_c3, k_cons = (q["ic_clearance"], q["ic_clearance_c3_independent"],
                               q["c3_turnover"], q["c3_consumption"])
    ic = _positive_root(d_ic * eps * k_cons, form * k_cons - d_ic * k_c3, form * k_c3)
    c3 = q["c3_normal"] * k_c3 / (k_c3 + k_cons * ic)
    icr = ic * q["renal_susceptibility"]
    injury = icr * icr / (icr * icr + q["ic_k50"] ** 2)
    dmg = q["damage_rate"] * injury / (q["damage_rate"] * injury + q["repair_rate"])
    infl = ic / q["ic_k50"]
    release = 1.0 + q["damage_antigen_release"] * dmg + q["inflammation_antigen_release"] * infl
    ag_implied = release / (
        1.0 + q["antigen_consumption"] * q["ic_formation"] * ab / q["antigen_clearance"]
    )
    if not state:
        return None, ag_implied
    zero = np.zeros_like(ag)
    one = np.ones_like(ag)
    core = (zero, zero, one, tfh, bn, bg, bm, pb, pl, ab, ag, ic, c3, dmg, infl)
    y = np.stack(np.broadcast_arrays(*core, *([zero] * len(m.DRUG_STATES))), axis=-1)
    return y, ag_implied


def numerical_jacobian(y: np.ndarray, p: np.ndarray, rel: float = 1e-7) -> np.ndarray:
    """Central-difference Jacobian of :func:`sle_msc.rhs` at ``y``, shape (n_states, n_states)."""
    n = y.size
    jac = np.empty((n, n))
    fp, fm = np.empty(n), np.empty(n)
    for j in range(n):
        h = rel * max(abs(y[j]), 1.0)
        yp, ym = y.copy(), y.copy()
        yp[j] += h
        ym[j] -= h
        m.rhs(0.0, yp, p, fp)
        m.rhs(0.0, ym, p, fm)
        jac[:, j] = (fp - fm) / (2.0 * h)
    return jac


@JIT
def numerical_jacobians(ys: np.ndarray, ps: np.ndarray, rel: float = 1e-7) -> np.ndarray:
    """:func:`numerical_jacobian` of many points at once (compiled), shape (K, n, n).

    Parameters
    ----------
    ys : ndarray, shape (K, n_states)
    ps : ndarray, shape (K, n_params)
    """
    k_, n = ys.shape
    out = np.empty((k_, n, n))
    fp, fm = np.empty(n), np.empty(n)
    for k in range(k_):
        for j in range(n):
            h = rel * max(abs(ys[k, j]), 1.0)
            yp, ym = ys[k].copy(), ys[k].copy()
            yp[j] += h
            ym[j] -= h
            m.rhs(0.0, yp, ps[k], fp)
            m.rhs(0.0, ym, ps[k], fm)
            for i in range(n):
                out[k, i, j] = (fp[i] - fm[i]) / (2.0 * h)
    return out


@dataclass(frozen=True)
class SteadyState:
    """One equilibrium: state vector, its stability and its leading eigenvalue (1/d)."""

    y: np.ndarray
    stable: bool
    leading_eigenvalue: float

    @property
    def antigen(self) -> float:
        return float(self.y[m.ANTIGEN])


def steady_states_batch(params: np.ndarray) -> list[list[SteadyState]]:
    """All equilibria of each parameter row, sorted by antigen level (healthy first).

    One vectorised pass over patients x grid, then vectorised bisection of every bracketed root
    of every patient at once; stability from each equilibrium's Jacobian. Patients are taken
    :data:`_ROWS` at a time (the scan's temporaries stay a few MB whatever the cohort), on
    Numba's number of threads; each row's result does not depend on the others.

    Parameters
    ----------
    params : ndarray, shape (P, n_params)

    Returns
    -------
    list (length P) of lists of SteadyState
    """
    params = np.atleast_2d(np.asarray(params, dtype=np.float64))
    parts = [params[a:a + _ROWS] for a in range(0, params.shape[0], _ROWS)]
    threads = min(len(parts), numba.get_num_threads())
    if threads <= 1:
        return [s for part in parts for s in _steady_states_batch(part)]
    with ThreadPoolExecutor(threads) as pool:  # numpy and the Jacobian kernel release the GIL
        return [s for found in pool.map(_steady_states_batch, parts) for s in found]


def _brackets(grid: np.ndarray, params: np.ndarray, rows: np.ndarray):
    """Sign changes of the residual on ``grid`` for ``params[rows]``: (row, lo, hi, f(lo)) each,
    sorted by row, then by antigen; and the residual at the grid's end per row."""
    res = state_given_antigen(grid, params[rows][:, None, :], False)[1] - grid  # (R, G)
    ri, gi = np.nonzero(np.sign(res[:, :-1]) * np.sign(res[:, 1:]) < 0)
    return rows[ri], grid[gi].copy(), grid[gi + 1].copy(), res[ri, gi], res[:, -1]


def _steady_states_batch(params: np.ndarray) -> list[list[SteadyState]]:
    with np.errstate(all="ignore"):  # hostile parameters: overflow gives no root, not a warning
        return _steady_states_rows(params)


def _steady_states_rows(params: np.ndarray) -> list[list[SteadyState]]:
    pi, lo, hi, f_lo, end = _brackets(_AG_GRID, params, np.arange(params.shape[0]))
    beyond = np.flatnonzero(end > 0)  # the implied antigen still exceeds the grid's end
    if beyond.size:
        more = _brackets(_AG_EXTENSION, params, beyond)[:4]
        pi, lo, hi, f_lo = (np.concatenate(ab) for ab in zip((pi, lo, hi, f_lo), more))
        order = np.argsort(pi, kind="stable")  # by patient; each patient's roots by antigen
        pi, lo, hi, f_lo = pi[order], lo[order], hi[order], f_lo[order]
    q = params[pi]
    for _ in range(_BISECTIONS):
        mid = 0.5 * (lo + hi)
        f_mid = state_given_antigen(mid, q, False)[1] - mid
        left = np.sign(f_mid) == np.sign(f_lo)
        lo = np.where(left, mid, lo)
        f_lo = np.where(left, f_mid, f_lo)
        hi = np.where(left, hi, mid)
    ys = state_given_antigen(0.5 * (lo + hi), q)[0]
    out: list[list[SteadyState]] = [[] for _ in range(params.shape[0])]
    if pi.size == 0:
        return out
    # Drug states are inert at zero exposure (dose states have a zero eigenvalue, CAR-T would
    # grow from a seed): stability is that of the disease states.
    jac = numerical_jacobians(np.ascontiguousarray(ys), np.ascontiguousarray(q))
    jd = jac[:, _DISEASE[:, None], _DISEASE[None, :]]
    # A root or Jacobian with inf/NaN (parameters at the edge of their domain, e.g. a half-life
    # of 1e-320 d) is no usable equilibrium: its leading eigenvalue is NaN, so it is not stable
    # and the run gets the status "no diseased steady state" instead of a LinAlgError.
    finite = np.all(np.isfinite(jd), axis=(1, 2)) & np.all(np.isfinite(ys), axis=1)
    lead = np.full(pi.size, np.nan)
    if finite.any():
        lead[finite] = np.linalg.eigvals(jd[finite]).real.max(axis=1)
    for k in range(pi.size):  # roots come sorted by patient, then by antigen
        out[pi[k]].append(SteadyState(y=ys[k], stable=bool(lead[k] < 0.0),
                                      leading_eigenvalue=float(lead[k])))
    return out


def steady_states(p: np.ndarray) -> list[SteadyState]:
    """All equilibria of ``sle_msc`` without MSCs, sorted by antigen level (healthy first).

    Parameters
    ----------
    p : ndarray, shape (n_params,)
        Parameter vector.

    Returns
    -------
    list of SteadyState
        One entry per equilibrium; a bistable patient has three (stable, unstable, stable).
    """
    return steady_states_batch(np.asarray(p, dtype=np.float64)[None, :])[0]


def _diseased(states: list[SteadyState]) -> np.ndarray | None:
    stable = [s for s in states if s.stable]
    if len(stable) == 0 or (len(stable) == 1 and stable[0].antigen < 1.5):
        return None
    return stable[-1].y.copy()


def diseased_states(params: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Diseased equilibrium of each row: ``y0 (P, n_states)`` (NaN rows where there is none)
    and ``ok (P,)``."""
    params = np.atleast_2d(params)
    y0 = np.full((params.shape[0], m.N_STATES), np.nan)
    ok = np.zeros(params.shape[0], dtype=bool)
    for i, states in enumerate(steady_states_batch(params)):
        y = _diseased(states)
        if y is not None:
            y0[i], ok[i] = y, True
    return y0, ok


def diseased_state(p: np.ndarray) -> np.ndarray | None:
    """The diseased (highest-antigen, stable) equilibrium, or ``None`` if the patient has none."""
    return _diseased(steady_states(p))


def healthy_state(p: np.ndarray) -> np.ndarray | None:
    """The healthy (lowest-antigen, stable) equilibrium, or ``None`` if it does not exist."""
    stable = [s for s in steady_states(p) if s.stable]
    if not stable or stable[0].antigen >= 1.5:
        return None
    return stable[0].y.copy()
