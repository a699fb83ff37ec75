"""Reference problems with exact solutions, compiled into the same kernels as the model.

They let the engine's convergence order, dense output, dosing and failure handling be tested
against analytic answers through exactly the code path that integrates the SLE model.
Each problem is autonomous (the Rosenbrock methods here assume ``df/dt = 0``). Like the model,
each is written once in the strided layout (``*_at(t, y, p, dydt, l, s)``: element ``i`` of lane
``l`` at ``i * s + l``) and viewed as a plain ``f(t, y, p, dydt)``.
"""

from __future__ import annotations

import math

import numpy as np

from ..._numba_config import JIT, JIT_INLINE


@JIT_INLINE
def damped_rotation_at(t, y, p, dydt, l, s):
    """``y' = [[-a, -w], [w, -a]] y`` with ``p = (a, w)``; any further components decay at ``a``."""
    a = p[l]
    w = p[s + l]
    dydt[l] = -a * y[l] - w * y[s + l]
    dydt[s + l] = w * y[l] - a * y[s + l]
    for i in range(2, y.size // s):
        dydt[i * s + l] = -a * y[i * s + l]
    return 0


@JIT
def damped_rotation(t, y, p, dydt):
    return damped_rotation_at(t, y, p, dydt, 0, 1)


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


@JIT_INLINE
def stiff_linear_at(t, y, p, dydt, l, s):
    """Two-component stiff linear system with eigenvalues ``-p[0]`` (slow) and ``-p[1]`` (fast).

    ``u = y0 + y1`` decays at ``p[0]``, ``v = y0 - y1`` at ``p[1]``.
    """
    lam_s = p[l]
    lam_f = p[s + l]
    u = y[l] + y[s + l]
    v = y[l] - y[s + l]
    du = -lam_s * u
    dv = -lam_f * v
    dydt[l] = 0.5 * (du + dv)
    dydt[s + l] = 0.5 * (du - dv)
    return 0


@JIT
def stiff_linear(t, y, p, dydt):
    return stiff_linear_at(t, y, p, dydt, 0, 1)


def stiff_linear_exact(t, y0, p):
    t = np.asarray(t, dtype=float)
    u0, v0 = y0[0] + y0[1], y0[0] - y0[1]
    u = u0 * np.exp(-p[0] * t)
    v = v0 * np.exp(-p[1] * t)
    return np.stack([0.5 * (u + v), 0.5 * (u - v)], axis=1)


@JIT_INLINE
def blowup_at(t, y, p, dydt, l, s):
    """``y' = y^2``: finite-time blow-up at ``t = 1 / y(0)`` (step size underflow)."""
    for i in range(y.size // s):
        dydt[i * s + l] = y[i * s + l] * y[i * s + l]
    return 0


@JIT
def blowup(t, y, p, dydt):
    return blowup_at(t, y, p, dydt, 0, 1)


@JIT_INLINE
def nan_source_at(t, y, p, dydt, l, s):
    """``y' = -1`` until ``y`` falls below 0.5, then ``sqrt`` of a negative number (non-finite)."""
    for i in range(y.size // s):
        v = y[i * s + l]
        dydt[i * s + l] = -1.0 if v > 0.5 else math.sqrt(v - 1.0)
    return 0


@JIT
def nan_source(t, y, p, dydt):
    return nan_source_at(t, y, p, dydt, 0, 1)
