"""Sweeps: result layout, reproducibility across threads and chunk sizes, kill + resume."""

import os
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import xarray as xr

from immunosim.experiments.config import load_config
from immunosim.experiments.sweep import sweep
from tests.conftest import SMALL_CONFIG


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    d = tmp_path_factory.mktemp("ref")
    p = d / "small.toml"
    p.write_text(SMALL_CONFIG)
    return sweep(load_config(p), progress=False)


def test_layout(reference):
    ds = reference
    assert ds.remission.dims == ("scenario", "amount", "n_infusions", "patient")
    assert list(ds.scenario.values) == ["untreated", "msc"]
    assert ds.sizes == {"scenario": 2, "amount": 2, "n_infusions": 2, "patient": 6, "landmark": 2,
                        "dose": 2,
                        "parameter": ds.sizes["parameter"], "time": ds.sizes["time"]}
    for v in ("remission", "time_to_remission", "relapse", "time_to_relapse", "activity_at",
              "status", "traj_activity"):
        assert v in ds
    assert ds.time_to_remission.attrs["units"] == "d"
    assert ds.attrs["seed"] == 7 and "msc.amount" in ds.attrs["config_toml"]
    assert (ds.status == 0).all()
    np.testing.assert_array_equal(ds.dose_time.sel(scenario="msc", n_infusions=2, amount=3e5),
                                  [0, 30])
    assert np.isnan(ds.dose_time.sel(scenario="untreated")).all()
    # the untreated scenario never remits; MSC does for some patients
    assert not ds.remission.sel(scenario="untreated").any()
    assert ds.remission.sel(scenario="msc").any()
    # axes really change the runs: more cells, at least as many remissions
    r = ds.remission.sel(scenario="msc").sum("patient")
    assert (r.sel(amount=3e6) >= r.sel(amount=3e5)).all()


def test_same_result_whatever_threads_and_chunks(reference, small_config_path):
    cfg = load_config(small_config_path)
    for workers, chunk in [(1, 1), (2, 4), (1, 100)]:
        ds = sweep(cfg, workers=workers, chunk_size=chunk, progress=False)
        xr.testing.assert_identical(ds, reference)


REGIMEN_CONFIG = """
name = "regimens"
seed = 11
horizon = 400
[scenarios.msc_late]
msc = { amount = 1e6, time = 30 }
therapy = [{ drug = "glucocorticoid", oral_mg = 7.5, start = 40 }]
[scenarios.hsct]
hsct = { time = 0, trm = 0.4 }
[scenarios.hsct_later]
hsct = { time = 20, trm = 0.4 }
therapy = [{ drug = "mycophenolate", dose = 2.0, start = 20 }]
[cohort]
size = 9
[cohort.parameters.activation_rate]
distribution = "lognormal"
median = 0.1
cv = 0.5
[outcomes]
time_origin = "first_dose"
landmarks = [91, 365]
[output]
trajectories = true
trajectory_every = 10
trajectory_variables = ["activity", "cd4"]
"""


def test_regimens_deaths_and_origins_same_whatever_threads_and_chunks(tmp_path):
    """Drugs, HSCT deaths and first-dose origins: identical at 1 and 2 threads and any chunk
    size; deaths strike the same patients in every HSCT arm, at a day within the window after
    the transplant; outcome times count from each arm's first dose."""
    path = tmp_path / "regimens.toml"
    path.write_text(REGIMEN_CONFIG)
    cfg = load_config(path)
    ref = sweep(cfg, workers=1, chunk_size=2, progress=False)
    for workers, chunk in [(2, 5), (2, 100)]:
        xr.testing.assert_identical(sweep(cfg, workers=workers, chunk_size=chunk,
                                          progress=False), ref)
    np.testing.assert_array_equal(ref.origin.values, [30.0, 0.0, 20.0])
    assert ref.attrs["follow_up_days"] == 370.0
    dead = ref.death.sel(scenario="hsct").values
    assert 0 < dead.sum() < dead.size  # trm 0.4 of 9 patients: some, not all (seed fixed)
    np.testing.assert_array_equal(ref.death.sel(scenario="hsct_later").values, dead)
    assert not ref.death.sel(scenario="msc_late").any()
    t_death = ref.time_to_death.sel(scenario="hsct").values[dead]
    assert np.all((t_death > 0) & (t_death <= 100))  # trm_window after the origin (day 0)
    # trajectories are masked from the day of death; the survivors' are not
    traj = ref.traj_activity.sel(scenario="hsct").values
    assert np.isnan(traj[dead][:, -1]).all() and np.isfinite(traj[~dead]).all()
    assert (ref.time_to_remission <= 370.0).all()


def test_zarr_and_netcdf_files(reference, small_config_path, tmp_path):
    cfg = load_config(small_config_path)
    z = sweep(cfg, tmp_path / "out.zarr", progress=False)
    n = sweep(cfg, tmp_path / "out.nc", progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.nc", "out.zarr", "small.toml"]
    dz = xr.open_zarr(z)
    assert dz.remission.dims == ("scenario", "amount", "n_infusions", "patient")
    xr.testing.assert_identical(dz.load(), reference)
    xr.testing.assert_identical(xr.open_dataset(n).load(), reference)


@pytest.mark.slow
def test_killed_sweep_resumes_to_identical_result(small_config_path, tmp_path, reference):
    """SIGKILL a real sweep part-way; --resume keeps finished blocks and ends identical."""
    big = small_config_path.read_text().replace("size = 6", "size = 60").replace(
        "chunk_size = 5", "chunk_size = 3")
    cfg_path = tmp_path / "big.toml"
    cfg_path.write_text(big)
    out = tmp_path / "res.zarr"
    markers = tmp_path / "res.zarr.partial-blocks"
    cmd = [sys.executable, "-m", "immunosim", "sweep", str(cfg_path), "-o", str(out), "--quiet",
           "--workers", "1"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline:
        if markers.exists() and len(list(markers.iterdir())) >= 8:
            break
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    n_done = len(list(markers.iterdir()))
    assert not out.exists(), "a killed sweep must not leave a complete-looking result"
    assert 8 <= n_done < 100, n_done  # killed part-way (100 blocks: 4 points x 20 for msc,
    # 20 for the untreated arm, which uses no axis and is computed once)
    resumed = subprocess.run(cmd + ["--resume"], capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    full = sweep(load_config(cfg_path), tmp_path / "full.zarr", progress=False)
    a, b = xr.open_zarr(out).load(), xr.open_zarr(full).load()
    xr.testing.assert_identical(a, b)
    assert not markers.exists() and not (tmp_path / "res.zarr.partial").exists()


def test_resume_with_a_different_config_is_refused(small_config_path, tmp_path):
    from immunosim.experiments.sweep import SweepError, ZarrWriter, plan

    cfg = load_config(small_config_path)
    ZarrWriter(plan(cfg), tmp_path / "r.zarr", "zarr", resume=False)  # leaves r.zarr.partial
    other = small_config_path.with_name("o.toml")
    other.write_text(SMALL_CONFIG.replace("seed = 7", "seed = 8"))
    with pytest.raises(SweepError, match="different config"):
        sweep(load_config(other), tmp_path / "r.zarr", resume=True, progress=False)


def test_random_designs(small_config_path):
    text = small_config_path.read_text()
    text = text.replace('values = [3e5, 3e6]', 'range = [1e5, 1e7]\nscale = "log"').replace(
        'values = [1, 2]', 'range = [1, 3]').replace('[sweep.axes.amount]',
                                                      '[sweep]\ndesign = "lhs"\nsamples = 5\n'
                                                      '[sweep.axes.amount]')
    small_config_path.write_text(text)
    ds = sweep(load_config(small_config_path), progress=False)
    assert ds.remission.dims == ("scenario", "point", "patient")
    assert ds.amount.dims == ("point",) and ds.sizes["point"] == 5
    assert ((ds.amount >= 1e5) & (ds.amount <= 1e7)).all()
    assert set(np.unique(ds["n_infusions"].values)) <= {1.0, 2.0}
    # LHS: one sample in each of the 5 strata of log(amount)
    strata = np.floor((np.log10(ds.amount.values) - 5) / 2 * 5)
    assert sorted(strata) == [0, 1, 2, 3, 4]


def test_axis_on_a_steady_state_parameter_recomputes_starting_states(small_config_path):
    """An axis that moves the untreated equilibrium restarts each run from the new equilibrium;
    a value with no diseased state gives status 10 (not a crash), with its outcomes masked."""
    from immunosim.experiments.sweep import NOT_DISEASED
    from immunosim.model import sle_msc as m
    from immunosim.model.activity import activity
    from immunosim.model.steady_states import diseased_state

    text = small_config_path.read_text().replace(
        '[sweep.axes.n_infusions]\ntarget = "msc.count"\nvalues = [1, 2]',
        '[sweep.axes.act]\ntarget = "parameters.activation_rate"\nvalues = [0.3, 0.005]\n'
        'override_cohort = true')  # the cohort draws activation_rate: replaced on purpose
    small_config_path.write_text(text)
    ds = sweep(load_config(small_config_path), progress=False)
    assert (ds.status.sel(act=0.005) == NOT_DISEASED).all()
    assert np.isnan(ds.time_to_remission.sel(act=0.005)).all()
    d = ds.sel(act=0.3)
    assert (d.status == 0).all()
    for i in range(ds.sizes["patient"]):
        p = ds.patient_parameters.isel(patient=i).values.copy()
        p[m.PARAMETERS.index["activation_rate"]] = 0.3
        y = diseased_state(p)
        expected = activity(y, p)
        assert (d.baseline_activity.isel(patient=i) == expected).all()
        np.testing.assert_allclose(
            d.traj_activity.isel(patient=i, time=0).sel(scenario="untreated"), expected)


def test_assessment_times_end_at_the_horizon(small_config_path):
    from immunosim.experiments.sweep import plan

    text = small_config_path.read_text().replace("horizon = 240", "horizon = 200").replace(
        "[outcomes]", "[outcomes]\nassessment_every = 7")
    small_config_path.write_text(text)
    p = plan(load_config(small_config_path))
    assert p.t_assess[-1] == 200 and p.t_assess[-2] == 196
    np.testing.assert_array_equal(np.diff(p.t_assess[:-1]), 7)


# --- posterior draws ------------------------------------------------------------------------------


def test_draws_same_result_whatever_threads_and_chunks_and_draw_1_is_the_point_cohort(
        draws_config_path):
    """Patients (k, i): one patient axis of K * size with draw/subject coordinates; identical
    at any thread count and chunk size (blocks cut across draws); draw 1 of the calibrated
    cohort is its point fit, so its runs equal the posterior_draws = 0 sweep's."""
    from immunosim.experiments.sweep import plan, summary_table

    cfg = load_config(draws_config_path)
    ref = sweep(cfg, workers=1, chunk_size=4, progress=False)
    for workers, chunk in [(2, 1), (1, 100)]:
        xr.testing.assert_identical(sweep(cfg, workers=workers, chunk_size=chunk,
                                          progress=False), ref)
    assert ref.remission.dims == ("scenario", "amount", "patient") and ref.sizes["patient"] == 6
    np.testing.assert_array_equal(ref.draw.values, [0, 0, 0, 1, 1, 1])
    np.testing.assert_array_equal(ref.subject.values, [0, 1, 2, 0, 1, 2])
    assert ref.attrs["posterior_rows"] == [0, 2] and ref.attrs["posterior_source"] == "a test"
    assert ref.attrs["cohort_include"] == "cohort_calibrated.toml"
    assert "[cohort.posterior]" in ref.attrs["cohort_toml"]

    point_path = draws_config_path.with_name("point.toml")
    point_path.write_text(draws_config_path.read_text().replace("posterior_draws = 2\n", ""))
    point = sweep(load_config(point_path), progress=False)
    assert "draw" not in point.coords and point.sizes["patient"] == 3
    for v in ("remission", "time_to_remission", "activity_at", "patient_parameters", "status"):
        np.testing.assert_array_equal(ref[v].isel(patient=slice(3, 6)).values, point[v].values)
    assert not np.array_equal(ref.patient_parameters.values[:3], point.patient_parameters.values)
    # treatment-related death: one uniform per subject, shared by every draw
    u = plan(cfg).death_u
    np.testing.assert_array_equal(u[:3], u[3:])
    np.testing.assert_array_equal(u[3:], plan(load_config(point_path)).death_u)
    table = summary_table(ref)
    rem = next(ln for ln in table.splitlines() if ln.startswith("sustained remission"))
    # pooled, then each of the two amounts: a credible interval in every column
    assert len(re.findall(r"\d+% \[\d+-\d+\] \(\d+/\d+\)", rem)) == 3, table
    assert "95% interval across draws" in table and "2 posterior draws" in table
    assert not re.search(r"\d% \[", summary_table(point))


def test_changed_included_file_changes_the_digest(draws_config_path):
    from immunosim.experiments.sweep import config_digest

    before = config_digest(load_config(draws_config_path))
    inc = draws_config_path.with_name("cohort_calibrated.toml")
    inc.write_text(inc.read_text().replace("cv = [[0.4, 0.6]", "cv = [[0.4, 0.7]"))
    assert config_digest(load_config(draws_config_path)) != before


def test_resume_with_a_different_block_layout_is_refused(small_config_path, tmp_path,
                                                         reference):
    """Regression: markers name blocks by index, and the block size follows --chunk-size. A
    resume with another chunk size used to take the first run's markers for other patients
    (mixing two layouts, leaving runs never computed); it must refuse in one line. Resuming with
    the first run's layout ends identical to an uninterrupted run."""
    from immunosim.experiments.sweep import SweepError, ZarrWriter, compute_batch, plan

    cfg = load_config(small_config_path)
    p = plan(cfg, chunk_size=5)  # blocks of 5 and 1 patients
    w = ZarrWriter(p, tmp_path / "r.zarr", "zarr", resume=False)
    first = p.blocks[:3]
    for b, data in zip(first, compute_batch(p, first)):
        w.write(b, data)
    with pytest.raises(SweepError, match="blocks of 5 patients, this run uses 2") as e:
        sweep(cfg, tmp_path / "r.zarr", resume=True, chunk_size=2, progress=False)
    assert "\n" not in str(e.value)
    assert len(list((tmp_path / "r.zarr.partial-blocks").iterdir())) == 3  # nothing touched
    out = sweep(cfg, tmp_path / "r.zarr", resume=True, chunk_size=5, progress=False)
    xr.testing.assert_identical(xr.open_zarr(out).load(), reference)


def test_runs_never_computed_do_not_read_back_as_success(small_config_path, tmp_path):
    """Regression: the status fill value (NOT_COMPUTED = -1) was never written to the Zarr
    store, so the runs of an unfinished store read back as status 0 (success) with NaN times.
    Now it is in the Zarr metadata: raw Zarr reads -1, xarray masks it (NaN, not 0); the
    finished store is plain int64 again."""
    import zarr

    from immunosim.experiments.sweep import NOT_COMPUTED, ZarrWriter, compute_batch, plan

    cfg = load_config(small_config_path)
    p = plan(cfg)
    w = ZarrWriter(p, tmp_path / "r.zarr", "zarr", resume=False)
    b = p.blocks[0]
    w.write(b, compute_batch(p, [b])[0])
    work = tmp_path / "r.zarr.partial"
    raw = zarr.open_group(str(work), mode="r", zarr_format=2)["status"]
    assert raw.fill_value == NOT_COMPUTED
    s = raw[:]
    computed = np.zeros(s.shape, bool)
    assert len(b.points) == 4  # the untreated arm uses no axis: one block fills all 4 points
    for point in b.points:
        i, j = np.unravel_index(point, s.shape[1:3])
        computed[b.scenario, i, j, b.patients] = True
    assert (s[computed] == 0).all()
    assert (s[~computed] == NOT_COMPUTED).all()
    st = xr.open_zarr(work, consolidated=False).status.values
    assert np.isnan(st[~computed]).all() and (st[computed] == 0).all()
    assert NOT_COMPUTED in xr.open_zarr(work, consolidated=False).status.attrs["flag_values"]
    for b in p.blocks[1:]:
        w.write(b, compute_batch(p, [b])[0])
    ds = xr.open_zarr(w.finish())
    assert ds.status.dtype == np.int64 and (ds.status == 0).all()


# --- categorical and zipped axes, runs shared along unused axes, progress lines -------------------

AXES_CONFIG = """
name = "axes"
seed = 3
horizon = 200
[model]
parameters = { potency_uc = 1.8 }
[scenarios.untreated]
[scenarios.msc]
msc = { amount = 1e6, interval = 0 }
[sweep.axes.source]
target = "msc.source"
values = ["bm", "uc"]
[sweep.axes.amount]
target = "msc.amount"
values = [1e6, 5e5]
[sweep.axes.n_infusions]
target = "msc.count"
values = [1, 2]
[cohort]
size = 4
[cohort.parameters.activation_rate]
distribution = "lognormal"
median = 0.06
cv = 0.5
[outcomes]
assessment_every = 7
landmarks = [91, 183]
[output]
chunk_size = 3
"""


def _every_point_computed(monkeypatch):
    """Plan one block set per design point (the behaviour before runs were shared)."""
    from immunosim.experiments import sweep as sw

    monkeypatch.setattr(sw, "same_runs", lambda setups: [(i,) for i in range(len(setups))])


def test_runs_shared_along_unused_axes_equal_computing_each_point(tmp_path, monkeypatch):
    """The untreated arm uses no axis: computed once, not 8 times, and written at every point
    with the values computing each point gives; a one-dose record's interval is no axis of it
    either (the interval x count grid computes 3 schedules, not 4)."""
    from immunosim.experiments.sweep import plan

    path = tmp_path / "axes.toml"
    path.write_text(AXES_CONFIG)
    cfg = load_config(path)
    p = plan(cfg)
    assert p.n_runs == 2 * 8 * 4 and p.n_computed == (8 + 1) * 4
    shared = sweep(cfg, workers=1, progress=False)
    u = shared.remission.sel(scenario="untreated")
    assert (u == u.isel(source=0, amount=0, n_infusions=0)).all()

    text = AXES_CONFIG.replace("[sweep.axes.source]", """[sweep.axes.interval]
target = "msc.interval"
values = [30, 60]
[sweep.axes.source]""").replace('values = ["bm", "uc"]', 'values = ["bm"]')
    path.write_text(text)
    cfg2 = load_config(path)
    p2 = plan(cfg2)
    assert p2.n_computed == (2 * 3 + 1) * 4  # amount x {count 1, count 2 at 30 d, at 60 d}
    two = sweep(cfg2, workers=2, chunk_size=2, progress=False)

    _every_point_computed(monkeypatch)
    assert plan(cfg).n_computed == plan(cfg).n_runs
    xr.testing.assert_identical(sweep(cfg, workers=1, progress=False), shared)
    xr.testing.assert_identical(sweep(cfg2, workers=1, progress=False), two)


def test_categorical_axis_sweeps_the_cell_source(tmp_path):
    """``msc.source`` used to be refused as a target ("unknown target"); now a string axis
    whose coordinate is a string coordinate, in memory and in Zarr, and whose values act."""
    path = tmp_path / "axes.toml"
    path.write_text(AXES_CONFIG)
    ds = sweep(load_config(path), tmp_path / "a.zarr", progress=False)
    with xr.open_zarr(ds) as z:
        assert z.source.dtype.kind == "U" and list(z.source.values) == ["bm", "uc"]
        assert z.source.attrs["sweep_target"] == "msc.source" and "units" not in z.source.attrs
        msc = z.activity_at.sel(scenario="msc", amount=5e5, n_infusions=1).load()
    assert (msc.sel(source="uc") <= msc.sel(source="bm")).all()  # potency 1.8 vs 1
    assert not msc.sel(source="uc").equals(msc.sel(source="bm"))


def test_zipped_axes_are_one_dimension_with_a_coordinate_per_axis(tmp_path):
    """``zip = { regimen = ["amount", "n_infusions"] }``: one dimension; row i of the result equals
    the grid point (amount i, count i). With interval 0, 1 x 1e6 and 2 x 5e5 on day 0 are the
    same 1e6 cells/kg: a double dose tied to the swept amount."""
    path = tmp_path / "axes.toml"
    path.write_text(AXES_CONFIG)
    grid = sweep(load_config(path), progress=False)
    path.write_text(AXES_CONFIG.replace("[sweep.axes.source]",
                                        '[sweep]\nzip = { regimen = ["amount", "n_infusions"] }\n'
                                        "[sweep.axes.source]"))
    ds = sweep(load_config(path), progress=False)
    assert ds.remission.dims == ("scenario", "source", "regimen", "patient")
    assert ds.amount.dims == ("regimen",) and ds.n_infusions.dims == ("regimen",)
    np.testing.assert_array_equal(ds.amount.values, [1e6, 5e5])
    np.testing.assert_array_equal(ds.n_infusions.values, [1, 2])
    np.testing.assert_array_equal(ds.regimen.values, [0, 1])
    for i, (a, c) in enumerate([(1e6, 1), (5e5, 2)]):
        for v in ("remission", "activity_at", "status", "dose_time"):
            np.testing.assert_array_equal(ds[v].isel(regimen=i).values,
                                          grid[v].sel(amount=a, n_infusions=c).values)
    np.testing.assert_array_equal(ds.dose_time.sel(scenario="msc", source="bm").values,
                                  [[0, np.nan], [0, 0]])
    same = ds.activity_at.sel(scenario="msc")
    np.testing.assert_allclose(same.isel(regimen=0), same.isel(regimen=1), atol=1e-9)


def test_progress_lines_without_a_terminal(small_config_path, monkeypatch, capsys):
    """Off a terminal (pytest's stderr), the default progress is one log line per interval
    (here every batch), naming the runs computed, with no bar; progress=False is silent."""
    from immunosim.experiments import progress

    monkeypatch.setattr(progress, "LOG_EVERY", 0.0)
    cfg = load_config(small_config_path)
    sweep(cfg, progress=False)
    assert capsys.readouterr().err == ""
    sweep(cfg)
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines[0] == ("immunosim: small: 30 runs to compute for 48 results (runs that do not "
                        "depend on an axis are computed once and repeated along it)")
    assert len(lines) == 1 + 10  # a line per block (blocks of 5 and 1 patients)
    assert all(re.fullmatch(r"immunosim: small: \d+/30 runs \(\d+%\), \d+ runs/s"
                            r"(, \d+ s left)?", x) for x in lines[1:]), lines
    assert lines[-1].startswith("immunosim: small: 30/30 runs (100%)")


def test_a_bone_marrow_arm_is_computed_once_along_a_potency_uc_axis(tmp_path, monkeypatch):
    """The potency of UC-MSCs cannot change a BM-MSC or untreated run: 3 arms x 4 potencies
    used to be 12 runs per patient; now 1 + 1 + 4, with the values computing each gives."""
    from immunosim.experiments.sweep import plan

    path = tmp_path / "potency.toml"
    path.write_text("""
seed = 5
horizon = 120
[scenarios.untreated]
[scenarios.bm]
msc = { amount = 1e6, source = "bm" }
[scenarios.uc]
msc = { amount = 1e6, source = "uc" }
[sweep.axes.potency]
target = "parameters.potency_uc"
values = [0.5, 1.0, 1.5, 2.0]
[cohort]
size = 3
[outcomes]
assessment_every = 7
landmarks = [60, 120]
""")
    cfg = load_config(path)
    assert (plan(cfg).n_runs, plan(cfg).n_computed) == (36, 18)
    shared = sweep(cfg, progress=False)
    bm = shared.activity_at.sel(scenario="bm")
    assert (bm == bm.isel(potency=0)).all()
    uc = shared.activity_at.sel(scenario="uc")
    assert not (uc == uc.isel(potency=0)).all()
    _every_point_computed(monkeypatch)
    xr.testing.assert_identical(sweep(cfg, progress=False), shared)


class _SlowWriter:
    """Records each block's write; each write takes ``delay`` s; raises at block ``fail``."""

    def __init__(self, delay=0.0, fail=None):
        self.delay, self.fail = delay, fail
        self.started, self.finished = [], []

    def write(self, b, data):
        self.started.append(b)
        if b == self.fail:
            raise OSError(28, "No space left on device")
        time.sleep(self.delay)
        self.finished.append(b)


def test_background_writes_raise_the_writer_error_in_the_caller():
    """An error writing batch k is raised when batch k + 1 is submitted (or at the end);
    the blocks after the failing one are not written."""
    from immunosim.experiments.sweep import BackgroundWrites

    w = _SlowWriter(fail=1)
    seen = []
    with pytest.raises(OSError, match="No space"), BackgroundWrites(w, seen.append) as writes:
        writes.submit([0, 1, 2], [{}, {}, {}])
        writes.submit([3], [{}])
    assert w.started == [0, 1] and w.finished == [0] and seen == []
    w = _SlowWriter(fail=3)
    with pytest.raises(OSError), BackgroundWrites(w, seen.append) as writes:
        writes.submit([0, 1, 2], [{}, {}, {}])
        writes.submit([3], [{}])  # the error of the last batch: raised on leaving the block
    assert seen == [0, 1, 2]  # done() of the batch written, in the caller


def test_background_writes_finish_the_block_in_hand_before_an_exception_goes_on():
    """Interrupted while the thread writes: the exception goes on only once the block being
    written is whole (data, then marker), and no further block is started (the output lock
    is released after that, and --resume recomputes the blocks without a marker)."""
    from immunosim.experiments.sweep import BackgroundWrites

    w = _SlowWriter(delay=0.3)
    with pytest.raises(KeyboardInterrupt), BackgroundWrites(w) as writes:
        writes.submit([0, 1, 2], [{}, {}, {}])
        time.sleep(0.05)  # block 0 is being written
        raise KeyboardInterrupt
    assert w.started == [0] and w.finished == [0]


def test_a_sweep_interrupted_between_batches_keeps_only_whole_marked_blocks(small_config_path,
                                                                           tmp_path,
                                                                           monkeypatch,
                                                                           reference):
    """Interrupted while computing batch 3: batch 1 is written with its markers, batch 2 (in
    flight) has whole blocks with markers or none, batch 3 nothing; --resume computes the
    others and ends identical."""
    import immunosim.experiments.sweep as sw

    out = tmp_path / "out.zarr"
    real = sw.compute_batch
    calls = []

    def interrupted(p, blocks, **kw):
        calls.append(blocks)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(p, blocks, **kw)

    monkeypatch.setattr(sw, "compute_batch", interrupted)
    with pytest.raises(KeyboardInterrupt):
        sweep(load_config(small_config_path), out, progress=False)
    monkeypatch.setattr(sw, "compute_batch", real)
    markers = sorted(int(f.name.split(".")[0]) for f in
                     out.with_name("out.zarr.partial-blocks").iterdir())
    first = [b.index for b in calls[0]]  # waited for before batch 2 was submitted
    assert markers[:len(first)] == first
    assert set(markers) <= {b.index for batch in calls[:2] for b in batch}
    assert not out.with_name("out.zarr.lock").exists()
    sweep(load_config(small_config_path), out, resume=True, progress=False)
    xr.testing.assert_identical(xr.open_zarr(out).load(), reference)
