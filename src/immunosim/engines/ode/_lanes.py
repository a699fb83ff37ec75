"""SIMD-lane driver for explicit Runge-Kutta pairs: ``LANES`` trajectories advance side by side.

One trajectory at a time, the RK stages are a chain of dependent RHS calls on 13 numbers: the CPU
waits on division and ``pow`` latencies and its vector units sit idle. Here ``LANES`` trajectories
are stored interleaved (element ``i`` of lane ``l`` at ``i * LANES + l``), so the stage sums, the
right-hand side (``_rhs.rhs_lanes``) and the error norm are loops over lanes that LLVM vectorises.
Every lane keeps its own time, step size, segment, save index, event index and counters, and takes
exactly the steps it would take alone: the arithmetic of each lane is that of
:func:`._kernels.integrate_one`, operation for operation, so the results are bitwise identical to
the one-trajectory driver (tested), whatever the lane, the chunk or the thread a trajectory lands
on. Accept/reject, events, saves and failures are per-lane scalar code. A lane that finishes (or
fails) is refilled at once with the next trajectory of its chunk, so lanes idle only at the end.
"""

from __future__ import annotations

import math

import numpy as np
from numba import prange

from ..._numba_config import JIT, JIT_PARALLEL
from ..._simd import transpose8
from ..._vmath import pow_pos
from ._kernels import EPS, MAX_FACTOR, MIN_FACTOR, SAFETY, _apply_event, _hermite
from ._rhs import LANES, rhs_lanes
from .status import MAX_STEPS, NONFINITE, STEP_UNDERFLOW, SUCCESS

#: Largest number of states and of dense-output coefficients (rows of ``W``) the lane driver
#: takes: saves are evaluated in straight loops of these fixed lengths. Larger problems run on
#: the one-trajectory driver (same results).
NPAD = 24
NM = 4

if LANES % 8 or NPAD % 8:  # the dense-output transposes move whole 8 x 8 blocks
    raise RuntimeError(f"LANES ({LANES}) and NPAD ({NPAD}) must be multiples of 8")

IDLE = 0  # no trajectory left for this lane
SETUP = 1  # at a segment boundary: apply events, save, start the next segment
STEP = 2  # inside a segment


@JIT
def _load(l, j, Y0, params, t0, y, pl, t, h, i_save, i_ev, counters):
    """Put trajectory ``j`` into lane ``l``."""
    n = Y0.shape[1]
    for k in range(n):
        y[k * LANES + l] = Y0[j, k]
    for k in range(params.shape[1]):
        pl[k * LANES + l] = params[j, k]
    t[l] = t0
    h[l] = 0.0  # choose a starting step
    i_save[l] = 0
    i_ev[l] = 0
    for c in range(3):
        counters[c, l] = 0


@JIT
def _finish(l, j, code, i_save, counters, out, stats, status):
    """Record the result of trajectory ``j`` (in lane ``l``); NaN after a failure."""
    if code != SUCCESS:
        for i in range(i_save[l], out.shape[1]):
            for k in range(out.shape[2]):
                out[j, i, k] = np.nan
    for c in range(3):
        stats[j, c] = counters[c, l]
    status[j] = code


@JIT
def integrate_lanes(model, A, B, C, E, W, D, order, err_exp, Y0, params, t0, t_eval,
                    ev_time, ev_state, ev_op, ev_value, n_ev, rtol, atol, h_max, max_steps,
                    nonneg, out, stats, status, lo, hi):
    """Integrate trajectories ``lo .. hi - 1`` with an explicit pair on ``LANES`` lanes.

    Arguments as for :func:`._kernels.solve_batch` (explicit tableau only), plus the half-open
    range ``[lo, hi)`` of trajectories this call owns. Fills ``out[lo:hi]``, ``stats[lo:hi]`` and
    ``status[lo:hi]``.
    """
    L = LANES
    n = Y0.shape[1]
    s = B.size
    n_save = t_eval.size
    t_end = t_eval[n_save - 1]
    nL = n * L
    flat = out.reshape(out.size)  # out[j, i, k] is flat[(j * n_save + i) * n + k]
    y = np.empty(nL)
    y_new = np.empty(nL)
    y_tmp = np.empty(nL)
    err = np.empty(nL)
    f0 = np.empty(nL)
    f1 = np.empty(nL)
    buf = np.empty(nL)
    K = np.empty((s + 1, nL))
    pl = np.empty(params.shape[1] * L)
    nm = W.shape[0]
    wdx = np.empty(nL)  # h D.K, lane layout
    # Dense-output polynomial, lane layout, and a copy of y, both padded to NPAD states for the
    # 8 x 8 save transposes (y itself keeps n states: a model may infer n from its size).
    Q = np.zeros((nm, NPAD * L))
    yp = np.zeros(NPAD * L)
    hx = np.empty(nL)  # h of each element's lane
    # Per lane, in the plain layout: the step's start state (row 0) and the dense-output
    # polynomial (rows 1 .. NM), zero-padded (rows beyond the tableau's, states beyond n).
    R = NM + 1
    T = np.zeros((L, R, NPAD))
    atolx = np.empty(nL)
    lowx = np.empty(nL)  # 0 for non-negative states, -inf otherwise, lane layout
    for k in range(n):
        for l in range(L):
            lowx[k * L + l] = 0.0 if nonneg[k] else -np.inf
    low = np.zeros(NPAD)  # 0 for non-negative states, -inf otherwise (a branch-free clip)
    for k in range(n):
        low[k] = 0.0 if nonneg[k] else -np.inf
    for k in range(n):
        for l in range(L):
            atolx[k * L + l] = atol[k]
    # One-lane scratch in the plain layout, for Hermite interpolation after a projected step.
    y0l = np.empty(n)
    f0l = np.empty(n)
    ynl = np.empty(n)
    f1l = np.empty(n)
    hl = np.empty(n)
    # Per-lane control state.
    t = np.zeros(L)
    h = np.zeros(L)
    tt = np.zeros(L)  # time argument of the RHS, per lane
    h0 = np.zeros(L)
    h_min = np.zeros(L)
    seg_end = np.zeros(L)
    en = np.zeros(L)
    t_new = np.zeros(L)
    pw = np.zeros(L)
    traj = np.full(L, -1, dtype=np.int64)
    mode = np.zeros(L, dtype=np.int64)
    i_save = np.zeros(L, dtype=np.int64)
    i_ev = np.zeros(L, dtype=np.int64)
    counters = np.zeros((3, L), dtype=np.int64)  # RHS calls, accepted, rejected
    last = np.zeros(L, dtype=np.bool_)
    fresh = np.zeros(L, dtype=np.bool_)  # starts a segment this round: needs f0 (and maybe h)
    init = np.zeros(L, dtype=np.bool_)
    stepping = np.zeros(L, dtype=np.bool_)
    accepted = np.zeros(L, dtype=np.bool_)
    clipped = np.zeros(L, dtype=np.bool_)
    dense = np.zeros(L, dtype=np.bool_)

    # Lanes without a trajectory compute on a copy of the first one: finite, never recorded.
    nxt = lo
    for l in range(L):
        if lo < hi:
            _load(l, lo, Y0, params, t0, y, pl, t, h, i_save, i_ev, counters)
        if nxt < hi:
            _load(l, nxt, Y0, params, t0, y, pl, t, h, i_save, i_ev, counters)
            traj[l] = nxt
            mode[l] = SETUP
            nxt += 1
    for k in range(nL):
        f0[k] = 0.0

    while True:
        # ---- 1. Segment boundaries: events, saves, completion, refill. -------------------------
        any_fresh = False
        for l in range(L):
            while mode[l] == SETUP:
                j = traj[l]
                while i_ev[l] < n_ev[j] and ev_time[j, i_ev[l]] <= t[l]:
                    e = i_ev[l]
                    y_tmp[0] = y[ev_state[j, e] * L + l]
                    _apply_event(y_tmp, 0, ev_op[j, e], ev_value[j, e])
                    y[ev_state[j, e] * L + l] = y_tmp[0]
                    i_ev[l] += 1
                while i_save[l] < n_save and t_eval[i_save[l]] <= t[l]:
                    for k in range(n):
                        out[j, i_save[l], k] = y[k * L + l]
                    i_save[l] += 1
                if i_save[l] >= n_save:
                    _finish(l, j, SUCCESS, i_save, counters, out, stats, status)
                    if nxt < hi:
                        _load(l, nxt, Y0, params, t0, y, pl, t, h, i_save, i_ev, counters)
                        traj[l] = nxt
                        nxt += 1
                    else:
                        mode[l] = IDLE
                    continue
                seg_end[l] = t_end
                if i_ev[l] < n_ev[j] and ev_time[j, i_ev[l]] < t_end:
                    seg_end[l] = ev_time[j, i_ev[l]]
                fresh[l] = True
                any_fresh = True
                mode[l] = STEP
        busy = False
        for l in range(L):
            if mode[l] != IDLE:
                busy = True
        if not busy:
            break

        # ---- 2. Fresh segments: f0 at the (possibly jumped) state, starting step. --------------
        if any_fresh:
            for l in range(L):
                tt[l] = t[l]
            rhs_lanes(model, tt, y, pl, buf)
            any_init = False
            for l in range(L):
                if not fresh[l]:
                    continue
                for k in range(n):
                    f0[k * L + l] = buf[k * L + l]
                counters[0, l] += 1
                init[l] = h[l] <= 0.0
                if init[l]:
                    any_init = True
                    # Hairer's heuristic, as _kernels._initial_step (first half).
                    d0 = 0.0
                    d1 = 0.0
                    for k in range(n):
                        sc = atol[k] + abs(y[k * L + l]) * rtol
                        d0 += (y[k * L + l] / sc) ** 2
                        d1 += (f0[k * L + l] / sc) ** 2
                    d0 = math.sqrt(d0 / n)
                    d1 = math.sqrt(d1 / n)
                    hh = 1e-6 if (d0 < 1e-5 or d1 < 1e-5) else 0.01 * d0 / d1
                    hh = min(hh, h_max)
                    h0[l] = hh
                    en[l] = d1
                    for k in range(n):
                        y_tmp[k * L + l] = y[k * L + l] + hh * f0[k * L + l]
                    tt[l] = t[l] + hh
            if any_init:
                rhs_lanes(model, tt, y_tmp, pl, buf)
                for l in range(L):
                    if not (fresh[l] and init[l]):
                        continue
                    hh = h0[l]
                    d1 = en[l]
                    d2 = 0.0
                    for k in range(n):
                        sc = atol[k] + abs(y[k * L + l]) * rtol
                        d2 += ((buf[k * L + l] - f0[k * L + l]) / sc) ** 2
                    d2 = math.sqrt(d2 / n) / hh
                    if d1 <= 1e-15 and d2 <= 1e-15:
                        h1 = max(1e-6, hh * 1e-3)
                    else:
                        h1 = (0.01 / max(d1, d2)) ** (1.0 / (order + 1))
                    h[l] = min(100.0 * hh, h1, h_max)
                    counters[0, l] += 1
            for l in range(L):
                fresh[l] = False

        # ---- 3. Per-lane step checks (as the top of integrate_one's inner loop). ---------------
        any_step = False
        for l in range(L):
            stepping[l] = False
            if mode[l] != STEP:
                continue
            code = SUCCESS
            if counters[1, l] + counters[2, l] >= max_steps:
                code = MAX_STEPS
            else:
                hh = min(h[l], h_max)
                hm = 10.0 * EPS * max(abs(t[l]), 1.0)
                if hh < hm:
                    code = STEP_UNDERFLOW
                else:
                    last[l] = False
                    if t[l] + hh >= seg_end[l] - hm:
                        hh = seg_end[l] - t[l]
                        last[l] = True
                    h[l] = hh
                    h_min[l] = hm
                    stepping[l] = True
                    any_step = True
            if code != SUCCESS:
                j = traj[l]
                _finish(l, j, code, i_save, counters, out, stats, status)
                if nxt < hi:
                    _load(l, nxt, Y0, params, t0, y, pl, t, h, i_save, i_ev, counters)
                    traj[l] = nxt
                    nxt += 1
                    mode[l] = SETUP
                else:
                    mode[l] = IDLE
        if not any_step:
            continue

        # ---- 4. One RK step on every lane (vectorised; idle lanes' results are discarded). -----
        # Per-element copies of the lanes' step sizes keep every loop below flat over
        # n * LANES elements, which LLVM vectorises (nested state/lane loops it does not).
        for k in range(n):
            for l in range(L):
                hx[k * L + l] = h[l]
        for k in range(nL):
            K[0, k] = f0[k]
        # Stage sums: the first non-zero term starts the sum (no separate copy pass).
        for i in range(1, s):
            first = True
            for jj in range(i):
                a = A[i, jj]
                if a != 0.0:
                    Kj = K[jj]
                    if first:
                        for k in range(nL):
                            y_tmp[k] = y[k] + (hx[k] * a) * Kj[k]
                        first = False
                    else:
                        for k in range(nL):
                            y_tmp[k] += (hx[k] * a) * Kj[k]
            if first:
                for k in range(nL):
                    y_tmp[k] = y[k]
            for l in range(L):
                tt[l] = t[l] + C[i] * h[l]
            rhs_lanes(model, tt, y_tmp, pl, K[i])
        first = True
        for jj in range(s):
            b = B[jj]
            if b != 0.0:
                Kj = K[jj]
                if first:
                    for k in range(nL):
                        y_new[k] = y[k] + (hx[k] * b) * Kj[k]
                    first = False
                else:
                    for k in range(nL):
                        y_new[k] += (hx[k] * b) * Kj[k]
        if first:
            for k in range(nL):
                y_new[k] = y[k]
        for l in range(L):
            tt[l] = t[l] + h[l]
        rhs_lanes(model, tt, y_new, pl, K[s])
        first = True
        for jj in range(s + 1):
            e = E[jj]
            if e != 0.0:
                Kj = K[jj]
                if first:
                    for k in range(nL):
                        err[k] = (hx[k] * e) * Kj[k]
                    first = False
                else:
                    for k in range(nL):
                        err[k] += (hx[k] * e) * Kj[k]
        if first:
            for k in range(nL):
                err[k] = 0.0
        # RMS error norm per lane (as _kernels._rms_norm, states in the same order).
        for k in range(nL):
            sc = atolx[k] + rtol * max(abs(y[k]), abs(y_new[k]))
            buf[k] = (err[k] / sc) ** 2
        for k in range(1, n):  # per-lane sums over states, in state order, into buf[:L]
            base = k * L
            for l in range(L):
                buf[l] += buf[base + l]
        for l in range(L):
            en[l] = math.sqrt(buf[l] / n)
        for l in range(L):  # step-size factor (libm-free power: vectorised)
            pw[l] = SAFETY * pow_pos(en[l], -err_exp)

        # ---- 5. Accept / reject per lane; projection, saves and commit vectorised. ------------
        any_accept = False
        for l in range(L):
            accepted[l] = False
            clipped[l] = False
            if not stepping[l]:
                continue
            counters[0, l] += s
            e_n = en[l]
            if not math.isfinite(e_n):
                counters[2, l] += 1
                h[l] *= 0.25
                if h[l] < h_min[l]:
                    j = traj[l]
                    _finish(l, j, NONFINITE, i_save, counters, out, stats, status)
                    if nxt < hi:
                        _load(l, nxt, Y0, params, t0, y, pl, t, h, i_save, i_ev, counters)
                        traj[l] = nxt
                        nxt += 1
                        mode[l] = SETUP
                    else:
                        mode[l] = IDLE
                continue
            if e_n > 1.0:
                counters[2, l] += 1
                h[l] *= max(MIN_FACTOR, pw[l])
                continue
            accepted[l] = True
            any_accept = True
            t_new[l] = seg_end[l] if last[l] else t[l] + h[l]
        if not any_accept:
            continue
        # Non-negativity by projection; f at the end of the step (FSAL, or fresh if clipped).
        # Flat over all lanes (lanes that did not accept get their state back at the commit);
        # the per-lane "anything clipped" is summed in place, as the error norm.
        for k in range(nL):
            neg = y_new[k] < lowx[k]
            buf[k] = 1.0 if neg else 0.0
            y_new[k] = lowx[k] if neg else y_new[k]
        for k in range(1, n):
            base = k * L
            for l in range(L):
                buf[l] += buf[base + l]
        for l in range(L):
            clipped[l] = accepted[l] and buf[l] > 0.0
        for k in range(nL):
            f1[k] = K[s, k]
        any_clip = False
        for l in range(L):
            if clipped[l]:
                any_clip = True
                counters[0, l] += 1
        if any_clip:
            for l in range(L):
                tt[l] = t[l] + h[l]
            rhs_lanes(model, tt, y_new, pl, buf)
            for l in range(L):
                if clipped[l]:
                    for k in range(n):
                        f1[k * L + l] = buf[k * L + l]
        # Saves strictly inside the step: the method's interpolant (Horner, as
        # _kernels._explicit_dense), its coefficients computed for all lanes at once.
        any_dense = False
        for l in range(L):
            dense[l] = (accepted[l] and not clipped[l] and i_save[l] < n_save
                        and t_eval[i_save[l]] < t_new[l])
            if dense[l]:
                any_dense = True
        if any_dense:
            # h D.K for all lanes (as _kernels._dense_coefficients).
            first = True
            for jj in range(D.size):
                c = D[jj]
                if c != 0.0:
                    Kj = K[jj]
                    if first:
                        for k in range(nL):
                            wdx[k] = (hx[k] * c) * Kj[k]
                        first = False
                    else:
                        for k in range(nL):
                            wdx[k] += (hx[k] * c) * Kj[k]
            if first:
                for k in range(nL):
                    wdx[k] = 0.0
            # Q_m = W[m] . (y_new - y, h f0, h f1, h D.K), all lanes in one flat pass per row.
            K0 = K[0]
            Ks = K[s]
            for m in range(nm):
                w0 = W[m, 0]
                w1 = W[m, 1]
                w2 = W[m, 2]
                w3 = W[m, 3]
                Qm = Q[m]
                for k in range(nL):
                    Qm[k] = ((w0 * (y_new[k] - y[k]) + w1 * (hx[k] * K0[k])) + w2 * (hx[k] * Ks[k])
                             + w3 * wdx[k])
            # Each lane's saves in the plain layout (contiguous over states, as the output).
            # First y and Q to that layout for all lanes, in 8 x 8 blocks by vector shuffles
            # (strided scalar loads cost 11-13 % of the kernel); pure data movement.
            for k in range(nL):
                yp[k] = y[k]
            for kb in range(0, n, 8):
                for lb in range(0, L, 8):
                    transpose8(yp, kb * L + lb, L, T, lb * R * NPAD + kb, R * NPAD)
                    for m in range(nm):
                        transpose8(Q, m * NPAD * L + kb * L + lb, L, T,
                                   lb * R * NPAD + (m + 1) * NPAD + kb, R * NPAD)
            for l in range(L):
                if not dense[l]:
                    continue
                j = traj[l]
                tail = (j + 1) * n_save * n  # end of trajectory j's output rows
                i = i_save[l]
                tl = t[l]
                hh = h[l]
                tn = t_new[l]
                while i < n_save and t_eval[i] < tn:
                    x = (t_eval[i] - tl) / hh
                    base = (j * n_save + i) * n
                    # The output index as uint64: a signed one makes Numba emit a negative-
                    # index wraparound per element, which keeps the store loop scalar.
                    ub = np.uint64(base)
                    # One loop of NPAD (whole SIMD vectors) storing straight into the
                    # output; rows of T beyond the tableau's are zero, so the Horner sum is
                    # unchanged. The NPAD - n extra values land in this trajectory's next
                    # saves, which are written after this one; its last saves store n values.
                    kmax = NPAD if base + NPAD <= tail else n
                    for k in range(kmax):
                        acc = T[l, 4, k]
                        acc = T[l, 3, k] + x * acc
                        acc = T[l, 2, k] + x * acc
                        acc = T[l, 1, k] + x * acc
                        v = T[l, 0, k] + x * acc
                        flat[ub + np.uint64(k)] = low[k] if v < low[k] else v
                    i += 1
                i_save[l] = i
        # Saves after a projected step: cubic Hermite (rare; one lane at a time).
        if any_clip:
            for l in range(L):
                if not clipped[l]:
                    continue
                j = traj[l]
                for k in range(n):
                    y0l[k] = y[k * L + l]
                    f0l[k] = f0[k * L + l]
                    ynl[k] = y_new[k * L + l]
                    f1l[k] = f1[k * L + l]
                while i_save[l] < n_save and t_eval[i_save[l]] < t_new[l]:
                    i = i_save[l]
                    x = (t_eval[i] - t[l]) / h[l]
                    _hermite(y0l, f0l, ynl, f1l, h[l], x, hl)
                    for k in range(n):
                        v = hl[k]
                        out[j, i, k] = 0.0 if (nonneg[k] and v < 0.0) else v
                    i_save[l] = i + 1
        # Commit: lanes that did not accept keep their state; then one flat copy.
        for l in range(L):
            if not accepted[l]:
                for k in range(n):
                    y_new[k * L + l] = y[k * L + l]
                    f1[k * L + l] = f0[k * L + l]
        for k in range(nL):
            y[k] = y_new[k]
            f0[k] = f1[k]
        for l in range(L):
            if not accepted[l]:
                continue
            counters[1, l] += 1
            t[l] = t_new[l]
            e_n = en[l]
            fac = MAX_FACTOR if e_n == 0.0 else min(MAX_FACTOR, pw[l])
            if not last[l]:
                h[l] *= fac
            else:
                h[l] = h[l] * fac if fac < 1.0 else h[l]
                mode[l] = SETUP  # reached the segment end (t == seg_end)


@JIT_PARALLEL
def solve_batch_lanes(model, A, B, C, E, W, D, order, err_exp, Y0, params, t0, t_eval,
                      ev_time, ev_state, ev_op, ev_value, n_ev, rtol, atol, h_max, max_steps,
                      nonneg, out, stats, status, n_chunks):
    """Integrate ``Y0.shape[0]`` trajectories as ``n_chunks`` contiguous chunks in parallel, each
    on ``LANES`` lanes. Results do not depend on ``n_chunks`` (each lane computes exactly what
    :func:`._kernels.integrate_one` would)."""
    n_traj = Y0.shape[0]
    for c in prange(n_chunks):
        lo = c * n_traj // n_chunks
        hi = (c + 1) * n_traj // n_chunks
        integrate_lanes(model, A, B, C, E, W, D, order, err_exp, Y0, params, t0, t_eval,
                        ev_time, ev_state, ev_op, ev_value, n_ev, rtol, atol, h_max, max_steps,
                        nonneg, out, stats, status, lo, hi)
