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
