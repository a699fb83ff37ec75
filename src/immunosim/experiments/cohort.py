"""Virtual cohorts: per-patient parameters drawn from the config's distributions.

Each patient ``i`` has its own random stream, ``SeedSequence(seed, spawn_key=(COHORT_STREAM, i))``,
so patient ``i`` is the same whatever the cohort size, chunking or thread count. Correlations go
through a Gaussian copula: correlated standard normals (Cholesky factor of the correlation matrix)
are mapped to each marginal by its quantile function, so every marginal stays exactly as
specified. A patient whose draw has no untreated diseased steady state (SLE inactive without
therapy) is redrawn from the same stream, which is the inclusion criterion "active, refractory
disease" of the trials (LITERATURE.md, section 1).

With ``posterior_draws = K`` (a fitted cohort, ``[cohort.posterior]``) the cohort is ``K`` blocks
of the same ``size`` subjects, block ``k`` drawn from the distributions of posterior draw ``k``;
subject ``i`` keeps its stream in every block, so draws differ by their parameters, not by noise.

With a population table (``[cohort] table``) subject ``i`` is row ``i`` of the table: the
parameters the table gives are the patient's, the others are drawn as above from the same stream
(or are the defaults), and a patient with no diseased state is refused, naming the row. The
patients' IDs and covariates go with them (:meth:`Cohort.patient_coords`).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

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


def correlation_cholesky(cfg: CohortConfig, draw: int | None = None) -> np.ndarray:
    """Cholesky factor of the correlation matrix of ``cfg.parameters`` (in their order)."""
    names = list(cfg.parameters)
    corr = np.eye(len(names))
    for a, b, r in cfg.correlations:
        i, j = names.index(a), names.index(b)
        corr[i, j] = corr[j, i] = r
    try:
        return np.linalg.cholesky(corr)
    except np.linalg.LinAlgError:
        where = "" if draw is None else f" of posterior draw {draw}"
        raise ConfigError(f"cohort.correlations: the correlation matrix{where} is not positive "
                          "definite; reduce the correlations") from None


def posterior_rows(n_available: int, k: int) -> np.ndarray:
    """Rows of the posterior used for ``k`` draws: ``k`` evenly spaced over all of them (the
    first and the last included), so chain order does not bias a small ``k``."""
    return np.linspace(0, n_available - 1, k).round().astype(np.int64)


def draw_configs(cfg: CohortConfig) -> list[CohortConfig]:
    """The cohort config of each posterior draw used (``[cfg]`` when ``posterior_draws = 0``).

    Draw ``k`` takes row ``posterior_rows(...)[k]`` of ``cfg.posterior``: its medians and CVs
    replace those of the named lognormal entries, its correlations those of
    ``cfg.correlations`` (in order).
    """
    post = cfg.posterior
    if cfg.posterior_draws == 0 or post is None:
        return [cfg]
    out = []
    for row in posterior_rows(post.n_draws, cfg.posterior_draws):
        params = dict(cfg.parameters)
        for name, med, cv in zip(post.parameters, post.median[row], post.cv[row]):
            params[name] = params[name].model_copy(update={"median": med, "cv": cv})
        rs = post.correlation[row] if post.correlation else []
        corr = [(a, b, r) for (a, b, _), r in zip(cfg.correlations, rs)]
        out.append(cfg.model_copy(update={"parameters": params, "correlations": corr,
                                          "posterior": None, "posterior_draws": 0}))
    return out


@dataclass(frozen=True)
class Cohort:
    """Patients' parameters and their untreated diseased steady states.

    With posterior draws the patients are ``n_draws`` blocks of the same subjects: patient
    ``j = k * n_subjects + i`` is subject ``i`` under draw ``k``.

    Attributes
    ----------
    params : ndarray, shape (n_patients, n_params)
    y0 : ndarray, shape (n_patients, n_states)
    redraws : ndarray of int, shape (n_patients,)
        How many draws were rejected (no diseased state) before the patient was accepted.
    n_draws : int
        Posterior draws (1 for a point cohort).
    """

    params: np.ndarray
    y0: np.ndarray
    redraws: np.ndarray
    n_draws: int = 1
    #: Patient IDs of a population table, shape (n_patients,); None without a table.
    ids: np.ndarray | None = None
    #: Covariates of a population table: name -> values, shape (n_patients,) each.
    covariates: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def size(self) -> int:
        """Patients in all: ``n_draws * n_subjects``."""
        return self.params.shape[0]

    @property
    def n_subjects(self) -> int:
        return self.size // self.n_draws

    @property
    def subject(self) -> np.ndarray:
        """Subject (random stream) of each patient, shape (n_patients,)."""
        return np.arange(self.size) % self.n_subjects

    @property
    def draw(self) -> np.ndarray:
        """Posterior draw of each patient, shape (n_patients,)."""
        return np.arange(self.size) // self.n_subjects

    def patient_coords(self) -> dict[str, tuple[np.ndarray, dict]]:
        """Coordinates along ``patient`` from a population table: ``patient_id`` and each
        covariate, name -> (values (n_patients,), attributes); empty without a table."""
        if self.ids is None:
            return {}
        out = {"patient_id": (self.ids, {"long_name": "Patient ID (cohort.table)"})}
        for name, v in self.covariates.items():
            out[name] = (v, {"long_name": f"Covariate {name} (cohort.table)"})
        return out


def sample_cohort(cfg: CohortConfig, base: np.ndarray, seed: int) -> Cohort:
    """Draw ``cfg.size`` patients around the parameter vector ``base``, for each posterior draw.

    Subject ``i`` uses the stream ``SeedSequence(seed, spawn_key=(COHORT_STREAM, i))`` under
    every draw (common random numbers: draws differ by their distributions, not by noise),
    including its redraws.
    """
    parts = [_sample(c, base, seed, k if cfg.posterior_draws else None)
             for k, c in enumerate(draw_configs(cfg))]
    if len(parts) == 1:
        cohort = parts[0]
    else:
        cohort = Cohort(*(np.concatenate([getattr(c, f) for c in parts])
                          for f in ("params", "y0", "redraws")), n_draws=len(parts))
    return _labelled(cohort, cfg)


def _labelled(cohort: Cohort, cfg: CohortConfig) -> Cohort:
    """The cohort with the IDs and covariates of its population table (each subject's)."""
    t = cfg.table
    if t is None:
        return cohort
    sub = cohort.subject
    covs = {}
    for name, vals in t.covariates.items():
        v = (np.array(vals, dtype=str) if vals and isinstance(vals[0], str)
             else np.array([np.nan if x is None else x for x in vals], dtype=float))
        covs[name] = v[sub]
    return replace(cohort, ids=np.array(t.ids, dtype=str)[sub], covariates=covs)


def _bases(cfg: CohortConfig, base: np.ndarray) -> np.ndarray:
    """Each patient's parameters before any draw, shape (size, n_params): ``base`` with the
    population table's values."""
    rows = np.repeat(base[None, :], cfg.size, axis=0)
    if cfg.table is not None:
        for name, vals in cfg.table.parameters.items():
            rows[:, m.PARAMETERS.index[name]] = vals
    return rows


def _normals(seed: int, i: int, k: int, attempt: int) -> np.ndarray:
    """Patient ``i``'s ``k`` standard normals of draw number ``attempt`` (0 first): its
    stream replayed from the start, so no generator is kept per patient between rounds (about
    1 kB each)."""
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(COHORT_STREAM, i)))
    for _ in range(attempt):
        rng.standard_normal(k)
    return rng.standard_normal(k)


def _sample(cfg: CohortConfig, base: np.ndarray, seed: int, draw: int | None) -> Cohort:
    """One cohort of ``cfg.size`` patients (the point cohort, or one posterior draw's).

    Works in rounds: every patient still without an accepted draw takes the next draw from its
    own stream, and all of a round's steady states are found in one vectorised call. Patient
    ``i`` therefore gets the same parameters as if the patients were drawn one by one.
    """
    names = list(cfg.parameters)
    idx = [m.PARAMETERS.index[n] for n in names]
    dists = [frozen_distribution(cfg.parameters[n]) for n in names]
    chol = correlation_cholesky(cfg, draw) if names else np.zeros((0, 0))
    bases = _bases(cfg, base)
    params = np.empty((cfg.size, base.size))
    y0 = np.empty((cfg.size, m.N_STATES))
    redraws = np.zeros(cfg.size, dtype=np.int64)
    pending = np.arange(cfg.size)
    for attempt in range(cfg.max_redraws + 1):
        draws = bases[pending].copy()
        if names:  # each patient's normals from its stream; the transforms over all at once
            z = np.array([chol @ _normals(seed, i, len(names), attempt) for i in pending])
            u = stats.norm.cdf(z.reshape(pending.size, len(names)))
            for k, d in enumerate(dists):
                draws[:, idx[k]] = d.ppf(u[:, k])
        valid = m.PARAMETERS.in_domain(draws)  # outside a hard domain: redrawn
        ys, ok = diseased_states(np.where(valid[:, None], draws, bases[pending]))
        ok &= valid
        done = pending[ok]
        params[done], y0[done], redraws[done] = draws[ok], ys[ok], attempt
        pending = pending[~ok]
        if pending.size == 0:
            return Cohort(params, y0, redraws)
        if cfg.table is not None and not names:
            break  # nothing to redraw: the table's patient is as given
    where = "" if draw is None else f" under posterior draw {draw}"
    if cfg.table is not None:
        i = int(pending[0])
        tries = f" after {attempt + 1} draws of the other parameters" if names else ""
        raise ConfigError(
            f"cohort.table: {cfg.table.file}, row {i + 1} (ID '{cfg.table.ids[i]}'){where}: no "
            f"untreated diseased steady state{tries}; the cohort is patients with active "
            "disease (SLE active without therapy): check the row's values or remove the row")
    raise ConfigError(
        f"cohort: patient {int(pending[0])}{where} has no untreated diseased steady state after "
        f"{cfg.max_redraws + 1} draws; the distributions put too much mass where the untreated "
        "patient is healthy (narrow them or raise cohort.max_redraws)")
