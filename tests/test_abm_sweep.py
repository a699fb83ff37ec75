"""Sweeps on the agent-based engine: the replicate dimension, determinism, Zarr, summaries,
probabilities and figures (small sizes: a few patients, a short horizon)."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from immunosim.experiments.config import ConfigError, load_config
from immunosim.experiments.stochastic import clopper_pearson, outcome_probabilities
from immunosim.experiments.sweep import summary_table, sweep

ABM_CONFIG = """
name = "abm_small"
seed = 3
horizon = 200
[engine]
kind = "abm"
replicates = 4
system_size = 150
burn_in = 30
[scenarios.msc]
msc = { amount = 1e6, time = 0, interval = 60, count = 2 }
[sweep.axes.amount]
target = "msc.amount"
values = [1e5, 3e6]
[sweep.axes.interval]
target = "msc.interval"
values = [30, 90]
[cohort]
size = 3
[cohort.parameters.activation_rate]
distribution = "lognormal"
median = 0.06
cv = 0.3
[outcomes]
landmarks = [91, 183]
[output]
trajectories = true
trajectory_every = 14
trajectory_variables = ["activity", "b_gc"]
chunk_size = 2
"""


@pytest.fixture(scope="module")
def abm_path(tmp_path_factory):
    p = tmp_path_factory.mktemp("abm") / "abm.toml"
    p.write_text(ABM_CONFIG)
    return p


@pytest.fixture(scope="module")
def abm_result(abm_path):
    return sweep(load_config(abm_path), progress=False)


def test_layout_and_outputs(abm_result):
    ds = abm_result
    assert ds.status.dims == ("scenario", "amount", "interval", "patient", "replicate")
    assert ds.sizes["replicate"] == 4 and ds.attrs["engine"] == "abm"
    assert (ds.status == 0).all()
    assert ds.activity_at.dims[-2:] == ("replicate", "landmark")
    assert ds.traj_b_gc.dims[-2:] == ("replicate", "time")
    for name in ("clones", "reseeding_clones", "surviving_clones", "extinction_time"):
        assert ds[name].dims == ds.status.dims
    assert (ds.clones >= ds.reseeding_clones).all()
    assert (ds.reseeding_clones >= ds.surviving_clones).all()
    # replicates of one patient differ (stochastic), and the lineage is never negative
    gc = ds.traj_b_gc.isel(scenario=0, amount=0, interval=0, patient=0)
    assert len({float(v) for v in gc.isel(time=-1).values}) > 1
    assert float(ds.traj_b_gc.min()) >= 0.0
    assert ds.attrs["abm_system_size"] == 150


def test_same_result_whatever_threads_and_chunks(abm_result, abm_path):
    # Mutation caught: stream keys from the position in a batch (then chunking changes results).
    cfg = load_config(abm_path)
    for workers, chunk in [(1, 1), (2, 3)]:
        ds = sweep(cfg, workers=workers, chunk_size=chunk, progress=False)
        xr.testing.assert_identical(ds, abm_result)


def test_zarr_round_trip_and_summary(abm_result, abm_path, tmp_path):
    out = tmp_path / "abm.zarr"
    sweep(load_config(abm_path), out, progress=False)
    with xr.open_zarr(out) as ds:
        xr.testing.assert_identical(ds.load(), abm_result)
    text = summary_table(abm_result)
    assert "P(durable)" in text and "cluster-robust" in text
    pr = outcome_probabilities(abm_result)
    assert pr.p_durable.dims == ("scenario", "amount", "interval")
    ok = abm_result.status == 0
    rem = abm_result.remission & ok
    # the estimate is the mean over patients of each patient's share of replicates
    share = rem.sum("replicate") / ok.sum("replicate")
    np.testing.assert_allclose(pr.p_remission.values, share.mean("patient").values)
    assert (pr.p_remission_low <= pr.p_remission).all()
    assert (pr.p_remission <= pr.p_remission_high).all()
    assert (pr.p_durable <= pr.p_remission + 1e-12).all()


def test_clopper_pearson_against_scipy_binomtest():
    from scipy.stats import binomtest

    for k, n in [(0, 10), (3, 10), (10, 10), (17, 40)]:
        lo, hi = clopper_pearson(np.array([k]), np.array([n]))
        ci = binomtest(k, n).proportion_ci(method="exact")
        np.testing.assert_allclose([lo[0], hi[0]], [ci.low, ci.high], rtol=1e-10, atol=1e-12)


def test_figures(abm_result, tmp_path):
    from immunosim.plotting.api import plot_result

    files = plot_result(abm_result, tmp_path / "fig", formats=["png"])
    names = {f.name for f in files}
    assert {"abm__p_durable_map.png", "abm__p_relapse_map.png",
            "abm__relapse_times.png"} <= names
    # the per-patient figures see replicates folded into patients (3 x 4 = 12 runs)
    from immunosim.plotting._data import pool_replicates

    pooled = pool_replicates(abm_result)
    assert pooled.sizes["patient"] == 12 and "replicate" not in pooled.dims
    np.testing.assert_array_equal(pooled.remission.values.reshape(abm_result.remission.shape),
                                  abm_result.remission.values)


def test_engine_config_errors(tmp_path):
    p = tmp_path / "bad.toml"
    p.write_text('[engine]\nkind = "ode"\nreplicates = 5\n')
    with pytest.raises(ConfigError, match="replicates"):
        load_config(p)
    p.write_text('[engine]\nkind = "abm"\nsystem_size = 0\n')
    with pytest.raises(ConfigError, match="system_size"):
        load_config(p)
    p.write_text('[engine]\nkind = "agent"\n')
    with pytest.raises(ConfigError, match="kind"):
        load_config(p)


def test_interval_when_every_patient_has_the_same_share():
    # All runs without remission: the cluster interval would be [0, 0]; Clopper-Pearson over the
    # 3 x 8 pooled runs is [0, 0.142] instead. Mutation caught: a zero-width interval.
    dims = ("patient", "replicate")
    z = np.zeros((3, 8), dtype=bool)
    ds = xr.Dataset({"status": (dims, np.zeros((3, 8), dtype=np.int64)),
                     "remission": (dims, z), "relapse": (dims, z)})
    pr = outcome_probabilities(ds)
    assert float(pr.p_remission) == 0.0
    lo, hi = clopper_pearson(np.array([0]), np.array([24]))
    assert float(pr.p_remission_low) == 0.0
    np.testing.assert_allclose(float(pr.p_remission_high), hi[0])
    # shares that vary: the cluster-robust normal interval
    rem = np.zeros((3, 8), dtype=bool)
    rem[0, :4] = True
    rem[1, :2] = True
    ds["remission"] = (dims, rem)
    pr = outcome_probabilities(ds)
    shares = np.array([0.5, 0.25, 0.0])
    se = shares.std(ddof=1) / np.sqrt(3)
    np.testing.assert_allclose(float(pr.p_remission_high), shares.mean() + 1.959964 * se,
                               rtol=1e-6)


def test_probabilities_are_dimensionless_and_inherit_nothing():
    """Old behaviour: every probability carried the status flags (``flag_values``,
    ``flag_meanings``) through ``status == 0``, and ``n_runs`` was labelled with them."""
    dims = ("patient", "replicate")
    rng = np.random.default_rng(1)
    rem = rng.random((3, 8)) < 0.5
    ds = xr.Dataset({"status": (dims, np.zeros((3, 8), dtype=np.int64),
                                {"long_name": "Run status", "flag_values": [0, 1],
                                 "flag_meanings": "success failed"}),
                     "remission": (dims, rem, {"long_name": "Remission", "units": "1"}),
                     "relapse": (dims, rem & (rng.random((3, 8)) < 0.5),
                                 {"long_name": "Relapse", "units": "1"})})
    pr = outcome_probabilities(ds)
    for name, v in pr.data_vars.items():
        assert set(v.attrs) == {"units", "long_name"} and v.attrs["units"] == "1", name
    assert pr.p_remission.attrs["long_name"] == "P(sustained remission)"
