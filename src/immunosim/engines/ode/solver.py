"""Public entry point of the ODE engine: validate, allocate, call the batch kernel, report.

>>> sol = solve(y0, params, t_eval, events=events, method="dopri5")   # doctest: +SKIP
>>> sol.y.shape        # (n_trajectories, n_save, n_states)               # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..._numba_config import set_num_threads
from ..events import Event, EventTable  # noqa: F401  (re-exported: the engine's public API)
from . import _kernels, _lanes
from ._rhs import LANES, MODEL_IDS
from .status import SUCCESS, message, summarize
from .tableaus import EXPLICIT, METHODS

#: Default method, chosen by ``benchmarks/bench_engine.py`` (see docs/engine.md): on the model's
#: documented ranges DOPRI5 is the cheapest method per accurate trajectory. It is held near its
#: stability limit by relaxation rates of about 1/day; for stiffer regions use "rodas4".
DEFAULT_METHOD = "dopri5"


@dataclass(frozen=True)
class ODESolution:
    """Result of :func:`solve`.

    Attributes
    ----------
    t : ndarray, shape (n_save,)
    y : ndarray, shape (P, n_save, n_states); NaN after a failure.
    status : ndarray of int, shape (P,)
    nfev, naccept, nreject : ndarray of int, shape (P,)
    method : str
    """

    t: np.ndarray
    y: np.ndarray
    status: np.ndarray
    nfev: np.ndarray
    naccept: np.ndarray
    nreject: np.ndarray
    method: str

    @property
    def success(self) -> np.ndarray:
        return self.status == SUCCESS

    def messages(self) -> list[str]:
        return [message(c) for c in self.status]

    def summary(self) -> str:
        return summarize(self.status)

    def raise_for_status(self) -> None:
        """Raise ``RuntimeError`` naming the first failed trajectories, if any failed."""
        bad = np.nonzero(self.status != SUCCESS)[0]
        if bad.size:
            first = ", ".join(f"#{i}: {message(self.status[i])}" for i in bad[:3])
            raise RuntimeError(f"{bad.size} of {self.status.size} trajectories failed ({first})")


def _as_2d(name: str, a, n_traj: int | None, width: int | None) -> np.ndarray:
    a = np.asarray(a, dtype=np.float64)
    if a.ndim == 1:
        a = a[None, :]
    if a.ndim != 2:
        raise ValueError(f"{name}: expected shape (P, n) or (n,), got {a.shape}")
    if width is not None and a.shape[1] != width:
        raise ValueError(f"{name}: expected {width} columns, got {a.shape[1]}")
    if n_traj is not None and a.shape[0] not in (1, n_traj):
        raise ValueError(f"{name}: expected {n_traj} rows, got {a.shape[0]}")
    if n_traj is not None and a.shape[0] == 1 and n_traj > 1:
        a = np.repeat(a, n_traj, axis=0)
    return np.ascontiguousarray(a)


def _check_out(out, shape: tuple[int, int, int], inputs: tuple[np.ndarray, ...]) -> None:
    """Raise unless ``out`` can receive the solution in place."""
    if not isinstance(out, np.ndarray) or out.dtype != np.float64:
        raise ValueError(f"out: expected a float64 numpy array, got "
                         f"{getattr(out, 'dtype', type(out).__name__)}")
    if out.shape != shape:
        raise ValueError(f"out: shape {out.shape}, expected (P, n_save, n) = {shape}")
    if not (out.flags.c_contiguous and out.flags.writeable):
        raise ValueError("out: expected a writeable C-contiguous array")
    if any(np.shares_memory(out, a) for a in inputs):
        raise ValueError("out: overlaps the initial states or parameters")


def solve(
    y0,
    params,
    t_eval,
    *,
    model: str = "sle_msc",
    events: EventTable | None = None,
    t0: float | None = None,
    method: str = DEFAULT_METHOD,
    rtol: float = 1e-6,
    atol: float | Sequence[float] = 1e-8,
    h_max: float = np.inf,
    max_steps: int = 100_000,
    nonnegative: Sequence[bool] | bool = True,
    threads: int | None = None,
    lanes: bool | None = None,
    out: np.ndarray | None = None,
) -> ODESolution:
    """Integrate a batch of trajectories, each with its own parameters and dosing events.

    Parameters
    ----------
    y0 : array_like, shape (P, n) or (n,)
        Initial states (a single row is broadcast to every trajectory).
    params : array_like, shape (P, n_params) or (n_params,)
        Parameter vectors.
    t_eval : array_like, shape (n_save,)
        Sorted save times (d); the horizon is ``t_eval[-1]``.
    model : str
        Key of ``_rhs.MODEL_IDS``.
    events : EventTable, optional
        Dosing events per trajectory; times must lie in ``[t0, t_eval[-1]]``.
    t0 : float, optional
        Start time (default ``t_eval[0]``).
    method : {"dopri5", "bs3", "rodas3", "rodas4"}
    rtol : float
    atol : float or array_like, shape (n,)
    h_max : float
        Largest step (d).
    max_steps : int
        Step budget per trajectory (accepted + rejected).
    nonnegative : bool or sequence of bool, shape (n,)
        States projected onto ``>= 0`` after each step.
    threads : int, optional
        Numba threads for this call (results do not depend on it).
    lanes : bool, optional
        Run explicit methods on the SIMD-lane driver (``_lanes``, ``LANES`` trajectories side by
        side) rather than one trajectory at a time. The results are bitwise identical; only the
        speed differs. Default: lanes for explicit methods when there are at least ``LANES``
        trajectories (fewer would leave most lanes idle). Rosenbrock methods, and problems with
        more than ``_lanes.NPAD`` states, always run one trajectory at a time.
    out : ndarray, shape (P, n_save, n), optional
        Array to write the saved states into (float64, C-contiguous, writeable), returned as
        ``ODESolution.y``. A caller that solves batch after batch (a sweep) passes the same array
        each time: a fresh multi-megabyte output is otherwise mapped and zeroed page by page
        by the operating system on first touch, which costs about a tenth of the engine's time
        on the default model with daily saves. Its previous contents are overwritten.

    Returns
    -------
    ODESolution
    """
    if model not in MODEL_IDS:
        raise ValueError(f"model: unknown model '{model}'; expected one of {sorted(MODEL_IDS)}")
    if method not in METHODS:
        raise ValueError(f"method: unknown method '{method}'; expected one of {sorted(METHODS)}")
    tab = METHODS[method]
    t_eval = np.ascontiguousarray(np.asarray(t_eval, dtype=np.float64).ravel())
    if t_eval.size == 0 or not np.all(np.isfinite(t_eval)) or np.any(np.diff(t_eval) < 0):
        raise ValueError("t_eval: expected a non-empty, finite, sorted array of times")
    t0 = float(t_eval[0]) if t0 is None else float(t0)
    if t0 > t_eval[0]:
        raise ValueError(f"t0: {t0} is after the first save time {t_eval[0]}")
    y0a = np.asarray(y0, dtype=np.float64)
    pa = np.asarray(params, dtype=np.float64)
    n_traj = max(y0a.shape[0] if y0a.ndim == 2 else 1, pa.shape[0] if pa.ndim == 2 else 1)
    Y0 = _as_2d("y0", y0a, n_traj, None)
    n = Y0.shape[1]
    P = _as_2d("params", pa, n_traj, None)
    if not (0 < rtol < 1):
        raise ValueError(f"rtol: {rtol!r} is not in (0, 1)")
    atol_a = np.broadcast_to(np.asarray(atol, dtype=np.float64), (n,)).copy()
    if np.any(atol_a <= 0):
        raise ValueError("atol: expected positive values")
    nonneg = np.broadcast_to(np.asarray(nonnegative, dtype=np.bool_), (n,)).copy()
    if int(max_steps) < 1:
        raise ValueError(f"max_steps: {max_steps!r} is not a positive integer")
    ev = EventTable.empty(n_traj) if events is None else events
    if ev.time.shape[0] != n_traj:
        raise ValueError(f"events: {ev.time.shape[0]} rows for {n_traj} trajectories")
    used = np.arange(ev.time.shape[1])[None, :] < ev.count[:, None]
    if np.any(used & ((ev.time < t0) | (ev.time > t_eval[-1]))):
        raise ValueError(f"events: event times must lie in [{t0}, {t_eval[-1]}]")
    if np.any(used & ((ev.state < 0) | (ev.state >= n))):
        raise ValueError(f"events: state index out of range [0, {n})")

    if tab.kind == EXPLICIT:
        A, B, C, E, CR = tab.A, tab.B, tab.C, tab.E, np.zeros((1, 1))
        W_dense, D_dense = tab.dense_basis
        gamma, err_exp = 0.0, 1.0 / (tab.error_order + 1)
        new_f = np.ones(tab.stages, dtype=np.bool_)
    else:
        A, B, E, CR = tab.A, tab.M, tab.E, tab.C
        C, W_dense, D_dense = np.zeros(tab.stages), np.zeros((1, 4)), np.zeros(1)
        gamma, new_f, err_exp = tab.gamma, tab.new_f, 1.0 / tab.error_order

    if out is None:
        out = np.empty((n_traj, t_eval.size, n))
    else:
        _check_out(out, (n_traj, t_eval.size, n), (Y0, P))
    stats = np.zeros((n_traj, 3), dtype=np.int64)
    status = np.zeros(n_traj, dtype=np.int64)
    use_lanes = (tab.kind == EXPLICIT and n <= _lanes.NPAD and W_dense.shape[0] <= _lanes.NM
                 and (n_traj >= LANES if lanes is None else bool(lanes)))
    previous = set_num_threads(None)
    set_num_threads(threads)
    try:
        if use_lanes:
            # One chunk of trajectories per thread, each at least LANES long where possible.
            n_chunks = max(1, min(set_num_threads(None), n_traj // LANES))
            _lanes.solve_batch_lanes(
                MODEL_IDS[model], A, B, C, E, W_dense, D_dense, tab.order, err_exp,
                Y0, P, t0, t_eval, ev.time, ev.state, ev.op, ev.value, ev.count,
                float(rtol), atol_a, float(h_max), int(max_steps), nonneg, out, stats, status,
                n_chunks,
            )
        else:
            _kernels.solve_batch(
                MODEL_IDS[model], tab.kind, A, B, C, E, W_dense, D_dense, CR, gamma, new_f,
                tab.order, err_exp, Y0, P, t0, t_eval, ev.time, ev.state, ev.op, ev.value, ev.count,
                float(rtol), atol_a, float(h_max), int(max_steps), nonneg, out, stats, status,
            )
    finally:
        set_num_threads(previous)
    return ODESolution(t=t_eval, y=out, status=status, nfev=stats[:, 0], naccept=stats[:, 1],
                       nreject=stats[:, 2], method=method)
