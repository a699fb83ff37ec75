"""Config-driven sweeps: scenarios x design points x patients, chunked through the ODE engine.

Work is cut into **blocks**: one scenario, one design point, a contiguous range of patients. A
block is the unit of output (one Zarr region, one chunk, per design point it fills) and of
resume (a marker file written after its data). Blocks are grouped into engine batches of about
``output.chunk_size`` trajectories, so memory stays bounded by one batch however large the sweep.

Runs are computed once: the design points at which a scenario's runs are the same (it does not
use the axes that tell them apart: an untreated arm under an MSC-amount axis, a bone-marrow arm
under a ``parameters.potency_uc`` axis, an MSC interval when the count is 1) share one block per
patient range, whose values are written at each of them (broadcast along those axes; identical
to computing each).

Results are reduced as they are produced: outcomes always; trajectories only when
``output.trajectories`` is true, and then every ``output.trajectory_every`` days. A sweep writes
into ``OUT.partial`` and renames it to ``OUT`` only when every block is done, so a crash never
leaves a file that looks complete; ``resume=True`` keeps finished blocks and computes the rest,
and the result equals an uninterrupted run.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import threading
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import xarray as xr

from .. import __version__
from ..errors import ImmunosimError
from ..model import activity as act
from ..model import model_digest
from ..model import sle_msc as m
from ..model.interventions import unused_parameters
from .assess import assess, death_draws, death_times, follow_up, mask_failed, origins
from .clinical import OUTCOMES
from .cohort import Cohort, posterior_rows, sample_cohort
from .config import Config, ConfigError
from .design import Design, apply_point, expand
from .results import apply_conventions, parameter_coords
from .simulate import dose_table, initial_states, run_batch, save_grid, status_attrs, treat
from .summary import summary_table  # noqa: F401 (re-exported: it was defined here)
from .zarrstore import ChunkWriter, create_store, region_shape

#: Zarr format 2: readable by every Zarr library, and it stores fixed-width strings natively.
ZARR_FORMAT = 2

NOT_DISEASED = 10  # status of a run whose untreated parameters have no diseased steady state
#: Status of a run not computed (yet): the fill value of ``status``, also in the Zarr metadata of
#: an unfinished ``OUT.partial`` store, so a run never computed never reads back as success (0).
NOT_COMPUTED = -1

#: Parameters that do not change the untreated steady state (flagged in the model's table).
_TREATMENT_ONLY = m.PARAMETERS.treatment_indices()


class SweepError(ImmunosimError, RuntimeError):
    """A sweep could not run (bad output path, mismatched resume, ...); one-line message."""


@dataclass(frozen=True)
class Block:
    """A scenario and a contiguous range of patients at design point ``point`` (computed), whose
    values also fill every point of ``points`` (``point`` first: the points with the same runs).
    """

    index: int
    scenario: int
    point: int
    patients: slice
    points: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        if not self.points:
            object.__setattr__(self, "points", (self.point,))

    @property
    def size(self) -> int:
        """Patients in the block."""
        return self.patients.stop - self.patients.start


@dataclass(frozen=True)
class Plan:
    """Everything a sweep computes, before computing it."""

    config: Config
    design: Design
    cohort: Cohort
    scenarios: list
    t_assess: np.ndarray
    traj_index: np.ndarray
    block_size: int
    blocks: list[Block]
    dose_times: np.ndarray  # (n_scenarios, n_points, n_doses): dosing days, NaN padded
    origins: np.ndarray  # (n_scenarios, n_points): day outcome times count from
    follow_up: float  # days of follow-up after the origin
    death_u: np.ndarray  # (n_patients,): each patient's uniform draw for treatment-related death

    @property
    def replicates(self) -> int:
        """Stochastic replicates per run (1 for the ODE engine, which has no replicate dim)."""
        return self.config.engine.replicates if self.abm else 1

    @property
    def abm(self) -> bool:
        return self.config.engine.kind == "abm"

    @property
    def dims(self) -> tuple[str, ...]:
        rep = ("replicate",) if self.abm else ()
        return ("scenario",) + self.design.dims + ("patient",) + rep

    @property
    def shape(self) -> tuple[int, ...]:
        rep = (self.replicates,) if self.abm else ()
        return (len(self.scenarios),) + self.design.shape + (self.cohort.size,) + rep

    @property
    def n_runs(self) -> int:
        """Runs in the result (every scenario at every design point, patient and replicate)."""
        return int(np.prod(self.shape))

    @property
    def n_computed(self) -> int:
        """Runs the engine computes: :attr:`n_runs` less those shared along axes a scenario
        does not use."""
        return sum(b.size for b in self.blocks) * self.replicates


def plan(cfg: Config, *, chunk_size: int | None = None) -> Plan:
    """Expand a config into a :class:`Plan` (samples the cohort; no ODE solves yet)."""
    base = m.PARAMETERS.vector(cfg.model.parameters)
    cohort = sample_cohort(cfg.cohort, base, cfg.seed)
    design = expand(cfg)
    scenarios = cfg.build_scenarios()
    dt = cfg.outcomes.assessment_every
    t_assess = save_grid(cfg.horizon, dt)
    ratio = cfg.output.trajectory_every / dt
    if cfg.output.trajectories and abs(ratio - round(ratio)) > 1e-9:
        raise ConfigError(f"output.trajectory_every: {cfg.output.trajectory_every!r} must be a "
                          f"multiple of outcomes.assessment_every ({dt!r})")
    traj_index = np.arange(0, t_assess.size, max(1, round(ratio)))
    # Each scenario at each point: interventions and axis parameters (not patient-specific).
    setups = [[apply_point(design, pt, sc, base) for pt in range(design.n_points)]
              for sc in scenarios]
    # Dosing days of each scenario and point (schedules do not depend on the patient).
    doses = dose_table([ivs for per_point in setups for ivs, _ in per_point])
    doses = doses.reshape(len(scenarios), design.n_points, doses.shape[1])
    origin = origins(doses, cfg.outcomes.time_origin)
    fu = follow_up(cfg, float(origin.max()))
    size = chunk_size or cfg.output.chunk_size
    bs = min(size, cohort.size)
    blocks = []
    for s in range(len(scenarios)):
        for points in same_runs(setups[s]):
            for a in range(0, cohort.size, bs):
                blocks.append(Block(len(blocks), s, points[0], slice(a, min(a + bs, cohort.size)),
                                    points))
    # Treatment-related death: one draw per subject, the same under every posterior draw.
    death_u = death_draws(cfg.seed, cohort.n_subjects)[cohort.subject]
    return Plan(cfg, design, cohort, scenarios, t_assess, traj_index, bs, blocks, doses, origin,
                fu, death_u)


def same_runs(setups: list[tuple[tuple, np.ndarray]]) -> list[tuple[int, ...]]:
    """Group design points whose runs are identical for one scenario.

    Parameters
    ----------
    setups : list of (interventions, parameter vector), one per design point
        As :func:`~.design.apply_point` gives them for one scenario and one parameter vector.

    Returns
    -------
    list of tuple of int
        The points of each group, in order of their first point; together every point once.
    """
    groups: dict[tuple[str, bytes], list[int]] = {}
    for pt, (ivs, params) in enumerate(setups):
        q = np.array(params, dtype=float)
        q[[m.PARAMETERS.index[n] for n in unused_parameters(ivs)]] = 0.0  # cannot matter
        key = (repr(tuple(_canonical(iv) for iv in ivs)), q.tobytes())
        groups.setdefault(key, []).append(pt)
    return [tuple(g) for g in groups.values()]


def _canonical(iv):
    """A dosing record with the fields that cannot change its doses normalised: the interval of
    a record of one dose (``count = 1``) is 0."""
    if getattr(iv, "count", None) == 1 and getattr(iv, "interval", 0.0) != 0.0:
        return replace(iv, interval=0.0)
    return iv


def _batches(p: Plan, blocks: list[Block], chunk: int) -> Iterator[list[Block]]:
    batch: list[Block] = []
    n = 0
    for b in blocks:
        batch.append(b)
        n += b.patients.stop - b.patients.start
        if n >= chunk:
            yield batch
            batch, n = [], 0
    if batch:
        yield batch


def compute_batch(p: Plan, blocks: list[Block], threads: int | None = None,
                  buffer: np.ndarray | None = None) -> list[dict]:
    """Solve the runs of ``blocks`` in one engine call; return one dict of arrays per block.

    ``buffer``, shape ``(>= runs, n_assess, n_states)``, receives the engine's states (its first
    rows); the sweep passes the same one for every batch. Nothing returned refers to it.
    """
    cfg = p.config
    params, ivs, owner, origin = [], [], [], []
    for b in blocks:  # one block: one scenario and point, so the same interventions
        sc = p.scenarios[b.scenario]
        rows = range(b.patients.start, b.patients.stop)
        pat = p.cohort.params[b.patients].copy()
        for name, v in sc.parameters.items():
            pat[:, m.PARAMETERS.index[name]] = v
        iv, q = apply_point(p.design, b.point, sc, pat)
        params.append(q)
        ivs.extend([iv] * len(rows))
        owner.extend(rows)
        origin.extend([p.origins[b.scenario, b.point]] * len(rows))
    params = np.concatenate(params)
    # Initial states: the cohort's, unless scenario or axis changed steady-state parameters.
    y0 = p.cohort.y0[owner].copy()
    key_cols = np.setdiff1d(np.arange(params.shape[1]), _TREATMENT_ONLY)
    changed = np.any(params[:, key_cols] != p.cohort.params[owner][:, key_cols], axis=1)
    ok = np.ones(len(owner), dtype=bool)
    if changed.any():
        # The untreated patient of each changed run, solved once per distinct vector.
        rows = np.nonzero(changed)[0]
        untreated = p.cohort.params[np.asarray(owner)[rows]]
        untreated[:, key_cols] = params[rows][:, key_cols]
        uniq, inverse = np.unique(untreated, axis=0, return_inverse=True)
        y_u, ok_u = initial_states(uniq)
        y0[rows], ok[rows] = y_u[inverse.ravel()], ok_u[inverse.ravel()]
    # Rows without a diseased state still run (from the cohort's state); their results are masked.
    y0[~ok] = p.cohort.y0[np.asarray(owner)[~ok]]
    death = death_times(p.death_u[owner], ivs)
    origin = np.asarray(origin)
    if p.abm:
        res = _abm_batch(p, params, ivs, y0, ok, origin, death, owner, threads)
    else:
        out = None if buffer is None else buffer[: len(owner)]
        sol, treated = run_batch(params, ivs, p.t_assess, y0=y0, solver=cfg.solver.options(),
                                 threads=threads, out=out)
        res = _outcomes(p, sol.y, treated, ok, origin, death)
        res["status"] = np.where(ok, sol.status, NOT_DISEASED)
        res["nfev"] = sol.nfev
    mask_failed(res)  # integer variables (status, work, clone counts) are kept
    out, a = [], 0
    for b in blocks:
        n = b.patients.stop - b.patients.start
        out.append({k: v[a:a + n] for k, v in res.items()})
        a += n
    return out


def _outcomes(p: Plan, y: np.ndarray, treated: np.ndarray, ok: np.ndarray, origin: np.ndarray,
              death: np.ndarray) -> dict[str, np.ndarray]:
    """Outcomes (and trajectories, if asked) of runs with states ``y (N, n_assess, n_states)``."""
    cfg = p.config
    res = assess(cfg, p.t_assess, y, treated, ok, origin, death, p.follow_up)
    if cfg.output.trajectories:
        ti = p.traj_index
        obs = act.observables(y[:, ti], treated)
        alive = ok[:, None] & ~(p.t_assess[ti][None, :] >= death[:, None])  # NaN death: alive
        for name in cfg.output.trajectory_variables:
            v = y[:, ti, m.STATE_INDEX[name]] if name in m.STATE_INDEX else obs[name]
            res[f"traj_{name}"] = np.where(alive, v, np.nan)
    return res


#: Variables only the agent-based engine writes: name -> (dtype, attrs), each (patient, replicate).
ABM_VARIABLES: dict[str, tuple[np.dtype, dict]] = {
    "clones": (np.dtype(np.int64), {"units": "1",
                                    "long_name": "Live autoreactive clones at the horizon"}),
    "reseeding_clones": (np.dtype(np.int64), {
        "units": "1",
        "long_name": "Clones at the horizon holding cells that divide or re-enter (GC, memory)"}),
    "surviving_clones": (np.dtype(np.int64), {
        "units": "1",
        "long_name": "Clones founded before day 0 that can still re-seed, at the horizon"}),
    "extinction_time": (np.dtype(float), {
        "units": "d", "long_name": "Day the last clone founded before day 0 lost its GC and "
        "memory cells (NaN: never within the horizon)"}),
}


def abm_status_attrs() -> dict:
    """CF flag attributes of the agent-based engine's status codes."""
    from ..engines.abm.solver import STATUS_MESSAGES

    return {"long_name": "Run status (0 = success)", "flag_values": list(STATUS_MESSAGES),
            "flag_meanings": " ".join(v.split(" (")[0].replace(" ", "_").replace(",", "")
                                      for v in STATUS_MESSAGES.values())}


def _abm_batch(p: Plan, params, ivs, y0, ok, origin, death, owner, threads) -> dict:
    """Runs of one batch on the agent-based engine: ``replicates`` lanes per run, each keyed by
    its patient index and replicate number (the same streams in every scenario and point)."""
    from ..engines.abm.solver import simulate as abm_simulate

    cfg = p.config
    R = p.replicates
    treated, events = treat(params, ivs)
    sol = abm_simulate(y0, treated, p.t_assess, replicates=R, seed=cfg.seed,
                       keys=np.asarray(owner), events=events, options=cfg.engine.abm_options(),
                       threads=threads)
    N = len(owner)
    rep = np.repeat
    res = _outcomes(p, sol.y.reshape((N * R,) + sol.y.shape[2:]), rep(treated, R, axis=0),
                    rep(ok, R), rep(origin, R), rep(death, R))
    res = {k: v.reshape((N, R) + v.shape[1:]) for k, v in res.items()}
    res["status"] = np.where(ok[:, None], sol.status, NOT_DISEASED)
    res["nfev"] = sol.stats[..., 2]  # transitions fired
    last = sol.clones[:, :, -1]
    res["clones"], res["reseeding_clones"], res["surviving_clones"] = (
        last[..., 0], last[..., 1], last[..., 2])
    res["extinction_time"] = np.where(ok[:, None], sol.extinction, np.nan)
    return res


# --- the result Dataset ---------------------------------------------------------------------


def _variables(p: Plan) -> dict[str, tuple[tuple[str, ...], np.dtype, dict]]:
    dims = p.dims
    v = {name: (dims + (("landmark",) if per_landmark else ()),
                np.dtype(bool) if kind == "bool" else np.dtype(float), dict(attrs))
         for name, (per_landmark, kind, attrs) in OUTCOMES.items()}
    sa = abm_status_attrs() if p.abm else status_attrs()
    sa["flag_values"] = sa["flag_values"] + [NOT_DISEASED, NOT_COMPUTED]
    sa["flag_meanings"] += " no_diseased_steady_state not_computed"
    v["status"] = (dims, np.dtype(np.int64), sa)
    v["nfev"] = (dims, np.dtype(np.int64), {"units": "1", "long_name": "Transitions fired "
                                            "(cell events)" if p.abm else "RHS evaluations"})
    if p.abm:
        for name, (dtype, attrs) in ABM_VARIABLES.items():
            v[name] = (dims, dtype, dict(attrs))
    if p.config.output.trajectories:
        for name in p.config.output.trajectory_variables:
            if name in m.STATE_INDEX:
                s = m.STATES[m.STATE_INDEX[name]]
                unit, long_name = s.unit, s.long_name
            else:
                unit, long_name = act.OBSERVABLES[name]
            v[f"traj_{name}"] = (dims + ("time",), np.dtype(float),
                                 {"units": unit, "long_name": long_name})
    return v


def _coords(p: Plan) -> dict:
    cfg = p.config
    c = {"scenario": ("scenario", [s.name for s in p.scenarios]),
         "patient": ("patient", np.arange(p.cohort.size)),
         "landmark": ("landmark", np.asarray(cfg.outcomes.landmarks, dtype=float),
                      {"units": "d", "long_name": "Landmark day"}),
         **parameter_coords()}
    if p.abm:
        c["replicate"] = ("replicate", np.arange(p.replicates),
                          {"long_name": "Stochastic replicate (agent-based engine)"})
    for name, (dims, vals) in p.design.coords.items():
        c[name] = (dims, vals, dict(p.design.coord_attrs[name]))
    if cfg.output.trajectories:
        c["time"] = ("time", p.t_assess[p.traj_index], {"units": "d", "long_name": "Time"})
    for name, (vals, attrs) in p.cohort.patient_coords().items():  # a population table's
        c[name] = ("patient", vals, attrs)
    if cfg.cohort.posterior_draws:  # patient j = draw * size + subject
        c["draw"] = ("patient", p.cohort.draw, {"long_name": "Posterior draw"})
        c["subject"] = ("patient", p.cohort.subject,
                        {"long_name": "Subject (random stream, shared by every draw)"})
    return c


def _attrs(p: Plan) -> dict:
    cfg = p.config
    return {"title": f"immunosim sweep: {cfg.name}", "description": cfg.description,
            "config_toml": cfg.source_text, "config_json": cfg.model_dump_json(),
            "config_digest": config_digest(cfg), "seed": cfg.seed,
            "immunosim_version": __version__, "model": cfg.model.name,
            "model_digest": model_digest(),
            "solver_method": cfg.solver.method, "rtol": cfg.solver.rtol, "atol": cfg.solver.atol,
            "engine": cfg.engine.kind, **_engine_attrs(cfg),
            "horizon_days": cfg.horizon, "design": cfg.sweep.design,
            "time_origin": cfg.outcomes.time_origin, "follow_up_days": p.follow_up,
            **_cohort_attrs(cfg)}


def _engine_attrs(cfg: Config) -> dict:
    """The agent-based engine's settings (none for the ODE engine)."""
    if cfg.engine.kind != "abm":
        return {}
    e = cfg.engine
    return {"abm_replicates": e.replicates, "abm_system_size": e.system_size, "abm_dt": e.dt,
            "abm_substeps": e.substeps, "abm_burn_in_days": e.burn_in,
            "abm_exact_below": e.exact_below, "abm_max_probability": e.max_probability}


def _cohort_attrs(cfg: Config) -> dict:
    """Provenance of an included cohort and of the posterior draws used (none for plain runs)."""
    out = {}
    if cfg.included is not None:
        out["cohort_include"] = cfg.included.name
        out["cohort_toml"] = cfg.included.text
    post = cfg.cohort.posterior
    if cfg.cohort.posterior_draws and post is not None:
        out["posterior_source"] = post.source
        out["posterior_rows"] = posterior_rows(post.n_draws, cfg.cohort.posterior_draws).tolist()
    return out


def config_digest(cfg: Config) -> str:
    return hashlib.sha256(cfg.model_dump_json().encode()).hexdigest()[:16]


def _config_change(old_json: str | None, cfg: Config) -> str:
    """The first setting that differs between a stored ``config_json`` and ``cfg``, as
    ``solver.rtol: 1e-06 then, 1e-05 now`` ("" if it cannot be told)."""
    try:
        old = json.loads(old_json)
    except (TypeError, ValueError):
        return ""
    new = json.loads(cfg.model_dump_json())
    gone = object()

    def first(a, b, path):
        if isinstance(a, dict) and isinstance(b, dict):
            for k in [*a, *(k for k in b if k not in a)]:
                found = first(a.get(k, gone), b.get(k, gone), path + (str(k),))
                if found:
                    return found
            return None
        return (path, a, b) if a != b else None

    found = first(old, new, ())
    if not found:
        return ""
    path, a, b = found

    def show(v):
        return "unset" if v is gone else " ".join(json.dumps(v).split())[:80]

    return f"{'.'.join(path)}: {show(a)} then, {show(b)} now"


def _static(p: Plan) -> dict:
    return {"origin": (("scenario",) + p.design.dims,
                       p.origins.reshape((len(p.scenarios),) + p.design.shape),
                       {"units": "d", "long_name": "Day outcome times count from"}),
            "dose_time": (("scenario",) + p.design.dims + ("dose",),
                          p.dose_times.reshape((len(p.scenarios),) + p.design.shape
                                               + (p.dose_times.shape[2],)),
                          {"units": "d",
                           "long_name": "Dosing time (MSC infusion, HSCT, drug dose change)"}),
            "patient_parameters": (("patient", "parameter"), p.cohort.params,
                                   {"long_name": "Untreated patient parameters (units: the "
                                    "parameter_units coordinate)"}),
            "cohort_redraws": (("patient",), p.cohort.redraws,
                               {"units": "1",
                                "long_name": "Draws rejected before the patient was accepted"})}


def _result_dataset(p: Plan, data: dict) -> xr.Dataset:
    """The result Dataset of ``p`` around the variables ``data`` (name -> (dims, array,
    attrs)): coordinates, static variables and attributes, with the result conventions of
    :mod:`~immunosim.experiments.results` (units on every coordinate, integer axes, ...)."""
    ds = xr.Dataset(data, coords=_coords(p), attrs=_attrs(p))
    for k, v in _static(p).items():
        ds[k] = v
    d = p.design
    return apply_conventions(ds, axes=dict(zip(d.axis_names, d.targets)),
                             axis_scenarios=dict(zip(d.axis_names, d.axis_scenarios)))


def _block_regions(p: Plan, b: Block) -> Iterator[tuple[slice, ...]]:
    """The index of the block's region, over ``p.dims``, at each design point it fills."""
    for point in b.points:
        region = {"scenario": slice(b.scenario, b.scenario + 1), "patient": b.patients,
                  "replicate": slice(None)}
        for d, i in zip(p.design.dims, np.unravel_index(point, p.design.shape)):
            region[d] = slice(int(i), int(i) + 1)
        yield tuple(region[d] for d in p.dims)


def _layout(p: Plan, dims: tuple[str, ...], dtype: np.dtype) -> tuple[tuple[int, ...], object]:
    """Full shape of a result variable and its fill value (before any block is written)."""
    extra = {"landmark": len(p.config.outcomes.landmarks), "time": p.traj_index.size}
    shape = p.shape + tuple(extra[d] for d in dims[len(p.shape):])
    fill = False if dtype.kind == "b" else (NOT_COMPUTED if dtype.kind == "i" else np.nan)
    return shape, fill


class MemoryWriter:
    """Collects blocks into an in-memory Dataset (``immunosim run``, tests)."""

    def __init__(self, p: Plan):
        self.p = p
        self.vars = _variables(p)
        self.arrays = {}
        for name, (dims, dtype, _) in self.vars.items():
            shape, fill = _layout(p, dims, dtype)
            self.arrays[name] = np.full(shape, fill, dtype=dtype)

    def done(self) -> set[int]:
        return set()

    def write(self, b: Block, data: dict) -> None:
        for idx in _block_regions(self.p, b):
            for name, arr in self.arrays.items():
                arr[idx] = np.asarray(data[name]).reshape(region_shape(idx, arr.shape))

    def finish(self) -> xr.Dataset:
        return _result_dataset(self.p, {n: (v[0], self.arrays[n], v[2])
                                        for n, v in self.vars.items()})


class ZarrWriter:
    """Writes blocks as regions of a Zarr store at ``OUT.partial``; renames to ``OUT`` at the end.

    With ``fmt="netcdf"`` the finished store is converted to one NetCDF file. A previous result
    at ``OUT`` is replaced only with ``overwrite``.
    """

    def __init__(self, p: Plan, out: Path, fmt: str, resume: bool, overwrite: bool = False,
                 lock: OutputLock | None = None):
        self._paths(p, out, fmt)
        self.overwrite = overwrite
        # One writer per output; released by finish(). Callers take it before planning
        # (claim_output) and pass it in; without it the writer takes it here.
        self.lock = lock if lock is not None else claim_output(self.out)
        try:
            self._open(p, resume)
        except BaseException:
            self.lock.release()
            raise

    def _open(self, p: Plan, resume: bool) -> None:
        """Check the unfinished store for ``--resume``, or create a fresh one."""
        import warnings

        digest = config_digest(p.config)
        attrs = {}
        if resume and self.work.exists():
            try:
                attrs = dict(xr.open_zarr(self.work, consolidated=False).attrs)
            except Exception:  # unreadable: refused below
                attrs = {"config_digest": None}
        other = self.work.exists() and attrs.get("config_digest") != digest
        if resume and not other and not self.overwrite and finished_result(self.out, digest):
            # Killed after the rename that ends a sweep (or resumed after it ended): OUT is
            # this config's complete result (it is never half-written: see _publish); only the
            # clean-up is left. (An unfinished store of another config is not ours to drop; with
            # overwrite the user asked for OUT to be replaced by this run's result.)
            warnings.warn(f"--resume: {self.out} is already complete (same config, version and "
                          "model); nothing to compute", stacklevel=3)
            self.complete = True
            return
        if resume and not self.work.exists():
            what = ("was interrupted while being created" if self._creating.exists()
                    else "does not exist")
            warnings.warn(f"--resume: {self.work} {what}; starting the sweep afresh",
                          stacklevel=3)
        if resume and self.work.exists():
            if attrs.get("config_digest") is not None:  # another version or model first (its
                self._check_same_code()  # configs may read differently)
            if attrs.get("config_digest") != digest:
                change = _config_change(attrs.get("config_json"), p.config)
                raise SweepError(f"--resume: {self.work} was started from a different config"
                                 f"{f' ({change})' if change else ' (or is unreadable)'}; "
                                 "remove it or run without --resume")
            # Markers name blocks by index: they mean the same patients only with the same block
            # layout (the block size follows --chunk-size). Never mix two layouts.
            old_bs = self._stored_block_size()
            if old_bs != p.block_size:
                raise SweepError(f"--resume: {self.work} was written in blocks of {old_bs} "
                                 f"patients, this run uses {p.block_size}; resume with the "
                                 f"--chunk-size of the first run, or remove it")
            self.markers.mkdir(exist_ok=True)
            return
        for d in (self.work, self.markers, self._creating, self._tmp, self._trash):
            self._discard(d)
        self._create()

    def _paths(self, p: Plan, out: Path, fmt: str | None) -> None:
        self.p, self.out, self.fmt = p, Path(out), fmt
        self.work = self.out.with_name(self.out.name + ".partial")
        self.markers = self.out.with_name(self.out.name + ".partial-blocks")
        # The store is created under this name and renamed to ``work`` once complete, so a kill
        # during creation leaves no half-made ``work`` that --resume would trip on.
        self._creating = self.out.with_name(self.out.name + ".partial-creating")
        # The NetCDF file being written (none for Zarr: a user's OUT.tmp is not ours to delete)
        self._tmp = self.out.with_name(self.out.name + (".tmp" if fmt == "netcdf" else
                                                        ".partial-creating"))
        self._trash = self.out.with_name(self.out.name + ".partial-trash")  # see _discard
        self.vars = _variables(p)
        self._arrays = None
        self.complete = False  # OUT is already this sweep's finished result (see _open)
    def _check_same_code(self) -> None:
        """The unfinished store was written by this immunosim version and model: finished
        blocks of another version would be mixed with new ones."""
        attrs = result_attrs(self.work) or {}
        for key, now in (("immunosim_version", __version__), ("model_digest", model_digest())):
            if attrs.get(key) != now:
                raise SweepError(f"--resume: {self.work} was written with {key} "
                                 f"{attrs.get(key)!r}, this is {now!r}; finished blocks would "
                                 "be mixed with another version's: remove it or run without "
                                 "--resume")

    def _stored_block_size(self) -> int | None:
        """Patients per block of the existing ``OUT.partial`` store (its chunk along
        ``patient``), None if unreadable."""
        import zarr

        try:
            arr = zarr.open_group(str(self.work), mode="r", zarr_format=ZARR_FORMAT)["status"]
            return int(arr.chunks[len(self.p.design.dims) + 1])  # scenario, axes..., patient
        except Exception:
            return None

    @classmethod
    def attach(cls, p: Plan, out: Path) -> ZarrWriter:
        """A writer into the existing ``OUT.partial`` store of ``p`` (a Dask worker's view): it
        writes blocks and creates, checks or finishes nothing."""
        self = cls.__new__(cls)
        self._paths(p, out, None)
        return self

    def _create(self) -> None:
        p = self.p
        data = {}
        encoding = {}
        for name, (dims, dtype, attrs) in self.vars.items():
            shape, fill = _layout(p, dims, dtype)
            lead = len(p.design.dims) + 1  # scenario and the sweep axes: one chunk per value
            chunks = (1,) * lead + (p.block_size,) + shape[lead + 1:]
            data[name] = (dims, np.broadcast_to(np.array(fill, dtype=dtype), shape), attrs)
            encoding[name] = {"chunks": chunks}
        # Unwritten chunks read as the Zarr fill value: NOT_COMPUTED for status, never 0.
        encoding["status"]["_FillValue"] = NOT_COMPUTED
        create_store(_result_dataset(p, data), self._creating, list(self.vars), encoding,
                     zarr_format=ZARR_FORMAT)
        os.replace(self._creating, self.work)  # atomic: ``work`` is complete or absent
        self.markers.mkdir(exist_ok=True)

    def done(self) -> set[int]:
        if self.complete:
            return {b.index for b in self.p.blocks}
        if not self.markers.exists():
            return set()
        return {int(f.name.split(".")[0]) for f in self.markers.iterdir()
                if f.name.endswith(".done")}

    def write(self, b: Block, data: dict) -> None:
        self.write_data(b, data)
        (self.markers / f"{b.index}.done").touch()  # after the data: a marker means complete

    def write_data(self, b: Block, data: dict) -> None:
        """Write the block's regions of every variable (whole chunks: a block is one chunk at
        each design point it fills)."""
        if self._arrays is None:  # open once: each lookup of an array reads its metadata
            import zarr

            group = zarr.open_group(str(self.work), mode="r+", zarr_format=ZARR_FORMAT)
            self._arrays = {name: ChunkWriter(group[name]) for name in self.vars}
        for name, arr in self._arrays.items():
            values = np.asarray(data[name])
            for idx in _block_regions(self.p, b):
                arr.write(idx, values)

    def finish(self) -> Path:
        if not self.complete:
            missing = set(range(len(self.p.blocks))) - self.done()
            if missing:
                raise SweepError(f"internal: {len(missing)} blocks missing at the end of the "
                                 "sweep")
            self._publish()
        # Clean-up, after OUT is complete: a kill from here on leaves OUT whole, and --resume
        # only cleans up (see _open).
        for d in (self.work, self._tmp, self.markers):
            self._discard(d)
        self.lock.release()
        return self.out

    def _publish(self) -> None:
        """Make ``OUT`` the finished result in one atomic rename. At every instant ``OUT`` is the
        previous result, absent, or the new one, never half of one; the store it comes from is
        kept, with its markers, until then."""
        import zarr

        try:  # something appeared at OUT while we computed: keep the work for --resume
            refuse_existing(self.out, self.overwrite)
        except SweepError:
            self.lock.release()
            raise
        # Every run is computed: drop the fill value, which xarray would read as a mask (and
        # so turn status into floats); the finished result equals the in-memory one.
        meta = self.work / "status" / ".zarray"  # Zarr format 2 array metadata, local store
        doc = json.loads(meta.read_text())
        doc["fill_value"] = None
        _replace_text(meta, json.dumps(doc, indent=4))  # a kill never leaves half a file
        zarr.consolidate_metadata(str(self.work), zarr_format=ZARR_FORMAT)
        new = self.work
        if self.fmt == "netcdf":
            new = self._tmp
            try:
                with xr.open_zarr(self.work) as ds:
                    ds.load().to_netcdf(new, engine="netcdf4")
            except BaseException:
                new.unlink(missing_ok=True)  # never leave a half-written file behind
                raise
        if self.out.exists() or self.out.is_symlink():
            refuse_foreign(self.out)  # appeared while we computed: never delete a user's data
            self._discard(self.out)  # renamed aside first: never left half-deleted
        os.replace(new, self.out)

    def _discard(self, path: Path) -> None:
        """Remove ``path`` (ours: a store, a marker directory, a file) by renaming it to
        ``OUT.partial-trash`` first, so that a kill while deleting never leaves a half-deleted
        store under a name that means something."""
        if not (path.exists() or path.is_symlink()):
            return
        _remove(self._trash)
        os.replace(path, self._trash)
        _remove(self._trash)


def _remove(path: Path) -> None:
    """Delete a file or directory tree if it exists."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


def _replace_text(path: Path, text: str) -> None:
    """Write ``path`` atomically: a temporary file next to it, renamed over it."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


# --- output safety: never delete what is not ours; one writer per output -----------------------


def result_attrs(path: Path) -> dict | None:
    """Global attributes of the Zarr store or NetCDF file at ``path``, None if it is neither."""
    path = Path(path)
    if path.is_dir():
        for name, key in ((".zattrs", None), ("zarr.json", "attributes")):
            f = path / name
            if f.is_file():
                try:
                    doc = json.loads(f.read_text())
                except (OSError, ValueError):
                    return None
                doc = doc.get(key, {}) if key else doc
                return doc if isinstance(doc, dict) else None
        return None
    try:
        with xr.open_dataset(path) as ds:
            return dict(ds.attrs)
    except Exception:  # not a file xarray can read: not a result
        return None


def is_result(path: Path) -> bool:
    """An immunosim sweep result (or its unfinished store): it carries the digests."""
    attrs = result_attrs(path)
    return attrs is not None and "config_digest" in attrs and "model_digest" in attrs


def refuse_foreign(path: Path, what: str = "an immunosim result") -> None:
    """Raise a one-line :class:`SweepError` if something that is not an immunosim result sits at
    ``path`` (the sweep would replace it)."""
    path = Path(path)
    if path.is_dir() and not path.is_symlink() and not any(path.iterdir()):
        return  # an empty directory holds nothing to lose
    if (path.exists() or path.is_symlink()) and not is_result(path):
        kind = "directory" if path.is_dir() else "file"
        raise SweepError(f"output: {path} is a {kind} that is not {what} (no immunosim "
                         "attributes); immunosim replaces only its own results: choose another "
                         "path or move it away")


def refuse_existing(path: Path, overwrite: bool) -> None:
    """Raise a one-line :class:`SweepError` if ``path`` holds something the sweep would replace:
    anything that is not an immunosim result (always), or a previous result unless
    ``overwrite``. An empty directory holds nothing to lose."""
    path = Path(path)
    refuse_foreign(path)
    if overwrite or not (path.exists() or path.is_symlink()):
        return
    if path.is_dir() and not path.is_symlink() and not any(path.iterdir()):
        return
    raise SweepError(f"output: {path} exists (a previous immunosim result); pass --overwrite "
                     "(overwrite=True) to replace it, or choose another path")


def finished_result(out: Path, digest: str) -> bool:
    """``out`` is the finished result of the config with ``digest``, written by this immunosim
    version and model (a sweep killed after its last rename: only the clean-up is left)."""
    attrs = result_attrs(Path(out)) or {}
    return (attrs.get("config_digest") == digest
            and attrs.get("immunosim_version") == __version__
            and attrs.get("model_digest") == model_digest())


def claim_output(out: Path) -> OutputLock:
    """Check the output path and take its lock, before any expensive work: the directory
    exists, nothing but an immunosim result sits at ``OUT`` and ``OUT.partial``, and no other
    sweep writes ``OUT`` (one-line :class:`SweepError` otherwise). Returns the held lock."""
    out = Path(out)
    if not out.parent.exists():
        raise SweepError(f"output: directory '{out.parent}' does not exist")
    refuse_foreign(out)
    refuse_foreign(out.with_name(out.name + ".partial"), "an unfinished sweep's store")
    return OutputLock(out)


class OutputLock:
    """``OUT.lock``: the pid and host of the one sweep writing ``OUT``. A second writer is refused
    in one line; a lock left by a dead process (or by this process) is taken over."""

    def __init__(self, out: Path):
        self.path = Path(out).with_name(Path(out).name + ".lock")
        import socket

        self.me = f"{os.getpid()} {socket.gethostname()}"
        for _ in range(3):
            try:
                fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                self._take_over_if_stale()
                continue
            with os.fdopen(fd, "w") as f:
                f.write(self.me + "\n")
            return
        raise SweepError(f"output: cannot take the lock {self.path}; remove it if no sweep is "
                         "writing this output")

    def _take_over_if_stale(self) -> None:
        import socket

        try:
            pid_text, _, host = self.path.read_text().strip().partition(" ")
            pid = int(pid_text)
        except (OSError, ValueError):
            pid, host = None, ""  # unreadable or half-written: stale
        if pid is not None and pid != os.getpid() and (host != socket.gethostname()
                                                       or _alive(pid)):
            where = f"pid {pid}" + (f" on {host}" if host != socket.gethostname() else "")
            raise SweepError(f"output: {self.path.with_suffix('')} is being written by another "
                             f"sweep ({where}, lock {self.path}); wait for it to end, or remove "
                             "the lock if that process is gone")
        self.path.unlink(missing_ok=True)  # stale: taken over

    def release(self) -> None:
        try:
            if self.path.read_text().strip() == self.me:
                self.path.unlink()
        except OSError:
            pass


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def output_format(path: Path, fmt: str | None) -> str:
    if fmt is not None:
        return fmt
    if path.suffix in (".nc", ".nc4", ".netcdf"):
        return "netcdf"
    if path.suffix == ".zarr":
        return "zarr"
    raise SweepError(f"output: cannot tell the format of '{path}'; use a .zarr or .nc name "
                     "or set output.format")


def sweep(config: Config | str | Path, out: str | Path | None = None, *, resume: bool = False,
          workers: int | None = None, chunk_size: int | None = None,
          progress: bool | None = None, client=None,
          task_size: int | None = None, overwrite: bool = False) -> xr.Dataset | Path:
    """Run a config's sweep.

    Parameters
    ----------
    config : Config or path to a TOML file
    out : path, optional
        ``.zarr`` (written incrementally) or ``.nc``; default ``output.path`` of the config. With
        neither, the result is returned in memory.
    resume : bool
        Continue an interrupted sweep into the same ``out``.
    workers : int, optional
        Threads for the batched engine (results do not depend on it).
    chunk_size : int, optional
        Trajectories per engine batch and patients per output block (results do not depend on it).
    progress : bool, optional
        Default: a progress bar on a terminal, otherwise a one-line log line on stderr every
        :data:`~.progress.LOG_EVERY` seconds (see :class:`~.progress.Progress`); False: silent.
    client : dask.distributed.Client, optional
        Run the blocks on this Dask cluster instead (needs ``out``, on storage every worker
        sees at the same path; see ``docs/distributed.md``). Same result, value for value.
    task_size : int, optional
        With ``client``: runs per Dask task (whole blocks; default: about 8 tasks per worker,
        at most 2**16 runs and 1e4 tasks). Results do not depend on it.
    overwrite : bool
        Replace a previous immunosim result at ``out`` (refused otherwise, in one line). Never
        anything else: a path that is not an immunosim result is refused either way.

    Returns
    -------
    xarray.Dataset (in memory) or pathlib.Path of the written result.
    """
    from .config import load_config

    cfg = load_config(config) if isinstance(config, (str, Path)) else config
    out = out if out is not None else cfg.output.path
    if client is not None:
        if out is None:
            raise SweepError("client: a distributed sweep writes a Zarr store (or NetCDF file); "
                             "pass out or set output.path")
        if workers is not None:
            raise SweepError("workers: threads of the local engine; with a Dask client each "
                             "worker runs its kernels on its own threads")
        refuse_existing(Path(out), overwrite)  # before any compute
        return distributed_module().sweep_on_client(
            cfg, Path(out), client, resume=resume, chunk_size=chunk_size, task_size=task_size,
            progress=progress, overwrite=overwrite).path
    if task_size is not None:
        raise SweepError("task_size: only for a distributed sweep (pass client)")
    lock = None
    if out is not None:  # before any compute (cohort sampling included): a second writer, a
        out = Path(out)  # foreign file or a bad path is refused at once
        output_format(out, cfg.output.format)
        if not (resume and finished_result(out, config_digest(cfg))):
            refuse_existing(out, overwrite)  # a finished result of this config: clean-up only
        lock = claim_output(out)
    try:
        return _sweep_local(cfg, out, lock, resume, workers, chunk_size, progress, overwrite)
    except BaseException:
        if lock is not None:
            lock.release()  # this process writes no more: the next sweep need not wait for it
        raise


def _sweep_local(cfg: Config, out: Path | None, lock: OutputLock | None, resume: bool,
                 workers: int | None, chunk_size: int | None, progress: bool | None,
                 overwrite: bool) -> xr.Dataset | Path:
    """:func:`sweep` on the local engine, into memory or into ``out`` (whose ``lock`` is held)."""
    from .progress import Progress

    p = plan(cfg, chunk_size=chunk_size)
    if out is None:
        writer = MemoryWriter(p)
    else:
        writer = ZarrWriter(p, out, output_format(out, cfg.output.format), resume, overwrite,
                            lock=lock)
    done = writer.done()
    todo = [b for b in p.blocks if b.index not in done]
    chunk = chunk_size or cfg.output.chunk_size
    ndone = sum(b.size for b in p.blocks if b.index in done) * p.replicates
    with Progress(p.n_computed, ndone, progress, cfg.name, note=shared_note(p)) as bar, \
            BackgroundWrites(writer, lambda b: bar.update(b.size * p.replicates)) as writes:
        buffer = None  # the engine's output, reused by every batch (no fresh pages per batch)
        for batch in _batches(p, todo, chunk):
            runs = sum(b.size for b in batch)
            if buffer is None or buffer.shape[0] < runs:
                buffer = np.empty((runs, len(p.t_assess), m.N_STATES))
            writes.submit(batch, compute_batch(p, batch, threads=workers, buffer=buffer))
    return writer.finish()


class BackgroundWrites:
    """Writes each batch's blocks on one background thread while the next batch is computed.

    The engine releases the GIL, so compressing and writing the chunks of batch k (and waiting
    for the disk) overlaps with the integration of batch k + 1. At most one batch is in flight:
    :meth:`submit` first waits for the previous one and raises its error (or
    KeyboardInterrupt) in the caller. Leaving the ``with`` block on an exception, the thread
    ends the block it is writing and stops; the exception then goes on. Blocks are written in
    order, each with ``writer.write`` (its data, then its marker), so an interrupted batch
    leaves whole blocks with their markers and blocks without them, which ``--resume``
    recomputes.

    Parameters
    ----------
    writer : ZarrWriter or MemoryWriter
    done : callable, optional
        Called with each written block, in the caller's thread.
    """

    def __init__(self, writer, done=None):
        from concurrent.futures import ThreadPoolExecutor

        self.writer, self.done = writer, done
        self.pool = ThreadPoolExecutor(1, thread_name_prefix="immunosim-writes")
        self.pending = None  # (future, blocks) of the batch in flight
        self.stop = threading.Event()

    def submit(self, blocks: list[Block], results: list[dict]) -> None:
        """Write ``results`` (one dict per block, as :func:`compute_batch` returns) in the
        background, once the previous batch is written."""
        self.wait()
        self.pending = (self.pool.submit(self._write, blocks, results), blocks)

    def _write(self, blocks: list[Block], results: list[dict]) -> None:
        for b, data in zip(blocks, results):
            if self.stop.is_set():
                return
            self.writer.write(b, data)

    def wait(self) -> None:
        """Wait for the batch in flight; raise its error."""
        if self.pending is None:
            return
        future, blocks = self.pending
        self.pending = None
        future.result()
        if self.done is not None:
            for b in blocks:
                self.done(b)

    def __enter__(self) -> BackgroundWrites:
        return self

    def __exit__(self, exc_type, *exc) -> None:
        try:
            if exc_type is None:
                self.wait()
        finally:
            self.stop.set()  # no-op after a clean wait; otherwise no block is started
            self.pool.shutdown(wait=True)


def shared_note(p: Plan) -> str:
    """``13500 runs to compute for 18000 results (...)``, or "" when every run is computed."""
    if p.n_computed == p.n_runs:
        return ""
    return (f"{p.n_computed} runs to compute for {p.n_runs} results (runs that do not depend "
            "on an axis are computed once and repeated along it)")


#: What to install for ``client=`` / ``--scheduler`` when ``dask.distributed`` is missing.
DASK_HINT = "pip install 'immunosim[dask]'"


def distributed_module():
    """:mod:`immunosim.experiments.distributed`, imported on first use (``import immunosim``
    does not import ``distributed``); a one-line :class:`SweepError` if it is not installed."""
    try:
        from . import distributed
    except ImportError as e:
        if (e.name or "").split(".")[0] in ("distributed", "dask", "tornado", "msgpack"):
            raise SweepError(f"distributed sweeps need dask.distributed, which is not installed: "
                             f"{DASK_HINT}") from None
        raise
    return distributed
