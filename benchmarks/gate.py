"""CI gate on benchmark ratios: compare the quick tiers' ratios with a committed baseline.

Reads the JSON written by ``bench_engine.py``, ``bench_sweep.py``, ``bench_distributed.py``,
``bench_abm.py``, ``bench_start.py`` and ``bench_calibrate.py`` (``--json``), extracts a few
named *ratios* (each measured against a baseline in the same run, never an absolute time), and
compares each with ``benchmarks/baseline.json``:

- higher is better (speed-ups): fail if ``ratio < baseline / band``;
- lower is better (the peak-memory growth of the sweep, start-up and figure times over their
  baselines): fail if ``ratio > baseline * band``.

The default band is 2.5, generous because the CI machines are shared (a second job on a 2-core
machine moves a ratio by 20-50 %). A ratio whose benchmark JSON was not given, or an optional
ratio whose measurement is absent (numbalsoda not built), or a ratio without a baseline entry,
is skipped with a note. Prints a table and exits 1 if any ratio regressed (one line of reason
per failing ratio), 2 on unusable input.

``--rebaseline`` rewrites the baseline file from the given JSON instead (the deliberate way to
move it; see benchmarks/README.md); given several directories, each one run, it takes the median
of each ratio over them. Bands already in the file are kept. ``--only NAME`` (repeatable)
rewrites only the named ratios' entries and leaves every other entry as it was.

Usage::

    python benchmarks/gate.py DIR     # DIR/{engine,sweep,distributed,abm,start,calibrate}.json
    python benchmarks/gate.py engine.json abm.json   # named by their "benchmark" key or stem
    python benchmarks/gate.py --rebaseline DIR       # rewrite benchmarks/baseline.json
    python benchmarks/gate.py --rebaseline D1 D2 D3  # from the median over three runs
    python benchmarks/gate.py --rebaseline --only cli_help_over_import_numpy D1 D2 D3
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as _dt
import json
import math
import os
import platform
import statistics
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEFAULT_BASELINE = HERE / "baseline.json"
DEFAULT_BAND = 2.5
BENCHMARKS = ("engine", "sweep", "distributed", "abm", "start", "calibrate")


@dataclass(frozen=True)
class Ratio:
    name: str
    bench: str
    source: str  # where in the benchmark's JSON, for people
    get: Callable[[dict], float | None]
    what: str
    optional: bool = False
    higher_is_better: bool = True
    band: float = DEFAULT_BAND


def _path(*keys: str) -> Callable[[dict], float | None]:
    def get(d: dict) -> float | None:
        for k in keys:
            if not isinstance(d, dict) or d.get(k) is None:
                return None
            d = d[k]
        return d

    return get


def _quotient(num: Callable, den: Callable) -> Callable[[dict], float | None]:
    def get(d: dict) -> float | None:
        a, b = num(d), den(d)
        return None if a is None or b is None or b == 0 else a / b

    return get


RATIOS: tuple[Ratio, ...] = (
    Ratio("engine_over_lsoda", "engine", "throughput.dose.ratio_engine_over_lsoda",
          _path("throughput", "dose", "ratio_engine_over_lsoda"),
          "engine traj/s over scipy LSODA traj/s, dosed, 1 thread, same trajectories"),
    Ratio("engine_over_numbalsoda", "engine", "numbalsoda.ratio_engine_over_numbalsoda",
          _path("numbalsoda", "ratio_engine_over_numbalsoda"),
          "engine traj/s over numbalsoda's LSODA (compiled), 1 thread", optional=True),
    Ratio("sweep_over_engine", "sweep", "sweep_over_engine",
          _path("sweep_over_engine"),
          "sweep runs/s (outcomes + Zarr) over the raw engine's on the same runs",
          band=3.0),  # 480 runs: mostly fixed per-process cost, the noisiest of the ratios
    Ratio("sweep_large_over_engine", "sweep", "sweep_large_runs_per_s / engine_runs_per_s",
          _quotient(_path("sweep_large_runs_per_s"), _path("engine_runs_per_s")),
          "the same for the 10x larger sweep"),
    Ratio("sweep_peak_rss_growth", "sweep", "rss_ratio_large_over_small",
          _path("rss_ratio_large_over_small"),
          "peak RSS of the 10x larger sweep over the small one's (lower is better)",
          higher_is_better=False, band=1.5),
    Ratio("dask_over_local", "distributed", "dask_over_local",
          _path("dask_over_local"),
          "Dask runs/s (2 workers x 1 thread) over the local sweep's (2 threads), no warm-up"),
    Ratio("abm_reference_over_kernel", "abm", "reference.ratio_per_lane",
          _path("reference", "ratio_per_lane"),
          "plain-Python per-cell reference s/lane over the ABM kernel's, same small case"),
    Ratio("abm_reference_over_kernel_per_cell_step", "abm",
          "reference.ratio_per_cell_step_vs_default_case",
          _path("reference", "ratio_per_cell_step_vs_default_case"),
          "reference s per cell-step over the kernel's at the default settings",
          band=3.0),  # its two sides are timed minutes apart: they see different loads
    # Start-up and figures, lower is better; default band 2.5 (not 3: a 3x slowdown must fail).
    Ratio("cli_help_over_import_numpy", "start", "ratios.cli_help_over_import_numpy",
          _path("ratios", "cli_help_over_import_numpy"),
          "warm `immunosim --help` over `python -c 'import numpy'`, best of 5 fresh processes "
          "(lower is better)", higher_is_better=False),
    Ratio("cli_validate_over_import_numpy", "start", "ratios.cli_validate_over_import_numpy",
          _path("ratios", "cli_validate_over_import_numpy"),
          "warm `immunosim validate configs/dose_timing.toml` over `python -c 'import numpy'`, "
          "best of 5 fresh processes (lower is better)", higher_is_better=False),
    Ratio("figure_worst_over_matplotlib", "start", "figures.worst_ratio",
          _path("figures", "worst_ratio"),
          "the slowest figure family over a plain Matplotlib figure of the same axes and lines, "
          "PNG written, best of 3 (lower is better)", higher_is_better=False),
    Ratio("calibrate_cloud_over_engine", "calibrate", "ratio_cloud_over_engine",
          _path("ratio_cloud_over_engine"),
          "calibration path (simulate_cloud) virtual patients/s over the raw engine's on the "
          "same patients and arms"),
)


def bound(entry: dict) -> float:
    """The floor (higher is better) or ceiling (lower is better) of a baseline entry."""
    v, band = float(entry["value"]), float(entry.get("band", DEFAULT_BAND))
    return v / band if entry.get("higher_is_better", True) else v * band


def load_inputs(paths: list[str]) -> dict[str, tuple[Path, dict]]:
    """``{benchmark: (path, json)}`` from files and directories."""
    found: dict[str, tuple[Path, dict]] = {}
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            files = [p / f"{b}.json" for b in BENCHMARKS if (p / f"{b}.json").exists()]
            if not files:
                raise SystemExit(f"gate: no {{{','.join(BENCHMARKS)}}}.json in {p}")
        elif p.is_file():
            files = [p]
        else:
            raise SystemExit(f"gate: {p}: no such file or directory")
        for f in files:
            try:
                data = json.loads(f.read_text())
            except (OSError, ValueError) as e:
                raise SystemExit(f"gate: {f}: unreadable JSON ({e})") from None
            name = data.get("benchmark") or f.stem.removeprefix("bench_")
            if name not in BENCHMARKS:
                raise SystemExit(f"gate: {f}: unknown benchmark {name!r} (expected one of "
                                 f"{', '.join(BENCHMARKS)}: a \"benchmark\" key or the file name)")
            if name in found:
                raise SystemExit(f"gate: two JSON files for {name}: {found[name][0]} and {f}")
            found[name] = (f, data)
    return found


def measure(inputs: dict[str, tuple[Path, dict]]) -> dict[str, float | None]:
    """The value of every ratio whose benchmark was given (None if absent from its JSON)."""
    out: dict[str, float | None] = {}
    for r in RATIOS:
        if r.bench in inputs:
            v = r.get(inputs[r.bench][1])
            out[r.name] = None if v is None else float(v)
    return out


def fmt(x: float | None) -> str:
    if x is None:
        return "-"
    return f"{x:.3g}" if abs(x) < 10 else f"{x:,.1f}"


def machine() -> str:
    load = ""
    with contextlib.suppress(OSError):
        load = ", load average at re-baseline " + " ".join(f"{x:.2f}" for x in os.getloadavg())
    return (f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPUs, "
            f"python {platform.python_version()}{load}")


def git_commit() -> str | None:
    try:
        r = subprocess.run(["git", "-C", str(HERE), "describe", "--always", "--dirty"],
                           capture_output=True, text=True, check=False, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return r.stdout.strip() or None


def gate(inputs: dict[str, tuple[Path, dict]], baseline: dict) -> int:
    values = measure(inputs)
    base = baseline.get("ratios", {})
    rows, reasons, notes = [], [], []
    for b, (path, data) in inputs.items():
        f = data.get("slowdown", 1.0) or 1.0
        if f != 1.0:
            notes.append(f"{b}: measured with IMMUNOSIM_BENCH_SLOWDOWN={f:g} ({path})")
    for r in RATIOS:
        entry = base.get(r.name)
        if r.bench not in inputs:
            rows.append((r.name, None, entry, "skip"))
            notes.append(f"{r.name}: skipped, no {r.bench} JSON given")
            continue
        v = values[r.name]
        if v is None:
            if r.optional:
                rows.append((r.name, None, entry, "skip"))
                notes.append(f"{r.name}: skipped, not measured in this run ({r.source} absent; "
                             "optional)")
            else:
                rows.append((r.name, None, entry, "FAIL"))
                reasons.append(f"{r.name}: missing from {inputs[r.bench][0]} ({r.source}); the "
                               "benchmark's output changed or it did not finish")
            continue
        if entry is None:
            rows.append((r.name, v, None, "new"))
            notes.append(f"{r.name}: no baseline entry, not gated (add it with --rebaseline)")
            continue
        tier = inputs[r.bench][1].get("tier")
        lim = bound(entry)
        hib = entry.get("higher_is_better", True)
        if not math.isfinite(v):
            ok, why = False, f"{r.name} = {v}: not a finite number"
        elif entry.get("tier") and tier != entry["tier"]:
            ok, why = False, (f"{r.name}: measured on the {tier!r} tier, baseline is for "
                              f"{entry['tier']!r} (ratios differ between tiers)")
        elif hib:
            ok = v >= lim
            why = (f"{r.name} = {fmt(v)} fell below its floor {fmt(lim)} (baseline "
                   f"{fmt(entry['value'])} / band {entry.get('band', DEFAULT_BAND):g}, measured "
                   f"{entry.get('date', '?')}): {r.what}")
        else:
            ok = v <= lim
            why = (f"{r.name} = {fmt(v)} rose above its ceiling {fmt(lim)} (baseline "
                   f"{fmt(entry['value'])} x band {entry.get('band', DEFAULT_BAND):g}, measured "
                   f"{entry.get('date', '?')}): {r.what}")
        rows.append((r.name, v, entry, "ok" if ok else "FAIL"))
        if not ok:
            reasons.append(why)

    w = max(len(r.name) for r in RATIOS)
    print(f"benchmark gate against {baseline.get('_path', 'the baseline')} "
          f"(measured {baseline.get('measured', {}).get('date', '?')} on "
          f"{baseline.get('measured', {}).get('machine', '?')})")
    print(f"  {'ratio':<{w}} {'value':>9} {'baseline':>9} {'limit':>11} {'status':>6}")
    for name, v, entry, status in rows:
        if entry is None:
            lim_s = "-"
        else:
            op = ">=" if entry.get("higher_is_better", True) else "<="
            lim_s = f"{op} {fmt(bound(entry))}"
        print(f"  {name:<{w}} {fmt(v):>9} {fmt(entry and entry['value']):>9} {lim_s:>11} "
              f"{status:>6}")
    for n in notes:
        print(f"  note: {n}")
    if reasons:
        print(f"benchmark gate: FAILED ({len(reasons)} of "
              f"{sum(s in ('ok', 'FAIL') for *_, s in rows)} gated ratios)")
        for why in reasons:
            print(f"  FAIL {why}")
        return 1
    print(f"benchmark gate: passed ({sum(s == 'ok' for *_, s in rows)} ratios gated)")
    return 0


def rebaseline(runs: list[dict[str, tuple[Path, dict]]], baseline: dict, path: Path,
               only: set[str] | None = None) -> int:
    """Rewrite the baseline from one run or more (the median over runs, per ratio); with
    ``only``, just those ratios' entries (the others, and the file's "measured", are kept)."""
    per_run = []
    for inputs in runs:
        slowed = [f"{b} ({p})" for b, (p, d) in inputs.items()
                  if (d.get("slowdown") or 1.0) != 1.0]
        if slowed:
            print(f"gate: refusing to re-baseline from slowed runs: {', '.join(slowed)}",
                  file=sys.stderr)
            return 2
        values = measure(inputs)
        missing = [r.name for r in RATIOS
                   if r.bench in inputs and values[r.name] is None and not r.optional
                   and (only is None or r.name in only)]
        if missing:
            print(f"gate: required ratios missing from the JSON: {', '.join(missing)}",
                  file=sys.stderr)
            return 2
        per_run.append(values)
    values = {}
    for r in RATIOS:
        seen = [v[r.name] for v in per_run if v.get(r.name) is not None]
        values[r.name] = statistics.median(seen) if seen else None
        if len(seen) > 1:
            print(f"  {r.name}: median of {', '.join(fmt(x) for x in seen)}")
    today = _dt.datetime.now(_dt.timezone.utc).date().isoformat()
    where = machine()
    old = baseline.get("ratios", {})
    ratios: dict[str, dict] = {}
    for r in RATIOS:
        v = values.get(r.name)
        if only is not None and r.name not in only:
            if r.name in old:
                ratios[r.name] = old[r.name]
            continue
        if v is None:
            if r.name in old:
                ratios[r.name] = old[r.name]
                print(f"  {r.name}: not measured in this run, previous entry kept "
                      f"({old[r.name].get('date', '?')})")
            continue
        bench_json = next(run[r.bench][1] for run in runs if r.bench in run)
        ratios[r.name] = {
            "value": float(f"{v:.5g}"),
            "runs": sum(x.get(r.name) is not None for x in per_run),
            "band": old.get(r.name, {}).get("band", r.band),
            "higher_is_better": r.higher_is_better,
            "tier": bench_json.get("tier"), "date": today, "machine": where,
            "source": f"{r.bench}.json: {r.source}", "what": r.what,
        }
        print(f"  {r.name}: {fmt(v)} (band {ratios[r.name]['band']:g}, limit "
              f"{'>=' if r.higher_is_better else '<='} {fmt(bound(ratios[r.name]))})")
    out = {
        "about": ("Baseline of benchmarks/gate.py: ratios of the quick benchmark tiers, each "
                  "measured against a baseline in the same run. Regenerate on purpose only: "
                  "see 'Gate' in benchmarks/README.md. 'band' may be edited by hand; "
                  "--rebaseline keeps it."),
        "measured": ({"date": today, "machine": where, "commit": git_commit()}
                     if only is None or "measured" not in baseline else baseline["measured"]),
        "ratios": ratios,
    }
    path.write_text(json.dumps(out, indent=1) + "\n")
    print(f"gate: wrote {path} ({len(ratios)} ratios)")
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("inputs", nargs="+",
                    help="benchmark JSON files, or directories holding {engine,sweep,"
                         "distributed,abm,start,calibrate}.json")
    ap.add_argument("--baseline", type=Path, default=DEFAULT_BASELINE,
                    help=f"baseline file (default {DEFAULT_BASELINE.relative_to(HERE.parent)})")
    ap.add_argument("--rebaseline", action="store_true",
                    help="rewrite the baseline from these JSON instead of gating")
    ap.add_argument("--only", action="append", metavar="RATIO",
                    help="with --rebaseline: rewrite only this ratio's entry (repeatable)")
    args = ap.parse_args(argv)
    only = None
    if args.only:
        only = set(args.only)
        unknown = sorted(only - {r.name for r in RATIOS})
        if unknown or not args.rebaseline:
            why = (f"unknown ratio {unknown[0]!r}; valid: {', '.join(r.name for r in RATIOS)}"
                   if unknown else "only with --rebaseline")
            print(f"gate: --only: {why}", file=sys.stderr)
            return 2
    if args.rebaseline and len(args.inputs) > 1 and all(Path(p).is_dir() for p in args.inputs):
        runs = [load_inputs([p]) for p in args.inputs]  # one run per directory
    else:
        runs = [load_inputs(args.inputs)]
    baseline: dict = {}
    if args.baseline.exists():
        baseline = json.loads(args.baseline.read_text())
    elif not args.rebaseline:
        print(f"gate: no baseline file {args.baseline} (create it with --rebaseline)",
              file=sys.stderr)
        return 2
    if args.rebaseline:
        return rebaseline(runs, baseline, args.baseline, only)
    baseline["_path"] = str(args.baseline)
    return gate(runs[0], baseline)


if __name__ == "__main__":
    sys.exit(main())
