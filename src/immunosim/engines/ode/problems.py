"""Reference problems with exact solutions, compiled into the same kernels as the model.

They let the engine's convergence order, dense output, dosing and failure handling be tested
against analytic answers through exactly the code path that integrates the SLE model.
Each problem is autonomous (the Rosenbrock methods here assume ``df/dt = 0``).
"""

from __future__ import annotations

import math

import numpy as np

from ..._numba_config import JIT


@JIT
def damped_rotation(t, y, p, dydt):
    """``y' = [[-a, -w], [w, -a]] y`` with ``p = (a, w)``; any further components decay at ``a``."""
    a = p[0]
    w = p[1]
    dydt[0] = -a * y[0] - w * y[1]
    dydt[1] = w * y[0] - a * y[1]
    for i in range(2, y.size):
        dydt[i] = -a * y[i]
    return 0


def damped_rotation_exact(t, y0, p):
    """Exact solution of :func:`damped_rotation`, shape ``(len(t), len(y0))``."""
    a, w = p[0], p[1]
    t = np.asarray(t, dtype=float)[:, None]
    e = np.exp(-a * t)
    c, s = np.cos(w * t), np.sin(w * t)
    out = np.empty((t.shape[0], len(y0)))
    out[:, 0:1] = e * (c * y0[0] - s * y0[1])
    out[:, 1:2] = e * (s * y0[0] + c * y0[1])
    out[:, 2:] = e * np.asarray(y0[2:])[None, :]
    return out


@JIT
def stiff_linear(t, y, p, dydt):
    """Two-component stiff linear system with eigenvalues ``-p[0]`` (slow) and ``-p[1]`` (fast).

    ``u = y0 + y1`` decays at ``p[0]``, ``v = y0 - y1`` at ``p[1]``.
    """
    lam_s = p[0]
    lam_f = p[1]
    u = y[0] + y[1]
    v = y[0] - y[1]
    du = -lam_s * u
    dv = -lam_f * v
    dydt[0] = 0.5 * (du + dv)
    dydt[1] = 0.5 * (du - dv)
    return 0


def stiff_linear_exact(t, y0, p):
    t = np.asarray(t, dtype=float)
    u0, v0 = y0[0] + y0[1], y0[0] - y0[1]
    u = u0 * np.exp(-p[0] * t)
    v = v0 * np.exp(-p[1] * t)
    return np.stack([0.5 * (u + v), 0.5 * (u - v)], axis=1)


@JIT
def blowup(t, y, p, dydt):
    """``y' = y^2``: finite-time blow-up at ``t = 1 / y(0)`` (step size underflow)."""
    for i in range(y.size):
        dydt[i] = y[i] * y[i]
    return 0


@JIT
def nan_source(t, y, p, dydt):
    """``y' = -1`` until ``y`` turns negative, then ``sqrt`` of a negative number (non-finite)."""
    for i in range(y.size):
        dydt[i] = -1.0 if y[i] > 0.5 else math.sqrt(y[i] - 1.0)
    return 0
