"""The SIMD-lane driver (``engines/ode/_lanes.py``) against the one-trajectory driver.

Each lane must take exactly the steps its trajectory would take alone, so the two drivers agree
bit for bit: states, RHS counts, accepted and rejected steps, status codes, NaN after failures.
"""

import numpy as np
import pytest

from immunosim.engines.ode import problems, status
from immunosim.engines.ode._rhs import LANES
from immunosim.engines.ode.solver import EventTable, solve
from immunosim.model import sle_msc as m
from immunosim.model.steady_states import diseased_state
from tests.conftest import random_parameter_points, tolerance_units


def assert_same(a, b):
    np.testing.assert_array_equal(a.y, b.y)  # NaN == NaN here
    np.testing.assert_array_equal(a.status, b.status)
    np.testing.assert_array_equal(a.nfev, b.nfev)
    np.testing.assert_array_equal(a.naccept, b.naccept)
    np.testing.assert_array_equal(a.nreject, b.nreject)


@pytest.fixture(scope="module")
def sle_batch():
    """37 random patients (not a multiple of LANES) with 0-3 MSC doses at random times."""
    rng = np.random.default_rng(11)
    params, y0 = [], []
    for p in random_parameter_points(120, seed=5):
        y = diseased_state(p)
        if y is not None:
            params.append(p)
            y0.append(y)
        if len(params) == 37:
            break
    rows = []
    for i in range(len(params)):
        times = np.sort(rng.uniform(0.0, 300.0, i % 4))
        rows.append([(float(t), m.MSC, 0, float(rng.uniform(0.1, 3.0))) for t in times])
    return np.array(y0), np.array(params), EventTable.from_lists(rows)


@pytest.mark.parametrize("method", ["dopri5", "bs3"])
def test_lanes_bitwise_equal_to_one_at_a_time(sle_batch, method):
    y0, params, ev = sle_batch
    t = np.arange(0.0, 366.0)
    a = solve(y0, params, t, events=ev, method=method, lanes=False, threads=1)
    b = solve(y0, params, t, events=ev, method=method, lanes=True, threads=1)
    assert a.success.all()
    assert_same(a, b)


def test_lanes_independent_of_order_threads_and_batch(sle_batch):
    """A trajectory's result does not depend on its lane, its chunk or the thread count."""
    y0, params, ev = sle_batch
    t = np.arange(0.0, 320.0, 0.5)
    ref = solve(y0, params, t, events=ev, threads=1)
    two = solve(y0, params, t, events=ev, threads=2)
    assert_same(ref, two)
    perm = np.random.default_rng(0).permutation(len(y0))
    ev_p = EventTable(ev.time[perm], ev.state[perm], ev.op[perm], ev.value[perm], ev.count[perm])
    shuffled = solve(y0[perm], params[perm], t, events=ev_p, threads=2)
    np.testing.assert_array_equal(shuffled.y, ref.y[perm])
    np.testing.assert_array_equal(shuffled.nfev, ref.nfev[perm])
    # A lone trajectory in an otherwise idle set of lanes.
    one = solve(y0[5], params[5], t, events=EventTable(*(a[5:6] for a in (
        ev.time, ev.state, ev.op, ev.value, ev.count))), lanes=True)
    np.testing.assert_array_equal(one.y[0], ref.y[5])


def test_lanes_failures_stay_in_their_lane():
    """Blow-ups (underflow / non-finite) and exhausted step budgets among healthy trajectories:
    same codes and NaNs as one at a time, and the healthy lanes are untouched."""
    n = 2 * LANES + 3
    y0 = np.where(np.arange(n) % 3 == 0, 2.0, -1.0)[:, None]  # y' = y^2: blows up at t = 0.5
    t = np.linspace(0.0, 1.0, 9)
    a = solve(y0, np.zeros(1), t, model="test:blowup", nonnegative=False, lanes=False)
    b = solve(y0, np.zeros(1), t, model="test:blowup", nonnegative=False, lanes=True)
    assert_same(a, b)
    bad = np.arange(n) % 3 == 0
    assert np.all(np.isin(b.status[bad], [status.STEP_UNDERFLOW, status.NONFINITE]))
    assert np.all(b.status[~bad] == status.SUCCESS)
    exact = np.broadcast_to(-1.0 / (1.0 + t), (n - bad.sum(), t.size))
    np.testing.assert_allclose(b.y[~bad, :, 0], exact, rtol=1e-5)

    y0 = np.where(np.arange(n) % 4 == 0, 1.0, -1.0)[:, None]  # NaN once y < 0.5
    a = solve(y0, np.zeros(1), [0.0, 2.0], model="test:nan_source", nonnegative=False,
              lanes=False)
    b = solve(y0, np.zeros(1), [0.0, 2.0], model="test:nan_source", nonnegative=False,
              lanes=True)
    assert_same(a, b)
    assert np.all(b.status[::4] == status.NONFINITE)

    p = problems_rotation_params(n)
    a = solve(np.ones(3), p, [0.0, 10.0], model="test:damped_rotation", max_steps=12,
              nonnegative=False, lanes=False)
    b = solve(np.ones(3), p, [0.0, 10.0], model="test:damped_rotation", max_steps=12,
              nonnegative=False, lanes=True)
    assert_same(a, b)
    assert set(b.status) == {status.SUCCESS, status.MAX_STEPS}


def problems_rotation_params(n, fastest=20.0):
    """Damping 0.1 and frequencies from slow (few steps) to fast (many steps)."""
    return np.column_stack([np.full(n, 0.1), np.geomspace(0.1, fastest, n)])


def test_lanes_exact_solution_and_jumps():
    """Through the lane driver: many saves by dense output and exact jumps, against the exact
    solution of a linear problem."""
    n = LANES + 5
    p = problems_rotation_params(n, fastest=4.0)
    y0 = np.array([1.0, 0.5, 2.0])
    ev = EventTable.from_lists([[(2.5, 0, 0, 1.0), (2.5, 2, 1, 0.5)]] * n)
    t = np.linspace(0.0, 5.0, 401)
    rtol, atol = 1e-8, 1e-10
    sol = solve(y0, p, t, model="test:damped_rotation", events=ev, rtol=rtol, atol=atol,
                nonnegative=False, lanes=True)
    assert sol.success.all()
    worst = 0.0
    for i in range(n):
        first = problems.damped_rotation_exact(t[t < 2.5], y0, p[i])
        y_jump = problems.damped_rotation_exact([2.5], y0, p[i])[0] * np.array([1, 1, 0.5])
        y_jump[0] += 1.0
        second = problems.damped_rotation_exact(t[t >= 2.5] - 2.5, y_jump, p[i])
        exact = np.vstack([first, second])
        worst = max(worst, tolerance_units(sol.y[i], exact, rtol, atol).max())
    # Measured 105.1 (dopri5 on the lane driver); bound at about twice that. Catches a
    # lane-driver dense output weaker than the tableau's (e.g. cubic Hermite), which a bound of
    # 200 did not.
    assert worst < 210.0, worst


def test_rosenbrock_ignores_lanes():
    """Rosenbrock methods run one trajectory at a time even when lanes are asked for."""
    p = np.array([[1.0, 1e4]] * (LANES + 1))
    a = solve(np.array([1.0, 0.0]), p, [0.0, 1.0], model="test:stiff_linear",
              method="rodas4", nonnegative=False, lanes=True)
    exp = problems.stiff_linear_exact([1.0], np.array([1.0, 0.0]), p[0])[0]
    np.testing.assert_allclose(a.y[:, -1], np.broadcast_to(exp, (LANES + 1, 2)), rtol=1e-4)


def test_lanes_projection_matches():
    """Non-negativity by projection (clipped steps re-evaluate f and save by Hermite
    interpolation): identical in both drivers on an oscillation forced through zero."""
    n = LANES + 7
    p = problems_rotation_params(n, fastest=3.0)
    t = np.linspace(0.0, 8.0, 97)
    a = solve(np.array([1.0, 0.5, 2.0]), p, t, model="test:damped_rotation", lanes=False)
    b = solve(np.array([1.0, 0.5, 2.0]), p, t, model="test:damped_rotation", lanes=True)
    assert_same(a, b)
    assert (b.y >= 0).all()
    # Some steps were projected: re-evaluations make nfev exceed 6 per accepted step.
    assert np.any(b.nfev > 6 * (b.naccept + b.nreject) + 2)
