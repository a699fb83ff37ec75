"""Global (Sobol) sensitivity of clinical outcomes to patient parameters.

The inputs are the config's cohort parameters (each with its cohort marginal) and, optionally,
other model parameters (log-uniform over the parameter table's plausible range). Saltelli's
design (``SALib.sample.sobol``, scrambled Sobol' points, ``N (D + 2)`` rows for ``D`` inputs
and no second-order terms) is mapped through each marginal's quantile function, every row is a
virtual patient run through one scenario
(:func:`~immunosim.experiments.patients.simulate_patients`), and ``SALib.analyze.sobol`` splits
the variance of each per-patient outcome into first-order (``S1``) and total (``ST``) indices
with bootstrap confidence intervals.

Sobol' indices are defined for **independent** inputs, so the cohort's ``correlations`` are
ignored here (a Gaussian copula would make the indices of correlated inputs ambiguous). Rows
whose parameters have no untreated diseased steady state cannot be dropped (the estimators pair
rows); they get the outcome of a patient who is healthy from day 0 (see :data:`HEALTHY_NOTE`),
and their fraction is reported. Nobody dies of treatment here (the draw that decides an HSCT
death is not a patient parameter and would only add noise).

The analysis step, :func:`sobol_indices`, takes any vectorised function of the inputs, so it is
tested against functions with known indices (Ishigami, linear additive).

References
----------
Saltelli A, Annoni P, Azzini I, Campolongo F, Ratto M, Tarantola S (2010). Variance based
sensitivity analysis of model output. Design and estimator for the total sensitivity index.
Comput Phys Commun 181:259-270.
Herman J, Usher W (2017). SALib: an open-source Python library for sensitivity analysis.
J Open Source Softw 2(9):97.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import xarray as xr
from scipy import stats

from .. import __version__
from ..model import sle_msc as m
from .assess import follow_up
from .cohort import frozen_distribution
from .config import Config, ConfigError, DistributionConfig
from .patients import simulate_patients

#: Seed streams (``SeedSequence(seed, spawn_key=(SENSITIVITY_STREAM, k))``): k = 0 the Sobol'
#: design, k = 1 SALib's bootstrap of the confidence intervals.
SENSITIVITY_STREAM = 4
NUM_RESAMPLES = 200  # bootstrap resamples for the confidence intervals
CONF_LEVEL = 0.95
#: Uniforms are kept this far from 0 and 1 so that unbounded marginals stay finite.
U_EPS = 1e-12

INDEPENDENCE_NOTE = ("inputs sampled independently, each from its marginal; cohort.correlations "
                     "are ignored (Sobol' indices need independent inputs)")
HEALTHY_NOTE = ("rows without an untreated diseased steady state count as healthy from day 0: "
                "remission_12m true, relapse_24m false, time_to_remission 0")


@dataclass(frozen=True)
class Outcome:
    """A per-patient outcome derived from :func:`simulate_patients`' arrays.

    Attributes
    ----------
    value : callable
        ``value(res) -> ndarray, shape (N,)`` (float) from the simulated patients' outcomes.
    healthy : float
        Value for a patient who is healthy from day 0 (no diseased steady state).
    needs : float
        Days of follow-up after the origin the definition needs.
    attrs : dict
        ``long_name`` and ``units`` of the outcome.
    """

    value: Callable[[dict[str, np.ndarray]], np.ndarray]
    healthy: float
    needs: float
    attrs: dict


OUTCOMES: dict[str, Outcome] = {
    "remission_12m": Outcome(
        lambda r: r["remission"] & (r["time_to_remission"] <= 365.0), 1.0, 365.0,
        {"long_name": "Sustained remission reached by day 365", "units": "1"}),
    "relapse_24m": Outcome(
        lambda r: r["flare"] & (r["time_to_flare"] <= 730.0), 0.0, 730.0,
        {"long_name": "Flare after response by day 730", "units": "1"}),
    "time_to_remission": Outcome(
        lambda r: r["time_to_remission"], 0.0, 0.0,
        {"long_name": "Time to sustained remission (follow-up if censored)", "units": "d"}),
}
DEFAULT_OUTCOMES = ("remission_12m", "relapse_24m", "time_to_remission")


# --- inputs -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Marginal:
    """One input: its distribution across patients and a readable description.

    ``dist`` is a frozen ``scipy.stats`` distribution. With ``nonnegative`` (model parameters),
    when ``dist`` has mass below 0 the quantile function is restricted to ``[cdf(0), 1]`` (the
    cohort redraws negative values, which amounts to the same truncation).
    """

    dist: object
    description: str
    nonnegative: bool = False

    def ppf(self, u: np.ndarray) -> np.ndarray:
        u = np.clip(u, U_EPS, 1.0 - U_EPS)
        if self.nonnegative:
            lo = float(self.dist.cdf(0.0))
            if lo > 0.0:
                u = lo + u * (1.0 - lo)
        return np.asarray(self.dist.ppf(u), dtype=np.float64)


def cohort_marginal(name: str, d: DistributionConfig) -> Marginal:
    """The marginal of cohort parameter ``name`` (its config entry ``d``)."""
    keys = {"lognormal": ("median", "cv"), "normal": ("mean", "sd"), "uniform": ("low", "high"),
            "truncnormal": ("mean", "sd", "low", "high")}[d.distribution]
    text = f"{d.distribution}(" + ", ".join(f"{k}={getattr(d, k):g}" for k in keys) + ")"
    return Marginal(frozen_distribution(d), text, nonnegative=True)


def range_marginal(name: str) -> Marginal:
    """Log-uniform over the parameter table's plausible range (uniform if it starts at 0)."""
    p = m.PARAMETERS[name]
    if not p.high > p.low:
        raise ConfigError(f"parameters: '{name}' has no range in the parameter table "
                          f"([{p.low:g}, {p.high:g}]); it cannot be varied")
    if p.low > 0:
        return Marginal(stats.loguniform(p.low, p.high), f"log-uniform[{p.low:g}, {p.high:g}]")
    return Marginal(stats.uniform(p.low, p.high - p.low), f"uniform[{p.low:g}, {p.high:g}]")


def input_marginals(cfg: Config, scenario: str,
                    parameters: Sequence[str] | None = None) -> dict[str, Marginal]:
    """The cohort's parameters, then the extra ``parameters`` not in the cohort, in that order.

    Raises :class:`ConfigError` for an unknown name, a parameter the scenario fixes (its value
    would overwrite the sampled one), a population table (``cohort.table``), or no input.
    """
    if cfg.cohort.table is not None:  # its values would be dropped without a word
        raise ConfigError(f"cohort.table: '{cfg.cohort.table.file}' fixes each patient's "
                          "parameters, and Sobol' indices need every input drawn from a "
                          "distribution; use a config with cohort.parameters distributions")
    fixed = cfg.scenarios[scenario].parameters
    out: dict[str, Marginal] = {}
    for name, d in cfg.cohort.parameters.items():
        if name not in fixed:
            out[name] = cohort_marginal(name, d)
    for name in parameters or ():
        if name not in m.PARAMETERS:
            raise ConfigError(f"parameters: {m.PARAMETERS.unknown_message(name)}")
        if name in fixed:
            raise ConfigError(f"parameters: '{name}' is set by scenarios.{scenario}.parameters, "
                              "so it cannot vary; pick another scenario or parameter")
        if name not in out:
            out[name] = range_marginal(name)
    if not out:
        raise ConfigError("parameters: nothing to vary; give cohort.parameters in the config "
                          "or name parameters (--parameters NAME ...)")
    return out


def default_scenario(cfg: Config) -> str:
    """The first scenario with an MSC infusion, else the first scenario."""
    for name, sc in cfg.scenarios.items():
        if sc.msc_list():
            return name
    return next(iter(cfg.scenarios))


# --- the Sobol' machinery (model-agnostic) -----------------------------------------------------


def _stream_seed(seed: int, k: int) -> int:
    """A nonzero 32-bit seed of stream ``k`` (SALib ignores a seed of 0)."""
    ss = np.random.SeedSequence(seed, spawn_key=(SENSITIVITY_STREAM, k))
    return int(ss.generate_state(1, dtype=np.uint32)[0]) | 1


def _check_samples(samples: int) -> None:
    if not (isinstance(samples, (int, np.integer)) and samples >= 2
            and samples & (samples - 1) == 0):
        raise ConfigError(f"samples: {samples!r}; expected a power of 2 >= 2 (e.g. 64, 256)")


def sobol_design(marginals: Mapping[str, Marginal], samples: int, seed: int) -> np.ndarray:
    """Saltelli's design mapped through the marginals.

    Returns
    -------
    ndarray, shape (samples * (D + 2), D)
        Rows in SALib's order (per base point: A, AB_1 .. AB_D, B); column ``j`` is input ``j``
        of ``marginals`` in its own units.
    """
    from SALib.sample import sobol as sobol_sample

    _check_samples(samples)
    names = list(marginals)
    problem = {"num_vars": len(names), "names": names, "bounds": [[0.0, 1.0]] * len(names)}
    u = sobol_sample.sample(problem, samples, calc_second_order=False, scramble=True,
                            seed=np.random.default_rng(_stream_seed(seed, 0)))
    return np.column_stack([marginals[n].ppf(u[:, j]) for j, n in enumerate(names)])


def _indices(y: np.ndarray, names: list[str], seed: int) -> dict[str, np.ndarray]:
    """S1, S1_conf, ST, ST_conf of one output, shape (D,) each; NaN if ``y`` is constant."""
    from SALib.analyze import sobol as sobol_analyze

    d = len(names)
    if not np.all(np.isfinite(y)):
        raise ValueError("sobol_indices: the model returned non-finite values")
    if np.ptp(y) == 0.0:  # no variance to split: the indices are undefined
        return {k: np.full(d, np.nan) for k in ("S1", "S1_conf", "ST", "ST_conf")}
    problem = {"num_vars": d, "names": names, "bounds": [[0.0, 1.0]] * d}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # constant bootstrap resamples
        s = sobol_analyze.analyze(problem, y, calc_second_order=False,
                                  num_resamples=NUM_RESAMPLES, conf_level=CONF_LEVEL,
                                  seed=_stream_seed(seed, 1))
    return {k: np.asarray(s[k], dtype=np.float64) for k in ("S1", "S1_conf", "ST", "ST_conf")}


def sobol_indices(marginals: Mapping[str, Marginal],
                  model: Callable[[np.ndarray], Mapping[str, np.ndarray]], *,
                  samples: int = 256, seed: int = 0,
                  outcome_attrs: Mapping[str, dict] | None = None) -> xr.Dataset:
    """First-order and total Sobol' indices of every output of ``model``.

    Parameters
    ----------
    marginals : mapping of str to Marginal
        The ``D`` independent inputs.
    model : callable
        ``model(x) -> {outcome: y}`` with ``x`` of shape ``(M, D)`` (columns in the order of
        ``marginals``) and each ``y`` of shape ``(M,)``, finite.
    samples : int
        ``N``, a power of 2: the model sees ``N (D + 2)`` rows.
    seed : int
        Seeds the design and the bootstrap; the same seed gives the same result.
    outcome_attrs : mapping, optional
        Attributes of each outcome (``long_name``, ``units``), kept on the ``outcome`` coordinate.

    Returns
    -------
    xarray.Dataset
        ``S1``, ``S1_conf``, ``ST``, ``ST_conf`` with dims ``(outcome, parameter)`` (``*_conf``:
        half-width of the 95% bootstrap interval; NaN for an outcome with no variance) and
        ``mean``, ``variance`` of each outcome (dim ``outcome``, over the A and B rows).
    """
    names = list(marginals)
    x = sobol_design(marginals, samples, seed)
    ys = model(x)
    rows = np.arange(x.shape[0]) % (len(names) + 2)
    ab = (rows == 0) | (rows == len(names) + 1)  # the independent A and B rows
    data: dict[str, list] = {k: [] for k in ("S1", "S1_conf", "ST", "ST_conf", "mean",
                                             "variance")}
    for y in ys.values():
        y = np.asarray(y, dtype=np.float64)
        if y.shape != (x.shape[0],):
            raise ValueError(f"sobol_indices: model output of shape {y.shape}; "
                             f"expected ({x.shape[0]},)")
        for k, v in _indices(y, names, seed).items():
            data[k].append(v)
        data["mean"].append(y[ab].mean())
        data["variance"].append(y[ab].var())
    attrs = {
        "S1": {"long_name": "First-order Sobol' index", "units": "1"},
        "S1_conf": {"long_name": "Half-width of the 95% bootstrap interval of S1", "units": "1"},
        "ST": {"long_name": "Total Sobol' index", "units": "1"},
        "ST_conf": {"long_name": "Half-width of the 95% bootstrap interval of ST", "units": "1"},
        "mean": {"long_name": "Mean of the outcome over the sample"},
        "variance": {"long_name": "Variance of the outcome over the sample"},
    }
    outs = list(ys)
    ds = xr.Dataset(
        {k: (("outcome", "parameter") if k not in ("mean", "variance") else ("outcome",),
             np.array(v), attrs[k]) for k, v in data.items()},
        coords={"outcome": outs, "parameter": names,
                "distribution": ("parameter", [marginals[n].description for n in names],
                                 {"long_name": "Marginal distribution sampled"})})
    for o in outs:
        ds.attrs[f"units_{o}"] = (outcome_attrs or {}).get(o, {}).get("units", "")
        ds.attrs[f"long_name_{o}"] = (outcome_attrs or {}).get(o, {}).get("long_name", o)
    ds.attrs.update({"method": "Sobol' indices, Saltelli (2010) design and estimators "
                               "(SALib), no second-order terms",
                     "samples": int(samples), "runs": int(x.shape[0]), "seed": int(seed),
                     "independence": INDEPENDENCE_NOTE, "confidence_level": CONF_LEVEL,
                     "bootstrap_resamples": NUM_RESAMPLES})
    return ds


# --- the clinical wrapper -----------------------------------------------------------------------


def _check_follow_up(cfg: Config, scenario: str, outcomes: Sequence[str]) -> None:
    origin = 0.0
    if cfg.outcomes.time_origin == "first_dose":
        times = [t for iv in cfg.build_scenarios()[list(cfg.scenarios).index(scenario)]
                 .interventions for t in iv.dose_times()]
        origin = float(min(times)) if times else 0.0
    fu = follow_up(cfg, origin)
    need = max(OUTCOMES[o].needs for o in outcomes)
    if fu < need:
        raise ConfigError(f"horizon: {cfg.horizon:g} d leaves {fu:g} d of follow-up; the "
                          f"outcomes {', '.join(outcomes)} need {need:g} d (set horizon >= "
                          f"{need + cfg.horizon - fu:g})")


def sobol_sensitivity(cfg: Config, *, scenario: str | None = None,
                      parameters: Sequence[str] | None = None, samples: int = 256,
                      outcomes: Sequence[str] = DEFAULT_OUTCOMES, seed: int | None = None,
                      threads: int | None = None, chunk: int = 2048,
                      progress: bool = False) -> xr.Dataset:
    """Sobol' indices of clinical outcomes to the cohort's (and extra) patient parameters.

    Inputs are independent: each cohort parameter is drawn from its marginal in
    ``cohort.parameters``, and ``cohort.correlations`` are **ignored** (Sobol' indices are
    defined for independent inputs). Each extra parameter in ``parameters`` that is not in the
    cohort varies log-uniformly over its plausible range in the parameter table (uniformly if
    the range starts at 0). All other parameters keep ``model.parameters`` (and the scenario's
    overrides). Nobody dies of treatment.

    Parameters
    ----------
    cfg : Config
        Horizon, solver, outcome definitions, scenarios and cohort marginals.
    scenario : str, optional
        The scenario (default: the first with an MSC infusion, else the first).
    parameters : sequence of str, optional
        Model parameters to vary besides the cohort's.
    samples : int
        ``N``, a power of 2; ``N (D + 2)`` patients are simulated for ``D`` inputs.
    outcomes : sequence of str
        Keys of :data:`OUTCOMES`: ``remission_12m`` (sustained remission by day 365),
        ``relapse_24m`` (a flare after response by day 730; false without response),
        ``time_to_remission`` (d, censored at the follow-up). Days count from the origin
        (``outcomes.time_origin``).
    seed : int, optional
        Default: the config's ``seed``. Results do not depend on ``threads`` or ``chunk``.
    threads, chunk : int, optional
        Engine threads and patients per engine call.
    progress : bool
        Show a progress bar.

    Returns
    -------
    xarray.Dataset
        As :func:`sobol_indices`, with attributes ``config``, ``scenario``, ``healthy_fraction``
        (rows without a diseased state, counted as healthy from day 0: :data:`HEALTHY_NOTE`) and
        ``failed_fraction`` (solver failures, given the mean of the other rows).

    Raises
    ------
    ConfigError
        Unknown scenario, parameter or outcome; ``samples`` not a power of 2; a follow-up
        shorter than the outcomes need (``horizon``).
    """
    scenario = default_scenario(cfg) if scenario is None else scenario
    if scenario not in cfg.scenarios:
        raise ConfigError(f"scenario: {scenario!r} is not a scenario of the config; expected "
                          f"one of {list(cfg.scenarios)}")
    outcomes = list(outcomes)
    bad = [o for o in outcomes if o not in OUTCOMES]
    if bad or not outcomes:
        raise ConfigError(f"outcomes: {bad[0] if bad else outcomes!r} is not an outcome; "
                          f"expected some of {list(OUTCOMES)}")
    _check_samples(samples)
    _check_follow_up(cfg, scenario, outcomes)
    marginals = input_marginals(cfg, scenario, parameters)
    seed = cfg.seed if seed is None else int(seed)
    base = m.PARAMETERS.vector(cfg.model.parameters)
    cols = [m.PARAMETERS.index[n] for n in marginals]
    counts: dict[str, int] = {}

    def model(x: np.ndarray) -> dict[str, np.ndarray]:
        params = np.repeat(base[None, :], x.shape[0], axis=0)
        params[:, cols] = x
        res = simulate_patients(cfg, scenario, params, chunk=chunk, threads=threads,
                                progress=progress)
        healthy = res["status"] == -1
        failed = ~res["ok"] & ~healthy
        counts.update(healthy=int(healthy.sum()), failed=int(failed.sum()))
        out = {}
        for o in outcomes:
            y = np.asarray(OUTCOMES[o].value(res), dtype=np.float64)
            y[healthy] = OUTCOMES[o].healthy
            if failed.any():
                y[failed] = y[~failed].mean()
            out[o] = y
        return out

    ds = sobol_indices(marginals, model, samples=samples, seed=seed,
                       outcome_attrs={o: OUTCOMES[o].attrs for o in outcomes})
    n = ds.attrs["runs"]
    ds.attrs.update({
        "config": cfg.name, "scenario": scenario, "healthy_fraction": counts["healthy"] / n,
        "healthy_rule": HEALTHY_NOTE, "failed_fraction": counts["failed"] / n,
        "failed_rule": "solver failures take the mean outcome of the other rows",
        "deaths": "none (treatment-related death is not sampled)",
        "immunosim_version": __version__, "config_toml": cfg.source_text})
    if counts["failed"]:
        warnings.warn(f"sensitivity: {counts['failed']} of {n} runs failed in the solver; they "
                      "take the mean outcome of the others (failed_fraction)", stacklevel=2)
    return ds


def write_sensitivity(ds: xr.Dataset, path: str) -> None:
    """Write a result to ``path``: Zarr (format 2, like sweeps) if it ends in ``.zarr``, else
    NetCDF."""
    if str(path).endswith(".zarr"):
        ds.to_zarr(path, mode="w", consolidated=False, zarr_format=2)
    else:
        ds.to_netcdf(path, mode="w")


def sensitivity_table(ds: xr.Dataset) -> str:
    """Total indices ``ST ± CI`` per parameter (rows, by the first outcome's ST) and outcome."""
    order = np.argsort(-np.nan_to_num(ds.ST.values[0], nan=-1.0), kind="stable")
    params = [str(ds.parameter.values[i]) for i in order]
    head = ("parameter",) + tuple(str(o) for o in ds.outcome.values)
    rows = [head]
    for p in params:
        d = ds.sel(parameter=p)
        rows.append((p,) + tuple("-" if v != v else f"{v:.2f} ± {c:.2f}"
                                 for v, c in zip(d.ST.values, d.ST_conf.values)))
    rows.append(("(mean)",) + tuple(f"{v:.3g}" for v in ds["mean"].values))
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)) for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    lines.insert(0, f"Total Sobol' index ST ± 95% CI; scenario {ds.attrs.get('scenario', '?')}, "
                    f"N = {ds.attrs['samples']} ({ds.attrs['runs']} patients)")
    if ds.attrs.get("healthy_fraction"):
        lines.append(f"{100 * ds.attrs['healthy_fraction']:.1f}% of rows had no diseased state "
                     "(counted as healthy from day 0)")
    lines.append("inputs independent: cohort correlations ignored; '-': outcome constant")
    return "\n".join(lines)
