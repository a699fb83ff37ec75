"""Virtual cohorts: per-patient streams, marginals, correlations, diseased starting states."""

import numpy as np
import pytest
from scipy import stats

from immunosim.experiments.cohort import sample_cohort
from immunosim.experiments.config import CohortConfig, ConfigError
from immunosim.model import sle_msc as m
from immunosim.model.activity import activity

BASE = m.PARAMETERS.defaults()
I = m.PARAMETERS.index


def cohort_cfg(size, **extra):
    return CohortConfig.model_validate({"size": size, "parameters": {
        "activation_rate": {"distribution": "lognormal", "median": 0.05, "cv": 0.3},
        "secretion_pb": {"distribution": "truncnormal", "mean": 50, "sd": 15, "low": 25,
                         "high": 80},
        "repair_rate": {"distribution": "uniform", "low": 0.015, "high": 0.03}}, **extra})


def test_patient_streams_do_not_depend_on_cohort_size():
    small = sample_cohort(cohort_cfg(5), BASE, seed=1)
    large = sample_cohort(cohort_cfg(40), BASE, seed=1)
    np.testing.assert_array_equal(small.params, large.params[:5])
    other = sample_cohort(cohort_cfg(5), BASE, seed=2)
    assert not np.allclose(small.params, other.params)


def test_every_patient_starts_diseased():
    c = sample_cohort(cohort_cfg(40), BASE, seed=3)
    for p, y in zip(c.params, c.y0):
        np.testing.assert_allclose(m.rhs_py(0, y, p), 0, atol=1e-8)
        assert activity(y, p) >= 6 and y[m.ANTIGEN] > 1.5  # graded, but diseased


def test_marginals_match_the_requested_distributions():
    c = sample_cohort(cohort_cfg(300), BASE, seed=4)
    a = c.params[:, I["activation_rate"]]
    s = np.sqrt(np.log1p(0.3**2))
    assert stats.kstest(a, stats.lognorm(s=s, scale=0.05).cdf).pvalue > 1e-3
    r = c.params[:, I["repair_rate"]]
    assert stats.kstest(r, stats.uniform(0.015, 0.015).cdf).pvalue > 1e-3
    sp = c.params[:, I["secretion_pb"]]
    assert sp.min() >= 25 and sp.max() <= 80
    untouched = np.setdiff1d(np.arange(BASE.size),
                             [I["activation_rate"], I["repair_rate"], I["secretion_pb"]])
    np.testing.assert_array_equal(c.params[:, untouched], BASE[untouched][None].repeat(300, 0))


def test_gaussian_copula_correlation():
    cfg = cohort_cfg(400, correlations=[["activation_rate", "repair_rate", 0.8]])
    c = sample_cohort(cfg, BASE, seed=5)
    rho = stats.spearmanr(c.params[:, I["activation_rate"]], c.params[:, I["repair_rate"]])[0]
    assert 0.7 < rho < 0.9  # Spearman of a Gaussian copula with r = 0.8 is 0.786


def test_non_positive_definite_correlations_rejected():
    """Refused when the config is validated; the sampler's own check (which also guards the
    correlations of posterior draws) still holds for a config built without validation."""
    bad = [["activation_rate", "repair_rate", 0.95], ["activation_rate", "gc_to_memory", 0.95],
           ["repair_rate", "gc_to_memory", -0.95]]
    data = {"size": 2, "parameters": {
        k: {"distribution": "uniform", "low": 0.01, "high": 0.02}
        for k in ("activation_rate", "repair_rate", "gc_to_memory")}}
    with pytest.raises(ValueError, match="not positive definite"):
        CohortConfig.model_validate({**data, "correlations": bad})
    cfg = CohortConfig.model_validate(data).model_copy(
        update={"correlations": [tuple(c) for c in bad]})
    with pytest.raises(ConfigError, match="not positive definite"):
        sample_cohort(cfg, BASE, seed=0)


def test_healthy_only_cohort_is_refused():
    cfg = CohortConfig.model_validate({"size": 2, "max_redraws": 3, "parameters": {
        "activation_rate": {"distribution": "uniform", "low": 0.001, "high": 0.005}}})
    with pytest.raises(ConfigError, match="no untreated diseased steady state after 4 draws"):
        sample_cohort(cfg, BASE, seed=0)


# --- posterior draws ------------------------------------------------------------------------------


def calibrated(size, draws, **extra):
    from immunosim.experiments.config import tomllib
    from tests.conftest import CALIBRATED_COHORT

    d = tomllib.loads(CALIBRATED_COHORT)["cohort"]
    return CohortConfig.model_validate({**d, "size": size, "posterior_draws": draws, **extra})


def test_draws_are_blocks_of_the_same_subjects_with_their_own_distributions():
    """Draw 1 of the calibrated cohort (posterior row 2) is the point cohort: its patients are
    the posterior_draws = 0 cohort's, redraws included (common random numbers per subject)."""
    point = sample_cohort(calibrated(8, 0), BASE, seed=3)
    c = sample_cohort(calibrated(8, 2), BASE, seed=3)
    assert c.size == 16 and c.n_draws == 2 and c.n_subjects == 8
    np.testing.assert_array_equal(c.draw, np.repeat([0, 1], 8))
    np.testing.assert_array_equal(c.subject, np.tile(np.arange(8), 2))
    np.testing.assert_array_equal(c.params[8:], point.params)
    np.testing.assert_array_equal(c.y0[8:], point.y0)
    np.testing.assert_array_equal(c.redraws[8:], point.redraws)
    assert not np.allclose(c.params[:8], point.params)  # draw 0 has other medians
    np.testing.assert_array_equal(point.params, sample_cohort(calibrated(8, 0), BASE, 3).params)


def test_subject_keeps_its_random_numbers_across_draws():
    """Without correlations, subject i's standard normal z is the same under every draw:
    log(x / median) / sigma agrees between draws (subjects accepted at the first draw)."""
    post = calibrated(12, 3).posterior.model_dump(exclude={"correlation"})
    c = sample_cohort(calibrated(12, 3, correlations=[], posterior=post), BASE, seed=5)
    a = c.params[:, I["activation_rate"]].reshape(3, 12)
    med = np.array(post["median"])[:, 0:1]
    sigma = np.sqrt(np.log1p(np.array(post["cv"])[:, 0:1] ** 2))
    z = np.log(a / med) / sigma
    first = (c.redraws.reshape(3, 12) == 0).all(axis=0)
    assert first.sum() >= 6
    np.testing.assert_allclose(z[:, first], np.repeat(z[:1, first], 3, axis=0), rtol=1e-9)


def test_posterior_rows_are_evenly_spaced():
    from immunosim.experiments.cohort import draw_configs, posterior_rows

    np.testing.assert_array_equal(posterior_rows(3, 2), [0, 2])
    np.testing.assert_array_equal(posterior_rows(400, 5), [0, 100, 200, 299, 399])
    cfgs = draw_configs(calibrated(2, 2))
    assert [c.parameters["reg_induction"].median for c in cfgs] == [0.4, 0.6]
    assert [c.correlations[0][2] for c in cfgs] == [0.2, -0.3]
    assert all(c.posterior is None and c.posterior_draws == 0 for c in cfgs)


def test_patients_are_drawn_as_one_by_one_from_their_own_streams():
    """The sampler draws every pending patient's normals from its stream, then transforms them
    all at once: each patient's parameters and redraws are, bit for bit, those of drawing the
    patients one by one, each from a generator kept across its redraws."""
    from immunosim.experiments.cohort import (
        COHORT_STREAM,
        correlation_cholesky,
        frozen_distribution,
    )
    from immunosim.model.steady_states import diseased_states

    cfg = cohort_cfg(30, correlations=[["activation_rate", "repair_rate", 0.5]])
    cfg.parameters["activation_rate"] = cfg.parameters["activation_rate"].model_copy(
        update={"cv": 1.5})  # wide: some draws have no diseased state and are redrawn
    names = list(cfg.parameters)
    dists = [frozen_distribution(cfg.parameters[n]) for n in names]
    chol = correlation_cholesky(cfg)
    params, redraws = [], []
    for i in range(cfg.size):
        rng = np.random.default_rng(np.random.SeedSequence(9, spawn_key=(COHORT_STREAM, i)))
        for attempt in range(cfg.max_redraws + 1):
            q = BASE.copy()
            u = stats.norm.cdf(chol @ rng.standard_normal(len(names)))
            q[[I[n] for n in names]] = [d.ppf(x) for d, x in zip(dists, u)]
            if diseased_states(q[None])[1][0]:
                params.append(q)
                redraws.append(attempt)
                break
    c = sample_cohort(cfg, BASE, seed=9)
    assert sum(redraws) > 0
    np.testing.assert_array_equal(c.redraws, redraws)
    np.testing.assert_array_equal(c.params, np.array(params))
