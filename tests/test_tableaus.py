"""Tableau identities, and agreement with scipy's own coefficients (an independent copy)."""

import numpy as np
import pytest
from scipy.integrate._ivp import rk as scipy_rk

from immunosim.engines.ode.tableaus import BS3, DOPRI5, METHODS, RODAS3, RODAS4


@pytest.mark.parametrize("tab", [DOPRI5, BS3])
def test_explicit_identities(tab):
    np.testing.assert_allclose(tab.A.sum(axis=1), tab.C, atol=1e-15)  # row-sum condition
    assert tab.B.sum() == pytest.approx(1.0, abs=1e-15)
    assert tab.E.sum() == pytest.approx(0.0, abs=1e-15)  # error estimate vanishes on constants
    np.testing.assert_allclose(tab.B @ tab.C, 0.5, atol=1e-15)  # order 2
    np.testing.assert_allclose(tab.B @ tab.C**2, 1 / 3, atol=1e-15)  # order 3
    np.testing.assert_allclose(tab.B @ tab.A @ tab.C, 1 / 6, atol=1e-15)
    if tab.order >= 5:
        np.testing.assert_allclose(tab.B @ tab.C**3, 1 / 4, atol=1e-15)
        np.testing.assert_allclose(tab.B @ tab.C**4, 1 / 5, atol=1e-15)
        np.testing.assert_allclose(tab.B @ tab.A @ tab.A @ tab.C, 1 / 24, atol=1e-15)
        # the rest of the order-4 and some order-5 conditions (catches a single mistyped A entry
        # that the ones above happen not to weigh)
        A, B, C = tab.A, tab.B, tab.C
        np.testing.assert_allclose(B @ (C * (A @ C)), 1 / 8, atol=1e-14)
        np.testing.assert_allclose(B @ A @ C**2, 1 / 12, atol=1e-14)
        np.testing.assert_allclose(B @ (C**2 * (A @ C)), 1 / 10, atol=1e-14)
        np.testing.assert_allclose(B @ (A @ C) ** 2, 1 / 20, atol=1e-14)
        np.testing.assert_allclose(B @ (C * (A @ C**2)), 1 / 15, atol=1e-14)
        np.testing.assert_allclose(B @ A @ C**3, 1 / 20, atol=1e-14)
        np.testing.assert_allclose(B @ A @ (C * (A @ C)), 1 / 40, atol=1e-14)
        np.testing.assert_allclose(B @ A @ A @ C**2, 1 / 60, atol=1e-14)
        np.testing.assert_allclose(B @ A @ A @ A @ C, 1 / 120, atol=1e-14)
        np.testing.assert_allclose(B @ (C * (A @ A @ C)), 1 / 30, atol=1e-14)
    # Dense output at x = 1 reproduces the step: sum of P's columns is [B, 0].
    np.testing.assert_allclose(tab.P.sum(axis=1), np.append(tab.B, 0.0), atol=1e-14)


@pytest.mark.parametrize("tab, ref", [(DOPRI5, scipy_rk.RK45), (BS3, scipy_rk.RK23)])
def test_explicit_match_scipy(tab, ref):
    s = tab.stages
    np.testing.assert_allclose(tab.A[:, : ref.A.shape[1]], ref.A, rtol=1e-15, atol=1e-15)
    assert np.all(tab.A[:, ref.A.shape[1]:] == 0)
    assert s == ref.n_stages
    np.testing.assert_allclose(tab.B, ref.B, rtol=1e-15)
    np.testing.assert_allclose(tab.C, ref.C, rtol=1e-15)
    np.testing.assert_allclose(tab.E, ref.E, rtol=1e-15)
    np.testing.assert_allclose(tab.P, ref.P, rtol=1e-15)
    assert tab.error_order == ref.error_estimator_order


@pytest.mark.parametrize("tab", [RODAS3, RODAS4])
def test_rosenbrock_structure(tab):
    assert np.all(np.triu(tab.A) == 0) and np.all(np.triu(tab.C) == 0)
    assert tab.E[-1] == 1.0 and np.all(tab.E[:-1] == 0)


def untransformed(tab):
    """Back from the KPP form to Hairer-Wanner's (alpha, Gamma, b): Gamma^-1 = I/gamma - C,
    alpha = A Gamma, b = M Gamma (and the embedded b_hat from M - E)."""
    G = np.linalg.inv(np.eye(tab.stages) / tab.gamma - tab.C)
    return tab.A @ G, G, tab.M @ G, (tab.M - tab.E) @ G


def rosenbrock_conditions(alpha, G, b):
    """Order conditions of Hairer & Wanner II, Table IV.7.1, written with beta = alpha + Gamma
    (diagonal included), so the right-hand sides are the Runge-Kutta ones. Returns
    {order: [(value, target), ...]}."""
    B = alpha + G
    one = np.ones(b.size)
    a = alpha @ one
    return {
        1: [(b @ one, 1.0)],
        2: [(b @ B @ one, 1 / 2)],
        3: [(b @ a**2, 1 / 3), (b @ B @ B @ one, 1 / 6)],
        4: [(b @ a**3, 1 / 4), (b @ (a * (alpha @ B @ one)), 1 / 8),
            (b @ B @ a**2, 1 / 12), (b @ B @ B @ B @ one, 1 / 24)],
    }


@pytest.mark.parametrize("tab, order, embedded", [(RODAS3, 3, 2), (RODAS4, 4, 3)])
def test_rosenbrock_order_conditions(tab, order, embedded):
    """Catches: any mistyped coefficient in A, C, M or gamma that breaks an order condition
    (e.g. one RODAS4 C entry changed in its 4th digit), and a wrong error estimator E."""
    alpha, G, b, b_hat = untransformed(tab)
    np.testing.assert_allclose(np.diag(G), tab.gamma, rtol=1e-14)
    for p, conds in rosenbrock_conditions(alpha, G, b).items():
        if p <= order:
            for value, target in conds:
                assert value == pytest.approx(target, abs=1e-9), (tab.name, p, value, target)
    for p, conds in rosenbrock_conditions(alpha, G, b_hat).items():
        if p <= embedded:
            for value, target in conds:
                assert value == pytest.approx(target, abs=1e-9), (tab.name, "embedded", p)
    # the embedded solution is really one order lower (else the error estimate is no estimate)
    miss = [abs(v - t) for v, t in rosenbrock_conditions(alpha, G, b_hat)[embedded + 1]]
    assert max(miss) > 1e-6
    # stiffly accurate: b is the last row of beta (y_new is the last stage's input + stage)
    np.testing.assert_allclose(b, (alpha + G)[-1], atol=1e-12)


# Published nodes, typed in from the sources rather than derived from tableaus.py:
# alpha_i = sum_j alpha_ij and gamma_i = sum_j gamma_ij (Gamma's row sums, diagonal included).
# RODAS4: Hairer & Wanner's rodas.f (c2 = 0.386, c3 = 0.21, c4 = 0.63; d1 = gamma = 0.25,
# d2 = -0.1043, d3 = 0.1035, d4 = -0.0362, d5 = d6 = 0), also in OrdinaryDiffEq.jl's RODAS4.
# RODAS3: Sandu et al. 1997 / KPP (ros_Alpha = 0, 0, 1, 1; ros_Gamma = 0.5, 1.5, 0, 0).
PUBLISHED_NODES = {
    "rodas4": ([0.0, 0.386, 0.21, 0.63, 1.0, 1.0], [0.25, -0.1043, 0.1035, -0.0362, 0.0, 0.0]),
    "rodas3": ([0.0, 0.0, 1.0, 1.0], [0.5, 1.5, 0.0, 0.0]),
}
# RODAS4 transformed coefficients as printed in rodas.f (a21 ... a54, c21 ... c65), which are
# tableaus.py's A and C directly.
RODAS4_A_PUBLISHED = {
    (1, 0): 1.544, (2, 0): 0.9466785280815826, (2, 1): 0.2557011698983284,
    (3, 0): 3.314825187068521, (3, 1): 2.896124015972201, (3, 2): 0.9986419139977817,
    (4, 0): 1.221224509226641, (4, 1): 6.019134481288629, (4, 2): 12.53708332932087,
    (4, 3): -0.6878860361058950,
}
RODAS4_C_PUBLISHED = {
    (1, 0): -5.6688, (2, 0): -2.430093356833875, (2, 1): -0.2063599157091915,
    (3, 0): -0.1073529058151375, (3, 1): -9.594562251023355, (3, 2): -20.47028614809616,
    (4, 0): 7.496443313967647, (4, 1): -10.24680431464352, (4, 2): -33.99990352819905,
    (4, 3): 11.70890893206160, (5, 0): 8.083246795921522, (5, 1): -7.981132988064893,
    (5, 2): -31.52159432874371, (5, 3): 16.31930543123136, (5, 4): -6.058818238834054,
}


@pytest.mark.parametrize("tab", [RODAS3, RODAS4])
def test_rosenbrock_published_nodes(tab):
    """Catches: a tableau that satisfies the order conditions but is not the published method
    (other nodes), or a mistyped coefficient the conditions do not see."""
    alpha, G, _, _ = untransformed(tab)
    c, d = PUBLISHED_NODES[tab.name]
    np.testing.assert_allclose(alpha.sum(axis=1), c, atol=1e-12)
    np.testing.assert_allclose(G.sum(axis=1), d, atol=1e-12)


def test_rodas4_published_coefficients():
    """Catches: a typo in any RODAS4 A or C entry (or a wrong _lower unpacking order)."""
    for (i, j), v in RODAS4_A_PUBLISHED.items():
        assert RODAS4.A[i, j] == pytest.approx(v, rel=1e-15), (i, j)
    for (i, j), v in RODAS4_A_PUBLISHED.items():  # last row repeats row 5, then 1 (stiffly acc.)
        if i == 4:
            assert RODAS4.A[5, j] == pytest.approx(v, rel=1e-15), j
    assert RODAS4.A[5, 4] == 1.0
    for (i, j), v in RODAS4_C_PUBLISHED.items():
        assert RODAS4.C[i, j] == pytest.approx(v, rel=1e-15), (i, j)
    assert RODAS4.gamma == 0.25


# RODAS3 as printed in KPP's Rosenbrock integrator (SUBROUTINE Rodas3; Sandu et al. 1997):
# ros_A, ros_C row-wise below the diagonal, ros_M, ros_E, ros_NewF, and ros_Gamma(1).
RODAS3_PUBLISHED = {
    "A": [0.0, 2.0, 0.0, 2.0, 0.0, 1.0],
    "C": [4.0, 1.0, -1.0, 1.0, -1.0, -8.0 / 3.0],
    "M": [2.0, 0.0, 1.0, 1.0], "E": [0.0, 0.0, 0.0, 1.0],
    "new_f": [True, False, True, True], "gamma": 0.5,
}


def _below_diagonal(X):
    return [X[i, j] for i in range(1, X.shape[0]) for j in range(i)]  # row-wise, as KPP


def test_rodas3_published_coefficients():
    """Catches: a typo in any RODAS3 coefficient (e.g. c43 = -8/3 as -3/8, or m1 = 2 as 1),
    a transposed A or C, and a stage marked as re-using f when the method evaluates it."""
    P = RODAS3_PUBLISHED
    assert _below_diagonal(RODAS3.A) == P["A"]
    assert _below_diagonal(RODAS3.C) == pytest.approx(P["C"], rel=1e-15)
    assert list(RODAS3.M) == P["M"] and list(RODAS3.E) == P["E"]
    assert list(RODAS3.new_f) == P["new_f"] and RODAS3.gamma == P["gamma"]


def test_rodas4_published_weights():
    """rodas.f/KPP: M = (a61..a64, 1, 1) with a6j = a5j (stiffly accurate), E = e6, every stage
    evaluates f. Catches a typo in M (not seen by the A/C check above) or in E."""
    a5 = [RODAS4_A_PUBLISHED[4, j] for j in range(4)]
    assert list(RODAS4.M) == pytest.approx(a5 + [1.0, 1.0], rel=1e-15)
    assert list(RODAS4.E) == [0, 0, 0, 0, 0, 1.0] and RODAS4.new_f.all()


@pytest.mark.parametrize("name", ["dopri5", "bs3"])
def test_dense_basis_reproduces_P(name):
    """The kernels' dense output, Hermite data plus one stage combination, is the tableau's."""
    tab = METHODS[name]
    W, d = tab.dense_basis
    s = tab.B.size
    basis = np.column_stack([np.append(tab.B, 0.0), np.eye(s + 1)[0], np.eye(s + 1)[s], d])
    np.testing.assert_allclose(basis @ W.T, tab.P, atol=1e-13)
    assert W.shape == (tab.P.shape[1], 4)
    if name == "bs3":
        assert not d.any()  # cubic Hermite
