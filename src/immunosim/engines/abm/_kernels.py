"""Kernels of the agent-based engine: one lane = one (patient, replicate), stepped serially.

Structure (each function readable on its own; :func:`run_lane` ties them together):

* **State of a lane.** Continuous states ``y (n_states,)`` (everything abundant: naive pool,
  antibody, antigen, complement, damage, MSCs, regulatory state, drugs) and clones in a
  structure of arrays: ``counts (cap, C)`` integer cells per compartment, ``thr (cap,)`` each
  clone's remaining Exp(1) hazard threshold, ``founded (cap,)`` founding day, ``off (cap,)``
  the part of the current step already elapsed when the clone was founded. Live clones are
  kept contiguous in ``[0, n_live)``; an extinct clone is swapped with the last one. The
  lineage entries of ``y`` are the compartment totals divided by the system size ``omega``.
* **One coupling step** of length ``h <= dt`` (:func:`run_lane`):

  1. per-cell rates ``r (K,)`` at the start of the step (``_model.rates``), frozen over it;
  2. continuous states advanced by classical RK4 (``n_sub`` substeps) with the lineage rows
     frozen, redone with twice the substeps if a non-negative state goes negative
     (:func:`_continuous_safe`);
  3. new clones: ``Poisson(r_k * y[source] * omega * h)`` founders, each founded at a uniform
     instant of the step (:func:`_found_clones`);
  4. every live clone advanced over the rest of the step (:func:`_step_clones`): a quiet clone
     (its hazard threshold not reached) costs a multiply and a compare; otherwise an exact
     stochastic simulation (Gillespie direct method with integrated-hazard thresholds,
     :func:`_ssa_clone`) while every compartment holds fewer than ``n_crit`` cells, or binomial
     fates per cell (:func:`_tau_clone`, substeps so that no per-cell probability exceeds
     ``p_max``);
  5. totals copied into ``y``; dosing events applied at their exact times (steps end there);
     states saved at the save times (steps end there too).

* **Burn-in.** Before day 0 the lane runs ``burn_in`` days with the continuous state clamped at
  the patient's ODE equilibrium, so that clones reach their stationary sizes and ages. It starts
  from ``Poisson(init_mean)`` cells per compartment (:func:`_draw_initial`: legacy compartments
  pooled in one clone, every other cell a clone of its own) plus any explicit ``init`` clones.

Random numbers come from the lane's own xoshiro256** stream (``_random``); nothing is shared
between lanes, so results do not depend on the number of threads.
"""

from __future__ import annotations

import math

import numpy as np
from numba import prange

from ..._numba_config import JIT, JIT_NO_NRT, JIT_PARALLEL
from ...model.interventions import OP_ADD, OP_SCALE
from ..events import apply_jump
from . import _model
from . import _random as rnd

# Lane status codes (see solver.STATUS_MESSAGES).
OK = 0
NONFINITE = 1
TOO_MANY_CLONES = 2
UNSUPPORTED_EVENT = 3

#: A state that must stay non-negative and ends an RK4 step below this is a failed step.
NEG_TOL = 1e-9

# Per-lane counters in ``stats``.
ST_UPDATES = 0  # clone-compartment updates (one live compartment of one clone, one step)
ST_CELL_STEPS = 1  # cell-equivalent steps (cells present x steps)
ST_FIRINGS = 2  # transitions fired (cell events)
ST_FOUNDED = 3  # clones founded
ST_STEPS = 4  # coupling steps
N_STATS = 5


@JIT
def _grow(a, cap):
    """``a`` copied into a new array with ``cap`` rows (the first rows kept)."""
    shape = (cap,) + a.shape[1:]
    b = np.zeros(shape, dtype=a.dtype)
    b[: a.shape[0]] = a
    return b


@JIT_NO_NRT
def _continuous_step(model_id, t, y, p, h, n_sub, frozen, k1, k2, k3, k4, yt):
    """Classical RK4 over ``[t, t + h]`` in ``n_sub`` substeps; rows with ``frozen[i]`` kept."""
    n = y.size
    hs = h / n_sub
    for _ in range(n_sub):
        _model.rhs(model_id, t, y, p, k1)
        for i in range(n):
            yt[i] = y[i] + 0.5 * hs * k1[i]
        _model.rhs(model_id, t + 0.5 * hs, yt, p, k2)
        for i in range(n):
            yt[i] = y[i] + 0.5 * hs * k2[i]
        _model.rhs(model_id, t + 0.5 * hs, yt, p, k3)
        for i in range(n):
            yt[i] = y[i] + hs * k3[i]
        _model.rhs(model_id, t + hs, yt, p, k4)
        for i in range(n):
            if not frozen[i]:
                y[i] += hs / 6.0 * (k1[i] + 2.0 * k2[i] + 2.0 * k3[i] + k4[i])
        t += hs
    return 0


@JIT_NO_NRT
def _continuous_safe(model_id, t, y, p, h, n_sub, frozen, nonneg, k1, k2, k3, k4, yt, ysave):
    """:func:`_continuous_step`, redone with twice the substeps (up to 2**10 times more) while it
    leaves a state that must stay non-negative below ``-NEG_TOL`` or not finite: the sign of
    an RK4 step beyond its stability limit (a state far from the patient's equilibrium can make
    immune-complex formation stiff). Returns a status."""
    for i in range(y.size):
        ysave[i] = y[i]
    ns = n_sub
    for _ in range(11):
        _continuous_step(model_id, t, y, p, h, ns, frozen, k1, k2, k3, k4, yt)
        good = True
        for i in range(y.size):
            if not np.isfinite(y[i]) or (nonneg[i] and y[i] < -NEG_TOL):
                good = False
        if good:
            return OK
        for i in range(y.size):
            y[i] = ysave[i]
        ns *= 2
    return NONFINITE


@JIT_NO_NRT
def _compartment_rates(r, t_source, C, R):
    """``R[c] = sum of r[k] over transitions from compartment c`` (``c = 1..C``; r clipped at 0)."""
    for c in range(C + 1):
        R[c] = 0.0
    for k in range(r.size):
        if t_source[k] > 0:
            R[t_source[k]] += max(r[k], 0.0)
    return 0


@JIT_NO_NRT
def _fire(cnt, i, tot, t_change, k, C):
    """Apply one firing of transition ``k`` to clone ``i`` and to the totals."""
    for c in range(C):
        d = t_change[k, c + 1]
        cnt[i, c] += d
        tot[c] += d


@JIT_NO_NRT
def _ssa_clone(cnt, i, thr, rem, r, R, t_source, t_change, C, tot, st):
    """Exact stochastic simulation of clone ``i`` over ``rem`` days with frozen rates.

    The clone's next firing comes when its integrated total propensity reaches its Exp(1)
    threshold ``thr[i]`` (carried over between steps, so that a quiet step costs no random
    number); which transition fires is chosen in proportion to its propensity (Gillespie's
    direct method). Returns the number of firings.
    """
    fired = 0
    while True:
        a0 = 0.0
        for c in range(1, C + 1):
            a0 += R[c] * cnt[i, c - 1]
        if a0 <= 0.0:
            return fired
        need = thr[i] / a0
        if need > rem:
            thr[i] -= a0 * rem
            return fired
        rem -= need
        # Which compartment, then which of its transitions (one uniform, rescaled).
        u = rnd.uniform(st) * a0
        c = 1
        while c < C and u >= R[c] * cnt[i, c - 1]:
            u -= R[c] * cnt[i, c - 1]
            c += 1
        u /= cnt[i, c - 1]
        kk = -1
        for k in range(r.size):
            if t_source[k] == c and r[k] > 0.0:
                kk = k
                if u < r[k]:
                    break
                u -= r[k]
        _fire(cnt, i, tot, t_change, kk, C)
        fired += 1
        thr[i] = rnd.exponential(st)


@JIT_NO_NRT
def _tau_clone(cnt, i, rem, r, R, t_source, t_change, C, p_max, tot, x, st):
    """Binomial fates for the cells of a large clone ``i`` over ``rem`` days.

    In each substep of length ``hs`` (``R[c] hs <= p_max`` for every compartment present) every
    cell of compartment ``c`` independently undergoes transition ``k`` with probability
    ``r[k] hs`` or nothing: a multinomial over the cells, drawn as the number of cells that move
    (``Binomial(n, R[c] hs)``) split over the transitions by conditional binomials, at a cost
    independent of the clone's size. Exits never exceed the cells present, so counts cannot go
    negative; the expected change per day is exactly ``sum_k change[k] r[k] n[source[k]]``.
    """
    rmax = 0.0
    for c in range(1, C + 1):
        if cnt[i, c - 1] > 0:
            rmax = max(rmax, R[c])
    m = max(1, int(math.ceil(rmax * rem / p_max)))
    hs = rem / m
    fired = 0
    for _ in range(m):
        for k in range(r.size):
            x[k] = 0
        for c in range(1, C + 1):
            n = cnt[i, c - 1]
            if n == 0 or R[c] <= 0.0:
                continue
            left = rnd.binomial(st, n, min(1.0, R[c] * hs))  # cells of c that move
            r_left = R[c]
            for k in range(r.size):
                if left == 0:
                    break
                if t_source[k] != c or r[k] <= 0.0:
                    continue
                xk = left if r[k] >= r_left else rnd.binomial(st, left, r[k] / r_left)
                x[k] = xk
                left -= xk
                r_left -= r[k]
        for k in range(r.size):
            if x[k] > 0:
                for c in range(C):
                    d = t_change[k, c + 1] * x[k]
                    cnt[i, c] += d
                    tot[c] += d
                fired += x[k]
    return fired


@JIT_NO_NRT
def _found_clones(n_new, t, h, cnt, thr, founded, off, n_live, k, t_change, C, tot, st):
    """Append ``n_new`` clones founded by transition ``k`` at uniform instants of the step."""
    for _ in range(n_new):
        j = n_live
        for c in range(C):
            cnt[j, c] = t_change[k, c + 1]
            tot[c] += t_change[k, c + 1]
        u = rnd.uniform(st)
        off[j] = u * h
        founded[j] = t + u * h
        thr[j] = rnd.exponential(st)
        n_live += 1
    return n_live


@JIT_NO_NRT
def _apply_event(y, state, op, value, sources, omega, cnt, n_live, tot, C, st):
    """A dosing event: continuous states jump exactly; a compartment scaled by ``v`` keeps
    each of its cells with probability ``v`` (binomial thinning). Returns a status."""
    c_hit = -1
    for c in range(C):
        if sources[c + 1] == state:
            c_hit = c
    if c_hit < 0:
        apply_jump(y, state, op, value)
        return OK
    if op == OP_SCALE and 0.0 <= value <= 1.0:
        keep = value
    elif op != OP_ADD and op != OP_SCALE and value == 0.0:
        keep = 0.0
    else:
        return UNSUPPORTED_EVENT
    for j in range(n_live):
        n = cnt[j, c_hit]
        if n > 0:
            kept = rnd.binomial(st, n, keep)
            tot[c_hit] += kept - n
            cnt[j, c_hit] = kept
    y[state] = tot[c_hit] / omega
    return OK


@JIT_NO_NRT
def _count(cnt, n_live, founded, reseed, C):
    """``(clones that can re-seed, of them founded before day 0)``: clones holding cells in a
    compartment that divides or re-enters (``reseed``)."""
    n_res = 0
    n_pre = 0
    for j in range(n_live):
        for c in range(C):
            if reseed[c] and cnt[j, c] > 0:
                n_res += 1
                if founded[j] < 0.0:
                    n_pre += 1
                break
    return n_res, n_pre


@JIT_NO_NRT
def _step_clones(cnt, thr, founded, off, n_live, h, r, R, t_source, t_change, C, n_crit, p_max,
                 tot, x, stats, st):
    """Advance every live clone over the step; remove extinct ones. Returns the new ``n_live``."""
    j = 0
    while j < n_live:
        rem = h - off[j]
        off[j] = 0.0
        big = False
        cells = 0
        a0 = 0.0
        for c in range(C):
            n = cnt[j, c]
            if n > 0:
                stats[ST_UPDATES] += 1
                cells += n
                a0 += R[c + 1] * n
            if n >= n_crit:
                big = True
        stats[ST_CELL_STEPS] += cells
        if not big and thr[j] > a0 * rem:  # quiet step: no firing, no random number
            thr[j] -= a0 * rem
            j += 1
            continue
        if big:
            stats[ST_FIRINGS] += _tau_clone(cnt, j, rem, r, R, t_source, t_change, C, p_max, tot,
                                            x, st)
        else:
            stats[ST_FIRINGS] += _ssa_clone(cnt, j, thr, rem, r, R, t_source, t_change, C, tot,
                                            st)
        alive = False
        for c in range(C):
            if cnt[j, c] > 0:
                alive = True
        if alive:
            j += 1
            continue
        last = n_live - 1  # swap the last live clone into slot j; it is advanced next
        for c in range(C):
            cnt[j, c] = cnt[last, c]
        thr[j] = thr[last]
        founded[j] = founded[last]
        off[j] = off[last]
        n_live -= 1
    return n_live


@JIT
def jacobian(model_id, y, p, J):
    """Central-difference Jacobian ``J (n, n)`` of the model's right-hand side at ``y``."""
    n = y.size
    yp = y.copy()
    fp = np.zeros(n)
    fm = np.zeros(n)
    for j in range(n):
        h = 1e-7 * max(abs(y[j]), 1e-3)
        yp[j] = y[j] + h
        _model.rhs(model_id, 0.0, yp, p, fp)
        yp[j] = y[j] - h
        _model.rhs(model_id, 0.0, yp, p, fm)
        yp[j] = y[j]
        for i in range(n):
            J[i, j] = (fp[i] - fm[i]) / (2.0 * h)
    return 0


@JIT
def _draw_initial(init_mean, legacy, C, cnt, thr, founded, off, n_live, tot, t_found, st):
    """Append ``Poisson(init_mean[c])`` cells of each compartment: legacy compartments pooled in
    one clone, every other cell a clone of its own. Returns the (possibly grown) clone arrays."""
    n_new = np.zeros(C, dtype=np.int64)
    singles = 0
    for c in range(C):
        if init_mean[c] > 0.0:
            n_new[c] = rnd.poisson(st, init_mean[c])
            if not legacy[c]:
                singles += n_new[c]
    need = n_live + 1 + singles
    if need > cnt.shape[0]:
        cnt = _grow(cnt, need)
        thr = _grow(thr, need)
        founded = _grow(founded, need)
        off = _grow(off, need)
    pooled = False
    for c in range(C):
        if legacy[c] and n_new[c] > 0:
            cnt[n_live, c] = n_new[c]
            tot[c] += n_new[c]
            pooled = True
    if pooled:
        founded[n_live] = t_found
        thr[n_live] = rnd.exponential(st)
        n_live += 1
    for c in range(C):
        if legacy[c]:
            continue
        for _ in range(n_new[c]):
            for c2 in range(C):
                cnt[n_live, c2] = 0
            cnt[n_live, c] = 1
            tot[c] += 1
            founded[n_live] = t_found
            thr[n_live] = rnd.exponential(st)
            n_live += 1
    return n_live, cnt, thr, founded, off


@JIT
def run_lane(model_id, sources, t_source, t_change, reseed, legacy, nonneg, y0, p, omega, init,
             init_mean,
             burn_in, t_save, ev_time, ev_state, ev_op, ev_value, n_ev, dt, n_sub, n_crit,
             p_max, max_clones, st, out_y, out_cl, stats):
    """Simulate one lane (patient x replicate) from ``-burn_in`` to ``t_save[-1]``.

    Parameters
    ----------
    model_id : int
        ``_model.MODEL_IDS``.
    sources, t_source, t_change : int64 arrays
        The model's lineage tables (``_model.LineageTables``); ``C = sources.size - 1``.
    reseed : bool array, shape (C,)
        Compartments whose cells can divide or re-enter (a clone holding them can re-seed).
    y0 : (n_states,)
        The patient's untreated equilibrium (continuous states clamped there during burn-in).
    p : (n_params,)
    omega : float
        System size: cells per model unit of the lineage states.
    legacy : bool array, shape (C,)
        Compartments whose initial cells are pooled into one legacy clone.
    nonneg : bool array, shape (n_states,)
        States that must stay non-negative (a step leaving one negative is redone finer).
    init : int64 (n_init, C)
        Clones present at ``-burn_in`` (cells per compartment), besides those drawn from
        ``init_mean``.
    init_mean : (C,)
        Mean initial cells per compartment: ``Poisson(init_mean[c])`` cells, those of legacy
        compartments in one clone, every other cell a clone of its own.
    burn_in : float
        Days simulated before day 0 with the continuous states clamped.
    t_save : (n_save,) sorted, >= 0
    ev_time, ev_state, ev_op, ev_value : (E,), first ``n_ev`` used; events at ``t`` act before
        the save at ``t``.
    dt : float
        Coupling step (d); ``n_sub`` RK4 substeps per step for the continuous states.
    n_crit : int
        Clones with a compartment of ``>= n_crit`` cells take binomial fates; smaller ones an
        exact stochastic simulation.
    p_max : float
        Largest per-cell probability per binomial substep.
    max_clones : int
        Live clones allowed before the lane stops with ``TOO_MANY_CLONES``.
    st : uint64 (4,)
        The lane's xoshiro256** state (advanced in place).
    out_y : (n_save, n_states)
        Output: states (lineage compartments as cells / omega).
    out_cl : (n_save, 3)
        Output: live clones, clones that can re-seed, of them founded before day 0.
    stats : int64 (N_STATS,)
        Output: work counters (see ``ST_*``).

    Returns
    -------
    status : int
    extinction : float
        First day >= 0 on which no clone founded before day 0 can re-seed; NaN if never.
    """
    C = sources.size - 1
    K = t_source.size
    n = y0.size
    cap = max(64, 2 * init.shape[0])
    cnt = np.zeros((cap, C), dtype=np.int64)
    thr = np.zeros(cap)
    founded = np.zeros(cap)
    off = np.zeros(cap)
    tot = np.zeros(C, dtype=np.int64)
    n_live = 0
    for j in range(init.shape[0]):
        cells = 0
        for c in range(C):
            cells += init[j, c]
        if cells == 0:  # padding
            continue
        if n_live == cnt.shape[0]:
            cap = 2 * cnt.shape[0]
            cnt = _grow(cnt, cap)
            thr = _grow(thr, cap)
            founded = _grow(founded, cap)
            off = _grow(off, cap)
        for c in range(C):
            cnt[n_live, c] = init[j, c]
            tot[c] += init[j, c]
        founded[n_live] = -burn_in - 1.0
        thr[n_live] = rnd.exponential(st)
        n_live += 1
    n_live, cnt, thr, founded, off = _draw_initial(init_mean, legacy, C, cnt, thr, founded, off,
                                                   n_live, tot, -burn_in - 1.0, st)
    frozen = np.zeros(n, dtype=np.bool_)
    for c in range(C):
        frozen[sources[c + 1]] = True
    y = y0.copy()
    r = np.zeros(K)
    R = np.zeros(C + 1)
    x = np.zeros(K, dtype=np.int64)
    k1 = np.zeros(n)
    k2 = np.zeros(n)
    k3 = np.zeros(n)
    k4 = np.zeros(n)
    yt = np.zeros(n)
    ysave = np.zeros(n)
    n_save = t_save.size
    t = -burn_in
    i_save = 0
    i_ev = 0
    status = OK
    extinction = np.nan
    n_res, n_pre = _count(cnt, n_live, founded, reseed, C)
    if burn_in <= 0.0:
        for c in range(C):
            y[sources[c + 1]] = tot[c] / omega
    while True:
        if t >= 0.0:
            while i_ev < n_ev and ev_time[i_ev] <= t:
                status = _apply_event(y, ev_state[i_ev], ev_op[i_ev], ev_value[i_ev], sources,
                                      omega, cnt, n_live, tot, C, st)
                i_ev += 1
            if n_pre == 0 and np.isnan(extinction):
                n_res, n_pre = _count(cnt, n_live, founded, reseed, C)
                if n_pre == 0:
                    extinction = t
            while i_save < n_save and t_save[i_save] <= t:
                for i in range(n):
                    out_y[i_save, i] = y[i]
                out_cl[i_save, 0] = n_live
                out_cl[i_save, 1] = n_res
                out_cl[i_save, 2] = n_pre
                i_save += 1
        if i_save == n_save or status != OK:
            break
        burning = t < 0.0
        if burning:
            stop = min(t + dt, 0.0)
        else:
            stop = min(t + dt, t_save[i_save])
            if i_ev < n_ev:
                stop = min(stop, ev_time[i_ev])
        h = stop - t
        # 1. rates at the start of the step (clamped equilibrium during burn-in)
        _model.rates(model_id, y0 if burning else y, p, r)
        _compartment_rates(r, t_source, C, R)
        src_level = 0.0
        if sources[0] >= 0:
            src_level = y0[sources[0]] if burning else y[sources[0]]
        # 2. continuous states
        if not burning:
            status = _continuous_safe(model_id, t, y, p, h, n_sub, frozen, nonneg, k1, k2, k3,
                                      k4, yt, ysave)
            if status != OK:
                break
        # 3. new clones
        for k in range(K):
            if t_source[k] == 0 and sources[0] >= 0 and r[k] > 0.0:
                n_new = rnd.poisson(st, r[k] * src_level * omega * h)
                if n_live + n_new > max_clones:
                    status = TOO_MANY_CLONES
                    break
                if n_live + n_new > cnt.shape[0]:
                    cap = max(2 * cnt.shape[0], n_live + n_new)
                    cnt = _grow(cnt, cap)
                    thr = _grow(thr, cap)
                    founded = _grow(founded, cap)
                    off = _grow(off, cap)
                n_live = _found_clones(n_new, t, h, cnt, thr, founded, off, n_live, k, t_change,
                                       C, tot, st)
                stats[ST_FOUNDED] += n_new
        if status != OK:
            break
        # 4. clones
        n_live = _step_clones(cnt, thr, founded, off, n_live, h, r, R, t_source, t_change, C,
                              n_crit, p_max, tot, x, stats, st)
        n_res, n_pre = _count(cnt, n_live, founded, reseed, C)
        stats[ST_STEPS] += 1
        t = stop
        # 5. totals into the state
        if t >= 0.0:
            for c in range(C):
                y[sources[c + 1]] = tot[c] / omega
            if n_pre == 0 and np.isnan(extinction):
                extinction = t
        for i in range(n):
            if not np.isfinite(y[i]):
                status = NONFINITE
    for i in range(i_save, n_save):
        for j in range(n):
            out_y[i, j] = np.nan
        for j in range(3):
            out_cl[i, j] = -1
    return status, extinction


@JIT_PARALLEL
def run_batch(model_id, sources, t_source, t_change, reseed, legacy, nonneg, y0, p, omega, init,
              init_mean,
              burn_in, t_save,
              ev_time, ev_state, ev_op, ev_value, n_ev, dt, n_sub, n_crit, p_max, max_clones,
              rng, order, out_y, out_cl, out_ext, stats, status):
    """:func:`run_lane` over lanes in parallel: every per-lane array has the lane first
    (``y0 (L, n)``, ``p (L, n_params)``, ``init (L, n_init, C)``, ``init_mean (L, C)``,
    ``ev_* (L, E)``, ``n_ev (L,)``, ``n_sub (L,)``, ``rng (L, 4)``, ``out_y (L, n_save, n)``,
    ``out_cl (L, n_save, 3)``, ``out_ext (L,)``,
    ``stats (L, N_STATS)``, ``status (L,)``). Each lane reads and writes only its own rows.

    ``order (L,)`` is the order in which lanes are handed to the threads (static chunks):
    interleaving patients balances threads when patients differ in cost. Results do not depend
    on it."""
    for i in prange(order.size):
        lane = order[i]
        s, e = run_lane(model_id, sources, t_source, t_change, reseed, legacy, nonneg, y0[lane],
                        p[lane],
                        omega, init[lane], init_mean[lane], burn_in, t_save, ev_time[lane],
                        ev_state[lane], ev_op[lane], ev_value[lane], n_ev[lane], dt, n_sub[lane],
                        n_crit, p_max, max_clones,
                        rng[lane], out_y[lane], out_cl[lane], stats[lane])
        status[lane] = s
        out_ext[lane] = e
    return 0
