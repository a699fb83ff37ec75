"""Mutation check: apply deliberate bugs one at a time and show that the test suite catches each.

Each mutation is a textual edit of one source file in a private copy of ``src/`` (the working
tree is never touched). The copy is put first on ``PYTHONPATH`` with its own empty Numba cache,
and the tests that guard that code are run against it; a mutation is *caught* when they fail.

Usage::

    python tests/mutations/run.py            # all mutations, prints a score, exit 1 if any survives
    python tests/mutations/run.py --list     # what each mutation does
    python tests/mutations/run.py -k dose    # only mutations whose name contains "dose"

It is part of the full test tier (it recompiles the kernels once per mutation, about a minute
each on 2 cores); ``docs/testing.md`` reports its last score.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Mutation:
    name: str
    file: str  # relative to src/immunosim
    old: str  # must occur exactly once in the file
    new: str
    tests: tuple[str, ...]  # test files or node ids (from the repo root) that must catch it
    what: str


MUTATIONS: tuple[Mutation, ...] = (
    Mutation("dopri5_coefficient", "engines/ode/tableaus.py",
             "B=_f([35 / 384, 0, 500 / 1113,", "B=_f([35 / 384, 0, 500 / 1112,",
             ("tests/test_tableaus.py", "tests/test_solver.py"),
             "a wrong DOPRI5 weight b3 (500/1112 instead of 500/1113)"),
    Mutation("rodas3_coefficient", "engines/ode/tableaus.py",
             "C=_lower([4.0, 1.0, -1.0, 1.0, -1.0, -8.0 / 3.0], 4)",
             "C=_lower([4.0, 1.0, -1.0, 1.0, -1.0, -3.0 / 8.0], 4)",
             ("tests/test_tableaus.py",),
             "a wrong RODAS3 coefficient (c43 = -3/8 instead of -8/3)"),
    Mutation("scale_event_as_add", "engines/events.py",
             "    elif op == OP_SCALE:\n        y[state] *= value",
             "    elif op == OP_SCALE:\n        y[state] += value",
             ("tests/test_solver.py::test_events_exact_jumps_on_linear_problem",),
             "a scaling event (HSCT depletion, rituximab) applied as an addition"),
    Mutation("save_index_off_by_one", "engines/ode/_kernels.py",
             "                out[i_save, k] = y[k]\n            i_save += 1\n        if i_save",
             "                out[max(i_save - 1, 0), k] = y[k]\n            i_save += 1\n"
             "        if i_save",
             ("tests/test_solver.py", "tests/test_lanes.py"),
             "a save at an exact step end written one row early (one-trajectory driver)"),
    Mutation("dropped_dose", "model/interventions.py",
             "interval * np.arange(int(count))", "interval * np.arange(1, int(count))",
             ("tests/test_interventions.py", "tests/test_simulate.py"),
             "the first dose of every repeated schedule (MSC, cyclophosphamide, rituximab) "
             "dropped"),
    Mutation("flipped_remission_comparison", "experiments/outcomes.py",
             "        if a[j] <= thr:", "        if a[j] >= thr:",
             ("tests/test_outcomes.py",),
             "remission counted while activity is above (not at or below) the threshold"),
    Mutation("status_fill_value_not_written", "experiments/sweep.py",
             '        encoding["status"]["_FillValue"] = NOT_COMPUTED\n', "",
             ("tests/test_sweep.py::test_runs_never_computed_do_not_read_back_as_success",),
             "runs of an unfinished store read back as status 0 (fill value not in the Zarr "
             "metadata)"),
    Mutation("resume_ignores_block_layout", "experiments/sweep.py",
             "            if old_bs != p.block_size:", "            if False:",
             ("tests/test_sweep.py::test_resume_with_a_different_block_layout_is_refused",),
             "--resume with another --chunk-size maps finished-block markers to other patients"),
    Mutation("assessed_on_death_day", "experiments/_clinical_kernels.py",
             "(alive or t[j1] < death)", "(alive or t[j1] <= death)",
             ("tests/test_clinical.py",),
             "a run still assessed on the day it dies"),
    Mutation("sri4_new_serology_blocks", "experiments/_clinical_kernels.py",
             "(bits & ~base_bits & ~serology_mask) == 0", "(bits & ~base_bits) == 0",
             ("tests/test_clinical.py",),
             "a new serological item blocks SRI-4 (BILAG has no serology domain)"),
    Mutation("old_result_deleted_in_place", "experiments/sweep.py",
             "            self._discard(self.out)  # renamed aside first: never left half-deleted",
             "            _remove(self.out)",
             ("tests/test_output_safety.py::test_kill_while_an_old_result_is_deleted",),
             "a previous result deleted in place while finishing (a kill leaves half of it)"),
    Mutation("remission_confirmed_late", "experiments/_clinical_kernels.py",
             "                if t[j] - t[start] >= min_dur:",
             "                if t[j] - t[start] > min_dur:",
             ("tests/test_clinical.py::test_kernel_matches_the_plain_python_reference",),
             "a remission confirmed one assessment after it has lasted the minimum duration"),
)


def _mutated_copy(m: Mutation, tmp: Path) -> Path:
    src = tmp / "src"
    shutil.copytree(ROOT / "src", src, ignore=shutil.ignore_patterns("__pycache__"))
    target = src / "immunosim" / m.file
    text = target.read_text()
    n = text.count(m.old)
    if n != 1:
        raise SystemExit(f"mutation {m.name}: pattern found {n} times in {m.file}, expected once")
    target.write_text(text.replace(m.old, m.new))
    return src


def run_one(m: Mutation, timeout: float) -> tuple[bool, float, str]:
    """Apply ``m`` in a private copy and run its tests; returns (caught, seconds, last line)."""
    with tempfile.TemporaryDirectory(prefix=f"mut_{m.name}_") as tmp:
        src = _mutated_copy(m, Path(tmp))
        env = dict(os.environ, PYTHONPATH=str(src), NUMBA_CACHE_DIR=str(Path(tmp) / "numba"))
        # The copy must be what the tests import, not the installed package.
        code = "import immunosim; print(immunosim.__file__)"
        probe = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                               text=True, cwd=ROOT)
        if not probe.stdout.strip().startswith(str(src)):
            raise SystemExit(f"mutation {m.name}: tests would import {probe.stdout.strip()!r}, "
                             f"not the mutated copy in {src}")
        t0 = time.perf_counter()
        try:
            cmd = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *m.tests]
            r = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=ROOT,
                               timeout=timeout)
            out = (r.stdout + r.stderr).strip().splitlines()
            last = out[-1] if out else ""
            caught = r.returncode not in (0, 5)
        except subprocess.TimeoutExpired:
            caught, last = True, f"timed out after {timeout:.0f} s (counts as caught)"
        return caught, time.perf_counter() - t0, last


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-k", default="", help="only mutations whose name contains this")
    ap.add_argument("--list", action="store_true", help="list the mutations and exit")
    ap.add_argument("--timeout", type=float, default=600.0, help="seconds per mutation")
    args = ap.parse_args(argv)
    chosen = [m for m in MUTATIONS if args.k in m.name]
    if not chosen:
        names = ", ".join(m.name for m in MUTATIONS)
        print(f"-k {args.k!r} matches no mutation; known: {names}", file=sys.stderr)
        return 2
    if args.list:
        for m in chosen:
            print(f"{m.name:32s} {m.file:28s} {m.what}")
        return 0
    caught_n = 0
    for m in chosen:
        caught, dt, last = run_one(m, args.timeout)
        caught_n += caught
        print(f"{'CAUGHT  ' if caught else 'SURVIVED'} {m.name:32s} {dt:6.1f} s  {last}",
              flush=True)
    print(f"mutation score: {caught_n}/{len(chosen)} caught")
    return 0 if caught_n == len(chosen) else 1


if __name__ == "__main__":
    sys.exit(main())
