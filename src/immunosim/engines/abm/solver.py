"""Public entry point of the agent-based engine: validate, seed, allocate, call the kernels.

>>> sol = simulate(y0, params, t_eval, replicates=20, seed=1)        # doctest: +SKIP
>>> sol.y.shape        # (n_patients, n_replicates, n_save, n_states)  # doctest: +SKIP

Autoreactive B-lineage cells live in clones with integer counts (``docs/abm.md``); the abundant
states stay continuous. Every (patient, replicate) lane has its own random stream keyed by
``numpy.random.SeedSequence(seed, spawn_key=(ABM_STREAM, key, replicate))``, so a lane's result
depends on the seed, its key and its replicate number only: not on the number of threads, the
order of the lanes or how a sweep is chunked.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..._numba_config import set_num_threads
from ..events import EventTable
from . import _kernels
from ._model import MODEL_IDS, tables
from ._random import seed_states

#: First element of every agent-based stream's spawn key (other streams of a config use other
#: values; see ``experiments/cohort.py``).
ABM_STREAM = 7

STATUS_MESSAGES = {
    _kernels.OK: "success",
    _kernels.NONFINITE: "a continuous state became NaN, infinite or negative (RK4 unstable even "
                        "with 1024 times the substeps)",
    _kernels.TOO_MANY_CLONES: "more live clones than max_clones",
    _kernels.UNSUPPORTED_EVENT: "an event adds to or sets a discrete compartment (only scaling "
                                "by a factor in [0, 1] or setting to 0 is defined for cells)",
}

#: Names of the work counters in :attr:`ABMSolution.stats`.
STATS = ("clone_updates", "cell_steps", "firings", "clones_founded", "steps")


@dataclass(frozen=True)
class ABMOptions:
    """Numerical settings of the agent-based engine (``docs/abm.md`` explains each choice).

    Attributes
    ----------
    system_size : float
        Cells per model unit of the lineage states (the ``1`` of a healthy naive autoreactive
        pool); the ODE is the limit of infinite system size.
    dt : float
        Coupling step (d): rates are frozen and the continuous states advanced over it.
    substeps : int
        RK4 substeps of the continuous states per coupling step; 0 (default): per patient, the
        fewest that keep ``|lambda| dt / substeps <= RK4_SAFE`` for the fastest eigenvalue of the
        continuous states at the patient's starting state (:func:`auto_substeps`). Either way a
        step that leaves a non-negative state negative is redone with twice the substeps.
    burn_in : float
        Days run before day 0 with the continuous states clamped at the patient's equilibrium,
        so that clones reach their stationary sizes.
    n_crit : int
        Clones with fewer cells than this in every compartment are simulated exactly.
    p_max : float
        Largest per-cell probability of any fate in one binomial substep.
    max_clones : int
        Live clones allowed per lane before it stops with a status.
    """

    system_size: float = 1e3
    dt: float = 0.5
    substeps: int = 0
    burn_in: float = 120.0
    n_crit: int = 20
    p_max: float = 0.1
    max_clones: int = 1_000_000

    def __post_init__(self) -> None:
        checks = {
            "system_size": (self.system_size, 1.0, 1e9),
            "dt": (self.dt, 1e-4, 5.0),
            "substeps": (self.substeps, 0, 1000),
            "burn_in": (self.burn_in, 0.0, 1e4),
            "n_crit": (self.n_crit, 1, 2**62),
            "p_max": (self.p_max, 1e-3, 1.0),
            "max_clones": (self.max_clones, 1, 1e8),
        }
        for name, (v, lo, hi) in checks.items():
            if not (np.isfinite(v) and lo <= v <= hi):
                raise ValueError(f"{name}: {v!r} is not in [{lo:g}, {hi:g}]")


@dataclass(frozen=True)
class ABMSolution:
    """Result of :func:`simulate`; ``P`` patients, ``R`` replicates.

    Attributes
    ----------
    t : ndarray, shape (n_save,)
    y : ndarray, shape (P, R, n_save, n_states)
        States; lineage compartments as cells / system size (the ODE's units). NaN after a
        failure.
    clones : ndarray of int64, shape (P, R, n_save, 3)
        Live clones, clones that can re-seed (cells that divide or re-enter), and of those the
        clones founded before day 0; -1 after a failure.
    extinction : ndarray, shape (P, R)
        First day on which no clone founded before day 0 can re-seed; NaN if never.
    status : ndarray of int64, shape (P, R)
        0 on success, see :data:`STATUS_MESSAGES`.
    stats : ndarray of int64, shape (P, R, 5)
        Work counters, named in :data:`STATS`.
    """

    t: np.ndarray
    y: np.ndarray
    clones: np.ndarray
    extinction: np.ndarray
    status: np.ndarray
    stats: np.ndarray

    def messages(self) -> list[str]:
        return [STATUS_MESSAGES.get(int(c), f"status {int(c)}") for c in self.status.ravel()]


def lane_keys(keys: np.ndarray, replicates: int) -> np.ndarray:
    """Spawn keys ``(ABM_STREAM, key, replicate)`` of every lane, shape (P * R, 3), by patient."""
    keys = np.asarray(keys, dtype=np.int64)
    k = np.repeat(keys, replicates)
    r = np.tile(np.arange(replicates, dtype=np.int64), keys.size)
    return np.stack([np.full(k.size, ABM_STREAM), k, r], axis=1)


#: Largest |lambda| h per RK4 substep chosen by :func:`auto_substeps` (RK4's stability limit on
#: the real axis is 2.79, on the imaginary axis 2.83).
RK4_SAFE = 2.0


def auto_substeps(model: str, y0: np.ndarray, params: np.ndarray, dt: float) -> np.ndarray:
    """RK4 substeps per coupling step for each patient, shape (P,): the fewest with
    ``|lambda_max| dt / substeps <= RK4_SAFE``, ``lambda_max`` the largest eigenvalue modulus of
    the Jacobian of the continuous states (lineage rows and columns removed) at ``y0``."""
    tab = tables(model)
    cont = np.setdiff1d(np.arange(tab.n_states), tab.sources[1:])
    out = np.ones(y0.shape[0], dtype=np.int64)
    if cont.size == 0:
        return out
    J = np.empty((tab.n_states, tab.n_states))
    for i in range(y0.shape[0]):
        _kernels.jacobian(MODEL_IDS[model], y0[i], params[i], J)
        lam = np.abs(np.linalg.eigvals(J[np.ix_(cont, cont)])).max()
        out[i] = max(1, int(np.ceil(lam * dt / RK4_SAFE))) if np.isfinite(lam) else 64
    return out


def _interleave(P: int, R: int) -> np.ndarray:
    """Lane order replicate-major (lane = patient * R + replicate), so that each thread's static
    share of the lanes mixes every patient."""
    return np.ascontiguousarray(np.arange(P * R, dtype=np.int64).reshape(P, R).T.ravel())


def simulate(
    y0: np.ndarray,
    params: np.ndarray,
    t_eval: np.ndarray,
    *,
    replicates: int = 1,
    seed: int = 0,
    keys: np.ndarray | None = None,
    events: EventTable | None = None,
    options: ABMOptions = ABMOptions(),
    model: str = "sle_msc",
    init: np.ndarray | None = None,
    threads: int | None = None,
) -> ABMSolution:
    """Simulate ``P`` patients x ``replicates`` with the agent-based engine.

    Parameters
    ----------
    y0 : ndarray, shape (P, n_states) or (n_states,)
        Each patient's untreated equilibrium (the continuous states start there; lineage
        compartments are built by the burn-in).
    params : ndarray, shape (P, n_params) or (n_params,)
    t_eval : ndarray, shape (n_save,)
        Save times (d), sorted, starting at >= 0.
    replicates : int
        Independent stochastic replicates per patient.
    seed : int
        Root seed; with ``keys`` it fixes every lane's stream.
    keys : ndarray of int, shape (P,), optional
        Stable identity of each patient in the stream keys (default ``0..P-1``). A sweep passes
        its global patient index, so that chunking never changes a lane's stream.
    events : EventTable, optional
        Dosing events, one row per patient (``P`` rows).
    options : ABMOptions
    model : str
        A model registered in ``engines/abm/_model.py``.
    init : ndarray of int, shape (P, n_init, C), optional
        Clones present at the start of the burn-in. Default: each compartment starts with
        ``Poisson(system_size * y0)`` cells drawn from the lane's stream, so that the totals
        start at the patient's equilibrium and the burn-in only builds the clone structure: the
        cells of the model's legacy compartments (``LineageTables.legacy``: long-lived plasma
        cells) pooled into one clone, every other cell a clone of its own.
    threads : int, optional
        Threads for the parallel loop over lanes (results do not depend on it).
    """
    if model not in MODEL_IDS:
        raise ValueError(f"model: unknown model {model!r}; expected one of {', '.join(MODEL_IDS)}")
    tab = tables(model)
    y0 = np.ascontiguousarray(np.atleast_2d(np.asarray(y0, dtype=np.float64)))
    params = np.ascontiguousarray(np.atleast_2d(np.asarray(params, dtype=np.float64)))
    P = y0.shape[0]
    if params.shape[0] != P:
        raise ValueError(f"params: {params.shape[0]} rows for {P} initial states")
    if y0.shape[1] != tab.n_states:
        raise ValueError(f"y0: {y0.shape[1]} columns, model {model!r} has {tab.n_states} states")
    if int(replicates) != replicates or replicates < 1:
        raise ValueError(f"replicates: {replicates!r} is not a positive integer")
    R = int(replicates)
    t_eval = np.ascontiguousarray(np.asarray(t_eval, dtype=np.float64))
    if t_eval.ndim != 1 or t_eval.size == 0 or t_eval[0] < 0 or np.any(np.diff(t_eval) <= 0):
        raise ValueError("t_eval: expected increasing save times >= 0")
    keys = np.arange(P) if keys is None else np.asarray(keys)
    if keys.shape != (P,):
        raise ValueError(f"keys: expected shape ({P},), got {keys.shape}")
    events = EventTable.empty(P) if events is None else events
    if events.time.shape[0] != P:
        raise ValueError(f"events: {events.time.shape[0]} rows for {P} patients")
    lk = lane_keys(keys, R)
    states = seed_states(seed, lk)
    L = P * R
    C = tab.n_compartments
    n_sub = (auto_substeps(model, y0, params, options.dt) if options.substeps == 0
             else np.full(P, options.substeps, dtype=np.int64))
    if init is None:
        init = np.zeros((L, 0, C), dtype=np.int64)
        init_mean = options.system_size * np.maximum(np.repeat(y0, R, axis=0)[:, tab.sources[1:]],
                                                     0.0)
    else:
        init = np.repeat(np.asarray(init, dtype=np.int64), R, axis=0)
        init_mean = np.zeros((L, C))
    n = tab.n_states
    out_y = np.empty((L, t_eval.size, n))
    out_cl = np.empty((L, t_eval.size, 3), dtype=np.int64)
    out_ext = np.empty(L)
    stats = np.zeros((L, len(STATS)), dtype=np.int64)
    status = np.zeros(L, dtype=np.int64)
    rep = np.repeat
    set_num_threads(threads)
    _kernels.run_batch(
        MODEL_IDS[model], tab.sources, tab.t_source, tab.t_change, tab.reseed, tab.legacy,
        tab.nonneg,
        rep(y0, R, axis=0), rep(params, R, axis=0), float(options.system_size),
        np.ascontiguousarray(init), np.ascontiguousarray(init_mean), float(options.burn_in),
        t_eval,
        rep(events.time, R, axis=0), rep(events.state, R, axis=0), rep(events.op, R, axis=0),
        rep(events.value, R, axis=0), rep(events.count, R), float(options.dt),
        rep(n_sub, R), int(options.n_crit), float(options.p_max),
        int(options.max_clones), states, _interleave(P, R), out_y, out_cl, out_ext, stats,
        status)
    return ABMSolution(t_eval, out_y.reshape(P, R, t_eval.size, n),
                       out_cl.reshape(P, R, t_eval.size, 3), out_ext.reshape(P, R),
                       status.reshape(P, R), stats.reshape(P, R, len(STATS)))
