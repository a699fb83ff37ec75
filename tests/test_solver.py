"""The ODE engine against exact solutions: convergence order, dense output, status codes."""

import numpy as np
import pytest

from immunosim.engines.ode import problems, status
from immunosim.engines.ode.solver import EventTable, solve

ROT_P = np.array([0.1, 2.0])
ROT_Y0 = np.array([1.0, 0.5, 2.0])


def fixed_step_error(method, h, t_end=10.0):
    """Error at ``t_end`` with steps forced to ``h`` (tolerances so loose every step is accepted
    and ``h_max = h``)."""
    sol = solve(ROT_Y0, ROT_P, [0.0, t_end], model="test:damped_rotation", method=method,
                rtol=0.5, atol=1e6, h_max=h, nonnegative=False)
    assert sol.status[0] == status.SUCCESS
    exact = problems.damped_rotation_exact([t_end], ROT_Y0, ROT_P)[0]
    return np.max(np.abs(sol.y[0, -1] - exact))


@pytest.mark.parametrize("method, order", [("dopri5", 5), ("bs3", 3), ("rodas3", 3),
                                           ("rodas4", 4)])
def test_convergence_order(method, order):
    hs = np.array([0.4, 0.2, 0.1, 0.05])
    errs = np.array([fixed_step_error(method, h) for h in hs])
    slope = np.polyfit(np.log(hs), np.log(errs), 1)[0]
    assert order - 0.3 < slope < order + 0.6, (slope, errs)


# Measured maxima of the dense-output test below (tolerance units): dopri5 15.9, bs3 151.7,
# rodas3 39.7, rodas4 82.2. Bounds at about twice that, so an interpolant one order worse (or a
# mis-weighted stage in it) fails instead of hiding under a shared bound of 200.
DENSE_BOUND = {"dopri5": 32.0, "bs3": 300.0, "rodas3": 80.0, "rodas4": 165.0}


@pytest.mark.parametrize("method", ["dopri5", "bs3", "rodas3", "rodas4"])
def test_adaptive_accuracy_and_dense_output(method):
    """Save times between steps come from dense output and stay within tolerance."""
    t = np.linspace(0.0, 10.0, 1001)  # far more saves than steps
    rtol, atol = 1e-8, 1e-10
    sol = solve(ROT_Y0, ROT_P, t, model="test:damped_rotation", method=method, rtol=rtol,
                atol=atol, nonnegative=False)
    exact = problems.damped_rotation_exact(t, ROT_Y0, ROT_P)
    err = np.abs(sol.y[0] - exact) / (atol + rtol * np.abs(exact))
    assert np.max(err) < DENSE_BOUND[method], np.max(err)  # global error, in tolerance units


@pytest.mark.parametrize("method, order, lanes", [("dopri5", 5, False), ("bs3", 3, False),
                                                  ("rodas3", 3, False), ("rodas4", 4, False),
                                                  ("dopri5", 5, True), ("bs3", 3, True)])
def test_dense_output_convergence_order(method, order, lanes):
    """Fixed steps h, saves at quarter steps (between steps, so from dense output): the error
    there falls like h^order (an interpolant of order q adds a local error h^(q+1)).

    Catches: DOPRI5's 4th-order interpolant replaced by the cubic Hermite one (slope drops to
    ~4, measured 5.10 with the real one); likewise RODAS4's 3rd-order one by a 2nd-order one."""
    hs = np.array([0.4, 0.2, 0.1, 0.05])
    errs = []
    for h in hs:
        t = np.linspace(0.0, 10.0, int(round(10.0 / h)) * 4 + 1)
        sol = solve(ROT_Y0, ROT_P, t, model="test:damped_rotation", method=method, rtol=0.5,
                    atol=1e6, h_max=h, nonnegative=False, lanes=lanes)  # lanes: 1 of 16 used
        exact = problems.damped_rotation_exact(t, ROT_Y0, ROT_P)
        mid = np.ones(t.size, dtype=bool)
        mid[::4] = False  # only the points strictly inside steps
        errs.append(np.max(np.abs(sol.y[0][mid] - exact[mid])))
    slope = np.polyfit(np.log(hs), np.log(errs), 1)[0]
    assert order - 0.3 < slope < order + 0.6, (slope, errs)


def test_saves_do_not_change_steps():
    a = solve(ROT_Y0, ROT_P, [0.0, 10.0], model="test:damped_rotation", nonnegative=False)
    b = solve(ROT_Y0, ROT_P, np.linspace(0, 10, 500), model="test:damped_rotation",
              nonnegative=False)
    assert a.naccept[0] == b.naccept[0] and a.nfev[0] == b.nfev[0]
    np.testing.assert_array_equal(a.y[0, -1], b.y[0, -1])


@pytest.mark.parametrize("method", ["rodas3", "rodas4"])
def test_rosenbrock_on_stiff_problem(method):
    p = np.array([1.0, 1e5])
    y0 = np.array([1.0, 0.0])
    t = np.linspace(0, 5, 11)
    sol = solve(y0, p, t, model="test:stiff_linear", method=method, rtol=1e-6, atol=1e-9,
                nonnegative=False)
    exp = problems.stiff_linear_exact(t, y0, p)
    assert sol.status[0] == status.SUCCESS
    np.testing.assert_allclose(sol.y[0][1:], exp[1:], rtol=1e-4, atol=1e-7)
    ex = solve(y0, p, t, model="test:stiff_linear", method="dopri5", rtol=1e-6, atol=1e-9,
               nonnegative=False)
    assert sol.nfev[0] * 5 < ex.nfev[0]  # the stiff method is the right tool here


def test_status_step_budget():
    sol = solve(ROT_Y0, ROT_P, [0.0, 10.0], model="test:damped_rotation", max_steps=5,
                nonnegative=False)
    assert sol.status[0] == status.MAX_STEPS
    assert np.isnan(sol.y[0, -1]).all()
    assert "step budget" in sol.messages()[0]


def test_status_underflow_and_batch_survives():
    """y' = y^2 from y0 = 2 blows up at t = 0.5; the other trajectory must still succeed."""
    y0 = np.array([[2.0], [-1.0]])
    t = np.linspace(0.0, 1.0, 5)
    sol = solve(y0, np.zeros(1), t, model="test:blowup", nonnegative=False)
    assert sol.status[0] in (status.STEP_UNDERFLOW, status.NONFINITE)
    assert sol.status[1] == status.SUCCESS
    np.testing.assert_allclose(sol.y[1, :, 0], -1.0 / (1.0 + t), rtol=1e-6)
    with pytest.raises(RuntimeError, match="1 of 2 trajectories failed"):
        sol.raise_for_status()


def test_status_nonfinite():
    sol = solve(np.array([1.0]), np.zeros(1), [0.0, 2.0], model="test:nan_source",
                nonnegative=False)
    assert sol.status[0] == status.NONFINITE


def test_events_exact_jumps_on_linear_problem():
    """Jumps at t = 3 (add to state 0, scale state 1, set state 2) restart the exact solution
    from the jumped state; a save at the event time sees the state after it.

    Catches: an ignored or mis-dispatched op (scale applied as add, set as scale, ...), a jump
    applied to the wrong state, and the save at t = 3 taken before the jump. (The scale used to
    multiply a state that was identically 0, and was never asserted.)"""
    from immunosim.model.interventions import OP_ADD, OP_SCALE, OP_SET

    a = 0.3
    p = np.array([a, 0.0])  # no rotation: each state decays at a on its own
    y0 = np.array([1.0, 2.0, 4.0])
    ev = EventTable.from_lists([[(3.0, 0, OP_ADD, 2.0), (3.0, 1, OP_SCALE, 5.0),
                                 (3.0, 2, OP_SET, 0.5)]])
    t = np.array([0.0, 1.0, 3.0, 4.0])
    sol = solve(y0, p, t, model="test:damped_rotation", events=ev, rtol=1e-10, atol=1e-12,
                nonnegative=False)
    decay = np.exp(-a * 3.0)
    after = np.array([decay + 2.0, 2.0 * decay * 5.0, 0.5])
    np.testing.assert_allclose(sol.y[0, 1], y0 * np.exp(-a), rtol=1e-9)  # before: untouched
    np.testing.assert_allclose(sol.y[0, 2], after, rtol=1e-9)  # right-continuous
    np.testing.assert_allclose(sol.y[0, 3], after * np.exp(-a), rtol=1e-9)


def test_input_validation():
    with pytest.raises(ValueError, match="method: unknown method 'rk99'"):
        solve(ROT_Y0, ROT_P, [0, 1], model="test:damped_rotation", method="rk99")
    with pytest.raises(ValueError, match="t_eval"):
        solve(ROT_Y0, ROT_P, [1, 0], model="test:damped_rotation")
    ev = EventTable.from_lists([[(5.0, 0, 0, 1.0)]])
    with pytest.raises(ValueError, match="event times"):
        solve(ROT_Y0, ROT_P, [0, 1], model="test:damped_rotation", events=ev)


def test_out_buffer_reused_in_place():
    """``out=`` receives the solution in place, batch after batch, with the same numbers."""
    rng = np.random.default_rng(3)
    t = np.linspace(0.0, 5.0, 11)
    p1, p2 = ROT_P * rng.uniform(0.5, 1.5, (20, 2)), ROT_P * rng.uniform(0.5, 1.5, (20, 2))
    kw = dict(model="test:damped_rotation", nonnegative=False)
    buf = np.full((20, t.size, 3), np.nan)
    for p in (p1, p2):  # the second call overwrites the first one's results
        sol = solve(ROT_Y0, p, t, out=buf, **kw)
        assert sol.y is buf
        np.testing.assert_array_equal(buf, solve(ROT_Y0, p, t, **kw).y)


def test_out_buffer_validation():
    t = [0.0, 1.0]
    kw = dict(model="test:damped_rotation")
    with pytest.raises(ValueError, match=r"out: shape \(1, 3, 3\), expected"):
        solve(ROT_Y0, ROT_P, t, out=np.empty((1, 3, 3)), **kw)
    with pytest.raises(ValueError, match="out: expected a float64"):
        solve(ROT_Y0, ROT_P, t, out=np.empty((1, 2, 3), dtype=np.float32), **kw)
    with pytest.raises(ValueError, match="C-contiguous"):
        solve(ROT_Y0, ROT_P, t, out=np.empty((1, 3, 2)).transpose(0, 2, 1), **kw)
    y0 = np.zeros((1, 2, 3))
    with pytest.raises(ValueError, match="overlaps"):
        solve(y0[:, 0], ROT_P, t, out=y0, **kw)


@pytest.mark.parametrize("method", ["dopri5", "rodas4"])
def test_threads_do_not_change_results(method, diseased_y0):
    """Bitwise equal at 1 and 2 threads, in both drivers: dopri5 runs on the lane driver
    (64 trajectories = 4 chunks of LANES at 2 threads; with 16 there would be a single chunk and
    nothing to compare), rodas4 on the one-trajectory driver.

    Catches: chunk boundaries or per-thread scratch buffers shared/mis-offset between threads
    (e.g. ``n_chunks`` chunks that overlap or skip trajectories, workspace not per chunk)."""
    import numba

    from immunosim.engines.ode._rhs import LANES
    from tests.conftest import random_parameter_points

    if numba.config.NUMBA_NUM_THREADS < 2:  # set_num_threads would cap 2 at 1: nothing compared
        pytest.skip("one Numba thread available: threads=2 would silently run threads=1")
    n = 4 * LANES
    params = random_parameter_points(n, seed=3)
    ev = EventTable.from_lists([[(float(i % 50), 0, 0, 1.0)] for i in range(n)])
    t = np.arange(0.0, 100.0)
    a = solve(diseased_y0, params, t, events=ev, method=method, threads=1)
    b = solve(diseased_y0, params, t, events=ev, method=method, threads=2)
    assert a.success.all()
    np.testing.assert_array_equal(a.y, b.y)
    np.testing.assert_array_equal(a.nfev, b.nfev)
    np.testing.assert_array_equal(a.naccept, b.naccept)
    # and trajectories are not mixed up: row i on its own gives row i of the batch
    for i in (0, n // 2 + 1, n - 1):
        one = solve(diseased_y0, params[i], t, events=EventTable.from_lists([ev_row(i)]),
                    method=method, threads=1)
        np.testing.assert_allclose(one.y[0], a.y[i], rtol=1e-6, atol=1e-6)


def ev_row(i):
    return [(float(i % 50), 0, 0, 1.0)]


# --- options never exercised before (issue 18) -------------------------------------------------


@pytest.mark.parametrize("lanes", [False, True])
def test_start_before_the_first_save(lanes):
    """``t0`` before ``t_eval[0]``: the run starts at ``t0`` from ``y0``, an event between ``t0``
    and the first save is applied, and nothing is saved before ``t_eval[0]``.

    Catches: a start at ``t_eval[0]`` (y0 saved as the first row), an event before the first
    save dropped."""
    from immunosim.engines.events import OP_ADD

    t = np.array([2.0, 3.0, 5.0])
    ev = EventTable.from_lists([[(1.0, 2, OP_ADD, 1.0)]])
    sol = solve(ROT_Y0, ROT_P, t, t0=0.0, events=ev, model="test:damped_rotation", rtol=1e-10,
                atol=1e-12, nonnegative=False, lanes=lanes)
    at1 = problems.damped_rotation_exact([1.0], ROT_Y0, ROT_P)[0] + [0.0, 0.0, 1.0]
    exact = problems.damped_rotation_exact(t - 1.0, at1, ROT_P)
    assert sol.status[0] == status.SUCCESS
    np.testing.assert_allclose(sol.y[0], exact, rtol=1e-8, atol=1e-10)
    with pytest.raises(ValueError, match="t0: 4.0 is after the first save time 2.0"):
        solve(ROT_Y0, ROT_P, t, t0=4.0, model="test:damped_rotation")


def test_per_state_atol_reaches_each_state():
    """``atol`` per state: loose on the rotating pair, tight on the decaying third state. Each
    state's error stays within its own tolerance, and the step count lies between the all-loose
    and all-tight runs (measured 19 < 27 < 446), in both drivers alike.

    Catches: one state's atol used for every state (either end), atol not reaching a driver."""
    t = np.linspace(0.0, 10.0, 51)
    exact = problems.damped_rotation_exact(t, ROT_Y0, ROT_P)
    kw = dict(model="test:damped_rotation", rtol=1e-13, nonnegative=False)
    atol = np.array([1e-3, 1e-3, 1e-10])
    runs = [solve(ROT_Y0, ROT_P, t, atol=atol, lanes=lanes, **kw) for lanes in (False, True)]
    np.testing.assert_array_equal(runs[0].y, runs[1].y)
    mixed = runs[0]
    assert mixed.status[0] == status.SUCCESS
    units = np.abs(mixed.y[0] - exact).max(axis=0) / atol
    assert np.all(units < 10), units
    loose = solve(ROT_Y0, ROT_P, t, atol=1e-3, **kw).naccept[0]
    tight = solve(ROT_Y0, ROT_P, t, atol=1e-10, **kw).naccept[0]
    assert loose < mixed.naccept[0] < tight, (loose, mixed.naccept[0], tight)


def test_per_state_nonnegative_projects_only_those_states():
    """``nonnegative`` per state on an oscillation through zero: the flagged state never goes
    below 0, the others do, identically in both drivers (16 + 3 trajectories).

    Catches: the mask ignored (all or no states projected), or read with an offset."""
    from immunosim.engines.ode._rhs import LANES

    n = LANES + 3
    p = np.column_stack([np.full(n, 0.1), np.geomspace(0.5, 3.0, n)])
    t = np.linspace(0.0, 8.0, 97)
    mask = [False, True, False]
    a, b = (solve(ROT_Y0, p, t, model="test:damped_rotation", nonnegative=mask, lanes=lanes)
            for lanes in (False, True))
    np.testing.assert_array_equal(a.y, b.y)
    assert (a.status == status.SUCCESS).all()
    assert (a.y[:, :, 1] >= 0).all()
    assert (a.y[:, :, 0] < -0.1).any()  # the unflagged rotating state still goes negative
    free = solve(ROT_Y0, p, t, model="test:damped_rotation", nonnegative=False)
    assert (free.y[:, :, 1] < -0.1).any()  # ... as the flagged one would without projection


@pytest.mark.parametrize("method", ["rodas3", "rodas4"])
def test_status_singular(method):
    """``y' = 2 y`` (damped rotation with damping -2 and no rotation: an exact Jacobian 2 I)
    with steps capped at ``h = 1 / (2 gamma)``: the Rosenbrock matrix ``I / (h gamma) - J`` is
    exactly singular once the step reaches the cap. The run ends with status SINGULAR, NaN
    from then on; the decaying trajectory next to it is untouched."""
    from immunosim.engines.ode.tableaus import METHODS

    h = 1.0 / (2.0 * METHODS[method].gamma)
    p = np.array([[-2.0, 0.0], [0.5, 0.0]])
    t = np.linspace(0.0, 10.0, 6)
    sol = solve(np.array([1.0, 0.0]), p, t, model="test:damped_rotation", method=method,
                rtol=0.5, atol=1e6, h_max=h, nonnegative=False)
    np.testing.assert_array_equal(sol.status, [status.SINGULAR, status.SUCCESS])
    assert sol.messages()[0] == "singular iteration matrix in the Rosenbrock step"
    assert np.isnan(sol.y[0, -1]).all() and np.isfinite(sol.y[1]).all()
    assert sol.summary() == "1 success, 1 singular iteration matrix in the Rosenbrock step"
    with pytest.raises(RuntimeError, match="#0: singular iteration matrix"):
        sol.raise_for_status()
    fine = solve(np.array([1.0, 0.0]), p[0], t, model="test:damped_rotation", method=method,
                 rtol=0.5, atol=1e6, h_max=0.999 * h, nonnegative=False)
    assert fine.status[0] == status.SUCCESS  # only the exact cap makes it singular
