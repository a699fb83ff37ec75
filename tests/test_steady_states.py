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


def test_a_diseased_state_beyond_the_scan_grid_is_found():
    """About 2.5% of parameter points drawn from the plausible ranges have their diseased
    state above the scan grid's end (antigen 50): it was missed, and the patient taken for one
    with no diseased state (status 10, or redrawn out of a cohort). The grid is extended for
    those rows only, so roots inside it are found exactly as before."""
    from immunosim.model import steady_states as ss
    from tests.conftest import random_parameter_points

    ps = random_parameter_points(200, seed=1)
    end = ss._AG_GRID[-1]
    res = state_given_antigen(np.array([end]), ps[:, None, :], False)[1][:, 0] - end
    beyond = ps[res > 0]  # the antigen these states sustain still exceeds the grid's end
    assert len(beyond) >= 3
    y0, ok = diseased_states(beyond)
    assert ok.all()
    assert (y0[:, m.ANTIGEN] > end).all()
    dydt = np.empty(m.N_STATES)
    for y, p in zip(y0, beyond):  # each is an equilibrium of the full model, and stable
        m.rhs(0.0, y, p, dydt)
        assert np.max(np.abs(dydt)) < 1e-8 * max(1.0, np.max(np.abs(y)))
        (s,) = [s for s in ss.steady_states(p) if s.antigen > end]
        assert s.stable and s.leading_eigenvalue < 0
    # in a batch mixing both kinds, each row gets its own states (the extension's roots are
    # merged in by patient, after that patient's roots inside the grid)
    mixed = ps[:100]
    assert 0 < (res[:100] > 0).sum() < 100
    one_by_one = [ss.steady_states(p) for p in mixed]
    for states, alone in zip(ss.steady_states_batch(mixed), one_by_one):
        assert [s.antigen for s in states] == [s.antigen for s in alone]
        assert [s.antigen for s in states] == sorted(s.antigen for s in states)


def test_rows_in_passes_and_threads_give_the_same_states(monkeypatch):
    """The cohort's scan takes patients ``_ROWS`` at a time, on several threads: each patient's
    equilibria are the same, bit for bit, as in one pass on one thread."""
    import numba

    from immunosim.model import steady_states as ss
    from tests.conftest import random_parameter_points

    ps = random_parameter_points(23, seed=4)
    y1, ok1 = diseased_states(ps)  # 23 rows < _ROWS: one pass
    all1 = ss.steady_states_batch(ps)
    monkeypatch.setattr(ss, "_ROWS", 4)
    for threads in (1, 2):
        monkeypatch.setattr(numba, "get_num_threads", lambda t=threads: t)
        y, ok = diseased_states(ps)
        np.testing.assert_array_equal(ok, ok1)
        np.testing.assert_array_equal(y, y1)
        every = ss.steady_states_batch(ps)
        assert [len(row) for row in every] == [len(row) for row in all1]
        for got, want in zip(every, all1):
            for a, b in zip(got, want):
                np.testing.assert_array_equal([*a.y, a.leading_eigenvalue],
                                              [*b.y, b.leading_eigenvalue])
    assert ok1.any() and not ok1.all()  # both kinds of patient, in several passes
