"""Virtual cohorts: per-patient parameters drawn from the config's distributions.

Each patient ``i`` has its own random stream, ``SeedSequence(seed, spawn_key=(COHORT_STREAM, i))``,
so patient ``i`` is the same whatever the cohort size, chunking or thread count. Correlations go
through a Gaussian copula: correlated standard normals (Cholesky factor of the correlation matrix)
are mapped to each marginal by its quantile function, so every marginal stays exactly as
specified. A patient whose draw has no untreated diseased steady state (SLE inactive without
therapy) is redrawn from the same stream, which is the inclusion criterion "active, refractory
disease" of the trials (LITERATURE.md, section 1).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

from ..model import sle_msc as m
from ..model.steady_states import diseased_states
from .config import CohortConfig, ConfigError, DistributionConfig

COHORT_STREAM = 1
DESIGN_STREAM = 2


def frozen_distribution(d: DistributionConfig):
    """The ``scipy.stats`` frozen distribution for one config entry."""
    if d.distribution == "lognormal":
        return stats.lognorm(s=np.sqrt(np.log1p(d.cv**2)), scale=d.median)
    if d.distribution == "normal":
        return stats.norm(loc=d.mean, scale=d.sd)
    if d.distribution == "uniform":
        return stats.uniform(loc=d.low, scale=d.high - d.low)
    a, b = (d.low - d.mean) / d.sd, (d.high - d.mean) / d.sd
    return stats.truncnorm(a, b, loc=d.mean, scale=d.sd)


def correlation_cholesky(cfg: CohortConfig) -> np.ndarray:
    names = list(cfg.parameters)
    corr = np.eye(len(names))
    for a, b, r in cfg.correlations:
        i, j = names.index(a), names.index(b)
        corr[i, j] = corr[j, i] = r
    try:
        return np.linalg.cholesky(corr)
    except np.linalg.LinAlgError:
        raise ConfigError("cohort.correlations: the correlation matrix is not positive "
                          "definite; reduce the correlations") from None


@dataclass(frozen=True)
class Cohort:
    """Patients' parameters and their untreated diseased steady states.

    Attributes
    ----------
    params : ndarray, shape (n_patients, n_params)
    y0 : ndarray, shape (n_patients, n_states)
    redraws : ndarray of int, shape (n_patients,)
        How many draws were rejected (no diseased state) before the patient was accepted.
    """

    params: np.ndarray
    y0: np.ndarray
    redraws: np.ndarray

    @property
    def size(self) -> int:
        return self.params.shape[0]


def sample_cohort(cfg: CohortConfig, base: np.ndarray, seed: int) -> Cohort:
    """Draw ``cfg.size`` patients around the parameter vector ``base``.

    Works in rounds: every patient still without an accepted draw takes the next draw from its
    own stream, and all of a round's steady states are found in one vectorised call. Patient
    ``i`` therefore gets the same parameters as if the patients were drawn one by one.
    """
    names = list(cfg.parameters)
    idx = [m.PARAMETERS.index[n] for n in names]
    dists = [frozen_distribution(cfg.parameters[n]) for n in names]
    chol = correlation_cholesky(cfg) if names else np.zeros((0, 0))
    rngs = [np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(COHORT_STREAM, i)))
            for i in range(cfg.size)]
    params = np.empty((cfg.size, base.size))
    y0 = np.empty((cfg.size, m.N_STATES))
    redraws = np.zeros(cfg.size, dtype=np.int64)
    pending = np.arange(cfg.size)
    for attempt in range(cfg.max_redraws + 1):
        draws = np.repeat(base[None, :], pending.size, axis=0)
        if names:
            for row, i in enumerate(pending):
                u = stats.norm.cdf(chol @ rngs[i].standard_normal(len(names)))
                draws[row, idx] = [d.ppf(x) for d, x in zip(dists, u)]
        valid = np.all(np.isfinite(draws) & (draws >= 0), axis=1)
        ys, ok = diseased_states(np.where(valid[:, None], draws, base[None, :]))
        ok &= valid
        done = pending[ok]
        params[done], y0[done], redraws[done] = draws[ok], ys[ok], attempt
        pending = pending[~ok]
        if pending.size == 0:
            return Cohort(params, y0, redraws)
    raise ConfigError(
        f"cohort: patient {int(pending[0])} has no untreated diseased steady state after "
        f"{cfg.max_redraws + 1} draws; the distributions put too much mass where the untreated "
        "patient is healthy (narrow them or raise cohort.max_redraws)")
