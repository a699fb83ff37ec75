"""Helpers of benchmarks/bench_start.py that decide what its numbers mean (no benchmark runs).

- The plain-Matplotlib baseline of a figure has the figure's size, axes, lines and bands.
- A subprocess timing of the immunosim side is stretched by ``IMMUNOSIM_BENCH_SLOWDOWN``, the
  baselines' are not (that is what makes the gate fail on a slowed run).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCH))
import bench_start  # noqa: E402


def test_baseline_twin_has_the_shape_of_the_figure(tmp_path, monkeypatch):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7.0, 3.0))
    a, b, c = fig.subplots(1, 3)
    for k in range(4):
        a.plot([0, 1], [k, k])
    a.fill_between([0, 1], 0, 1)
    b.plot([0, 1], [0, 1])
    c.fill_between([0, 1], 0, 1)
    c.fill_between([0, 1], 1, 2)
    shape = bench_start.Shape.of(fig)
    assert shape == bench_start.Shape((7.0, 3.0), (4, 1, 0), (1, 0, 2))

    drawn = []
    monkeypatch.setattr(Figure, "savefig",
                        lambda self, path, **kw: drawn.append((self, Path(path), kw)))
    bench_start.draw_baseline([shape, shape], tmp_path, dpi=50)
    assert len(drawn) == 2
    twin, path, kw = drawn[0]
    assert bench_start.Shape.of(twin) == shape
    assert path.parent == tmp_path and kw == {"format": "png", "dpi": 50}


def test_only_the_measured_side_is_slowed(monkeypatch):
    cmd = [sys.executable, "-c", "import time; time.sleep(0.05)"]
    monkeypatch.setenv("IMMUNOSIM_BENCH_SLOWDOWN", "3")
    slowed = bench_start.timed_run(cmd, measured=True)
    plain = bench_start.timed_run(cmd, measured=False)
    assert slowed >= 3 * 0.05 and slowed > 2.0 * plain


def test_a_failing_command_stops_the_benchmark():
    with pytest.raises(SystemExit, match="failed \\(exit 3\\)"):
        bench_start.timed_run([sys.executable, "-c", "raise SystemExit(3)"], measured=False)
