"""Right-hand-side dispatch: the kernels call ``rhs_dispatch(model_id, ...)``.

Numba caches a kernel only when the functions it calls are module globals (a kernel closed over
an RHS passed in at run time is recompiled in every process), so models are registered here by
integer id. Adding a model = one import and one branch; ids are stable and listed in
:data:`MODEL_IDS`.
"""

from __future__ import annotations

from ..._numba_config import JIT
from ...model import sle_msc
from . import problems

MODEL_IDS: dict[str, int] = {
    "sle_msc": 0,
    "test:damped_rotation": 100,
    "test:stiff_linear": 101,
    "test:blowup": 102,
    "test:nan_source": 103,
}


@JIT
def rhs_dispatch(model_id, t, y, p, dydt):
    if model_id == 0:
        return sle_msc.rhs(t, y, p, dydt)
    elif model_id == 100:
        return problems.damped_rotation(t, y, p, dydt)
    elif model_id == 101:
        return problems.stiff_linear(t, y, p, dydt)
    elif model_id == 102:
        return problems.blowup(t, y, p, dydt)
    else:
        return problems.nan_source(t, y, p, dydt)
