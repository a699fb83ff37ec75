"""Numba kernels of the ODE engine: arrays and scalars in, status codes and filled arrays out.

* :func:`_explicit_step` and :func:`_rosenbrock_step` are the only two steps; every method is a
  tableau from :mod:`.tableaus` fed to one of them.
* :func:`integrate_one` integrates one trajectory segment by segment between dosing events,
  applying each event as an exact jump of the state and saving at requested times by dense output
  (so save times never shorten steps).
* :func:`solve_batch` runs ``integrate_one`` over trajectories with ``prange``; each trajectory
  writes only its own slices, so results do not depend on the number of threads.

Step-size control follows scipy's ``integrate/_ivp`` (Hairer, Norsett & Wanner, Solving ODEs I,
section II.4): RMS error norm with scale ``atol + rtol * max(|y|, |y_new|)``.
"""

from __future__ import annotations

import math

import numpy as np
from numba import prange

from ..._numba_config import JIT, JIT_PARALLEL
from ..._vmath import pow_pos
from ..events import apply_jump as _apply_event  # shared with the agent-based engine
from ._rhs import rhs_dispatch
from .status import MAX_STEPS, NONFINITE, SINGULAR, STEP_UNDERFLOW, SUCCESS
from .tableaus import EXPLICIT

SAFETY = 0.9  # multiply the optimal step by this to make the next accept likely
MIN_FACTOR = 0.2  # never shrink the step by more than this in one go
MAX_FACTOR = 10.0  # never grow it by more than this
EPS = np.finfo(np.float64).eps



@JIT
def _rms_norm(err, y0, y1, rtol, atol):
    s = 0.0
    for i in range(err.size):
        sc = atol[i] + rtol * max(abs(y0[i]), abs(y1[i]))
        s += (err[i] / sc) ** 2
    return math.sqrt(s / err.size)


@JIT
def _initial_step(model, t, y, f0, p, order, rtol, atol, h_max, y1, f1):
    """Hairer's starting-step heuristic (scipy ``select_initial_step``); uses one RHS call."""
    n = y.size
    d0 = 0.0
    d1 = 0.0
    for i in range(n):
        sc = atol[i] + abs(y[i]) * rtol
        d0 += (y[i] / sc) ** 2
        d1 += (f0[i] / sc) ** 2
    d0 = math.sqrt(d0 / n)
    d1 = math.sqrt(d1 / n)
    h0 = 1e-6 if (d0 < 1e-5 or d1 < 1e-5) else 0.01 * d0 / d1
    h0 = min(h0, h_max)
    for i in range(n):
        y1[i] = y[i] + h0 * f0[i]
    rhs_dispatch(model, t + h0, y1, p, f1)
    d2 = 0.0
    for i in range(n):
        sc = atol[i] + abs(y[i]) * rtol
        d2 += ((f1[i] - f0[i]) / sc) ** 2
    d2 = math.sqrt(d2 / n) / h0
    if d1 <= 1e-15 and d2 <= 1e-15:
        h1 = max(1e-6, h0 * 1e-3)
    else:
        h1 = (0.01 / max(d1, d2)) ** (1.0 / (order + 1))
    return min(100.0 * h0, h1, h_max)


@JIT
def _explicit_step(model, t, y, h, p, A, B, C, E, K, y_new, y_tmp, err):
    """One step of an explicit RK pair. ``K[0]`` must hold ``f(t, y)``; on return ``K[s]`` holds
    ``f(t + h, y_new)`` (FSAL). Returns the number of RHS evaluations."""
    s = B.size
    n = y.size
    # Loops over states innermost, skipping zero coefficients: contiguous and vectorisable. The
    # first non-zero term starts each sum (``_lanes`` does exactly the same, lane by lane).
    for i in range(1, s):
        first = True
        for j in range(i):
            a = h * A[i, j]
            if A[i, j] != 0.0:
                if first:
                    for k in range(n):
                        y_tmp[k] = y[k] + a * K[j, k]
                    first = False
                else:
                    for k in range(n):
                        y_tmp[k] += a * K[j, k]
        if first:
            for k in range(n):
                y_tmp[k] = y[k]
        rhs_dispatch(model, t + C[i] * h, y_tmp, p, K[i])
    first = True
    for j in range(s):
        b = h * B[j]
        if B[j] != 0.0:
            if first:
                for k in range(n):
                    y_new[k] = y[k] + b * K[j, k]
                first = False
            else:
                for k in range(n):
                    y_new[k] += b * K[j, k]
    if first:
        for k in range(n):
            y_new[k] = y[k]
    rhs_dispatch(model, t + h, y_new, p, K[s])
    first = True
    for j in range(s + 1):
        e = h * E[j]
        if E[j] != 0.0:
            if first:
                for k in range(n):
                    err[k] = e * K[j, k]
                first = False
            else:
                for k in range(n):
                    err[k] += e * K[j, k]
    if first:
        for k in range(n):
            err[k] = 0.0
    return s


@JIT
def _dense_coefficients(h, y, y_new, K, W, D, wd, Q):
    """The step's dense-output polynomial ``Q (nm, n)`` from Hermite data plus one stage
    combination (``tableaus.ExplicitTableau.dense_basis``):
    ``Q_m = W[m] . (y_new - y, h f_0, h f_1, h D.K)``. ``wd (n,)`` is scratch. ``_lanes``
    computes the same expressions in the same order."""
    n = y.size
    s1 = K.shape[0] - 1
    first = True
    for j in range(D.size):
        if D[j] != 0.0:
            c = h * D[j]
            if first:
                for k in range(n):
                    wd[k] = c * K[j, k]
                first = False
            else:
                for k in range(n):
                    wd[k] += c * K[j, k]
    if first:
        for k in range(n):
            wd[k] = 0.0
    for m in range(W.shape[0]):
        w0 = W[m, 0]
        w1 = W[m, 1]
        w2 = W[m, 2]
        w3 = W[m, 3]
        for k in range(n):
            Q[m, k] = ((w0 * (y_new[k] - y[k]) + w1 * (h * K[0, k])) + w2 * (h * K[s1, k])
                       + w3 * wd[k])


@JIT
def _explicit_dense(y, Q, x, nonneg, out):
    """Dense output ``y(t + x h) = y + sum_m Q[m] x^(m+1)`` (scipy's ``RkDenseOutput``) by Horner's
    rule, written into ``out`` with non-negative states clipped. ``_lanes`` evaluates the same
    expression in the same order, lane by lane."""
    n = y.size
    k = Q.shape[0]
    for i in range(n):
        acc = Q[k - 1, i]
        for m in range(k - 2, -1, -1):
            acc = Q[m, i] + x * acc
        v = y[i] + x * acc
        out[i] = 0.0 if (nonneg[i] and v < 0.0) else v


@JIT
def _hermite(y0, f0, y1, f1, h, x, out):
    """Cubic Hermite interpolation on ``[t, t + h]`` at fraction ``x``."""
    h00 = (1.0 + 2.0 * x) * (1.0 - x) ** 2
    h10 = x * (1.0 - x) ** 2
    h01 = x * x * (3.0 - 2.0 * x)
    h11 = x * x * (x - 1.0)
    for k in range(y0.size):
        out[k] = h00 * y0[k] + h10 * h * f0[k] + h01 * y1[k] + h11 * h * f1[k]


@JIT
def _fd_jacobian(model, t, y, f0, p, atol, J, y_tmp, f_tmp):
    """Forward-difference Jacobian ``J[i, j] = d f_i / d y_j``; ``n`` RHS evaluations."""
    n = y.size
    sq = math.sqrt(EPS)
    for j in range(n):
        dj = sq * max(abs(y[j]), 1e3 * atol[j], 1e-8)
        for k in range(n):
            y_tmp[k] = y[k]
        y_tmp[j] = y[j] + dj
        dj = y_tmp[j] - y[j]  # exactly representable increment
        rhs_dispatch(model, t, y_tmp, p, f_tmp)
        for i in range(n):
            J[i, j] = (f_tmp[i] - f0[i]) / dj
    return n


@JIT
def _lu_factor(a, piv):
    """In-place LU with partial pivoting; returns False if singular."""
    n = a.shape[0]
    for k in range(n):
        m = k
        big = abs(a[k, k])
        for i in range(k + 1, n):
            if abs(a[i, k]) > big:
                big = abs(a[i, k])
                m = i
        piv[k] = m
        if big == 0.0 or not math.isfinite(big):
            return False
        if m != k:
            for j in range(n):
                tmp = a[k, j]
                a[k, j] = a[m, j]
                a[m, j] = tmp
        inv = 1.0 / a[k, k]
        for i in range(k + 1, n):
            a[i, k] *= inv
            lik = a[i, k]
            if lik != 0.0:
                for j in range(k + 1, n):
                    a[i, j] -= lik * a[k, j]
    return True


@JIT
def _lu_solve(a, piv, b):
    """Solve in place with the factors of :func:`_lu_factor`."""
    n = a.shape[0]
    for k in range(n):
        m = piv[k]
        if m != k:
            tmp = b[k]
            b[k] = b[m]
            b[m] = tmp
    for i in range(n):
        acc = b[i]
        for j in range(i):
            acc -= a[i, j] * b[j]
        b[i] = acc
    for i in range(n - 1, -1, -1):
        acc = b[i]
        for j in range(i + 1, n):
            acc -= a[i, j] * b[j]
        b[i] = acc / a[i, i]


@JIT
def _rosenbrock_step(model, t, y, f0, h, p, gamma, A, C, M, E, new_f, J, G, piv, K, y_tmp,
                     f_stage, y_new, err):
    """One Rosenbrock step in KPP form with Jacobian ``J`` at ``y``. Returns RHS evaluations,
    or ``-1`` if the iteration matrix is singular."""
    s = M.size
    n = y.size
    hg = 1.0 / (h * gamma)
    for i in range(n):
        for j in range(n):
            G[i, j] = -J[i, j]
        G[i, i] += hg
    if not _lu_factor(G, piv):
        return -1
    nfev = 0
    for i in range(s):
        if i == 0:
            for k in range(n):
                f_stage[k] = f0[k]
        elif new_f[i]:
            for k in range(n):
                acc = 0.0
                for j in range(i):
                    acc += A[i, j] * K[j, k]
                y_tmp[k] = y[k] + acc
            rhs_dispatch(model, t, y_tmp, p, f_stage)
            nfev += 1
        for k in range(n):
            acc = f_stage[k]
            for j in range(i):
                acc += C[i, j] / h * K[j, k]
            K[i, k] = acc
        _lu_solve(G, piv, K[i])
    for k in range(n):
        acc_y = 0.0
        acc_e = 0.0
        for j in range(s):
            acc_y += M[j] * K[j, k]
            acc_e += E[j] * K[j, k]
        y_new[k] = y[k] + acc_y
        err[k] = acc_e
    return nfev


@JIT
def integrate_one(model, kind, A, B, C, E, W, D, CR, gamma, new_f, order, err_exp,
                  y0, p, t0, t_eval, ev_time, ev_state, ev_op, ev_value, n_ev,
                  rtol, atol, h_max, max_steps, nonneg, out, stats):
    """Integrate one trajectory from ``t0`` to ``t_eval[-1]`` with dosing events.

    Parameters
    ----------
    model : int
        Model id (see ``_rhs.MODEL_IDS``).
    kind : int
        ``tableaus.EXPLICIT`` or ``tableaus.ROSENBROCK``.
    A, B, C, E, W, D, CR, gamma, new_f, order, err_exp
        Tableau data. Explicit: ``A (s, s)``, ``B (s,)``, nodes ``C (s,)``, ``E (s+1,)``, dense
        output ``W (nm, 4)``, ``D (s+1,)`` (``ExplicitTableau.dense_basis``). Rosenbrock: ``A``,
        ``B`` = ``M``, ``E``, and the matrix ``CR (s, s)``.
    y0 : (n,) ; p : (n_params,)
    t_eval : (n_save,) sorted, ``>= t0``.
    ev_time, ev_state, ev_op, ev_value : (n_events_max,), sorted by time; the first ``n_ev`` used.
        Events at time ``t`` act before the save at ``t`` (saved states are right-continuous).
    rtol : float ; atol : (n,)
    nonneg : (n,) bool, states clipped at zero after every step.
    out : (n_save, n) filled with the solution (NaN after a failure).
    stats : (3,) int64 filled with RHS evaluations, accepted steps, rejected steps.

    Returns
    -------
    int
        Status code (:mod:`.status`).
    """
    n = y0.size
    s = B.size
    n_save = t_eval.size
    t_end = t_eval[n_save - 1]
    y = y0.copy()
    y_new = np.empty(n)
    y_tmp = np.empty(n)
    err = np.empty(n)
    f0 = np.empty(n)
    f1 = np.empty(n)
    buf = np.empty(n)
    K = np.empty((s + 1, n))
    Q = np.empty((W.shape[0], n))
    wd = np.empty(n)
    J = np.empty((n, n))
    G = np.empty((n, n))
    piv = np.empty(n, dtype=np.int64)
    nfev = 0
    naccept = 0
    nreject = 0
    status = SUCCESS
    t = t0
    i_save = 0
    i_ev = 0
    h = 0.0  # 0 = choose a starting step
    while True:
        # Events due now act first, then saves at this exact time see the post-event state.
        while i_ev < n_ev and ev_time[i_ev] <= t:
            _apply_event(y, ev_state[i_ev], ev_op[i_ev], ev_value[i_ev])
            i_ev += 1
        while i_save < n_save and t_eval[i_save] <= t:
            for k in range(n):
                out[i_save, k] = y[k]
            i_save += 1
        if i_save >= n_save:
            break
        seg_end = t_end
        if i_ev < n_ev and ev_time[i_ev] < t_end:
            seg_end = ev_time[i_ev]
        # A new segment starts from a (possibly) jumped state: fresh f, fresh step estimate.
        rhs_dispatch(model, t, y, p, f0)
        nfev += 1
        if h <= 0.0:
            h = _initial_step(model, t, y, f0, p, order, rtol, atol, h_max, y_tmp, buf)
            nfev += 1
        while t < seg_end:
            if naccept + nreject >= max_steps:
                status = MAX_STEPS
                break
            h = min(h, h_max)
            h_min = 10.0 * EPS * max(abs(t), 1.0)
            if h < h_min:
                status = STEP_UNDERFLOW
                break
            last = False
            if t + h >= seg_end - h_min:
                h = seg_end - t
                last = True
            if kind == EXPLICIT:
                for k in range(n):
                    K[0, k] = f0[k]
                nfev += _explicit_step(model, t, y, h, p, A, B, C, E, K, y_new, y_tmp, err)
            else:
                nfev += _fd_jacobian(model, t, y, f0, p, atol, J, y_tmp, buf)
                r = _rosenbrock_step(model, t, y, f0, h, p, gamma, A, CR, B, E, new_f, J, G,
                                     piv, K, y_tmp, buf, y_new, err)
                if r < 0:
                    status = SINGULAR
                    break
                nfev += r
            en = _rms_norm(err, y, y_new, rtol, atol)
            if not math.isfinite(en):
                nreject += 1
                h *= 0.25
                if h < h_min:
                    status = NONFINITE
                    break
                continue
            if en > 1.0:
                nreject += 1
                h *= max(MIN_FACTOR, SAFETY * pow_pos(en, -err_exp))
                continue
            # Accepted. Non-negativity by projection (re-evaluate f if anything was clipped).
            clipped = False
            for k in range(n):
                if nonneg[k] and y_new[k] < 0.0:
                    y_new[k] = 0.0
                    clipped = True
            if kind == EXPLICIT and not clipped:
                for k in range(n):
                    f1[k] = K[s, k]
            else:
                rhs_dispatch(model, t + h, y_new, p, f1)
                nfev += 1
            t_new = seg_end if last else t + h
            # Dense output for saves strictly inside this step (t_new itself: next step / loop).
            dense_ready = False
            while i_save < n_save and t_eval[i_save] < t_new:
                x = (t_eval[i_save] - t) / h
                if kind == EXPLICIT and not clipped:
                    if not dense_ready:
                        _dense_coefficients(h, y, y_new, K, W, D, wd, Q)
                        dense_ready = True
                    _explicit_dense(y, Q, x, nonneg, out[i_save])
                else:
                    _hermite(y, f0, y_new, f1, h, x, buf)
                    for k in range(n):
                        v = buf[k]
                        out[i_save, k] = 0.0 if (nonneg[k] and v < 0.0) else v
                i_save += 1
            naccept += 1
            t = t_new
            for k in range(n):
                y[k] = y_new[k]
                f0[k] = f1[k]
            fac = MAX_FACTOR if en == 0.0 else min(MAX_FACTOR, SAFETY * pow_pos(en, -err_exp))
            if not last:
                h *= fac
            else:
                h = h * fac if fac < 1.0 else h
        if status != SUCCESS:
            break
        t = seg_end
    if status != SUCCESS:
        for i in range(i_save, n_save):
            for k in range(n):
                out[i, k] = np.nan
    stats[0] = nfev
    stats[1] = naccept
    stats[2] = nreject
    return status


@JIT_PARALLEL
def solve_batch(model, kind, A, B, C, E, W, D, CR, gamma, new_f, order, err_exp,
                Y0, params, t0, t_eval, ev_time, ev_state, ev_op, ev_value, n_ev,
                rtol, atol, h_max, max_steps, nonneg, out, stats, status):
    """Integrate ``Y0.shape[0]`` trajectories in parallel; see :func:`integrate_one`.

    Shapes: ``Y0 (P, n)``, ``params (P, n_params)``, ``ev_* (P, E)``, ``n_ev (P,)``,
    ``out (P, n_save, n)``, ``stats (P, 3)``, ``status (P,)``.
    """
    for i in prange(Y0.shape[0]):
        status[i] = integrate_one(model, kind, A, B, C, E, W, D, CR, gamma, new_f, order, err_exp,
                                  Y0[i], params[i], t0, t_eval, ev_time[i], ev_state[i],
                                  ev_op[i], ev_value[i], n_ev[i], rtol, atol, h_max, max_steps,
                                  nonneg, out[i], stats[i])
