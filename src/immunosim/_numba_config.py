"""One place for Numba compilation flags (stumpy/numbagg convention).

Every kernel in immunosim is decorated through :data:`JIT` or :data:`JIT_PARALLEL`, never with
hard-coded flags, so that caching or fastmath can be switched for the whole package at once.

``cache=True`` keeps compiled machine code in ``__pycache__`` so that only the first import on a
machine pays the compile cost. ``fastmath`` stays off: the solvers compare against scipy at tight
tolerances and reassociation would make results depend on the compiler's vectorisation choices.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numba

#: Flags for serial kernels (RHS, one RK step, one trajectory).
JIT_FLAGS: dict = {"cache": True, "nogil": True, "fastmath": False, "error_model": "numpy"}

#: Flags for model right-hand sides written in the strided layout (``rhs_at``): inlined at Numba-IR
#: level into each caller, so that a loop over SIMD lanes around them can be vectorised.
JIT_INLINE_FLAGS: dict = {**JIT_FLAGS, "inline": "always"}

#: Flags for the lane loops around inlined right-hand sides (``_rhs.rhs_lanes``). They allocate
#: nothing, and without Numba's reference counting (``_nrt=False``) the calls that inlining leaves
#: in the loop body (array increfs) are gone, so LLVM can vectorise it across lanes.
JIT_NO_NRT_FLAGS: dict = {**JIT_FLAGS, "_nrt": False}

#: Flags for the batch drivers that run ``prange`` over trajectories.
JIT_PARALLEL_FLAGS: dict = {**JIT_FLAGS, "parallel": True}

#: Modules whose functions are compiled into the cached kernels. Numba keys a kernel's cache on
#: its own source file only, so a kernel that inlines ``sle_msc.rhs`` keeps running the *old*
#: model after ``sle_msc.py`` is edited. :func:`invalidate_stale_caches` guards against that.
KERNEL_SOURCES = (
    "_numba_config.py",
    "_vmath.py",
    "_simd.py",
    "model/sle_msc.py",
    "model/interventions.py",
    "model/steady_states.py",
    "engines/events.py",
    "engines/abm/_kernels.py",
    "engines/abm/_model.py",
    "engines/ode/_kernels.py",
    "engines/ode/_lanes.py",
    "engines/ode/_rhs.py",
    "engines/ode/problems.py",
    "engines/ode/status.py",
    "engines/ode/tableaus.py",
    "engines/abm/_random.py",
    "experiments/outcomes.py",
)
_PACKAGE = Path(__file__).resolve().parent


def sources_digest(root: Path = _PACKAGE) -> str:
    h = hashlib.sha256()
    for rel in KERNEL_SOURCES:
        f = root / rel
        h.update(rel.encode())
        h.update(f.read_bytes() if f.exists() else b"")
    return h.hexdigest()


def invalidate_stale_caches(root: Path = _PACKAGE) -> bool:
    """Delete this package's Numba cache files if any kernel source changed since they were
    written. Returns True if caches were removed. Silent where the tree is read-only."""
    stamp = root / "__pycache__" / "numba_sources.sha256"
    digest = sources_digest(root)
    try:
        if stamp.exists() and stamp.read_text() == digest:
            return False
        dirs = [root]
        if numba.config.CACHE_DIR:
            dirs.append(Path(numba.config.CACHE_DIR))
        removed = False
        for d in dirs:
            for f in list(d.rglob("*.nbi")) + list(d.rglob("*.nbc")):
                if d is root or "immunosim" in str(f):
                    f.unlink(missing_ok=True)
                    removed = True
        stamp.parent.mkdir(exist_ok=True)
        stamp.write_text(digest)
        return removed
    except OSError:  # read-only install: nothing to guard (and nothing can go stale)
        return False


invalidate_stale_caches()

JIT = numba.njit(**JIT_FLAGS)
JIT_PARALLEL = numba.njit(**JIT_PARALLEL_FLAGS)
JIT_INLINE = numba.njit(**JIT_INLINE_FLAGS)
JIT_NO_NRT = numba.njit(**JIT_NO_NRT_FLAGS)


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


__all__ = ["JIT", "JIT_INLINE", "JIT_NO_NRT", "JIT_PARALLEL", "JIT_FLAGS", "JIT_INLINE_FLAGS",
           "JIT_NO_NRT_FLAGS", "JIT_PARALLEL_FLAGS", "invalidate_stale_caches", "set_num_threads"]
