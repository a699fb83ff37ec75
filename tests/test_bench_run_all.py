"""benchmarks/run_all.py on small fake benchmark JSON and stand-in scripts (no benchmark runs).

- ``--from DIR`` renders one markdown table with every ratio (the gated ones included and
  marked), the machine, the versions, the commit and the date, and says what is missing.
- A run writes ``run.json``, passes ``--quick`` on, removes stale JSON and carries on past a
  failing benchmark (exit 1).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCH))
import gate  # noqa: E402
import run_all  # noqa: E402

RUN = {
    "tier": "full", "date": "2026-12-03T18:00:00+00:00", "commit": "abc1234",
    "machine": {"cpu": "AMD EPYC", "cores": 2, "memory_gib": 23.5, "system": "Linux x86_64"},
    "versions": {"python": "3.11.7", "numpy": "2.4.6", "numba": "0.68.1", "scipy": "1.17.1",
                 "zarr": "3.1.6", "xarray": "2026.9.0", "dask": "2026.8.0"},
    "load_average_start": "0.10 0.20 0.30", "load_average_end": "1.00 1.10 1.20",
    "benches": {"engine": {"script": "bench_engine.py", "exit": 0, "seconds": 90.0,
                           "load_average_start": "0.10 0.20 0.30"},
                "abm": {"script": "bench_abm.py", "exit": 1, "seconds": 3.0,
                        "load_average_start": "0.50 0.20 0.30"}},
}
FAKE = {
    "engine": {"throughput": {"dose": {"ratio_engine_over_lsoda": 85.04,
                                       "engine_1thread_traj_per_s": 1000.0,
                                       "engine_all_threads_traj_per_s": 1900.0},
                              "no dose": {"ratio_engine_over_lsoda": 5.0}},
               "numbalsoda": None},
    "start": {"ratios": {"cli_help_over_import_numpy": 0.3},
              "figures": {"worst_ratio": 4.5, "families": {
                  "bistability": {"ratio": 4.5, "figures": 1},
                  "survival": {"ratio": 2.25, "figures": 2}}}},
    "calibrate": {"ratio_cloud_over_engine": 0.4321, "likelihood": {"evals_per_s": 2500.0}},
}


def fake_dir(d: Path, run: dict | None = RUN, tier: str = "full") -> Path:
    d.mkdir(parents=True, exist_ok=True)
    if run is not None:
        (d / "run.json").write_text(json.dumps(run))
    for name, data in FAKE.items():
        (d / f"{name}.json").write_text(json.dumps({"benchmark": name, "tier": tier,
                                                    "slowdown": 1.0, **data}))
    return d


def table_rows(text: str) -> dict[str, list[str]]:
    """``{first cell without backticks: cells}`` of every markdown table row."""
    out = {}
    for ln in text.splitlines():
        if ln.startswith("| ") and not ln.startswith("| ---"):
            cells = [c.strip() for c in ln.strip("|").split(" | ")]
            out[cells[0].strip("`")] = cells
    return out


def test_renders_every_ratio_with_machine_and_versions(tmp_path):
    md = tmp_path / "table.md"
    rc = run_all.main(["--from", str(fake_dir(tmp_path / "run")), "--markdown", str(md)])
    assert rc == 1  # bench_abm failed in that run
    text = md.read_text()
    assert "(full tiers), 2026-12-03T18:00:00+00:00, commit `abc1234`" in text
    assert "AMD EPYC, 2 cores, 24 GiB" in text and "load average 0.10 0.20 0.30" in text
    assert ("python 3.11.7, numpy 2.4.6, numba 0.68.1, scipy 1.17.1, zarr 3.1.6, "
            "xarray 2026.9.0, dask 2026.8.0") in text
    rows = table_rows(text)
    # Every gated ratio has a row, whether measured or not: none can be forgotten.
    for r in gate.RATIOS:
        assert rows[r.name][3] == f"`bench_{r.bench}`" and rows[r.name][4] == "yes", r.name
    assert rows["engine_over_lsoda"][1] == "85.0"
    assert rows["engine trajectories/s, 1 thread"][1] == "1,000"  # whole numbers from 100
    assert rows["calibrate_cloud_over_engine"][1] == "0.432"
    no_dose = rows["engine_over_lsoda_no_dose"]
    assert no_dose[1] == "5" and no_dose[4] == ""  # measured, not gated
    assert rows["engine_all_threads_over_1_thread"][1] == "1.9"
    assert rows["figure_survival_over_matplotlib"][1:3] == [
        "2.25", "`survival` (2 figures) over its plain Matplotlib twin, PNG written (lower is "
        "better)"]
    assert rows["dask_over_local"][1] == "-"  # no distributed JSON
    assert rows["likelihood evaluations/s"][1] == "2,500"
    assert rows["bench_abm.py"][-1] == "FAILED (exit 1)"
    assert "`bench_abm`: no numbers (it failed: see its log)." in text
    assert "`bench_distributed`: no numbers (no JSON)." in text
    assert "`engine_over_numbalsoda`" in text.split("Not measured in this run:")[1]


def test_renders_without_run_json_and_flags_a_tier_mismatch(tmp_path, capsys):
    d = fake_dir(tmp_path / "run", run=None)
    (d / "calibrate.json").write_text(json.dumps({"benchmark": "calibrate", "tier": "quick",
                                                  "ratio_cloud_over_engine": 0.3}))
    assert run_all.main(["--from", str(d)]) == 0
    text = capsys.readouterr().out
    assert "no run.json: machine, versions and commit not recorded" in text
    assert "`bench_calibrate`: quick tier, not full." in text


def test_from_refuses_a_directory_without_results(tmp_path):
    with pytest.raises(SystemExit, match="no run.json and no"):
        run_all.main(["--from", str(tmp_path)])


STANDIN = """
import json, sys
args = sys.argv[1:]
out = args[args.index("--json") + 1]
name = {name!r}
if name == "abm":
    sys.exit(3)
json.dump({{"benchmark": name, "tier": "quick" if "--quick" in args else "full",
           "ratio_cloud_over_engine": 0.5}}, open(out, "w"))
print("stand-in", name)
"""


def test_a_run_records_itself_and_goes_past_a_failure(tmp_path, monkeypatch):
    scripts = tmp_path / "scripts"
    scripts.mkdir()
    quick = {n: s for n, s in run_all.BENCHES.items() if n not in run_all.FULL_ONLY}
    for name, script in quick.items():
        (scripts / script).write_text(STANDIN.format(name=name))
    monkeypatch.setattr(run_all, "HERE", scripts)
    out = tmp_path / "out"
    out.mkdir()
    (out / "abm.json").write_text(json.dumps({"benchmark": "abm", "tier": "quick"}))  # stale
    rc = run_all.main(["--quick", "--out", str(out), "--markdown", str(tmp_path / "t.md")])
    assert rc == 1
    run = json.loads((out / "run.json").read_text())
    assert run["tier"] == "quick" and list(run["benches"]) == list(quick)
    assert run["benches"]["abm"]["exit"] == 3 and run["benches"]["engine"]["exit"] == 0
    assert set(run["versions"]) == {"python", *run_all.PACKAGES} and run["machine"]["cores"]
    assert not (out / "abm.json").exists()  # the stale numbers are gone
    assert json.loads((out / "calibrate.json").read_text())["tier"] == "quick"
    assert (out / "sweep.log").read_text().strip() == "stand-in sweep"
    rows = table_rows((tmp_path / "t.md").read_text())
    assert rows["calibrate_cloud_over_engine"][1] == "0.5"
