"""Posterior predictive check of a calibrated cohort: fresh patients, every target, every draw.

The calibration fits by reweighting a fixed cloud; this check does not reuse it. For each
posterior draw of the calibrated cohort file it samples new virtual patients from that draw's
distribution (the same standard-normal scores for every draw: common random numbers, so that
draws differ by their parameters, not by sampling noise), simulates every arm, and reads every
target (fitted or not) and the time courses the validation report plots.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tomllib
from scipy import stats

from ..model import sle_msc as m
from .calibrate import Problem
from .cloud import visit_features
from .config import ConfigError
from .patients import simulate_patients, steady_states
from .sledai import SLEDAI_2K
from .targets import TargetColumns

#: Days at which time courses are read (monthly over the follow-up).
CURVE_STEP = 30.0

#: Items whose share is reported among the MSC arm's intermediate scores (3-6) at 12 months.
INTERMEDIATE_ITEMS = ("proteinuria", "hematuria", "anti_dsdna", "low_complement")


@dataclass(frozen=True)
class CalibratedCohort:
    """A calibrated cohort file, read (see :func:`immunosim.experiments.calibrate.cohort_toml`).

    ``median``, ``cv``: (n_draws, d) per posterior draw; ``best_*``: (d,) the best fit;
    ``corr``: (n_draws, c) for ``pairs``; ``trm``: (n_draws,) (NaN without a transplant fit).
    """

    names: list[str]
    best_median: np.ndarray
    best_cv: np.ndarray
    pairs: list[tuple[str, str]]
    best_corr: np.ndarray
    median: np.ndarray
    cv: np.ndarray
    corr: np.ndarray
    trm: np.ndarray
    best_trm: float
    summary: dict

    @property
    def n_draws(self) -> int:
        return self.median.shape[0]


def read_calibrated_cohort(path: str | Path) -> CalibratedCohort:
    """Read a file written by ``immunosim calibrate``; one-line errors name the file."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text())
    except OSError as e:
        raise ConfigError(f"{path}: cannot read the calibrated cohort ({e.strerror}); run "
                          "`immunosim calibrate` first") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: not valid TOML ({e})") from None
    try:
        c = data["cohort"]
        post = c["posterior"]
        names = list(post["parameters"])
        pairs = [(a, b) for a, b, _ in c.get("correlations", [])]
        best_corr = np.array([r for *_, r in c.get("correlations", [])], dtype=float)
        med, cv = np.array(post["median"], float), np.array(post["cv"], float)
        corr = np.array(post.get("correlation", [[]] * len(med)), float).reshape(len(med), -1)
        tx = data.get("transplant", {})
        trm = np.array(tx.get("trm_draws", [np.nan] * len(med)), float)
        return CalibratedCohort(
            names, np.array([c["parameters"][n]["median"] for n in names], float),
            np.array([c["parameters"][n]["cv"] for n in names], float), pairs, best_corr,
            med, cv, corr, trm, float(tx.get("trm", np.nan)), dict(data.get("summary", {})))
    except (KeyError, TypeError, ValueError) as e:
        raise ConfigError(f"{path}: not a calibrated cohort file (missing or malformed {e}); "
                          "expected the output of `immunosim calibrate`") from None


@dataclass(frozen=True)
class PosteriorCheck:
    """Per draw: every target's model value and the time courses.

    Attributes
    ----------
    predictions : ndarray, shape (n_draws, n_targets)
    sds : ndarray, shape (n_draws, n_targets)
        Model SD of mean targets (NaN for proportions).
    curves : dict of name -> ndarray, shape (n_draws, n_times)
    times : dict of name -> ndarray, shape (n_times,) (days)
    patients : int
        Patients per draw and arm.
    """

    predictions: np.ndarray
    sds: np.ndarray
    curves: dict
    times: dict
    patients: int


def _draw_params(cc: CalibratedCohort, k: int, z: np.ndarray, base: np.ndarray) -> np.ndarray:
    sig = np.sqrt(np.log1p(cc.cv[k] ** 2))
    corr = np.eye(len(cc.names))
    for (a, b), r in zip(cc.pairs, cc.corr[k]):
        i, j = cc.names.index(a), cc.names.index(b)
        corr[i, j] = corr[j, i] = r
    x = np.log(cc.median[k]) + (z @ np.linalg.cholesky(corr).T) * sig
    params = np.repeat(base[None, :], z.shape[0], axis=0)
    params[:, [m.PARAMETERS.index[n] for n in cc.names]] = np.exp(x)
    return params


def _curves(f: dict, transplant: bool, trm: float, grid: np.ndarray) -> dict:
    """Time courses of one arm's patients (fractions or means over them)."""
    ok = f["ok"]
    ttf = np.where(f["flare"] & ok, f["time_to_flare"], np.inf)
    resp = np.fmin(f["time_to_response"], f["time_to_partial_response"])
    alive = 1.0 - trm if transplant else 1.0
    low_by = (f["time_to_low"][ok][:, None] <= grid).mean(axis=0) * alive
    responders = ok & (f["time_to_low"] <= 183.0)
    out = {
        "complete_remission": f["major_at"][ok].mean(axis=0),
        "flare_cumulative": (ttf[ok][:, None] <= grid).mean(axis=0),
        "sledai_below_3_by": low_by,
        "disease_free": alive * ((resp[ok][:, None] <= grid) & (ttf[ok][:, None] > grid)
                                 ).mean(axis=0),
        "sledai_mean": np.r_[f["baseline_activity"][ok].mean(),
                             f["activity_at"][ok].mean(axis=0)],
        "proteinuria_mean": 1000 * np.r_[f["proteinuria_baseline"][ok].mean(),
                                         f["proteinuria_at"][ok].mean(axis=0)],
        "yearly_relapse": np.array([((ttf[ok] > y - 365) & (ttf[ok] <= y)).mean()
                                    for y in (365.0, 730.0, 1095.0, 1461.0)]),
    }
    at = np.flatnonzero(np.isclose(f["landmarks"], 365.0))
    if at.size:  # how the 12-month scores split: remission (0-2), 3-4, 5-6 or more
        a = f["activity_at"][ok, at[0]]
        out["score_split_365"] = np.array([(a <= 2).mean(), ((a > 2) & (a <= 4)).mean(),
                                           ((a > 4) & (a <= 6)).mean(), (a > 6).mean()])
        mid = (a > 2) & (a <= 6)  # what the intermediate patients have: share with each item
        items = f["items_at"][ok, at[0]][mid]
        out["intermediate_items_365"] = np.array(
            [((items >> SLEDAI_2K.names.index(n)) & 1).mean() if mid.any() else np.nan
             for n in INTERMEDIATE_ITEMS])
    if responders.any():
        out["relapse_among_responders"] = (ttf[responders][:, None] <= grid).mean(axis=0)
    else:
        out["relapse_among_responders"] = np.full(grid.size, np.nan)
    return out


def posterior_check(problem: Problem, cohort: CalibratedCohort, *, draws: int | None = None,
                    patients: int = 400, seed: int | None = None, threads: int | None = None,
                    progress: bool = False) -> PosteriorCheck:
    """Simulate ``patients`` fresh patients per posterior draw in every arm (see module doc)."""
    cfg = problem.config
    k_draws = cohort.n_draws if draws is None else min(draws, cohort.n_draws)
    rng = np.random.default_rng([cfg.seed if seed is None else seed, 8])
    z = rng.standard_normal((int(patients * 1.5) + 16, len(cohort.names)))
    base = m.PARAMETERS.vector(cfg.model.parameters)
    landmarks = np.asarray(cfg.outcomes.landmarks, dtype=float)
    grid = np.arange(0.0, cfg.horizon + 1e-9, CURVE_STEP)
    scen = {s.name: s for s in cfg.build_scenarios()}
    from ..model.interventions import HSCT

    transplant = {a: any(isinstance(iv, HSCT) for iv in scen[a].interventions)
                  for a in problem.arms}
    targets = problem.targets
    preds, sds, curves = [], [], {}
    for k in range(k_draws):
        params = _draw_params(cohort, k, z, base)
        y0, ok = steady_states(params)
        ok &= m.PARAMETERS.in_domain(params)  # as the sampler and the calibration's cloud
        keep = np.flatnonzero(ok)[:patients]
        feats = {}
        for arm in problem.arms:
            r = simulate_patients(cfg, arm, params[keep], y0=y0[keep], threads=threads,
                                  features=visit_features(landmarks), progress=progress)
            r["landmarks"] = landmarks
            feats[arm] = r
        trm = cohort.trm[k] if np.isfinite(cohort.trm[k]) else 0.0
        cols = TargetColumns(feats, transplant, [t for t in targets if t.arm in feats])
        v, s = cols.predict(cols.F.mean(axis=0), trm)
        full_v, full_s = np.full(len(targets), np.nan), np.full(len(targets), np.nan)
        idx = [i for i, t in enumerate(targets) if t.arm in feats]
        full_v[idx], full_s[idx] = v, s
        preds.append(full_v)
        sds.append(full_s)
        for arm, f in feats.items():
            for name, c in _curves(f, transplant[arm], trm, grid).items():
                curves.setdefault(f"{arm}:{name}", []).append(c)
    times = {}
    for key in curves:
        name = key.split(":")[1]
        times[key] = (np.r_[0.0, landmarks] if name in ("sledai_mean", "proteinuria_mean")
                      else landmarks if name == "complete_remission"
                      else np.array([365.0, 730.0, 1095.0, 1461.0]) if name == "yearly_relapse"
                      else np.array([2.0, 4.0, 6.0, np.inf]) if name == "score_split_365"
                      else np.arange(len(INTERMEDIATE_ITEMS)) if name == "intermediate_items_365"
                      else grid)
    return PosteriorCheck(np.array(preds), np.array(sds),
                          {k: np.array(v) for k, v in curves.items()}, times, patients)


def predictive_p_value(t, predictions: np.ndarray, sds: np.ndarray, seed: int = 0) -> float:
    """Two-sided posterior predictive p-value of a target's published figure.

    A replicate trial of the published size is drawn from each posterior draw (binomial for a
    proportion; a sample mean of ``n`` normal patients with the model's SD for a mean); the
    p-value is twice the smaller tail probability of the observed figure (mid-p for ties).
    """
    rng = np.random.default_rng(seed)
    ok = np.isfinite(predictions)
    if not ok.any():
        return np.nan
    if t.kind == "proportion":
        p = np.clip(predictions[ok], 0, 1)
        lo = stats.binom.cdf(t.k - 1, t.n, p) + 0.5 * stats.binom.pmf(t.k, t.n, p)
        lo = float(np.mean(lo))
    else:
        rep = predictions[ok] + sds[ok] / np.sqrt(t.n) * rng.standard_normal(ok.sum())
        lo = float(np.mean(rep < t.mean))
    return float(min(1.0, 2 * min(lo, 1 - lo)))
