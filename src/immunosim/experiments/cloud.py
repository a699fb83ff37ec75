"""A fixed quasi-random cloud of virtual patients, simulated once per calibration arm.

The cloud is the raw material of importance-reweighting calibration: ``N`` patients drawn from a
broad proposal ``q`` over the log of the fitted parameters (a scrambled Sobol sequence mapped to
a multivariate normal, :class:`scipy.stats.qmc.MultivariateNormalQMC`), each simulated under
every arm. A candidate cohort distribution ``p`` is then scored without new simulations: each
patient's outcomes count with weight ``p(x) / q(x)`` (``experiments/calibrate.py``).

Patients without an untreated diseased steady state are dropped: the cohort is, by definition,
patients with active disease, so a cohort distribution is the fitted normal truncated to the
diseased region, and self-normalised weights over the kept patients estimate exactly that.
Patients with a parameter outside its hard domain (``m.PARAMETERS.in_domain``, e.g. a maximal
suppression above 1) are dropped too: the cohort sampler redraws them
(``experiments/cohort.py``), so the fitted distribution is exactly the truncated one it draws.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.stats import qmc

from ..model import activity as act
from ..model import sle_msc as m
from ..model.interventions import HSCT
from .assess import clinical_inputs
from .config import Config
from .patients import simulate_patients, steady_states
from .sledai import SLEDAI_2K

#: Score at or under which a patient is in "SLEDAI < 3" remission (Jayne 2004).
LOW_SCORE = 2.0

#: Per-patient outcome keys kept from :func:`simulate_patients` (the rest is dropped).
_KEEP = ("baseline_activity", "activity_at", "flare", "time_to_flare", "time_to_response",
         "time_to_partial_response", "ok")


@dataclass(frozen=True)
class Cloud:
    """Simulated virtual patients of one calibration round.

    Attributes
    ----------
    names : list of str
        The fitted parameters (columns of ``x``).
    x : ndarray, shape (N, d)
        Log parameter values of the kept (diseased) patients.
    log_q : ndarray, shape (N,)
        Log proposal density of each row of ``x`` (normal in log space).
    features : dict
        Per arm name, the per-patient features (arrays with first axis N, ``landmarks``).
    transplant : dict
        Per arm name, whether its scenario has an HSCT (treatment-related death applies).
    drawn : int
        Patients drawn before dropping those without a diseased state or outside a hard
        domain.
    failed : dict
        Per arm, how many kept patients failed to solve (their features count as "no event").
    """

    names: list[str]
    x: np.ndarray
    log_q: np.ndarray
    features: dict[str, dict[str, np.ndarray]]
    transplant: dict[str, bool]
    drawn: int
    failed: dict[str, int]

    @property
    def size(self) -> int:
        return self.x.shape[0]


def visit_features(landmarks: np.ndarray):
    """A ``features`` callable for :func:`simulate_patients`: what targets read beyond the
    standard outcomes, at the visits ``landmarks`` (days after the origin)."""
    major = SLEDAI_2K.major_organ_mask

    def features(t, y, p, ok, origin):
        ci = clinical_inputs(y, p)
        score = ci["score"]
        prot = act.readouts(y, p)["proteinuria"]
        idx = np.clip(np.searchsorted(t, origin[:, None] + landmarks[None, :] + 1e-9) - 1,
                      0, t.size - 1)
        rows = np.arange(score.shape[0])[:, None]
        at = score[rows, idx]
        major_at = (at <= 3.0) & ((ci["items"][rows, idx] & major) == 0)
        base = np.clip(np.searchsorted(t, origin + 1e-9) - 1, 0, t.size - 1)
        after = t[None, :] >= origin[:, None] - 1e-9
        low = (score <= LOW_SCORE) & after
        first = np.where(low.any(axis=1), t[np.argmax(low, axis=1)] - origin, np.inf)
        return {"major_at": major_at & ok[:, None], "items_at": ci["items"][rows, idx],
                "proteinuria_at": prot[rows, idx],
                "proteinuria_baseline": prot[np.arange(score.shape[0]), base],
                "time_to_low": np.where(ok, first, np.inf)}

    return features


def simulate_cloud(cfg: Config, arms: Sequence[str], names: Sequence[str], mean: np.ndarray,
                   cov: np.ndarray, n: int, seed: int, *, threads: int | None = None,
                   chunk: int = 2048, progress: bool = False, client=None) -> Cloud:
    """Draw ``n`` patients (log parameters ~ N(mean, cov), Sobol QMC) and simulate each arm.

    Parameters
    ----------
    cfg : Config
        Base parameters, solver, horizon, outcome definitions and the arms' scenarios.
        ``outcomes.landmarks`` are the visits features are read at.
    arms : sequence of str
        Scenario names to simulate.
    names : sequence of str
        Fitted parameters (model parameter names); the rest stay at the config's values.
    mean, cov : ndarray, shapes (d,), (d, d)
        Proposal in log parameter space.
    n : int
        Patients drawn (a power of 2 keeps the Sobol sequence balanced).
    seed : int
        Seeds the scrambling: the same seed gives the same cloud.
    client : dask.distributed.Client, optional
        Simulate the chunks on this Dask cluster (the same values as locally).
    """
    names = list(names)
    d = len(names)
    engine = qmc.Sobol(d, scramble=True, seed=np.random.default_rng([seed, 4]))
    x = qmc.MultivariateNormalQMC(mean, cov, engine=engine).random(n)
    base = m.PARAMETERS.vector(cfg.model.parameters)
    params = np.repeat(base[None, :], n, axis=0)
    params[:, [m.PARAMETERS.index[k] for k in names]] = np.exp(x)
    valid = m.PARAMETERS.in_domain(params)  # outside a hard domain: dropped, as the sampler
    y0, ok = steady_states(np.where(valid[:, None], params, base[None, :]))  # redraws them
    ok &= valid
    x, params, y0 = x[ok], params[ok], y0[ok]
    diff = x - mean
    sol = np.linalg.solve(np.linalg.cholesky(cov), diff.T)
    log_q = (-0.5 * np.sum(sol**2, axis=0) - 0.5 * np.linalg.slogdet(cov)[1]
             - 0.5 * d * np.log(2 * np.pi))
    landmarks = np.asarray(cfg.outcomes.landmarks, dtype=float)
    feats, transplant, failed = {}, {}, {}
    scen = {s.name: s for s in cfg.build_scenarios()}
    for arm in arms:
        r = simulate_patients(cfg, arm, params, y0=y0, features=visit_features(landmarks),
                              chunk=chunk, threads=threads, progress=progress, client=client)
        f = {k: r[k] for k in _KEEP}
        f.update({k: r[k] for k in ("major_at", "proteinuria_at", "proteinuria_baseline",
                                    "time_to_low")})
        f["landmarks"] = landmarks
        feats[arm] = f
        transplant[arm] = any(isinstance(iv, HSCT) for iv in scen[arm].interventions)
        failed[arm] = int((~r["ok"]).sum())
    return Cloud(names, x, log_q, feats, transplant, n, failed)
