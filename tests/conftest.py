"""Shared test helpers (the scipy ``_ivp`` convention: errors scored in tolerance units)."""

from __future__ import annotations

import os

import numpy as np
import pytest
from hypothesis import settings

settings.register_profile("ci", max_examples=60, deadline=None)
settings.register_profile("dev", max_examples=25, deadline=None)
settings.load_profile("ci" if os.environ.get("CI") else "dev")


def tolerance_units(y, y_ref, rtol, atol):
    """``|y - y_ref| / (atol + rtol * |y_ref|)``, elementwise."""
    y, y_ref = np.asarray(y), np.asarray(y_ref)
    return np.abs(y - y_ref) / (atol + rtol * np.abs(y_ref))


def random_parameter_points(n: int, seed: int = 0) -> np.ndarray:
    """``n`` parameter vectors drawn uniformly (log-uniformly for ranges spanning > 4x) from the
    documented plausible ranges, shape ``(n, n_params)``."""
    from immunosim.model import sle_msc as m

    rng = np.random.default_rng(seed)
    b = m.PARAMETERS.bounds()
    lo, hi = b[:, 0], b[:, 1]
    u = rng.random((n, lo.size))
    wide = (lo > 0) & (hi / np.where(lo > 0, lo, 1) > 4)
    lin = lo + u * (hi - lo)
    log = np.exp(np.log(np.where(wide, lo, 1)) + u * (np.log(np.where(wide, hi, 1))
                                                      - np.log(np.where(wide, lo, 1))))
    return np.where(wide, log, lin)


@pytest.fixture(scope="session")
def default_params():
    from immunosim.model import sle_msc as m

    return m.PARAMETERS.defaults()


@pytest.fixture(scope="session")
def diseased_y0(default_params):
    from immunosim.model.steady_states import diseased_state

    return diseased_state(default_params)


ROOT = __import__("pathlib").Path(__file__).resolve().parents[1]

#: A small but complete config: 2 scenarios x 2 x 2 grid x 6 patients, 240 days.
SMALL_CONFIG = """
name = "small"
seed = 7
horizon = 240
[scenarios.untreated]
[scenarios.msc]
msc = { amount = 1e6, time = 0, interval = 30, count = 1 }
[sweep.axes.amount]
target = "msc.amount"
values = [3e5, 3e6]
[sweep.axes.count]
target = "msc.count"
values = [1, 2]
[cohort]
size = 6
[cohort.parameters.activation_rate]
distribution = "lognormal"
median = 0.06
cv = 0.5
[cohort.parameters.reg_induction]
distribution = "lognormal"
median = 0.6
cv = 0.5
[outcomes]
landmarks = [91, 183]
[output]
trajectories = true
trajectory_every = 14
chunk_size = 5
"""


@pytest.fixture
def small_config_path(tmp_path):
    p = tmp_path / "small.toml"
    p.write_text(SMALL_CONFIG)
    return p
