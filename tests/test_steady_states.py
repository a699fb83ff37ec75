"""The compiled batch of Jacobians equals the slow one-at-a-time twin, bit for bit."""

import numpy as np

from immunosim.model import sle_msc as m
from immunosim.model.steady_states import (
    diseased_states,
    numerical_jacobian,
    numerical_jacobians,
    state_given_antigen,
)


def test_batched_jacobians_equal_the_slow_twin():
    rng = np.random.default_rng(5)
    base = m.PARAMETERS.vector({})
    ps = base * np.exp(0.2 * rng.standard_normal((12, base.size)))
    ys = np.abs(rng.standard_normal((12, m.N_STATES))) * 3 + 0.1
    fast = numerical_jacobians(ys, ps)
    slow = np.stack([numerical_jacobian(y, p) for y, p in zip(ys, ps)])
    np.testing.assert_array_equal(fast, slow)


def test_residual_only_scan_matches_the_full_state():
    base = m.PARAMETERS.vector({})
    ag = np.linspace(0.5, 20, 50)
    y, full = state_given_antigen(ag, base)
    none, fast = state_given_antigen(ag, base, False)
    assert none is None and y.shape == (50, m.N_STATES)
    np.testing.assert_array_equal(fast, full)


def test_diseased_state_is_an_equilibrium():
    base = m.PARAMETERS.vector({"activation_rate": 0.12})
    y0, ok = diseased_states(base[None])
    assert ok[0]
    dydt = np.empty(m.N_STATES)
    m.rhs(0.0, y0[0], base, dydt)
    assert np.max(np.abs(dydt)) < 1e-8 * max(1.0, np.max(np.abs(y0[0])))
