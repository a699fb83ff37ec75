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
    # Stiffly accurate: y_new is the last stage input plus the last stage, i.e. M = [A[-1], 1].
    np.testing.assert_allclose(tab.M[:-1], tab.A[-1, :-1], rtol=1e-15)
    assert tab.M[-1] == 1.0
    assert tab.E[-1] == 1.0 and np.all(tab.E[:-1] == 0)


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
