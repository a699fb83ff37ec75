"""Calibration: fit the virtual cohort's parameter distributions to published outcomes.

Method (importance reweighting of a batched simulator):

1. **Cloud.** Draw ``N`` virtual patients from a broad proposal over the log of the fitted
   parameters (scrambled Sobol, :mod:`experiments.cloud`) and simulate every arm once.
2. **Likelihood without new simulations.** A cohort is a multivariate normal in log space
   (medians, spreads as log-SDs, correlations), truncated to patients with active disease. Its
   prediction of a target is a self-normalised weighted mean over the cloud, weights
   ``p_theta(x) / q(x)``. The likelihood respects the data: binomial for ``k`` of ``n``; for a
   mean ``xbar`` with SD ``s`` over ``n`` patients, the model mean ``mu`` is scored against the
   reported standard error, ``-n (xbar - mu)^2 / (2 s^2)``, and the model SD ``sigma`` against
   the reported SD, ``(n - 1) s^2 / sigma^2 ~ chi2(n - 1)``.
   Priors: a normal on each log-median around the config's value, truncated to the parameter
   table's plausible range; a half-normal on each log-SD (narrow for parameters that are global
   in the literature's sense, wide for patient traits); uniform on correlations and on the
   transplant's treatment-related mortality.
3. **Best fit** by multi-start :func:`scipy.optimize.minimize` (L-BFGS-B), **posterior** by
   :mod:`emcee`; the cloud is then **refreshed** around the posterior (moment-matched, widened)
   and the fit repeated, so the effective sample size (ESS) of the weights at the posterior is
   high. The ESS at the best fit and over posterior draws is reported; where it falls under
   ``ess_floor`` the likelihood is penalised (the cloud cannot resolve such a cohort).

The fitted cohort (best fit plus posterior draws) is written as a ``[cohort]`` table
(:func:`cohort_toml`) that sweep configs include.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Literal

import numpy as np
import tomllib
from pydantic import Field, ValidationError
from scipy import optimize
from scipy.linalg import solve_triangular

from ..model import sle_msc as m
from ._config_types import Float, Int, Pos, _Strict
from .cloud import Cloud, simulate_cloud
from .config import Config, ConfigError, parse_config
from .targets import OUTCOME_MAPS, Target, TargetColumns, data_interval, load_targets

# --- settings ---------------------------------------------------------------------------------


class FitParameter(_Strict):
    """One fitted cohort parameter: ``prior_sd`` of its log-median (around the cohort config's
    median, or the model default) and either ``spread`` (half-normal scale of its fitted log-SD:
    a patient trait) or ``fixed_spread`` (its log-SD held fixed: a parameter shared by patients,
    whose median is fitted and whose small residual spread keeps the reweighting stable)."""

    spread: Pos = 0.8
    fixed_spread: Annotated[Float, Field(gt=0, le=1)] | None = None
    prior_sd: Pos = 1.0


class CalibrationSettings(_Strict):
    """``[calibration]`` of a calibration config (see ``configs/calibrate.toml``)."""

    targets: str = "default"
    #: Engine simulating the cloud: "ode". The agent-based engine is refused: the importance
    #: reweighting needs one deterministic outcome per virtual patient.
    engine: Literal["ode", "abm"] = "ode"
    arms: list[str] | None = None  # default: every arm the fitted targets name
    fit: dict[str, FitParameter]
    correlations: list[tuple[str, str]] = Field(default_factory=list)
    fit_trm: bool = True
    #: Patients per round: each round refits and moves the proposal to the fitted cohort;
    #: the posterior is sampled on the last (powers of 2 keep the Sobol sequence balanced).
    cloud_sizes: list[Annotated[Int, Field(ge=256)]] = Field(
        default_factory=lambda: [16384, 32768, 65536], min_length=1)
    refresh: Annotated[Int, Field(ge=0, le=3)] = 1  # refreshes around the emcee posterior
    refresh_size: Annotated[Int, Field(ge=256)] | None = None  # default: the last cloud size
    widen: Annotated[Float, Field(ge=1, le=4)] = 1.5  # proposal SD / fitted SD while fitting
    refresh_widen: Annotated[Float, Field(ge=1, le=4)] = 1.25  # ... around the posterior
    min_proposal_sd: Annotated[Float, Field(gt=0)] = 0.2
    starts: Annotated[Int, Field(ge=1)] = 4
    maxiter: Annotated[Int, Field(ge=1)] = 100  # L-BFGS-B iterations per start
    walkers: Annotated[Int, Field(ge=4)] = 40
    steps: Annotated[Int, Field(ge=10)] = 300
    burn: Annotated[Int, Field(ge=0)] = 100
    posterior_draws: Annotated[Int, Field(ge=1)] = 100
    #: Below this ESS, as a fraction of the cloud, the likelihood is penalised (see the module).
    ess_floor: Annotated[Float, Field(gt=0, lt=1)] = 0.03
    min_ess: Annotated[Float, Field(gt=0)] = 10000.0
    cohort_size: Annotated[Int, Field(ge=1)] = 200
    output: str = "cohort_calibrated.toml"


@dataclass
class Problem:
    """A calibration config, read: the simulation config, settings and targets."""

    config: Config
    settings: CalibrationSettings
    targets: list[Target]
    path: Path | None = None

    @property
    def fitted(self) -> list[Target]:
        return [t for t in self.targets if t.fit]

    @property
    def arms(self) -> list[str]:
        if self.settings.arms is not None:
            return list(self.settings.arms)
        return sorted({t.arm for t in self.fitted if not OUTCOME_MAPS[t.outcome].analytic}
                      | {t.arm for t in self.fitted if t.outcome == "treatment_related_death"})


def _settings_error(e: ValidationError) -> ConfigError:
    err = e.errors()[0]
    loc = "".join(f".{x}" for x in err["loc"])
    return ConfigError(" ".join(f"calibration{loc}: {err['msg'].removeprefix('Value error, ')}"
                                f" (got {err.get('input')!r})".split()))


def load_problem(path: str | Path) -> Problem:
    """Read a calibration config: an ordinary config plus a ``[calibration]`` table."""
    path = Path(path)
    try:
        text = path.read_text()
        data = tomllib.loads(text)
    except OSError as e:
        raise ConfigError(f"{path}: cannot read config ({e.strerror})") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: not valid TOML ({e})") from None
    if "calibration" not in data:
        raise ConfigError(f"{path}: no [calibration] table; a calibration config needs one "
                          "(see configs/calibrate.toml)")
    return parse_problem(data, text, path)


def parse_problem(data: dict, text: str = "", path: str | Path | None = None) -> Problem:
    """Validate a calibration config read from TOML (``data``, with its ``[calibration]``
    table); relative paths (``targets``) start from ``path``'s directory. Raises
    :class:`ConfigError` (one line naming the key)."""
    data = dict(data)
    try:
        settings = CalibrationSettings.model_validate(data.pop("calibration", None))
    except ValidationError as e:
        raise _settings_error(e) from None
    base = Path(path).parent if path is not None else Path.cwd()
    cfg = parse_config(data, text)
    tpath = settings.targets
    if tpath != "default" and not Path(tpath).is_absolute():
        tpath = str(base / tpath)
    return check_problem(Problem(cfg, settings, load_targets(tpath),
                                 Path(path) if path is not None else None))


def check_problem(p: Problem) -> Problem:
    """Refuse settings that cannot work, naming the key."""
    s, cfg = p.settings, p.config
    scen = list(cfg.scenarios)
    if s.engine != "ode":
        raise ConfigError(f"calibration.engine: {s.engine!r} is not supported for calibration: "
                          "importance reweighting needs one deterministic outcome per virtual "
                          "patient (use \"ode\"; run the calibrated cohort on the agent-based "
                          "engine with [engine] kind = \"abm\" in a sweep)")
    sizes = [(f"cloud_sizes[{i}]", n) for i, n in enumerate(s.cloud_sizes)]
    for key, n in sizes + [("refresh_size", s.refresh_size or 1)]:
        if n & (n - 1):
            raise ConfigError(f"calibration.{key}: {n} is not a power of 2 "
                              "(a Sobol sequence is balanced only at powers of 2)")
    for name in s.fit:
        if name not in m.PARAMETERS:
            raise ConfigError(f"calibration.fit.{name}: {m.PARAMETERS.unknown_message(name)}")
        d = cfg.cohort.parameters.get(name)
        if d is not None and d.distribution != "lognormal":
            raise ConfigError(f"cohort.parameters.{name}: fitted parameters must be lognormal "
                              f"(got {d.distribution!r})")
    for a, b in s.correlations:
        for x in (a, b):
            if x not in s.fit:
                raise ConfigError(f"calibration.correlations: {x!r} is not a fitted parameter")
    for t in p.targets:
        if t.arm not in scen and t.fit:
            raise ConfigError(f"targets: {t.id} names arm {t.arm!r}, which is not a scenario "
                              f"of the config; expected one of {scen}")
        lm = cfg.outcomes.landmarks or []
        at_visit = OUTCOME_MAPS[t.outcome].visit and t.time > 0
        if t.fit and at_visit and not np.any(np.isclose(lm, t.time)):
            raise ConfigError(f"outcomes.landmarks: {lm} lacks day {t.time:g} that target "
                              f"{t.id} reads; add it")
        if t.fit and max(t.time, t.window if "relapsers" in t.outcome else 0) > cfg.horizon:
            raise ConfigError(f"horizon: {cfg.horizon:g} d is shorter than target {t.id} "
                              f"(day {t.time:g})")
    return p


# --- the parameter vector theta ----------------------------------------------------------------

#: Smallest fitted log-SD of a patient trait (assumed: traits differ between patients by at
#: least ~10%; a trait fitted to zero spread would also leave the reweighting no patients).
MIN_SPREAD = 0.1

#: In the rounds around the posterior the ESS floor is this multiple of ``min_ess``: the best fit
#: sits at the floor, so a margin keeps the posterior draws (which scatter around it) above it.
ESS_MARGIN = 1.3


@dataclass(frozen=True)
class Layout:
    """Where each quantity sits in theta: log-medians, fitted log-SDs, correlations, TRM.

    Parameters with a fixed spread have no log-SD entry; their log-SD is ``fixed[j]``.
    """

    names: list[str]
    pairs: list[tuple[int, int]]
    fit_trm: bool
    centre: np.ndarray  # prior centre of the log-medians
    prior_sd: np.ndarray
    spread: np.ndarray  # half-normal scale of the fitted log-SDs
    fixed: np.ndarray  # (d,) fixed log-SD, NaN where fitted
    lo: np.ndarray  # bounds of theta
    hi: np.ndarray

    @property
    def d(self) -> int:
        return len(self.names)

    @property
    def free(self) -> np.ndarray:
        """Indices of the parameters whose log-SD is fitted."""
        return np.flatnonzero(np.isnan(self.fixed))

    @property
    def size(self) -> int:
        return self.d + self.free.size + len(self.pairs) + int(self.fit_trm)

    def unpack(self, theta: np.ndarray):
        """(log-medians (d,), log-SDs (d,), correlations (c,), trm)."""
        d, f, c = self.d, self.free.size, len(self.pairs)
        mu = theta[:d]
        sig = self.fixed.copy()
        sig[self.free] = theta[d:d + f]
        rho = theta[d + f:d + f + c]
        trm = theta[-1] if self.fit_trm else np.nan
        return mu, sig, rho, trm

    def covariance(self, theta: np.ndarray) -> np.ndarray:
        _, sig, rho, _ = self.unpack(theta)
        corr = np.eye(self.d)
        for (i, j), r in zip(self.pairs, rho):
            corr[i, j] = corr[j, i] = r
        return corr * np.outer(sig, sig)

    def labels(self) -> list[str]:
        out = [f"log_median:{n}" for n in self.names]
        out += [f"log_sd:{self.names[j]}" for j in self.free]
        out += [f"corr:{self.names[i]}:{self.names[j]}" for i, j in self.pairs]
        return out + (["trm"] if self.fit_trm else [])


def make_layout(p: Problem, trm0: float) -> tuple[Layout, np.ndarray]:
    """The theta layout and the prior-centre starting point."""
    s, cfg = p.settings, p.config
    names = list(s.fit)
    base = m.PARAMETERS.vector(cfg.model.parameters)
    centre, sd0 = [], []
    for n in names:
        d = cfg.cohort.parameters.get(n)
        centre.append(np.log(d.median if d is not None else base[m.PARAMETERS.index[n]]))
        sd0.append(np.sqrt(np.log1p(d.cv**2)) if d is not None else 0.1)
    fixed = np.array([np.nan if s.fit[n].fixed_spread is None else s.fit[n].fixed_spread
                      for n in names])
    free = np.flatnonzero(np.isnan(fixed))
    par = [m.PARAMETERS[n] for n in names]
    lo_mu = [np.log(max(q.low, 1e-6 * max(q.high, 1e-12))) for q in par]
    hi_mu = [np.log(q.high) for q in par]
    pairs = [(names.index(a), names.index(b)) for a, b in s.correlations]
    lo = np.r_[lo_mu, np.full(free.size, MIN_SPREAD), np.full(len(pairs), -0.9),
               [1e-4] if s.fit_trm else []]
    hi = np.r_[hi_mu, np.full(free.size, 2.5), np.full(len(pairs), 0.9),
               [0.5] if s.fit_trm else []]
    lay = Layout(names, pairs, s.fit_trm, np.array(centre),
                 np.array([s.fit[n].prior_sd for n in names]),
                 np.array([s.fit[n].spread for n in names]), fixed, lo, hi)
    theta0 = np.r_[np.clip(centre, lo_mu, hi_mu), np.clip(np.array(sd0)[free], 0.05, 2.0),
                   np.zeros(len(pairs)), [trm0] if s.fit_trm else []]
    return lay, np.clip(theta0, lo + 1e-9, hi - 1e-9)


# --- the likelihood --------------------------------------------------------------------------


class Likelihood:
    """Log posterior of theta over a fixed cloud, and the predictions behind it.

    Every prediction is a ratio of entries of ``w @ F`` (see :class:`TargetColumns`).
    """

    def __init__(self, layout: Layout, cloud: Cloud, targets: list[Target], trm_fixed: float,
                 ess_floor: float):
        self.lay, self.cloud, self.targets = layout, cloud, targets
        self.trm_fixed, self.ess_floor = trm_fixed, ess_floor
        self.columns = TargetColumns(cloud.features, cloud.transplant, targets)
        self._xt = np.ascontiguousarray(cloud.x.T)  # (d, N): one small-by-wide product per call

    # weights
    def log_weights(self, theta: np.ndarray) -> np.ndarray:
        """Unnormalised log importance weights ``log p_theta(x) - log q(x)``, shape (N,)."""
        mu = self.lay.unpack(theta)[0]
        try:
            L = np.linalg.cholesky(self.lay.covariance(theta))
        except np.linalg.LinAlgError:
            return np.full(self.cloud.size, -np.inf)
        a = solve_triangular(L, np.eye(self.lay.d), lower=True)  # z = L^-1 (x - mu)
        z = a @ self._xt
        z -= (a @ mu)[:, None]
        logp = -0.5 * np.einsum("ij,ij->j", z, z) - np.log(np.diag(L)).sum()
        return logp - 0.5 * self.lay.d * np.log(2 * np.pi) - self.cloud.log_q

    def weights(self, theta: np.ndarray) -> tuple[np.ndarray, float]:
        """Normalised weights (N,) and their effective sample size."""
        lw = self.log_weights(theta)
        if not np.isfinite(lw).any():
            return np.zeros_like(lw), 0.0
        w = np.exp(lw - lw.max())
        w /= w.sum()
        return w, float(1.0 / np.sum(w**2))

    def predict(self, theta: np.ndarray, w: np.ndarray | None = None) -> np.ndarray:
        """Model value of every target (proportion, or mean), shape (n_targets,); for a mean
        target the model SD is in :meth:`predict_sd`."""
        return self._predict(theta, w)[0]

    def _predict(self, theta, w=None):
        if w is None:
            w, _ = self.weights(theta)
        trm = self.lay.unpack(theta)[3] if self.lay.fit_trm else self.trm_fixed
        return self.columns.predict(w @ self.columns.F, trm)

    def log_prior(self, theta: np.ndarray) -> float:
        lay = self.lay
        if np.any(theta <= lay.lo) or np.any(theta >= lay.hi):
            return -np.inf
        mu, sig, _, _ = lay.unpack(theta)
        f = lay.free
        return float(-0.5 * np.sum(((mu - lay.centre) / lay.prior_sd) ** 2)
                     - 0.5 * np.sum((sig[f] / lay.spread[f]) ** 2))

    def log_likelihood(self, theta: np.ndarray) -> tuple[float, float]:
        """Log-likelihood of the targets and the ESS at ``theta``."""
        w, ess = self.weights(theta)
        if ess <= 1:
            return -np.inf, ess
        val, sd = self._predict(theta, w)
        ll = 0.0
        for t, v, s in zip(self.targets, val, sd):
            if not np.isfinite(v):
                return -np.inf, ess
            if t.kind == "proportion":
                p = min(max(v, 1e-9), 1 - 1e-9)
                ll += t.k * np.log(p) + (t.n - t.k) * np.log1p(-p)
            else:  # mean: its reported SE; SD: (n-1) s^2 / sigma^2 ~ chi2(n-1)
                s = max(s, 1e-3 * t.sd)
                ll += -0.5 * t.n * (t.mean - v) ** 2 / t.sd**2
                ll += -(t.n - 1) * np.log(s) - (t.n - 1) * t.sd**2 / (2 * s**2)
        if ess < self.ess_floor:  # the cloud cannot resolve this cohort: push back
            ll -= 50.0 * np.log(self.ess_floor / ess)
        return float(ll), ess

    def __call__(self, theta: np.ndarray) -> float:
        lp = self.log_prior(theta)
        if not np.isfinite(lp):
            return -np.inf
        return lp + self.log_likelihood(theta)[0]


# --- fitting -----------------------------------------------------------------------------------


def best_fit(like: Likelihood, starts: list[np.ndarray], maxiter: int = 100
             ) -> tuple[np.ndarray, float]:
    """Multi-start L-BFGS-B on minus the log posterior; the best end point and its value."""
    lay = like.lay
    bounds = list(zip(lay.lo + 1e-9, lay.hi - 1e-9))
    best, best_val = None, np.inf
    for x0 in starts:
        def f(th):
            v = -like(th)
            return v if np.isfinite(v) else 1e12
        r = optimize.minimize(f, x0, method="L-BFGS-B", bounds=bounds,
                              options={"maxiter": maxiter, "eps": 1e-5})
        if r.fun < best_val:
            best, best_val = r.x, float(r.fun)
    return best, -best_val


def sample_posterior(like: Likelihood, theta0: np.ndarray, walkers: int, steps: int,
                     seed: int, scale: np.ndarray | None = None) -> np.ndarray:
    """emcee ensemble around ``theta0``; returns the chain, shape (steps, walkers, ndim)."""
    import emcee

    lay = like.lay
    nw = max(walkers, 2 * lay.size + 2)
    nw += nw % 2
    rng = np.random.default_rng([seed, 5])
    step = np.full(lay.size, 0.02) if scale is None else np.maximum(scale, 1e-3)
    p0 = theta0 + step * rng.standard_normal((nw, lay.size))
    p0 = np.clip(p0, lay.lo + 1e-6, lay.hi - 1e-6)
    sampler = emcee.EnsembleSampler(nw, lay.size, like)
    sampler.random_state = np.random.RandomState(int(rng.integers(2**31))).get_state()
    sampler.run_mcmc(p0, steps, progress=False)
    return sampler.get_chain()


def proposal_from(lay: Layout, draws: np.ndarray, widen: float) -> tuple[np.ndarray, np.ndarray]:
    """Moment-matched normal of the posterior predictive patient distribution, widened."""
    mus = np.array([lay.unpack(t)[0] for t in draws])
    covs = np.array([lay.covariance(t) for t in draws])
    mean = mus.mean(axis=0)
    cov = covs.mean(axis=0) + np.cov(mus.T).reshape(lay.d, lay.d)
    return mean, cov * widen**2


@dataclass
class Result:
    """What a calibration found (see :func:`calibrate`)."""

    problem: Problem
    layout: Layout
    theta: np.ndarray  # best fit
    draws: np.ndarray  # (n_draws, ndim) posterior draws
    log_post: float
    ess_best: float
    ess_draws: np.ndarray
    predictions: np.ndarray  # (n_draws, n_targets) at the posterior draws
    best_predictions: np.ndarray
    acceptance: float
    cloud_sizes: list[int] = field(default_factory=list)
    timings: dict = field(default_factory=dict)


def _log(msg: str, t0: float, verbose: bool) -> None:
    if verbose:
        print(f"[{time.perf_counter() - t0:6.1f} s] {msg}", flush=True)


def proposal_around(lay: Layout, theta: np.ndarray, widen: float, floor: float
                    ) -> tuple[np.ndarray, np.ndarray]:
    """The cohort distribution at ``theta``, widened, with every SD at least ``floor``."""
    cov = lay.covariance(theta) * widen**2
    sd = np.sqrt(np.diag(cov))
    cov += np.diag(np.maximum(floor**2 - sd**2, 0.0))
    return lay.unpack(theta)[0].copy(), cov


def calibrate(problem: Problem | str | Path, *, threads: int | None = None,
              verbose: bool = False, progress: bool = False, client=None) -> Result:
    """Fit the cohort of a calibration config to its targets (see the module docstring).

    Rounds: for each of ``cloud_sizes`` a fresh cloud around the current fit, then a best fit;
    emcee on the last; then ``refresh`` times a cloud of ``refresh_size`` around the emcee
    posterior, a best fit and emcee again, with the ESS floor raised to ``ESS_MARGIN * min_ess``
    (the posterior is restricted to cohorts the final cloud resolves with about that ESS).
    BLAS runs single-threaded here (the products are small-by-wide, where threads only add
    overhead); the ODE engine uses ``threads``, or the workers of a Dask ``client`` (the same
    results: every cloud chunk is the same computation wherever it runs).
    """
    from threadpoolctl import threadpool_limits

    p = load_problem(problem) if isinstance(problem, (str, Path)) else problem
    with threadpool_limits(1, user_api="blas"):
        return _calibrate(p, threads, verbose, progress, client)


def _calibrate(p: Problem, threads, verbose, progress, client) -> Result:
    s, cfg = p.settings, p.config
    t0 = time.perf_counter()
    trm0 = _config_trm(cfg)
    lay, theta = make_layout(p, trm0)
    mean, cov = proposal_around(lay, theta, s.widen, s.min_proposal_sd)
    sizes: list[int] = []
    schedule = list(s.cloud_sizes) + [s.refresh_size or s.cloud_sizes[-1]] * s.refresh
    chain = None
    for rnd, n in enumerate(schedule):
        cloud = simulate_cloud(cfg, p.arms, lay.names, mean, cov, n, cfg.seed + 1000 * rnd,
                               threads=threads, progress=progress, client=client)
        sizes.append(cloud.size)
        _log(f"round {rnd}: {cloud.size} diseased patients (of {cloud.drawn}) simulated in "
             f"{len(p.arms)} arms; failed runs {cloud.failed}", t0, verbose)
        floor = max(100.0, s.ess_floor * cloud.size)
        if rnd >= len(s.cloud_sizes):  # around the posterior: keep the draws' ESS >= min_ess
            floor = max(floor, ESS_MARGIN * s.min_ess)
        like = Likelihood(lay, cloud, p.fitted, trm0, floor)
        starts = [theta]
        if rnd == 0:
            rng = np.random.default_rng([cfg.seed, 6])
            width = (lay.hi - lay.lo) * 0.1
            starts += [np.clip(theta + width * rng.uniform(-1, 1, lay.size), lay.lo + 1e-6,
                               lay.hi - 1e-6) for _ in range(s.starts - 1)]
        elif chain is not None:
            last = chain[-1]
            starts.append(last[np.argmax([like(x) for x in last])])
        theta, lp = best_fit(like, starts, s.maxiter)
        _log(f"round {rnd}: best log posterior {lp:.2f}, ESS {like.weights(theta)[1]:.0f}",
             t0, verbose)
        if rnd < len(s.cloud_sizes) - 1:
            mean, cov = proposal_around(lay, theta, s.widen, s.min_proposal_sd)
            continue
        scale = None if chain is None else chain[s.burn:].reshape(-1, lay.size).std(axis=0)
        chain = sample_posterior(like, theta, s.walkers, s.steps, cfg.seed + rnd, scale)
        _log(f"round {rnd}: emcee {chain.shape[1]} walkers x {chain.shape[0]} steps", t0,
             verbose)
        mean, cov = proposal_from(lay, chain[s.burn:].reshape(-1, lay.size), s.refresh_widen)
    flat = chain[s.burn:].reshape(-1, lay.size)
    rng = np.random.default_rng([cfg.seed, 7])
    draws = flat[rng.choice(flat.shape[0], size=min(s.posterior_draws, flat.shape[0]),
                            replace=False)]
    preds, ess = [], []
    for th in draws:
        w, e = like.weights(th)
        preds.append(like.predict(th, w))
        ess.append(e)
    acc = float(np.mean(np.any(np.diff(chain, axis=0) != 0, axis=2)))
    res = Result(p, lay, theta, draws, lp, like.weights(theta)[1], np.array(ess),
                 np.array(preds), like.predict(theta), acc, sizes,
                 {"total_s": time.perf_counter() - t0})
    _log(f"done: ESS at best fit {res.ess_best:.0f}, over draws min {np.min(ess):.0f} "
         f"median {np.median(ess):.0f}; acceptance {acc:.2f}", t0, verbose)
    if res.ess_draws.min() < s.min_ess:
        import warnings

        warnings.warn(f"calibration: the effective sample size falls to "
                      f"{res.ess_draws.min():.0f} over the posterior draws (calibration.min_ess "
                      f"= {s.min_ess:g}); enlarge calibration.cloud_sizes or add a refresh",
                      RuntimeWarning, stacklevel=2)
    return res


def _config_trm(cfg: Config) -> float:
    """The treatment-related mortality of the config's first HSCT record (default otherwise)."""
    from ..model.interventions import HSCT

    for sc in cfg.build_scenarios():
        for iv in sc.interventions:
            if isinstance(iv, HSCT):
                return float(iv.trm)
    return float(HSCT(0.0).trm)


# --- reporting -----------------------------------------------------------------------------


def fit_table(res: Result) -> str:
    """Every target: data with its 95% interval, the model (best fit; posterior 95% interval),
    and whether the best fit lies inside the data's interval."""
    rows = [("target", "data", "95% CI", "model", "posterior 95%", "in?")]
    for i, t in enumerate(res.problem.fitted):
        lo, hi = data_interval(t)
        q = np.nanpercentile(res.predictions[:, i], [2.5, 97.5])
        fmt = (lambda x: f"{100 * x:.0f}%") if t.kind == "proportion" else (lambda x: f"{x:.1f}")
        v = res.best_predictions[i]
        rows.append((t.id, fmt(t.observed), f"{fmt(lo)}-{fmt(hi)}", fmt(v),
                     f"{fmt(q[0])}-{fmt(q[1])}", "yes" if lo <= v <= hi else "NO"))
    widths = [max(len(r[c]) for r in rows) for c in range(len(rows[0]))]
    lines = ["  ".join(x.ljust(w) for x, w in zip(r, widths)) for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def cohort_parameters(lay: Layout, theta: np.ndarray) -> dict[str, tuple[float, float]]:
    """(median, cv) of each fitted lognormal."""
    mu, sig, _, _ = lay.unpack(theta)
    return {n: (float(np.exp(a)), float(np.sqrt(np.expm1(b**2))))
            for n, a, b in zip(lay.names, mu, sig)}


def cohort_toml(res: Result, command: str = "") -> str:
    """The fitted cohort as TOML: best fit in ``[cohort]``, draws in ``[cohort.posterior]``."""
    lay, s = res.layout, res.problem.settings
    g = lambda x: f"{x:.6g}"  # noqa: E731
    lines = ["# The calibrated virtual cohort (generated; do not edit by hand).",
             f"# {command or 'immunosim calibrate'}",
             f"# Targets: {len(res.problem.fitted)} published figures "
             "(immunosim/data/targets.toml); docs/validation.md compares them with the model.",
             f"# Best-fit log posterior {res.log_post:.2f}; ESS at the best fit "
             f"{res.ess_best:.0f}, over the posterior draws min {res.ess_draws.min():.0f}.",
             ]
    if lay.fit_trm:
        q = np.percentile(res.draws[:, -1], [2.5, 50, 97.5])
        lines.append(f"# HSCT treatment-related mortality: {res.theta[-1]:.4f} (posterior "
                     f"median {q[1]:.4f}, 95% {q[0]:.4f}-{q[2]:.4f}); set it in hsct.trm")
    lines += ["", "[cohort]", f"size = {s.cohort_size}"]
    _, _, rho, _ = lay.unpack(res.theta)
    if lay.pairs:
        corr = ", ".join(f'["{lay.names[i]}", "{lay.names[j]}", {g(r)}]'
                         for (i, j), r in zip(lay.pairs, rho))
        lines.append(f"correlations = [{corr}]")
    for n, (med, cv) in cohort_parameters(lay, res.theta).items():
        lines += ["", f"[cohort.parameters.{n}]", 'distribution = "lognormal"',
                  f"median = {g(med)}", f"cv = {g(cv)}"]
        if _bounded(n):  # fitted truncated to the hard domain (experiments/cloud.py)
            lines.append("truncate = true")
    lines += ["", "[cohort.posterior]",
              f'source = "immunosim calibrate, seed {res.problem.config.seed}, '
              f'{len(res.draws)} emcee draws"',
              "parameters = [" + ", ".join(f'"{n}"' for n in lay.names) + "]"]
    meds, cvs = [], []
    for th in res.draws:
        cp = cohort_parameters(lay, th)
        meds.append("[" + ", ".join(g(cp[n][0]) for n in lay.names) + "]")
        cvs.append("[" + ", ".join(g(cp[n][1]) for n in lay.names) + "]")
    lines += ["median = [", *[f"  {x}," for x in meds], "]", "cv = [", *[f"  {x}," for x in cvs],
              "]"]
    if lay.pairs:
        rows = ["[" + ", ".join(g(r) for r in lay.unpack(th)[2]) + "]" for th in res.draws]
        lines += ["correlation = [", *[f"  {x}," for x in rows], "]"]
    if lay.fit_trm:
        lines += ["", "# Treatment-related mortality of autologous HSCT (the hsct record's trm).",
                  "[transplant]", f"trm = {g(res.theta[-1])}",
                  "trm_draws = [" + ", ".join(g(t[-1]) for t in res.draws) + "]"]
    lines += ["", "# How the fit went (read by `immunosim validation-report`).", "[summary]",
              f"log_posterior = {res.log_post:.4f}", f"ess_best = {res.ess_best:.1f}",
              f"ess_draws_min = {res.ess_draws.min():.1f}",
              f"ess_draws_median = {np.median(res.ess_draws):.1f}",
              f"acceptance = {res.acceptance:.3f}",
              "cloud_sizes = [" + ", ".join(str(x) for x in res.cloud_sizes) + "]",
              f"runtime_s = {res.timings.get('total_s', float('nan')):.1f}",
              f"targets = {len(res.problem.fitted)}", f"seed = {res.problem.config.seed}"]
    return "\n".join(lines) + "\n"


def _bounded(name: str) -> bool:
    """Whether a lognormal of ``name`` can leave its hard domain (a finite upper end or a
    lower end above 0), so that the fitted cohort is the truncated one."""
    lo, hi, _, _ = m.PARAMETERS[name].domain
    return bool(np.isfinite(hi) or lo > 0)


def write_cohort(res: Result, path: str | Path, command: str = "") -> Path:
    """Write :func:`cohort_toml` atomically (a temporary file renamed into place)."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(cohort_toml(res, command))
    tmp.replace(path)
    return path


def check_cohort_file(path: str | Path) -> str:
    """Validate a cohort file meant for ``[cohort] include`` (e.g. the calibrated cohort) as a
    sweep would use it; returns a one-line summary, raises :class:`ConfigError`."""
    path = Path(path)
    data = {"name": "check", "scenarios": {"untreated": {}},
            "cohort": {"include": path.name}}
    cfg = parse_config(data, base_dir=path.parent)
    post = cfg.cohort.posterior
    draws = len(post.median) if post is not None else 0
    return (f"ok (cohort file: {len(cfg.cohort.parameters)} parameter distributions, "
            f"{draws} posterior draws)")
