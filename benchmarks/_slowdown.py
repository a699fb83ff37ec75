"""A deliberate slowdown of the measured side of a benchmark, to show that the CI gate can fail.

``IMMUNOSIM_BENCH_SLOWDOWN=<factor>`` (a number >= 1; unset or 1: no effect) makes each timed
region of the side a benchmark measures (the engine, the sweep, Dask, the agent-based kernel,
the immunosim subprocesses and figure families of ``bench_start``) take ``factor`` times as
long: at the end of the region it sleeps ``(factor - 1)`` times the region's own duration. The
baseline side (LSODA, the raw engine, the local sweep, the Python reference, ``import numpy``,
plain Matplotlib) is left alone, so every gated speed-up of that benchmark drops by about
``factor`` and every gated time ratio (lower is better) rises by about as much.

Only the benchmark scripts read this variable; the package (``src/``) never does. The factor in
force is stored in each benchmark's JSON (``"slowdown"``), and ``gate.py --rebaseline`` refuses
such JSON.
"""

from __future__ import annotations

import os
import sys
import time

ENV = "IMMUNOSIM_BENCH_SLOWDOWN"
_warned = False


def factor() -> float:
    """The slowdown factor from the environment (1.0 when unset)."""
    raw = os.environ.get(ENV, "").strip()
    if not raw:
        return 1.0
    try:
        f = float(raw)
    except ValueError:
        raise SystemExit(f"{ENV}={raw!r}: expected a number >= 1") from None
    if not f >= 1.0:
        raise SystemExit(f"{ENV}={raw!r}: expected a number >= 1")
    global _warned
    if f > 1.0 and not _warned:
        _warned = True
        print(f"{ENV}={f:g}: the measured side is deliberately slowed (gate demonstration)",
              file=sys.stderr)
    return f


def pad(t0: float) -> None:
    """End of a timed region begun at ``time.perf_counter() == t0``: stretch it by the factor."""
    f = factor()
    if f > 1.0:
        time.sleep((f - 1.0) * (time.perf_counter() - t0))
