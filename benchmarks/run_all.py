"""Run every benchmark's full tier into one directory and report all their ratios in one table.

Runs ``bench_engine``, ``bench_sweep``, ``bench_distributed``, ``bench_abm``, ``bench_start`` and
``bench_calibrate``, one after the other, each in its own process with ``--json DIR/<name>.json``
(its printed output in ``DIR/<name>.log``), and records the run in ``DIR/run.json``: the machine
(CPU model, cores, memory, load average before and after, and before each benchmark), the
versions of Python, numpy, numba, scipy, zarr, xarray and dask, the git commit and the date.
It then prints one markdown table of every ratio the benchmarks measure (name, value, what it
is, which benchmark; the ratios the CI gate watches are marked), a table of a few absolute
rates, and a table of the run itself; ``--markdown OUT`` writes the same text to a file.

``--from DIR`` renders the tables from such a directory without running anything. ``--quick``
runs the quick tiers instead (about 3 minutes on 2 cores, against about 10 for the full ones):
a check that everything runs, not the numbers to publish. A benchmark that fails is reported in
the tables and the run goes on; the exit status is then 1.

Usage::

    python benchmarks/run_all.py --out results/ --markdown results/table.md   # full tiers
    python benchmarks/run_all.py --quick                  # quick tiers, into a temporary dir
    python benchmarks/run_all.py --from results/ --markdown table.md   # render again only
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as _dt
import importlib.metadata
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import gate
from _slowdown import ENV as SLOWDOWN_ENV

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
#: Benchmark name (its JSON's "benchmark" key) -> script, in the order they run.
BENCHES = {"engine": "bench_engine.py", "sweep": "bench_sweep.py",
           "sweep_memory": "bench_sweep.py", "distributed": "bench_distributed.py",
           "abm": "bench_abm.py", "start": "bench_start.py", "calibrate": "bench_calibrate.py"}
#: Extra arguments of a benchmark, and the benchmarks that run in the full tier only.
ARGS = {"sweep_memory": ("--memory",)}
FULL_ONLY = frozenset({"sweep_memory"})
PACKAGES = ("numpy", "numba", "scipy", "zarr", "xarray", "dask")


# --- what a run records ------------------------------------------------------------------------


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``), or what ``platform`` knows."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def memory_gib() -> float | None:
    """Total memory in GiB (``/proc/meminfo``), None where unknown."""
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) / 2**20
    return None


def load_average() -> str:
    with contextlib.suppress(OSError):
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    return "?"


def versions() -> dict[str, str]:
    """Python and the numerical packages' versions in this interpreter (the benchmarks' own)."""
    out = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def machine() -> dict:
    return {"cpu": cpu_model(), "cores": os.cpu_count(), "memory_gib": memory_gib(),
            "system": f"{platform.system()} {platform.release()} {platform.machine()}"}


def run_benches(out: Path, quick: bool) -> dict:
    """Run every benchmark into ``out``; returns (and writes) ``out/run.json``."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "run.json").unlink(missing_ok=True)  # an interrupted run leaves no stale record
    tier = "quick" if quick else "full"
    now = _dt.datetime.now(_dt.timezone.utc)
    record = {"tier": tier, "date": now.isoformat(timespec="seconds"),
              "commit": gate.git_commit(), "machine": machine(), "versions": versions(),
              "load_average_start": load_average(),
              "numba_num_threads": os.environ.get("NUMBA_NUM_THREADS"),
              "slowdown": os.environ.get(SLOWDOWN_ENV), "benches": {}}
    if record["slowdown"]:
        print(f"run_all: {SLOWDOWN_ENV}={record['slowdown']} is set: these numbers are slowed "
              "on purpose", file=sys.stderr)
    todo = {n: s for n, s in BENCHES.items() if not (quick and n in FULL_ONLY)}
    print(f"running the {tier} tier of {len(todo)} benchmarks into {out}")
    for name, script in todo.items():
        cmd = [sys.executable, str(HERE / script), "--json", str(out / f"{name}.json"),
               *ARGS.get(name, ())]
        if quick:
            cmd.append("--quick")
        (out / f"{name}.json").unlink(missing_ok=True)  # no stale numbers from an earlier run
        load = load_average()
        t = time.perf_counter()
        with open(out / f"{name}.log", "w") as log:
            rc = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT,
                                check=False).returncode
        dt = time.perf_counter() - t
        record["benches"][name] = {"script": script, "exit": rc, "seconds": round(dt, 1),
                                   "load_average_start": load}
        print(f"  {script:<22} {dt:6.0f} s  {'ok' if rc == 0 else f'FAILED (exit {rc})'}"
              f"  (load average before: {load}; output in {out / f'{name}.log'})", flush=True)
    record["load_average_end"] = load_average()
    (out / "run.json").write_text(json.dumps(record, indent=1) + "\n")
    return record


# --- what the table shows ----------------------------------------------------------------------


def _at(path: str) -> Callable[[dict], float | None]:
    """A getter of the dotted ``path`` in a benchmark's JSON (None where absent)."""
    return gate._path(*path.split("."))


@dataclass(frozen=True)
class Extra:
    """A ratio (or rate) reported but not gated."""

    name: str
    bench: str
    get: Callable[[dict], float | None]
    what: str


#: Ratios the benchmarks measure beyond the gated ones (``gate.RATIOS``).
EXTRA_RATIOS: tuple[Extra, ...] = (
    Extra("engine_over_lsoda_no_dose", "engine", _at("throughput.no dose.ratio_engine_over_lsoda"),
          "the same without the dose (patients stay at equilibrium; LSODA's side is tiny)"),
    Extra("engine_fresh_output_over_lsoda", "engine",
          _at("throughput.dose.ratio_fresh_output_over_lsoda"),
          "engine/LSODA with a fresh output array per call (pages mapped and zeroed)"),
    Extra("engine_batch_over_lsoda", "engine",
          _at("throughput.dose.ratio_engine_batch_rate_over_lsoda"),
          "the engine's rate over the whole batch over LSODA's on its subset, 1 thread"),
    Extra("engine_all_threads_over_1_thread", "engine",
          gate._quotient(_at("throughput.dose.engine_all_threads_traj_per_s"),
                         _at("throughput.dose.engine_1thread_traj_per_s")),
          "engine speed-up on all threads over 1 thread, dosed batch"),
    Extra("engine_over_rhs_floor", "engine", _at("where_time_goes.ratio_engine_over_rhs_floor"),
          "engine us/traj over its RHS floor (RHS calls/traj x ns per RHS evaluation in the "
          "lanes), dosed, 1 thread (lower is better; issue 15 asks for 2)"),
    Extra("lsoda_rhs_calls_over_engine", "engine",
          _at("where_time_goes.nfev_ratio_lsoda_over_engine"),
          "RHS calls per trajectory, LSODA over the engine (method efficiency factor)"),
    Extra("sweep_memory_1e6_over_1e5", "sweep_memory", _at("memory_rss_ratio_1e6_over_1e5"),
          "peak RSS of a sweep of 1e6 point-patients over one of 1e5, outcomes only (lower is "
          "better; full tier only)"),
    Extra("dask_over_local_with_warmup", "distributed", _at("dask_over_local_with_warmup"),
          "Dask over local with the workers' warm-up included"),
    Extra("abm_reference_over_kernel_call", "abm",
          _at("reference.ratio_per_lane_kernel_without_setup"),
          "reference s/lane over the kernel call alone (its Python set-up left out)"),
    Extra("abm_2_threads_over_1", "abm", _at("default_case.speedup_2threads"),
          "ABM speed-up on 2 threads over 1 (parallel efficiency x 2)"),
    Extra("import_immunosim_over_import_numpy", "start",
          _at("ratios.import_immunosim_over_import_numpy"),
          "`python -c 'import immunosim'` over `import numpy` (lower is better)"),
    Extra("cli_info_over_import_numpy", "start", _at("ratios.cli_info_over_import_numpy"),
          "`immunosim info` over `import numpy` (lower is better)"),
    Extra("cold_over_warm_compile", "start", _at("cold_compile.ratio_cold_over_warm"),
          "first 4-patient sweep with an empty Numba cache over the same with it filled "
          "(full tier only)"),
)

#: A few absolute rates, to read next to the ratios (they depend on the machine and its load).
RATES: tuple[Extra, ...] = (
    Extra("engine trajectories/s, 1 thread", "engine",
          _at("throughput.dose.engine_1thread_traj_per_s"), "dosed batch, 2 years, daily output"),
    Extra("LSODA trajectories/s, 1 thread", "engine", _at("throughput.dose.lsoda_traj_per_s"),
          "scipy solve_ivp, one trajectory per call"),
    Extra("sweep runs/s", "sweep", _at("sweep_runs_per_s"), "outcomes + Zarr, small sweep"),
    Extra("raw engine runs/s (sweep's runs)", "sweep", _at("engine_runs_per_s"),
          "the same runs, engine only"),
    Extra("local sweep runs/s", "distributed", _at("local_runs_per_s"), "2 threads"),
    Extra("Dask sweep runs/s", "distributed", _at("dask_runs_per_s"),
          "2 workers x 1 thread, warm-up apart"),
    Extra("ABM ms per patient-replicate", "abm", _at("default_case.ms_per_lane_1thread"),
          "1 thread, default settings (lower is better)"),
    Extra("`immunosim --help`, s", "start", _at("warm_start.seconds.cli_help"),
          "warm, best of the rounds (lower is better)"),
    Extra("calibration virtual patients/s", "calibrate", _at("cloud_patients_per_s"),
          "simulate_cloud of configs/calibrate.toml, patients x arms"),
    Extra("raw engine virtual patients/s (cloud's runs)", "calibrate",
          _at("engine_patients_per_s"), "the same runs, engine only"),
    Extra("likelihood evaluations/s", "calibrate", _at("likelihood.evals_per_s"),
          "`Likelihood.__call__` over the cloud, BLAS 1 thread"),
)


@dataclass(frozen=True)
class Row:
    name: str
    value: float | None
    what: str
    bench: str
    gated: bool = False


def figure_rows(start: dict) -> list[Row]:
    """One ratio per figure family of ``bench_start`` (family over its Matplotlib twin)."""
    fams = _at("figures.families")(start) or {}
    rows = []
    for name, x in fams.items():
        n = x.get("figures", "?")
        rows.append(Row(f"figure_{name}_over_matplotlib", x.get("ratio"),
                        f"`{name}` ({n} figure{'' if n == 1 else 's'}) over its plain "
                        "Matplotlib twin, PNG written (lower is better)", "start"))
    return rows


def load_dir(d: Path) -> tuple[dict, dict[str, dict]]:
    """``(run.json or {}, {benchmark: its JSON})`` of a results directory."""
    d = Path(d)
    if not d.is_dir():
        raise SystemExit(f"run_all: {d}: no such directory")
    run = {}
    if (d / "run.json").exists():
        run = json.loads((d / "run.json").read_text())
    data = {}
    for name in BENCHES:
        f = d / f"{name}.json"
        if f.exists():
            try:
                data[name] = json.loads(f.read_text())
            except ValueError as e:
                raise SystemExit(f"run_all: {f}: unreadable JSON ({e})") from None
    if not data and not run:
        raise SystemExit(f"run_all: {d}: no run.json and no "
                         f"{{{','.join(BENCHES)}}}.json (is it a run_all directory?)")
    return run, data


def ratio_rows(data: dict[str, dict]) -> list[Row]:
    """Every ratio, gated ones first, in benchmark order; None where not measured."""
    rows = []
    for bench in BENCHES:
        d = data.get(bench)
        for r in gate.RATIOS:
            if r.bench == bench:
                v = None if d is None else r.get(d)
                rows.append(Row(r.name, None if v is None else float(v), r.what, bench, True))
        for e in EXTRA_RATIOS:
            if e.bench == bench:
                v = None if d is None else e.get(d)
                rows.append(Row(e.name, None if v is None else float(v), e.what, bench))
        if bench == "start" and d is not None:
            rows += figure_rows(d)
    return rows


def _cell(s: str) -> str:
    return str(s).replace("|", "\\|")


def _fmt(v: float | None) -> str:
    """Three significant figures below 100 (as the gate prints), whole numbers above."""
    if v is None:
        return "-"
    return f"{v:,.0f}" if abs(v) >= 100 else gate.fmt(v)


def render(run: dict, data: dict[str, dict]) -> str:
    """The markdown report of a run: header, ratios, rates, the run itself, notes."""
    lines = []
    tier = run.get("tier") or next((d.get("tier") for d in data.values()), "?")
    m, v = run.get("machine", {}), run.get("versions", {})
    if run:
        mem = f", {m['memory_gib']:.0f} GiB" if m.get("memory_gib") else ""
        lines += [
            f"One run of `python benchmarks/run_all.py` ({tier} tiers), {run.get('date', '?')}, "
            f"commit `{run.get('commit') or '?'}`.",
            "",
            f"- Machine: {m.get('cpu', '?')}, {m.get('cores', '?')} cores{mem} "
            f"({m.get('system', '?')}); load average {run.get('load_average_start', '?')} "
            f"at the start, {run.get('load_average_end', '?')} at the end.",
            "- Versions: " + ", ".join(f"{k} {x}" for k, x in v.items()) + ".",
        ]
        if run.get("numba_num_threads"):
            lines.append(f"- NUMBA_NUM_THREADS={run['numba_num_threads']}.")
        if run.get("slowdown"):
            lines.append(f"- **{SLOWDOWN_ENV}={run['slowdown']}: deliberately slowed, not "
                         "numbers to publish.**")
    else:
        lines.append(f"Benchmark JSON ({tier} tiers); no run.json: machine, versions and commit "
                     "not recorded.")
    lines += ["", "| ratio | value | what it is | bench | CI gate |",
              "| --- | --- | --- | --- | --- |"]
    rows = ratio_rows(data)
    for r in rows:
        lines.append(f"| `{r.name}` | {_fmt(r.value)} | {_cell(r.what)} | "
                     f"`bench_{r.bench}` | {'yes' if r.gated else ''} |")
    lines += ["", "| rate | value | what | bench |", "| --- | --- | --- | --- |"]
    for e in RATES:
        d = data.get(e.bench)
        lines.append(f"| {e.name} | {_fmt(None if d is None else e.get(d))} | {_cell(e.what)} | "
                     f"`bench_{e.bench}` |")
    notes = []
    benches = run.get("benches", {})
    if benches:
        lines += ["", "| bench | tier | wall s | load average before | status |",
                  "| --- | --- | --- | --- | --- |"]
        for name, b in benches.items():
            status = "ok" if b.get("exit") == 0 else f"FAILED (exit {b.get('exit')})"
            lines.append(f"| `{b.get('script', name)}` | {data.get(name, {}).get('tier', '-')} | "
                         f"{b.get('seconds', '?')} | {b.get('load_average_start', '?')} | "
                         f"{status} |")
    for name in BENCHES:
        if name not in data:
            why = ("it failed: see its log" if benches.get(name, {}).get("exit") else
                   "no JSON")
            notes.append(f"`bench_{name}`: no numbers ({why}).")
        elif data[name].get("tier") != tier:
            notes.append(f"`bench_{name}`: {data[name].get('tier')} tier, not {tier}.")
        elif (data[name].get("slowdown") or 1.0) != 1.0:
            notes.append(f"`bench_{name}`: slowed x{data[name]['slowdown']:g} on purpose.")
    missing = [r.name for r in rows if r.value is None and r.bench in data]
    if missing:
        notes.append("Not measured in this run: " + ", ".join(f"`{x}`" for x in missing)
                     + " (optional, or full tier only).")
    if notes:
        lines += [""] + [f"- {n}" for n in notes]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    src = ap.add_mutually_exclusive_group()
    src.add_argument("--from", dest="from_dir", type=Path, metavar="DIR",
                     help="render the tables from this directory; run nothing")
    src.add_argument("--out", type=Path, metavar="DIR",
                     help="directory for the JSON, logs and run.json (default: a new temporary "
                          "directory, printed)")
    ap.add_argument("--quick", action="store_true",
                    help="run the quick tiers (a check that all run; not numbers to publish)")
    ap.add_argument("--markdown", type=Path, metavar="OUT", help="also write the tables here")
    args = ap.parse_args(argv)
    if args.from_dir is not None and args.quick:
        ap.error("--quick runs the benchmarks; --from only renders")
    failed = False
    if args.from_dir is not None:
        run, data = load_dir(args.from_dir)
        failed = any(b.get("exit") for b in run.get("benches", {}).values())
    else:
        out = args.out or Path(tempfile.mkdtemp(prefix="immunosim-bench-"))
        record = run_benches(out, args.quick)
        run, data = load_dir(out)
        failed = any(b["exit"] for b in record["benches"].values())
        print(f"results in {out} (render again with --from {out})\n")
    text = render(run, data)
    print(text, end="")
    if args.markdown:
        args.markdown.write_text(text)
        print(f"\nrun_all: wrote {args.markdown}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
