"""The CI benchmark gate (benchmarks/gate.py) on synthetic benchmark JSON: no benchmark runs.

It passes on numbers like the committed baseline's, fails (exit 1, one reason per ratio) when
the measured side is slowed, skips optional ratios that were not measured, and refuses to
re-baseline from a deliberately slowed run.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
GATE = ROOT / "benchmarks" / "gate.py"
BASELINE = ROOT / "benchmarks" / "baseline.json"

# Ratios like the quick tiers' on the 2-core development machine (numbalsoda: the README's).
TYPICAL = {
    "engine_over_lsoda": 85.0, "engine_over_numbalsoda": 3.0, "sweep_over_engine": 0.03,
    "sweep_large_over_engine": 0.11, "sweep_peak_rss_growth": 1.1, "dask_over_local": 0.7,
    "abm_reference_over_kernel": 140.0, "abm_reference_over_kernel_per_cell_step": 500.0,
    "cli_help_over_import_numpy": 0.4, "cli_validate_over_import_numpy": 6.5,
    "figure_worst_over_matplotlib": 4.0, "calibrate_cloud_over_engine": 0.35,
}
START = {"cli_help_over_import_numpy", "cli_validate_over_import_numpy",
         "figure_worst_over_matplotlib"}
LOWER_IS_BETTER = {"sweep_peak_rss_growth", *START}
NOT_TIMED = {"sweep_peak_rss_growth"}  # a slowdown leaves memory growth alone


def write_jsons(d: Path, v: dict, slowdown: float = 1.0, numbalsoda: bool = True) -> Path:
    """Benchmark JSON holding the ratios ``v`` where the real benchmarks put them."""
    d.mkdir(parents=True, exist_ok=True)
    common = {"tier": "quick", "slowdown": slowdown}
    files = {
        "engine": {
            "throughput": {"dose": {"ratio_engine_over_lsoda": v["engine_over_lsoda"]}},
            "numbalsoda": ({"ratio_engine_over_numbalsoda": v["engine_over_numbalsoda"]}
                           if numbalsoda else None),
        },
        "sweep": {"sweep_over_engine": v["sweep_over_engine"], "engine_runs_per_s": 4000.0,
                  "sweep_large_runs_per_s": 4000.0 * v["sweep_large_over_engine"],
                  "rss_ratio_large_over_small": v["sweep_peak_rss_growth"]},
        "distributed": {"dask_over_local": v["dask_over_local"]},
        "abm": {"reference": {"ratio_per_lane": v["abm_reference_over_kernel"],
                              "ratio_per_cell_step_vs_default_case":
                                  v["abm_reference_over_kernel_per_cell_step"]}},
        "start": {"ratios": {k: v[k] for k in START - {"figure_worst_over_matplotlib"}},
                  "figures": {"worst_ratio": v["figure_worst_over_matplotlib"]}},
        "calibrate": {"ratio_cloud_over_engine": v["calibrate_cloud_over_engine"]},
    }
    for name, data in files.items():
        (d / f"{name}.json").write_text(json.dumps({"benchmark": name, **common, **data}))
    return d


def slowed(v: dict, factor: float) -> dict:
    """What a slowdown of the measured side by ``factor`` does to the ratios: speed-ups drop,
    times over a baseline rise, memory growth stays."""
    return {k: x if k in NOT_TIMED else x * factor if k in LOWER_IS_BETTER else x / factor
            for k, x in v.items()}


def gate(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(GATE), *map(str, args)], capture_output=True,
                          text=True, check=False, timeout=60)


@pytest.fixture
def baseline(tmp_path) -> Path:
    """A baseline re-measured (--rebaseline) from the typical numbers."""
    path = tmp_path / "baseline.json"
    r = gate("--rebaseline", "--baseline", path, write_jsons(tmp_path / "base", TYPICAL))
    assert r.returncode == 0, r.stdout + r.stderr
    return path


def test_rebaseline_writes_every_ratio(baseline):
    b = json.loads(baseline.read_text())
    assert set(b["ratios"]) == set(TYPICAL)
    for name, e in b["ratios"].items():
        assert e["value"] == pytest.approx(TYPICAL[name], rel=1e-3)
        assert e["tier"] == "quick" and e["date"] and e["machine"]
        assert e["higher_is_better"] == (name not in LOWER_IS_BETTER)
    assert b["ratios"]["engine_over_lsoda"]["band"] == 2.5
    assert b["ratios"]["sweep_over_engine"]["band"] == 3.0
    assert all(b["ratios"][k]["band"] == 2.5 for k in START)
    assert b["measured"]["date"] and b["measured"]["machine"]


def test_passes_on_baseline_like_numbers(tmp_path, baseline):
    # 30 % worse than the baseline everywhere: noise, well inside the band.
    r = gate("--baseline", baseline, write_jsons(tmp_path / "run", slowed(TYPICAL, 1.3)))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "benchmark gate: passed (12 ratios gated)" in r.stdout
    assert "FAIL" not in r.stdout


def test_fails_on_a_slowed_run(tmp_path, baseline):
    r = gate("--baseline", baseline, write_jsons(tmp_path / "run", slowed(TYPICAL, 3.5),
                                                  slowdown=3.5))
    assert r.returncode == 1, r.stdout + r.stderr
    fails = [ln for ln in r.stdout.splitlines() if ln.strip().startswith("FAIL ")]
    assert len(fails) == len(TYPICAL) - len(NOT_TIMED)  # one reason per failing ratio
    assert any(ln.strip().startswith("FAIL engine_over_lsoda = 24.3 fell below its floor 34.0")
               for ln in fails), r.stdout
    assert "IMMUNOSIM_BENCH_SLOWDOWN=3.5" in r.stdout


def test_one_regressed_ratio_fails_alone(tmp_path, baseline):
    v = dict(TYPICAL, dask_over_local=TYPICAL["dask_over_local"] / 2.6)
    r = gate("--baseline", baseline, write_jsons(tmp_path / "run", v))
    assert r.returncode == 1
    fails = [ln for ln in r.stdout.splitlines() if ln.strip().startswith("FAIL ")]
    assert len(fails) == 1 and "dask_over_local" in fails[0]


def test_memory_growth_is_gated_upwards(tmp_path, baseline):
    v = dict(TYPICAL, sweep_peak_rss_growth=TYPICAL["sweep_peak_rss_growth"] * 1.6)
    r = gate("--baseline", baseline, write_jsons(tmp_path / "run", v))
    assert r.returncode == 1
    assert "sweep_peak_rss_growth = 1.76 rose above its ceiling 1.65" in r.stdout


def test_slow_figure_is_gated_upwards(tmp_path, baseline):
    v = dict(TYPICAL, figure_worst_over_matplotlib=TYPICAL["figure_worst_over_matplotlib"] * 2.6)
    r = gate("--baseline", baseline, write_jsons(tmp_path / "run", v))
    assert r.returncode == 1
    fails = [ln for ln in r.stdout.splitlines() if ln.strip().startswith("FAIL ")]
    assert len(fails) == 1, r.stdout
    assert "figure_worst_over_matplotlib = 10.4 rose above its ceiling 10.0" in fails[0]


def test_optional_ratio_absent_is_skipped(tmp_path, baseline):
    r = gate("--baseline", baseline, write_jsons(tmp_path / "run", TYPICAL, numbalsoda=False))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "note: engine_over_numbalsoda: skipped" in r.stdout


def test_required_ratio_absent_fails(tmp_path, baseline):
    d = write_jsons(tmp_path / "run", TYPICAL)
    (d / "distributed.json").write_text(json.dumps({"benchmark": "distributed",
                                                    "tier": "quick"}))
    r = gate("--baseline", baseline, d)
    assert r.returncode == 1
    assert "FAIL dask_over_local: missing from" in r.stdout


def test_rebaseline_refuses_a_slowed_run(tmp_path, baseline):
    before = baseline.read_text()
    r = gate("--rebaseline", "--baseline", baseline,
             write_jsons(tmp_path / "run", TYPICAL, slowdown=2.0))
    assert r.returncode == 2 and "refusing" in r.stderr
    assert baseline.read_text() == before


def test_committed_baseline_gates_every_required_ratio(tmp_path):
    """The committed baseline: every required ratio has an entry from the quick tier, and
    numbers at its values pass while the same slowed 3.5x fail."""
    b = json.loads(BASELINE.read_text())["ratios"]
    required = set(TYPICAL) - {"engine_over_numbalsoda"}
    assert required <= set(b)
    for e in b.values():
        assert e["tier"] == "quick" and e["value"] > 0 and e["band"] >= 1 and e["date"]
    at_base = dict(TYPICAL, **{k: e["value"] for k, e in b.items()})
    assert gate(write_jsons(tmp_path / "ok", at_base)).returncode == 0
    r = gate(write_jsons(tmp_path / "slow", slowed(at_base, 3.5)))
    assert r.returncode == 1 and "FAIL engine_over_lsoda" in r.stdout
    assert "FAIL cli_validate_over_import_numpy" in r.stdout
    assert "FAIL calibrate_cloud_over_engine" in r.stdout


def test_rebaseline_takes_the_median_over_runs(tmp_path):
    dirs = [write_jsons(tmp_path / f"run{i}", slowed(TYPICAL, f)) for i, f in
            enumerate((1.0, 1.5, 0.8))]
    path = tmp_path / "baseline.json"
    r = gate("--rebaseline", "--baseline", path, *dirs)
    assert r.returncode == 0, r.stdout + r.stderr
    e = json.loads(path.read_text())["ratios"]["engine_over_lsoda"]
    assert e["value"] == pytest.approx(TYPICAL["engine_over_lsoda"]) and e["runs"] == 3


def test_rebaseline_keeps_hand_edited_bands(tmp_path, baseline):
    b = json.loads(baseline.read_text())
    b["ratios"]["dask_over_local"]["band"] = 4.0
    baseline.write_text(json.dumps(b))
    r = gate("--rebaseline", "--baseline", baseline,
             write_jsons(tmp_path / "run", slowed(TYPICAL, 1.2)))
    assert r.returncode == 0, r.stdout + r.stderr
    e = json.loads(baseline.read_text())["ratios"]["dask_over_local"]
    assert e["band"] == 4.0
    assert e["value"] == pytest.approx(TYPICAL["dask_over_local"] / 1.2, rel=1e-4)


def test_rebaseline_only_rewrites_the_named_ratios(tmp_path, baseline):
    before = json.loads(baseline.read_text())
    r = gate("--rebaseline", "--only", "figure_worst_over_matplotlib", "--baseline", baseline,
             write_jsons(tmp_path / "run", slowed(TYPICAL, 1.5)))
    assert r.returncode == 0, r.stdout + r.stderr
    after = json.loads(baseline.read_text())
    e = after["ratios"].pop("figure_worst_over_matplotlib")
    assert e["value"] == pytest.approx(TYPICAL["figure_worst_over_matplotlib"] * 1.5)
    del before["ratios"]["figure_worst_over_matplotlib"]
    assert after["ratios"] == before["ratios"] and after["measured"] == before["measured"]


def test_rebaseline_only_refuses_an_unknown_ratio(tmp_path, baseline):
    before = baseline.read_text()
    r = gate("--rebaseline", "--only", "figure_worst", "--baseline", baseline,
             write_jsons(tmp_path / "run", TYPICAL))
    assert r.returncode == 2
    assert "gate: --only: unknown ratio 'figure_worst'; valid: engine_over_lsoda" in r.stderr
    assert baseline.read_text() == before
