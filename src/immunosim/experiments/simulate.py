"""Scenarios and the ``simulate`` API: one or a few scenarios -> an ``xarray.Dataset``.

:func:`run_batch` is the shared core: parameter rows + interventions -> dosing events + initial
states -> one call of the batched ODE engine. Sweeps call it chunk by chunk.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

import numpy as np
import xarray as xr

from .. import __version__
from ..engines.ode.solver import EventTable, ODESolution, solve
from ..engines.ode.status import MESSAGES
from ..model import activity as act
from ..model import model_digest
from ..model import sle_msc as m
from ..model.interventions import MSCInfusion, apply_parameters, schedule
from ..model.steady_states import diseased_states
from .clinical import OUTCOMES
from .results import apply_conventions, parameter_coords
from .scenario import NoDiseasedState, Scenario, SolverOptions

__all__ = ["NoDiseasedState", "Scenario", "SolverOptions", "simulate", "run_batch"]


def initial_states(params: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Untreated diseased steady state of each parameter row.

    Returns
    -------
    y0 : ndarray, shape (P, n_states); NaN rows where there is none.
    ok : ndarray of bool, shape (P,)
    """
    return diseased_states(params)


def run_batch(
    params: np.ndarray,
    interventions: Sequence[Sequence],
    t_eval: np.ndarray,
    *,
    y0: np.ndarray | None = None,
    solver: SolverOptions = SolverOptions(),
    threads: int | None = None,
    out: np.ndarray | None = None,
) -> tuple[ODESolution, np.ndarray]:
    """Integrate parameter rows, each with its own interventions.

    Parameters
    ----------
    params : ndarray, shape (P, n_params)
        Patient parameters *before* parameter-changing interventions (the untreated patient).
    interventions : sequence of length P of sequences of interventions
    t_eval : ndarray, shape (n_save,)
    y0 : ndarray, shape (P, n_states), optional
        Initial states; default: each row's untreated diseased steady state.
    out : ndarray, shape (P, n_save, n_states), optional
        Output array for the states, reused across batches (see :func:`solve`).

    Returns
    -------
    solution : ODESolution
    treated_params : ndarray, shape (P, n_params)
        The parameters actually integrated (with background therapy applied).
    """
    params = np.atleast_2d(np.asarray(params, dtype=np.float64))
    if len(interventions) != params.shape[0]:
        raise ValueError(f"interventions: {len(interventions)} rows for {params.shape[0]} patients")
    if y0 is None:
        y0, ok = initial_states(params)
        if not ok.all():
            bad = int(np.argmin(ok))
            raise NoDiseasedState(
                f"parameters: row {bad} has no diseased steady state (the untreated patient "
                "would be healthy); adjust the parameters or use a cohort that excludes such rows"
            )
    treated, events = treat(params, interventions)
    sol = solve(y0, treated, t_eval, events=events, t0=0.0, method=solver.method,
                rtol=solver.rtol, atol=solver.atol, max_steps=solver.max_steps, threads=threads,
                out=out)
    return sol, treated


def treat(params: np.ndarray, interventions: Sequence[Sequence]
          ) -> tuple[np.ndarray, EventTable]:
    """Parameters with background therapy applied, shape (P, n_params), and each row's dosing
    events (both engines integrate these)."""
    treated = np.stack([apply_parameters(iv, p) for iv, p in zip(interventions, params)])
    events = EventTable.from_lists([schedule(iv, p) for iv, p in zip(interventions, treated)])
    return treated, events


def save_grid(horizon: float, every: float) -> np.ndarray:
    """Times ``0, every, 2 every, ...`` up to and always including ``horizon`` as the last point
    (a last step shorter than ``every`` when ``horizon`` is not a multiple of it)."""
    t = np.arange(0.0, horizon, every)
    t = t[t < horizon - 1e-9 * every]
    return np.append(t, float(horizon))


def dose_table(intervention_lists: Sequence[Sequence]) -> np.ndarray:
    """Dosing times (MSC infusions, HSCT) of each list of interventions, sorted and NaN padded,
    shape ``(len(intervention_lists), max number of doses)`` (at least one column)."""
    rows = [sorted(float(t) for iv in ivs for t in iv.dose_times()) for ivs in intervention_lists]
    out = np.full((len(rows), max([len(r) for r in rows] + [1])), np.nan)
    for i, r in enumerate(rows):
        out[i, : len(r)] = r
    return out


def trajectories_dataset(sol: ODESolution, params: np.ndarray, dims: tuple[str, ...],
                         shape: tuple[int, ...]) -> xr.Dataset:
    """States and read-outs of a solution as a Dataset with ``dims + ('time',)``."""
    obs = act.observables(sol.y, params)
    data = {}
    for i, s in enumerate(m.STATES):
        data[s.name] = (dims + ("time",), sol.y[..., i].reshape(shape + (-1,)),
                        {"units": s.unit, "long_name": s.long_name})
    for name, (unit, long_name) in act.OBSERVABLES.items():
        data[name] = (dims + ("time",), obs[name].reshape(shape + (-1,)),
                      {"units": unit, "long_name": long_name})
    ds = xr.Dataset(data, coords={"time": ("time", sol.t, {"units": "d", "long_name": "Time"})})
    return ds


def status_attrs() -> dict:
    meanings = " ".join(v.split(" (")[0].replace(" ", "_") for v in MESSAGES.values())
    return {"long_name": "Solver status", "flag_values": list(MESSAGES), "flag_meanings": meanings}


def simulate(
    scenarios: Sequence[Scenario] | Scenario | None = None,
    *,
    parameters: Mapping[str, float] | None = None,
    horizon: float = 730.0,
    save_every: float = 1.0,
    outcomes: Mapping | None = None,
    solver: SolverOptions = SolverOptions(),
    threads: int | None = None,
) -> xr.Dataset:
    """Simulate one or a few scenarios for the reference patient, with trial outcomes.

    Parameters
    ----------
    scenarios : Scenario or sequence of Scenario, optional
        Default: untreated vs one bone-marrow MSC infusion of 1e6 cells/kg at day 0.
    parameters : mapping, optional
        Overrides of the model defaults (``immunosim info`` lists them); scenario overrides win.
    horizon : float
        Days simulated.
    save_every : float
        Days between saved time points of the trajectories.
    outcomes : mapping or OutcomesConfig, optional
        The keys of a config's ``[outcomes]`` table (``docs/outcomes.md``), e.g.
        ``{"time_origin": "first_dose", "landmarks": [91, 365]}``; default: its defaults.
        Outcomes are assessed every ``assessment_every`` days, whatever ``save_every``.

    Returns
    -------
    xarray.Dataset
        Dimensions ``scenario``, ``time``; every state, ``proteinuria``, ``renal_inflammation``
        and ``activity`` with ``units`` and ``long_name``; ``status``, ``nfev``, ``nsteps`` per
        scenario; ``dose_time (scenario, dose)`` (NaN padded) marks infusions and transplants;
        the sweep's outcome variables (``remission``, ``time_to_remission``, ``relapse``,
        ``time_to_relapse``, ... per ``scenario``; ``activity_at``, ... per ``scenario`` and
        ``landmark``) and ``origin``, with the sweep's definitions (``clinical.classify``).
        The reference patient has no treatment-related death (sweeps draw it per patient).

    Raises
    ------
    ConfigError
        A bad ``outcomes`` key or value, named (``outcomes.landmarks: ...``).
    """
    from .assess import assess, follow_up, mask_failed, origins

    if scenarios is None:
        scenarios = [Scenario("untreated"), Scenario("msc_1e6", (MSCInfusion(1e6),))]
    if isinstance(scenarios, Scenario):
        scenarios = [scenarios]
    scenarios = list(scenarios)
    names = [s.name for s in scenarios]
    if len(set(names)) != len(names):
        raise ValueError(f"scenarios: duplicate names in {names}")
    if not horizon > 0 or not save_every > 0:
        raise ValueError("horizon and save_every must be positive (days)")
    cfg = _outcome_config(horizon, outcomes)
    t_save = save_grid(horizon, save_every)
    t_assess = save_grid(horizon, cfg.outcomes.assessment_every)
    t_eval = np.union1d(t_save, t_assess)
    base = dict(parameters or {})
    params = np.stack([m.PARAMETERS.vector({**base, **dict(s.parameters)}) for s in scenarios])
    ivs = [s.interventions for s in scenarios]
    sol, treated = run_batch(params, ivs, t_eval, solver=solver, threads=threads)
    doses = dose_table(ivs)
    origin = origins(doses, cfg.outcomes.time_origin)
    n = len(scenarios)
    fu = follow_up(cfg, float(origin.max()))
    res = assess(cfg, t_assess, sol.y[:, np.searchsorted(t_eval, t_assess)], treated,
                 np.ones(n, dtype=bool), origin, np.full(n, np.nan), fu)
    res["status"] = sol.status
    mask_failed(res)
    keep = np.searchsorted(t_eval, t_save)
    sol = dataclasses.replace(sol, t=sol.t[keep], y=sol.y[:, keep])
    ds = trajectories_dataset(sol, treated, ("scenario",), (n,))
    ds = ds.assign_coords(scenario=("scenario", names),
                          landmark=("landmark", np.asarray(cfg.outcomes.landmarks, dtype=float)),
                          **parameter_coords())
    ds["dose_time"] = (("scenario", "dose"), doses, {"units": "d", "long_name": "Dosing time"})
    ds["status"] = ("scenario", sol.status, status_attrs())
    ds["nfev"] = ("scenario", sol.nfev, {"units": "1", "long_name": "RHS evaluations"})
    ds["nsteps"] = ("scenario", sol.naccept, {"units": "1", "long_name": "Accepted steps"})
    ds["parameters"] = (("scenario", "parameter"), treated,
                        {"long_name": "Parameter values used (units: the parameter_units "
                         "coordinate)"})
    ds["origin"] = ("scenario", origin, {"units": "d", "long_name": "Day outcome times count "
                                         "from"})
    for name, (per_landmark, _, attrs) in OUTCOMES.items():
        ds[name] = (("scenario", "landmark") if per_landmark else ("scenario",), res[name],
                    dict(attrs))
    ds.attrs.update({"model": m.NAME, "model_digest": model_digest(), "method": solver.method,
                     "rtol": solver.rtol, "atol": solver.atol, "immunosim_version": __version__,
                     "horizon_days": float(horizon), "time_origin": cfg.outcomes.time_origin,
                     "follow_up_days": fu})
    return apply_conventions(ds)


def _outcome_config(horizon: float, outcomes: Mapping | None):
    """A :class:`~immunosim.experiments.config.Config` holding the horizon and the outcome
    settings, validated as a config's ``[outcomes]`` table (one-line ``ConfigError``)."""
    from .config import OutcomesConfig, parse_config

    if isinstance(outcomes, OutcomesConfig):
        outcomes = outcomes.model_dump(exclude_none=True)
    return parse_config({"horizon": float(horizon), "outcomes": dict(outcomes or {})})
