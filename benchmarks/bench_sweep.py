"""Sweep throughput next to the raw engine's, and peak memory of a 10x larger sweep.

What it measures
----------------
1. **Throughput**: a dose-timing grid (amount x first day x doses, over a virtual cohort) run with
   ``immunosim.sweep`` to a Zarr store, in runs (points x patients) per second, next to the
   raw batched engine on the *same* runs (``engines.ode.solver.solve`` with the same parameters,
   initial states and events, no outcome reduction or I/O). The ratio sweep/engine is the cost
   of the experiment layer (cohort set-up, events, outcomes, Zarr writes).
2. **Memory**: peak resident memory (``ru_maxrss`` of a fresh child process) of the sweep at N
   patients and at 10 N patients. Only one engine batch is held at a time, so the peak should
   stay flat (the ratio near 1), while the runs grow ten-fold.

Both sweeps run after a warm-up, so Numba compilation is excluded (its time is printed apart).
It reports numbers; it asserts nothing about speed.

3. **Memory at scale** (``--memory``, a few minutes; not part of the tiers): peak RSS of sweeps
   of 1e5 and 1e6 point-patients, outcomes only, each in a fresh process: one cohort of
   1,000 patients at 100 and at 1,000 design points (MSC amount x number of infusions), one
   year, blocks of 1,000 patients. Nothing a sweep holds should grow with the points: the
   ratio should stay within 1.2.

Usage: ``python benchmarks/bench_sweep.py [--quick] [--memory] [--json OUT]``
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import _slowdown

CONFIG = """
name = "bench_sweep"
seed = 1
horizon = 730
[scenarios.msc]
msc = {{ amount = 1e6, time = 0, interval = 60, count = 1 }}
[sweep.axes.amount]
target = "msc.amount"
logspace = {{ start = 1e5, stop = 1e7, num = 4 }}
[sweep.axes.first_day]
target = "msc.time"
values = [0, 91, 183]
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
chunk_size = 256
"""

#: ``--memory``: 1,000 patients at ``2 * {amounts}`` design points, outcomes only.
MEMORY_CONFIG = """
name = "bench_sweep_memory"
seed = 1
horizon = 365
[scenarios.msc]
msc = {{ amount = 1e6, time = 0, interval = 60, count = 1 }}
[sweep.axes.amount]
target = "msc.amount"
logspace = {{ start = 1e5, stop = 1e7, num = {amounts} }}
[sweep.axes.n_infusions]
target = "msc.count"
values = [1, 2]
[cohort]
size = 1000
[cohort.parameters.activation_rate]
distribution = "lognormal"
median = 0.12
cv = 1.0
[output]
chunk_size = 1000
"""

CHILD = r"""
import resource, sys, time, json
from immunosim.experiments.config import load_config
from immunosim.experiments.sweep import sweep
cfg = load_config(sys.argv[1])
t = time.perf_counter()
sweep(cfg, sys.argv[2], progress=False, workers=int(sys.argv[3]))
time.sleep((float(sys.argv[4]) - 1.0) * (time.perf_counter() - t))  # IMMUNOSIM_BENCH_SLOWDOWN
dt = time.perf_counter() - t
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"seconds": dt, "maxrss_mb": rss}))
"""


def child_sweep(cfg_path: Path, out: Path, workers: int) -> dict:
    r = subprocess.run([sys.executable, "-c", CHILD, str(cfg_path), str(out), str(workers),
                        str(_slowdown.factor())],
                       capture_output=True, text=True, check=False)
    if r.returncode != 0:
        sys.exit(f"bench_sweep: child sweep failed:\n{r.stderr}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def engine_same_runs(cfg, workers: int) -> tuple[float, int]:
    """The raw engine on exactly the runs of the sweep (no outcomes, no I/O)."""
    import numpy as np

    from immunosim.engines.ode.solver import EventTable, solve
    from immunosim.experiments.design import apply_point
    from immunosim.experiments.sweep import plan
    from immunosim.model.interventions import apply_parameters, schedule

    p = plan(cfg)
    params, events, y0 = [], [], []
    for b in p.blocks:
        sc = p.scenarios[b.scenario]
        for i in range(b.patients.start, b.patients.stop):
            ivs, q = apply_point(p.design, b.point, sc, p.cohort.params[i])
            q = apply_parameters(ivs, q)
            params.append(q)
            events.append(schedule(ivs, q))
            y0.append(p.cohort.y0[i])
    params, y0 = np.stack(params), np.stack(y0)
    ev = EventTable.from_lists(events)
    t = time.perf_counter()
    sol = solve(y0, params, p.t_assess, events=ev, threads=workers)
    dt = time.perf_counter() - t
    if not sol.success.all():
        sys.exit(f"bench_sweep: engine failures: {sol.summary()}")
    return dt, params.shape[0]


def memory(workers: int) -> dict:
    """Peak RSS of sweeps of 1e5 and 1e6 point-patients (fresh processes, outcomes only)."""
    res = {}
    with tempfile.TemporaryDirectory() as d:
        d = Path(d)
        for tag, amounts in (("1e5", 50), ("1e6", 500)):
            cfg = d / f"{tag}.toml"
            cfg.write_text(MEMORY_CONFIG.format(amounts=amounts))
            r = child_sweep(cfg, d / f"{tag}.zarr", workers)
            runs = 2 * amounts * 1000
            res[f"memory_{tag}_peak_rss_mb"] = r["maxrss_mb"]
            res[f"memory_{tag}_runs_per_s"] = runs / r["seconds"]
            print(f"  {runs:>9,} point-patients: peak RSS {r['maxrss_mb']:5.0f} MB, "
                  f"{r['seconds']:6.1f} s ({runs / r['seconds']:.0f} runs/s)", flush=True)
    res["memory_rss_ratio_1e6_over_1e5"] = (res["memory_1e6_peak_rss_mb"]
                                            / res["memory_1e5_peak_rss_mb"])
    print(f"  peak RSS ratio 1e6 / 1e5: {res['memory_rss_ratio_1e6_over_1e5']:.2f}")
    return res


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="CI tier: small cohorts")
    ap.add_argument("--json", help="write the numbers to this file")
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--memory", action="store_true",
                    help="only the peak RSS of sweeps of 1e5 and 1e6 point-patients (minutes)")
    args = ap.parse_args(argv)
    if args.memory:
        print(f"sweep memory benchmark ({args.workers} threads)")
        res = {"workers": args.workers, "tier": "memory", "benchmark": "sweep",
               **memory(args.workers)}
        if args.json:
            Path(args.json).write_text(json.dumps(res, indent=1))
        return 0
    n_small = 20 if args.quick else 100
    from immunosim.experiments.config import load_config

    res: dict = {"workers": args.workers, "tier": "quick" if args.quick else "full",
                 "benchmark": "sweep", "slowdown": _slowdown.factor()}
    with tempfile.TemporaryDirectory() as d:
        d = Path(d)
        paths = {}
        for tag, n in (("warm", 4), ("small", n_small), ("large", 10 * n_small)):
            paths[tag] = d / f"{tag}.toml"
            paths[tag].write_text(CONFIG.format(size=n))
        t = time.perf_counter()
        warm = child_sweep(paths["warm"], d / "warm.zarr", args.workers)
        res["first_process_seconds"] = time.perf_counter() - t
        res["warm_sweep_seconds"] = warm["seconds"]
        small = child_sweep(paths["small"], d / "small.zarr", args.workers)
        large = child_sweep(paths["large"], d / "large.zarr", args.workers)
        cfg = load_config(paths["small"])
        engine_same_runs(load_config(paths["warm"]), args.workers)  # compile / load cache
        eng_s, n_runs = engine_same_runs(cfg, args.workers)
    runs_small = n_runs
    res.update({
        "runs_small": runs_small, "runs_large": 10 * runs_small,
        "sweep_runs_per_s": runs_small / small["seconds"],
        "sweep_large_runs_per_s": 10 * runs_small / large["seconds"],
        "engine_runs_per_s": runs_small / eng_s,
        "peak_rss_small_mb": small["maxrss_mb"], "peak_rss_large_mb": large["maxrss_mb"],
    })
    res["sweep_over_engine"] = res["sweep_runs_per_s"] / res["engine_runs_per_s"]
    res["rss_ratio_large_over_small"] = res["peak_rss_large_mb"] / res["peak_rss_small_mb"]
    print(f"sweep benchmark ({res['tier']} tier, {args.workers} threads)")
    print(f"  first process incl. imports/cache load: {res['first_process_seconds']:.1f} s")
    print(f"  raw engine, same runs:   {res['engine_runs_per_s']:8.0f} runs/s")
    print(f"  sweep (outcomes + Zarr): {res['sweep_runs_per_s']:8.0f} runs/s "
          f"({res['runs_small']} runs)  -> {res['sweep_over_engine']:.2f} of the engine's rate")
    print(f"  sweep, 10x larger:       {res['sweep_large_runs_per_s']:8.0f} runs/s "
          f"({res['runs_large']} runs)")
    print(f"  peak RSS: {res['peak_rss_small_mb']:.0f} MB ({res['runs_small']} runs) vs "
          f"{res['peak_rss_large_mb']:.0f} MB ({res['runs_large']} runs): ratio "
          f"{res['rss_ratio_large_over_small']:.2f}")
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
