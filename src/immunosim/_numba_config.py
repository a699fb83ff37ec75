"""One place for Numba compilation flags (stumpy/numbagg convention).

Every kernel in immunosim is decorated through :data:`JIT` or :data:`JIT_PARALLEL`, never with
hard-coded flags, so that caching or fastmath can be switched for the whole package at once.

``cache=True`` keeps compiled machine code in ``__pycache__`` so that only the first import on a
machine pays the compile cost. ``fastmath`` stays off: the solvers compare against scipy at tight
tolerances and reassociation would make results depend on the compiler's vectorisation choices.
"""

from __future__ import annotations

import numba

#: Flags for serial kernels (RHS, one RK step, one trajectory).
JIT_FLAGS: dict = {"cache": True, "nogil": True, "fastmath": False, "error_model": "numpy"}

#: Flags for the batch drivers that run ``prange`` over trajectories.
JIT_PARALLEL_FLAGS: dict = {**JIT_FLAGS, "parallel": True}

JIT = numba.njit(**JIT_FLAGS)
JIT_PARALLEL = numba.njit(**JIT_PARALLEL_FLAGS)


def set_num_threads(n: int | None) -> int:
    """Set the number of Numba worker threads (``None`` keeps the current value).

    Returns
    -------
    int
        The number of threads now in use.
    """
    if n is not None:
        if n < 1:
            raise ValueError(f"threads: {n!r} is not a positive integer")
        numba.set_num_threads(min(int(n), numba.config.NUMBA_NUM_THREADS))
    return numba.get_num_threads()


__all__ = ["JIT", "JIT_PARALLEL", "JIT_FLAGS", "JIT_PARALLEL_FLAGS", "set_num_threads"]
