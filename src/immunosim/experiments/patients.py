"""Outcomes of many virtual patients under one scenario, without building a sweep result.

:func:`simulate_patients` takes parameter rows directly (a calibration cloud, a sensitivity
sample) instead of a config's cohort, runs them in chunks through the same engine call and
outcome classification as a sweep (:func:`~immunosim.experiments.simulate.run_batch`,
:func:`~immunosim.experiments.assess.assess`), and keeps only per-patient outcomes, so memory stays
bounded by one chunk however many patients there are. Row ``i`` is the same patient whatever
the chunk size or thread count.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ..model import sle_msc as m
from .assess import assess, death_times, follow_up
from .config import Config, ConfigError
from .simulate import initial_states, run_batch, save_grid

#: ``features(t, y, treated_params, ok, origin) -> dict of per-run arrays``, called per chunk.
Features = Callable[[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray],
                    dict[str, np.ndarray]]


def steady_states(params: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Untreated diseased steady states of parameter rows (solved in chunks, see
    :func:`~immunosim.model.steady_states.diseased_states`).

    Returns
    -------
    y0 : ndarray, shape (N, n_states), NaN where there is none
    ok : ndarray of bool, shape (N,)
    """
    return initial_states(np.atleast_2d(params))


def simulate_patients(cfg: Config, scenario: str, params: np.ndarray, *,
                      y0: np.ndarray | None = None, death_u: np.ndarray | None = None,
                      features: Features | None = None, chunk: int = 2048,
                      threads: int | None = None, progress: bool = False, client=None
                      ) -> dict[str, np.ndarray]:
    """Clinical outcomes of ``N`` patients under the config's scenario ``scenario``.

    Parameters
    ----------
    cfg : Config
        Horizon, solver, outcome definitions (``outcomes.*``) and the scenario. Sweep axes are
        ignored (the scenario's own values are used).
    scenario : str
        Name of one of ``cfg.scenarios``.
    params : ndarray, shape (N, n_params)
        Untreated patient parameters (a scenario's parameter overrides are applied on top).
    y0 : ndarray, shape (N, n_states), optional
        Initial states (default: each row's untreated diseased steady state, see
        :func:`steady_states`). Rows without one are not simulated: their ``ok`` is False and
        their outcomes are False / NaN.
    death_u : ndarray, shape (N,), optional
        Each patient's uniform draw for treatment-related death (default: nobody dies).
    features : callable, optional
        Extra per-run quantities computed from each chunk's solution (see :data:`Features`).
    chunk : int
        Patients per engine call (results do not depend on it).
    client : dask.distributed.Client, optional
        Run the chunks as tasks on this Dask cluster (gathered in order; the same values).
        ``features`` must then pickle (module-level functions and closures do).

    Returns
    -------
    dict of ndarray
        The keys of :data:`~immunosim.experiments.clinical.OUTCOMES` (shape (N,) or (N, L) for
        ``L`` = ``outcomes.landmarks``), ``status`` (solver status, -1 where not simulated),
        ``ok`` (simulated and solved) and the ``features``' keys.
    """
    from tqdm.auto import tqdm

    names = [s.name for s in cfg.build_scenarios()]
    if scenario not in names:
        raise ConfigError(f"scenario: {scenario!r} is not a scenario of the config; "
                          f"expected one of {names}")
    sc = cfg.build_scenarios()[names.index(scenario)]
    params = np.array(np.atleast_2d(params), dtype=np.float64)
    if params.shape[1] != m.N_PARAMS:
        raise ValueError(f"params: shape {params.shape}; expected (N, {m.N_PARAMS})")
    for name, v in sc.parameters.items():
        params[:, m.PARAMETERS.index[name]] = v
    n = params.shape[0]
    if y0 is None:
        y0, ok0 = steady_states(params)
    else:
        ok0 = np.all(np.isfinite(y0), axis=1)
    u = np.ones(n) if death_u is None else np.asarray(death_u, dtype=np.float64)
    t = save_grid(cfg.horizon, cfg.outcomes.assessment_every)
    origin = 0.0
    if cfg.outcomes.time_origin == "first_dose":
        times = [tt for iv in sc.interventions for tt in iv.dose_times()]
        origin = float(min(times)) if times else 0.0
    fu = follow_up(cfg, origin)
    out: dict[str, np.ndarray] = {}
    rows = np.flatnonzero(ok0)
    chunks = [rows[a:a + chunk] for a in range(0, rows.size, chunk)]
    work = _Chunk(cfg, sc.interventions, t, origin, fu, features)
    if client is None:
        buffer = np.empty((max([i.size for i in chunks] + [0]), t.size, m.N_STATES))
        results = (work(params[i], y0[i], u[i], threads, buffer) for i in chunks)
    else:
        from .sweep import distributed_module

        results = distributed_module().map_in_order(
            client, work, [(params[i], y0[i], u[i]) for i in chunks])
    with tqdm(total=n, unit="patient", disable=not progress, desc=scenario) as bar:
        for idx, res in zip(chunks, results):
            for k, v in res.items():
                if k not in out:
                    fill = False if v.dtype == bool else (-1 if v.dtype.kind == "i" else np.nan)
                    out[k] = np.full((n,) + v.shape[1:], fill, dtype=v.dtype)
                out[k][idx] = v
            bar.update(idx.size)
        bar.update(n - rows.size)
    if not out:  # nobody had a diseased state
        raise ConfigError("params: no row has an untreated diseased steady state")
    return out


class _Chunk:
    """Outcomes of one chunk of patients (picklable: a Dask task runs it on a worker)."""

    def __init__(self, cfg: Config, interventions, t: np.ndarray, origin: float, fu: float,
                 features: Features | None):
        self.cfg, self.interventions, self.t = cfg, interventions, t
        self.origin, self.fu, self.features = origin, fu, features

    def __call__(self, params: np.ndarray, y0: np.ndarray, u: np.ndarray,
                 threads: int | None = None, buffer: np.ndarray | None = None) -> dict:
        n, t = params.shape[0], self.t
        ivs = [self.interventions] * n
        sol, treated = run_batch(params, ivs, t, y0=y0, solver=self.cfg.solver.options(),
                                 threads=threads, out=None if buffer is None else buffer[:n])
        ok = sol.status == 0
        origin = np.full(n, self.origin)
        res = assess(self.cfg, t, sol.y, treated, ok, origin, death_times(u, ivs), self.fu)
        res["status"] = sol.status
        if self.features is not None:
            res.update(self.features(t, sol.y, treated, ok, origin))
        res["ok"] = ok
        return res
