"""Posterior predictive helpers: p-values and reading a calibrated cohort file."""

import numpy as np
import pytest

from immunosim.experiments.config import ConfigError
from immunosim.experiments.posterior_check import predictive_p_value, read_calibrated_cohort
from immunosim.experiments.targets import Target


def _prop(k, n):
    return Target(id="t", source="s", arm="a", outcome="flare_by", time=1, kind="proportion",
                  k=k, n=n)


def test_p_value_of_a_proportion():
    t = _prop(20, 80)
    assert predictive_p_value(t, np.full(50, 0.25), np.full(50, np.nan)) > 0.8
    assert predictive_p_value(t, np.full(50, 0.5), np.full(50, np.nan)) < 1e-4
    # two-sided: a model too low is flagged like a model too high
    lo = predictive_p_value(t, np.full(50, 0.1), np.full(50, np.nan))
    assert lo < 0.01


def test_p_value_of_a_mean():
    t = Target(id="m", source="s", arm="a", outcome="sledai_at", time=0, kind="mean",
               mean=12.0, sd=3.0, n=15)
    sd = np.full(4000, 3.0)
    assert predictive_p_value(t, np.full(4000, 12.0), sd) > 0.9
    # 3 SE away: p about 0.003
    far = 12.0 + 3 * 3.0 / np.sqrt(15)
    assert predictive_p_value(t, np.full(4000, far), sd) == pytest.approx(0.0027, abs=0.003)


def test_reading_a_cohort_file_errors(tmp_path):
    with pytest.raises(ConfigError, match="run `immunosim calibrate` first"):
        read_calibrated_cohort(tmp_path / "none.toml")
    p = tmp_path / "c.toml"
    p.write_text("[cohort]\nsize = 3\n")
    with pytest.raises(ConfigError, match="not a calibrated cohort file"):
        read_calibrated_cohort(p)
