"""Helpers of benchmarks/bench_calibrate.py that decide what its numbers mean, on a 32-patient
cloud of configs/calibrate.toml (no timing is asserted).

- The raw-engine baseline integrates exactly the cloud's runs (same patients, order, treatment):
  its solutions read at the visits equal the cloud's features, and a shuffled or mistreated
  baseline is caught.
- ``IMMUNOSIM_BENCH_SLOWDOWN`` pads the calibration path and the likelihood, never the engine.
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import numpy as np
import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCH))
import bench_calibrate as bc  # noqa: E402


@pytest.fixture(scope="module")
def round0_cloud():
    r0 = bc.Round0.load()
    _, cloud = bc.time_cloud(r0, 32, threads=1)
    return r0, cloud


def test_baseline_runs_are_the_clouds(round0_cloud):
    r0, cloud = round0_cloud
    runs = bc.engine_runs(r0, cloud)
    assert [r.arm for r in runs] == r0.problem.arms == ["hsct", "msc"]
    assert all(r.y0.shape[0] == cloud.size for r in runs)
    bc.check_same_runs(r0, cloud, runs, threads=1)  # passes: the same runs

    shuffled = [dataclasses.replace(r, y0=r.y0[::-1], params=r.params[::-1]) for r in runs]
    with pytest.raises(bc.BenchError, match="arm hsct: the raw engine's runs differ"):
        bc.check_same_runs(r0, cloud, shuffled, threads=1)
    swapped = [dataclasses.replace(runs[0], events=runs[1].events), runs[1]]  # MSC as HSCT
    with pytest.raises(bc.BenchError, match="arm hsct"):
        bc.check_same_runs(r0, cloud, swapped, threads=1)


def test_same_cloud_notices_a_changed_feature(round0_cloud):
    _, cloud = round0_cloud
    assert bc.same_cloud(cloud, cloud)
    feats = {arm: dict(f) for arm, f in cloud.features.items()}
    feats["msc"]["flare"] = ~feats["msc"]["flare"]
    assert not bc.same_cloud(cloud, dataclasses.replace(cloud, features=feats))


def test_only_the_measured_side_is_slowed(round0_cloud, monkeypatch):
    from immunosim.experiments.calibrate import Likelihood

    r0, cloud = round0_cloud
    padded = []
    monkeypatch.setattr(bc._slowdown, "pad", lambda t0: padded.append(t0))
    bc.time_cloud(r0, 32, threads=1)
    assert len(padded) == 1
    runs = bc.engine_runs(r0, cloud)
    out = np.empty((cloud.size, runs[0].t.size, runs[0].y0.shape[1]))
    bc.time_engine(runs, r0.problem.config.solver.options(), 1, out)
    assert len(padded) == 1  # the raw engine is the baseline: never slowed
    like = Likelihood(r0.layout, cloud, r0.problem.fitted, r0.trm, 10.0)
    _, vals = bc.time_likelihood(like, bc.likelihood_points(r0, 4), passes=2)
    assert len(padded) == 3 and vals.shape == (4,)
