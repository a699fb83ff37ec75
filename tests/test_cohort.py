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
    cfg = CohortConfig.model_validate({"size": 2, "parameters": {
        k: {"distribution": "uniform", "low": 0.01, "high": 0.02}
        for k in ("activation_rate", "repair_rate", "gc_to_memory")},
        "correlations": [["activation_rate", "repair_rate", 0.95],
                         ["activation_rate", "gc_to_memory", 0.95],
                         ["repair_rate", "gc_to_memory", -0.95]]})
    with pytest.raises(ConfigError, match="not positive definite"):
        sample_cohort(cfg, BASE, seed=0)


def test_healthy_only_cohort_is_refused():
    cfg = CohortConfig.model_validate({"size": 2, "max_redraws": 3, "parameters": {
        "activation_rate": {"distribution": "uniform", "low": 0.001, "high": 0.005}}})
    with pytest.raises(ConfigError, match="no untreated diseased steady state after 4 draws"):
        sample_cohort(cfg, BASE, seed=0)
