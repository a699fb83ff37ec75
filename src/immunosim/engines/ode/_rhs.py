"""Right-hand-side dispatch: the kernels call ``rhs_dispatch`` (one trajectory) or ``rhs_lanes``
(``LANES`` trajectories at once).

Numba caches a kernel only when the functions it calls are module globals (a kernel closed over
an RHS passed in at run time is recompiled in every process), so models are registered here by
integer id. Adding a model = one import and one branch in each function; ids are stable and
listed in :data:`MODEL_IDS`.

Every model is written once, in the strided layout ``f_at(t, y, p, dydt, l, s)`` (element ``i``
of lane ``l`` at ``i * s + l``), and inlined here. ``rhs_lanes`` wraps it in a loop over the
``LANES`` lanes with the stride a compile-time constant, which LLVM vectorises across
trajectories: the same arithmetic, in the same order, as one trajectory at a time, so the two
paths give bitwise-identical results (tested), only faster.
"""

from __future__ import annotations

from ..._numba_config import JIT, JIT_NO_NRT
from ...model import sle_msc
from . import problems

MODEL_IDS: dict[str, int] = {
    "sle_msc": 0,
    "test:damped_rotation": 100,
    "test:stiff_linear": 101,
    "test:blowup": 102,
    "test:nan_source": 103,
}

#: Trajectories integrated side by side by the lane kernels. A multiple of the SIMD width (8
#: doubles with AVX-512, 4 with AVX2) and at least 16, below which LLVM does not vectorise a loop
#: that needs run-time alias checks.
LANES = 16


@JIT
def rhs_dispatch(model_id, t, y, p, dydt):
    """``dydt = f(t, y; p)`` for one trajectory, ``y (n,)``, ``p (n_params,)``."""
    if model_id == 0:
        return sle_msc.rhs_at(t, y, p, dydt, 0, 1)
    elif model_id == 100:
        return problems.damped_rotation_at(t, y, p, dydt, 0, 1)
    elif model_id == 101:
        return problems.stiff_linear_at(t, y, p, dydt, 0, 1)
    elif model_id == 102:
        return problems.blowup_at(t, y, p, dydt, 0, 1)
    else:
        return problems.nan_source_at(t, y, p, dydt, 0, 1)


@JIT_NO_NRT
def rhs_lanes(model_id, t, y, p, dydt):
    """``f`` for ``LANES`` trajectories in the lane layout: ``t (LANES,)``, ``y (n * LANES,)``,
    ``p (n_params * LANES,)``, ``dydt (n * LANES,)``, element ``i`` of lane ``l`` at
    ``i * LANES + l``."""
    if model_id == 0:
        for l in range(LANES):
            sle_msc.rhs_at(t[l], y, p, dydt, l, LANES)
    elif model_id == 100:
        for l in range(LANES):
            problems.damped_rotation_at(t[l], y, p, dydt, l, LANES)
    elif model_id == 101:
        for l in range(LANES):
            problems.stiff_linear_at(t[l], y, p, dydt, l, LANES)
    elif model_id == 102:
        for l in range(LANES):
            problems.blowup_at(t[l], y, p, dydt, l, LANES)
    else:
        for l in range(LANES):
            problems.nan_source_at(t[l], y, p, dydt, l, LANES)
    return 0
