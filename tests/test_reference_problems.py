"""Nonlinear reference problems with closed-form solutions, every method (DETEST / scipy
``test_ivp.py`` style): RMS error in tolerance units and a budget on RHS evaluations.

Models are compiled into the kernels by id (``_rhs.MODEL_IDS``), so a test file cannot add a
new RHS without touching ``src/``. The nonlinear registered problem is ``test:blowup``,
``y_i' = y_i^2`` per component, whose exact solution is ``y_i = y0_i / (1 - y0_i t)``: from a
negative start it decays like ``1/t`` (a Riccati/"y' = -y^2" type problem), from a positive one
it grows hyperbolically towards the pole at ``1 / y0_i``. Different components give different
time scales, so the step-size controller has to serve all of them at once.
"""

import numpy as np
import pytest

from immunosim.engines.ode import status
from immunosim.engines.ode.solver import solve

METHODS = ["dopri5", "bs3", "rodas3", "rodas4"]
RTOL, ATOL = 1e-6, 1e-9


def riccati_exact(t, y0):
    t = np.asarray(t, dtype=float)[:, None]
    return y0[None, :] / (1.0 - y0[None, :] * t)


def tolerance_units(y, exact, rtol=RTOL, atol=ATOL):
    return (y - exact) / (atol + rtol * np.abs(exact))


CASES = {
    # decaying: y' = -y^2 in disguise (y = -u, u' = -u^2), over a long horizon
    "decay": (np.array([-1.0, -3.0, -0.2]), np.linspace(0.0, 20.0, 201)),
    # growing towards a pole: y(1.5) = 4 y0 for y0 = 0.5, a 4x hyperbolic rise
    "growth": (np.array([0.5, 0.25, -2.0]), np.linspace(0.0, 1.5, 151)),
}

# Measured at rtol=1e-6, atol=1e-9 (RMS tolerance units / nfev): dopri5 decay 0.95 / 188,
# growth 0.64 / 104; bs3 1.75 / 608, 1.48 / 260; rodas4 0.24 / 650, 0.31 / 281. Bounds: RMS at
# about twice that, nfev at about 1.5x. rodas3: 317629 / 32 and 14214 / 26 (see the xfail).
RMS_BOUND = {
    ("dopri5", "decay"): 2.0, ("dopri5", "growth"): 1.3,
    ("bs3", "decay"): 3.5, ("bs3", "growth"): 3.0,
    ("rodas3", "decay"): 3.0, ("rodas3", "growth"): 3.0,  # what a working rodas3 should reach
    ("rodas4", "decay"): 0.5, ("rodas4", "growth"): 0.65,
}
NFEV_BUDGET = {
    ("dopri5", "decay"): 280, ("dopri5", "growth"): 160,
    ("bs3", "decay"): 900, ("bs3", "growth"): 400,
    ("rodas3", "decay"): 600, ("rodas3", "growth"): 300,
    ("rodas4", "decay"): 980, ("rodas4", "growth"): 420,
}
RODAS3_XFAIL = pytest.mark.xfail(
    strict=True,
    reason="rodas3 takes 5-7 steps over [0, 20] on y' = y^2 at any rtol from 1e-4 to 1e-8 and "
    "ends 1e4-1e5 tolerance units off: its error estimate (E = K4) underestimates on this "
    "nonlinear problem. A finding for src/, not fixed here; strict, so a fix shows up.")


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("method", [m if m != "rodas3" else pytest.param(m, marks=RODAS3_XFAIL)
                                    for m in METHODS])
def test_riccati_accuracy_and_cost(method, case):
    """Catches: a wrong stage coefficient or error estimator in any method (accuracy or cost
    leaves its band), an FD Jacobian with a wrong increment (Rosenbrock accuracy), a step-size
    controller that is too timid (nfev budget) or too bold (RMS bound)."""
    y0, t = CASES[case]
    sol = solve(y0, np.zeros(1), t, model="test:blowup", method=method, rtol=RTOL, atol=ATOL,
                nonnegative=False)
    assert sol.status[0] == status.SUCCESS
    exact = riccati_exact(t, y0)
    u = tolerance_units(sol.y[0], exact)
    rms = np.sqrt(np.mean(u**2))
    assert rms < RMS_BOUND[method, case], (rms, np.abs(u).max())
    assert sol.nfev[0] < NFEV_BUDGET[method, case], sol.nfev[0]
    assert np.abs(u).max() < 5 * RMS_BOUND[method, case]


@pytest.mark.parametrize("method", METHODS)
def test_riccati_tolerance_proportionality(method):
    """Tightening rtol and atol 100x cuts the error roughly 100x (tolerance proportionality):
    the absolute error shrinks at least 20x. Catches a controller that ignores the tolerance
    (e.g. a wrong exponent 1/error_order) or a method whose error estimate does not track its
    error."""
    y0, t = CASES["decay"]
    errs = []
    for rtol in (1e-5, 1e-7):
        sol = solve(y0, np.zeros(1), t, model="test:blowup", method=method, rtol=rtol,
                    atol=rtol * 1e-3, nonnegative=False)
        errs.append(np.max(np.abs(sol.y[0] - riccati_exact(t, y0))))
    if method == "rodas3" and errs[0] / errs[1] < 20:
        pytest.xfail(f"rodas3 error estimate (see RODAS3_XFAIL): errors {errs}")
    assert errs[0] / errs[1] > 20, errs
