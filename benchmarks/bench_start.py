"""Start-up and figure times: warm start of the CLI, cold Numba compile, each figure family.

What it measures
----------------
1. **Warm start**: wall time of a fresh subprocess for ``python -c "import immunosim"``,
   ``immunosim --help``, ``immunosim validate configs/dose_timing.toml`` and ``immunosim info``,
   with two baselines measured in the same run: ``python -c "pass"`` (the interpreter) and
   ``python -c "import numpy"``. Each command runs once to warm the OS file cache, then
   ``repeats`` rounds, every command once per round (so all see the same machine load); the
   best round counts. Reported in seconds and as ratios over ``import numpy``. ``immunosim`` is
   the console script next to this Python (``python -m immunosim`` where there is none).
2. **Cold compile** (full tier, or ``--cold``): the first tiny sweep (the 4-patient warm-up
   config of ``bench_sweep.py``, ``immunosim sweep``) in a subprocess with ``NUMBA_CACHE_DIR``
   set to a fresh empty directory, then the same sweep again with that directory now filled.
   Compile time = cold - warm. About 40 s on 2 cores, which is why the quick tier leaves it out.
3. **Figures**: a small sweep with trajectories (30 patients; full tier 100, plus a tiny
   agent-based sweep for the ``abm`` family) is written with ``immunosim sweep`` and loaded into
   memory in this process. Each family of ``immunosim.plotting.api.FIGURES`` that the result
   supports is drawn once (imports, font cache), then timed ``rounds`` times: ``draw_figures``
   plus a PNG per figure (``write_png``, as ``immunosim plot`` writes it); best of the rounds.
   Its baseline, timed in the same rounds: plain Matplotlib figures of the same sizes, numbers
   of axes, lines and filled bands, saved to PNG at the same resolution (``savefig``). The
   ratio family / baseline makes a slow figure stand out whatever the machine's load.
   Full tier also: ``immunosim plot`` of that result (every family, PNG and SVG) as a user runs
   it, in a fresh process, best of 2 after a warm-up.

``IMMUNOSIM_BENCH_SLOWDOWN`` (``_slowdown.py``) stretches every immunosim-side timing (the
subprocesses that run immunosim, each figure family) by sleeping after it; the baselines
(``pass``, ``import numpy``, plain Matplotlib) are left alone. It reports numbers and asserts
nothing about speed; it exits 1 only if a command fails.

Usage: ``python benchmarks/bench_start.py [--quick] [--cold] [--json OUT]``
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import _slowdown
from bench_sweep import CONFIG as SWEEP_CONFIG

ROOT = Path(__file__).resolve().parents[1]
VALIDATE_CONFIG = ROOT / "configs" / "dose_timing.toml"
#: Issue 15's targets (seconds): the CLI warm, each figure.
CLI_TARGET, FIGURE_TARGET = 1.0, 3.0

FIGURE_CONFIG = """
name = "bench_start_figures"
seed = 1
horizon = 730
[scenarios.msc]
msc = {{ amount = 1e6, time = 0, interval = 60, count = 1 }}
[sweep.axes.amount]
target = "msc.amount"
logspace = {{ start = 1e5, stop = 1e7, num = 3 }}
[sweep.axes.n_infusions]
target = "msc.count"
values = [1, 2]
[cohort]
size = {size}
[cohort.parameters.activation_rate]
distribution = "lognormal"
median = 0.12
cv = 1.0
[cohort.parameters.reg_induction]
distribution = "lognormal"
median = 0.6
cv = 0.5
[output]
trajectories = true
trajectory_every = 14
"""

ABM_CONFIG = """
name = "bench_start_abm"
seed = 1
horizon = 365
[engine]
kind = "abm"
replicates = 4
system_size = 200
[scenarios.msc]
msc = { amount = 1e6, time = 0, interval = 60, count = 1 }
[sweep.axes.amount]
target = "msc.amount"
values = [1e5, 1e7]
[sweep.axes.n_infusions]
target = "msc.count"
values = [1, 2]
[cohort]
size = 4
[output]
trajectories = true
trajectory_every = 14
"""


def cli_command() -> list[str]:
    """``immunosim`` as a user runs it: the console script beside this Python if installed."""
    script = Path(sys.executable).parent / "immunosim"
    return [str(script)] if script.exists() else [sys.executable, "-m", "immunosim"]


def timed_run(cmd: list[str], measured: bool, env: dict | None = None) -> float:
    """Wall seconds of ``cmd`` in a fresh subprocess; padded by the slowdown if ``measured``."""
    t0 = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True, check=False, env=env)
    if measured:
        _slowdown.pad(t0)  # IMMUNOSIM_BENCH_SLOWDOWN: the CI gate's failure demonstration
    dt = time.perf_counter() - t0
    if r.returncode != 0:
        sys.exit(f"bench_start: {' '.join(cmd)} failed (exit {r.returncode}):\n{r.stderr}")
    return dt


def warm_start(repeats: int) -> dict:
    """Best-of-``repeats`` wall time of each start-up command, after one warm-up run each."""
    py, cli = sys.executable, cli_command()
    commands = {  # name -> (argv, immunosim side?)
        "python_pass": ([py, "-c", "pass"], False),
        "import_numpy": ([py, "-c", "import numpy"], False),
        "import_immunosim": ([py, "-c", "import immunosim"], True),
        "cli_help": ([*cli, "--help"], True),
        "cli_validate": ([*cli, "validate", str(VALIDATE_CONFIG)], True),
        "cli_info": ([*cli, "info"], True),
    }
    runs: dict[str, list[float]] = {name: [] for name in commands}
    for rnd in range(repeats + 1):
        for name, (cmd, measured) in commands.items():
            dt = timed_run(cmd, measured)
            if rnd:  # round 0 warms the OS file cache and Python's bytecode cache
                runs[name].append(dt)
    best = {name: min(ts) for name, ts in runs.items()}
    numpy_s = best["import_numpy"]
    return {
        "cli": cli, "repeats": repeats,
        "seconds": best, "runs": runs,
        "ratios_over_import_numpy": {n: s / numpy_s for n, s in best.items()},
    }


def cold_compile(workdir: Path) -> dict:
    """The first 4-patient sweep with an empty Numba cache directory, then with it filled."""
    cfg = workdir / "compile.toml"
    cfg.write_text(SWEEP_CONFIG.format(size=4))
    env = dict(os.environ, NUMBA_CACHE_DIR=str(workdir / "numba_cache"))
    times = []
    for tag in ("cold", "warm"):
        cmd = [*cli_command(), "sweep", str(cfg), "-o", str(workdir / f"{tag}.zarr"), "--quiet"]
        times.append(timed_run(cmd, True, env))
    cold, warm = times
    return {"cold_seconds": cold, "warm_seconds": warm, "compile_seconds": cold - warm,
            "ratio_cold_over_warm": cold / warm}


@dataclass(frozen=True)
class Shape:
    """What a plain-Matplotlib twin of one figure needs: size (inches), per-axes lines/bands."""

    size: tuple[float, float]
    lines: tuple[int, ...]
    bands: tuple[int, ...]

    @classmethod
    def of(cls, fig) -> Shape:
        return cls(tuple(float(x) for x in fig.get_size_inches()),
                   tuple(len(ax.lines) for ax in fig.axes),
                   tuple(len(ax.collections) for ax in fig.axes))


def draw_baseline(shapes: list[Shape], out: Path, dpi: float) -> None:
    """Plain Matplotlib figures shaped like ``shapes``, each saved to PNG (the baseline)."""
    import numpy as np
    from matplotlib.figure import Figure

    x = np.linspace(0.0, 730.0, 53)  # a two-year trajectory saved every 14 d
    for i, s in enumerate(shapes):
        fig = Figure(figsize=s.size)
        axes = fig.subplots(1, max(len(s.lines), 1), squeeze=False)[0]
        for ax, n_lines, n_bands in zip(axes, s.lines, s.bands):
            for k in range(n_lines):
                ax.plot(x, np.sin(x / 100.0 + k) + k)
            for k in range(n_bands):
                ax.fill_between(x, k + np.sin(x / 50.0), k + 1.0, alpha=0.3)
        fig.savefig(out / f"baseline_{i}.png", format="png", dpi=dpi)


def time_family(name: str, ds, out: Path) -> tuple[float, list[Shape]]:
    """Seconds to draw family ``name`` from ``ds`` and write each figure as PNG."""
    from immunosim.plotting.api import draw_figures, write_png

    t0 = time.perf_counter()
    drawn, _ = draw_figures(ds, [name])
    for _, spec in drawn:
        write_png(spec.figure, out / f"{spec.stem}.png")
    _slowdown.pad(t0)  # IMMUNOSIM_BENCH_SLOWDOWN: the CI gate's failure demonstration
    return time.perf_counter() - t0, [Shape.of(spec.figure) for _, spec in drawn]


def cli_plot(result: Path, out: Path, repeats: int = 2) -> dict:
    """Best-of-``repeats`` wall time of ``immunosim plot RESULT -o OUT`` after a warm-up."""
    cmd = [*cli_command(), "plot", str(result), "-o", str(out)]
    runs = [timed_run(cmd, True) for _ in range(repeats + 1)][1:]
    return {"seconds": min(runs), "runs": runs,
            "files": sum(p.suffix in (".png", ".svg") for p in out.iterdir())}


def figure_times(workdir: Path, patients: int, rounds: int, full: bool) -> dict:
    """Time each figure family against its plain-Matplotlib baseline (see the module doc);
    ``full``: also the ``abm`` family (from a tiny agent-based sweep) and ``immunosim plot``."""
    results = {"ode": (FIGURE_CONFIG.format(size=patients), "figures.zarr")}
    if full:
        results["abm"] = (ABM_CONFIG, "abm.zarr")
    sweep_s = {}
    for kind, (text, store) in results.items():
        cfg = workdir / f"{kind}.toml"
        cfg.write_text(text)
        cmd = [*cli_command(), "sweep", str(cfg), "-o", str(workdir / store), "--quiet"]
        sweep_s[kind] = timed_run(cmd, False)
    t0 = time.perf_counter()
    from immunosim.plotting._data import PlotError, open_result
    from immunosim.plotting._style import DPI
    from immunosim.plotting.api import FIGURES
    import_s = time.perf_counter() - t0
    data = {kind: open_result(workdir / store)[0].load() for kind, (_, store) in results.items()}
    out = workdir / "png"
    out.mkdir()
    first, shapes, skipped = {}, {}, {}
    for name in FIGURES:  # first draw: imports, font cache, the family's own set-up
        ds = data["abm" if name == "abm" and full else "ode"]
        try:
            first[name], shapes[name] = time_family(name, ds, out)
        except PlotError as e:
            skipped[name] = str(e)
    fam: dict[str, list[float]] = {n: [] for n in shapes}
    base: dict[str, list[float]] = {n: [] for n in shapes}
    for _ in range(rounds):
        for name in shapes:
            ds = data["abm" if name == "abm" else "ode"]
            fam[name].append(time_family(name, ds, out)[0])
            t0 = time.perf_counter()
            draw_baseline(shapes[name], out, DPI)
            base[name].append(time.perf_counter() - t0)
    families = {}
    for name in shapes:
        s, b = min(fam[name]), min(base[name])
        families[name] = {
            "seconds": s, "baseline_seconds": b, "ratio": s / b, "first_draw_seconds":
            first[name], "figures": len(shapes[name]),
            "axes": sum(len(x.lines) for x in shapes[name]),
            "lines": sum(sum(x.lines) for x in shapes[name]),
        }
    worst = max(families, key=lambda n: families[n]["ratio"])
    plot = cli_plot(workdir / "figures.zarr", workdir / "plot") if full else None
    return {"patients": patients, "rounds": rounds, "sweep_seconds": sweep_s, "cli_plot": plot,
            "import_seconds": import_s, "families": families, "skipped": skipped,
            "worst": worst, "worst_ratio": families[worst]["ratio"],
            "slowest": max(families, key=lambda n: families[n]["seconds"])}


def report(res: dict) -> None:
    """Print the numbers of ``res`` for people."""
    w = res["warm_start"]
    print(f"start-up benchmark ({res['tier']} tier; load average {res['load_average']})")
    print(f"  warm start, best of {w['repeats']} fresh processes (immunosim = "
          f"{' '.join(w['cli'])}):")
    for name, s in w["seconds"].items():
        target = (f"   target < {CLI_TARGET:g} s: {'met' if s < CLI_TARGET else 'NOT met'}"
                  if name.startswith("cli_") else "")
        print(f"    {name:<17} {s:7.3f} s  {w['ratios_over_import_numpy'][name]:6.2f}x "
              f"import numpy{target}")
    c = res["cold_compile"]
    if c is None:
        print("  cold compile: not measured (full tier or --cold)")
    else:
        print(f"  cold compile, first 4-patient sweep: {c['cold_seconds']:.1f} s with an empty "
              f"Numba cache, {c['warm_seconds']:.1f} s with it filled: ratio "
              f"{c['ratio_cold_over_warm']:.1f}, compile {c['compile_seconds']:.1f} s")
    f = res["figures"]
    print(f"  figures from a {f['patients']}-patient sweep (sweep "
          f"{', '.join(f'{k} {v:.1f} s' for k, v in f['sweep_seconds'].items())}; plotting "
          f"import {f['import_seconds']:.1f} s), best of {f['rounds']}, PNG written:")
    for name, x in f["families"].items():
        print(f"    {name:<16} {x['seconds']:6.2f} s ({x['figures']} figure(s), {x['axes']} "
              f"axes)  baseline {x['baseline_seconds']:5.2f} s  ratio {x['ratio']:5.2f}  "
              f"first draw {x['first_draw_seconds']:5.2f} s  target < {FIGURE_TARGET:g} s: "
              f"{'met' if x['seconds'] < FIGURE_TARGET else 'NOT met'}")
    for name, why in f["skipped"].items():
        print(f"    {name:<16} skipped: {why}")
    if f["cli_plot"]:
        print(f"  immunosim plot of that result (all families, PNG + SVG, "
              f"{f['cli_plot']['files']} files): {f['cli_plot']['seconds']:.1f} s")
    print(f"  worst figure over its baseline: {f['worst']} ({f['worst_ratio']:.2f}); slowest: "
          f"{f['slowest']}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true",
                    help="CI tier: 5 rounds, 30 patients, no cold compile (about 40 s)")
    ap.add_argument("--cold", action="store_true",
                    help="also time the cold compile in the quick tier (about 45 s more)")
    ap.add_argument("--json", help="write the numbers to this file")
    args = ap.parse_args(argv)
    quick = args.quick
    res: dict = {"benchmark": "start", "tier": "quick" if quick else "full",
                 "slowdown": _slowdown.factor(), "python": sys.version.split()[0],
                 "load_average": " ".join(f"{x:.2f}" for x in os.getloadavg())}
    res["warm_start"] = warm_start(5 if quick else 10)
    with tempfile.TemporaryDirectory() as d:
        res["cold_compile"] = cold_compile(Path(d)) if args.cold or not quick else None
    with tempfile.TemporaryDirectory() as d:
        res["figures"] = figure_times(Path(d), 30 if quick else 100, 3, full=not quick)
    w = res["warm_start"]["ratios_over_import_numpy"]
    res["ratios"] = {f"{n}_over_import_numpy": w[n]
                     for n in ("import_immunosim", "cli_help", "cli_validate", "cli_info")}
    res["ratios"]["figure_worst_over_matplotlib"] = res["figures"]["worst_ratio"]
    secs = res["warm_start"]["seconds"]
    res["targets"] = {
        "cli_warm_under_1s": all(secs[n] < CLI_TARGET for n in secs if n.startswith("cli_")),
        "figures_under_3s": all(x["seconds"] < FIGURE_TARGET
                                for x in res["figures"]["families"].values()),
    }
    report(res)
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
