"""Plotting: the data behind each figure (not pixels), errors, files written, the CLI."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from immunosim.plotting import (
    PlotError,
    km_curve,
    km_curves,
    map_grid,
    number_at_risk,
    plot_result,
    thresholds,
    timecourse_bands,
    waterfall_data,
)
from immunosim.plotting._data import open_result
from immunosim.plotting.api import FIGURES
from tests.conftest import SMALL_CONFIG

AXES = {"amount": [1e5, 1e6, 1e7], "first_day": [0.0, 91.0], "n_infusions": [1, 2],
        "interval": [30.0, 90.0]}


def fake_result(seed: int = 0, n_patients: int = 40, horizon: float = 730.0) -> xr.Dataset:
    """A sweep-shaped result with random outcomes (no ODEs): scenario x 4 axes x patient."""
    rng = np.random.default_rng(seed)
    dims = ("scenario", *AXES, "patient")
    shape = (1, *(len(v) for v in AXES.values()), n_patients)
    rem = rng.random(shape) < 0.5
    t_rem = np.where(rem, rng.choice([91.0, 300.0, 400.0, 600.0], shape), horizon)
    rel = rem & (rng.random(shape) < 0.4)
    t_rel = np.where(rem, np.where(rel, rng.choice([500.0, 700.0, 729.0], shape), horizon),
                     np.nan)
    base = np.full(shape, 12.0)
    at = rng.choice([0.0, 2.0, 6.0, 12.0, 14.0], shape + (2,))
    status = np.where(rng.random(shape) < 0.05, 3, 0)
    coords = {"scenario": ["msc"], "patient": np.arange(n_patients), "landmark": [183.0, 365.0]}
    coords.update({k: (k, v, {"long_name": f"Sweep axis: msc.{'time' if k == 'first_day' else k}"})
                   for k, v in AXES.items()})
    return xr.Dataset(
        {"remission": (dims, rem), "time_to_remission": (dims, t_rem, {"units": "d"}),
         "relapse": (dims, rel), "time_to_relapse": (dims, t_rel, {"units": "d"}),
         "response": (dims, rem | (rng.random(shape) < 0.3)),
         "baseline_activity": (dims, base, {"units": "points"}),
         "activity_at": (dims + ("landmark",), at, {"units": "points"}),
         "status": (dims, status)},
        coords=coords, attrs={"horizon_days": horizon, "title": "fake"})


@pytest.fixture(scope="module")
def small_result(tmp_path_factory):
    """The SMALL_CONFIG sweep (2 scenarios x amount x n_infusions x 6 patients, 240 d) as a Zarr."""
    from immunosim.experiments.config import load_config
    from immunosim.experiments.sweep import sweep

    d = tmp_path_factory.mktemp("small")
    (d / "small.toml").write_text(SMALL_CONFIG)
    return sweep(load_config(d / "small.toml"), d / "r.zarr", progress=False)


# --- Kaplan-Meier -------------------------------------------------------------------------------


def test_km_steps_match_a_hand_worked_example():
    # times 2 3 3 5 8; the second 3 and the 8 are censored.
    # t=2: 5 at risk, 1 event -> S = 4/5 = 0.8
    # t=3: 4 at risk, 1 event (one censored at 3 still counts as at risk) -> 0.8 * 3/4 = 0.6
    # t=5: 2 at risk (5, 8), 1 event -> 0.6 * 1/2 = 0.3;  t=8: censored, S stays 0.3
    c = km_curve([2, 3, 3, 5, 8], [True, True, False, True, False])
    np.testing.assert_allclose(c.time, [0, 2, 3, 5, 8])
    np.testing.assert_allclose(c.survival, [1.0, 0.8, 0.6, 0.3, 0.3])
    np.testing.assert_allclose(c.at([0, 1.9, 2, 2.5, 4.99, 5, 100]),
                               [1.0, 1.0, 0.8, 0.8, 0.6, 0.3, 0.3])
    np.testing.assert_array_equal(c.censored_times, [3, 8])
    ok = np.isfinite(c.low) & np.isfinite(c.high)
    assert np.all(c.low[ok] <= c.survival[ok] + 1e-12)
    assert np.all(c.survival[ok] <= c.high[ok] + 1e-12)


def test_numbers_at_risk_count_subjects_still_observed():
    # at risk at t = observed time >= t (events and censorings at t are still at risk)
    np.testing.assert_array_equal(number_at_risk([2, 3, 3, 5, 8], [0, 2, 3, 4, 5, 8, 9]),
                                  [5, 5, 4, 2, 2, 1, 0])


def test_km_curves_per_scenario_exclude_failed_runs_and_non_remitters():
    t_rem = [[2, 3, 3, 5, 8, 1], [10, 10, 10, 10, 10, 10]]
    rem = [[1, 1, 0, 1, 0, 1], [0, 0, 0, 0, 0, 0]]
    status = [[0, 0, 0, 0, 0, 4], [0, 0, 0, 0, 0, 0]]  # the last patient's run failed
    t_rel = [[4, 10, np.nan, 10, np.nan, 2], [np.nan] * 6]
    rel = [[1, 0, 0, 0, 0, 1], [0] * 6]
    dims = ("scenario", "patient")
    ds = xr.Dataset({"time_to_remission": (dims, np.array(t_rem, float)),
                     "remission": (dims, np.array(rem, bool)),
                     "time_to_relapse": (dims, np.array(t_rel, float)),
                     "relapse": (dims, np.array(rel, bool)), "status": (dims, status)},
                    coords={"scenario": ["a", "b"]}, attrs={"horizon_days": 10.0})
    curves = km_curves(ds, "remission")
    np.testing.assert_allclose(curves["a"].survival, [1.0, 0.8, 0.6, 0.3, 0.3])
    np.testing.assert_allclose(curves["b"].survival, [1.0, 1.0])  # all censored at 10
    rf = km_curves(ds, "relapse_free", origin="time_origin")
    assert list(rf) == ["a"]  # no remitter in b: nothing at risk of relapse
    # from day 0: remitters 2, 3, 5 (times 4 event, 10 and 10 censored): S = 2/3 from day 4
    assert rf["a"].n == 3
    np.testing.assert_allclose(rf["a"].survival, [1.0, 2 / 3, 2 / 3])


def _remitters_dataset():
    """Six patients of one scenario (horizon 730 d): A-E remit, F does not, G's run failed.

    patient   remission onset  relapse          follow-up end
    A         100              250              730
    B         300              -                730 (censored)
    C          50              400              730
    D         200              -                500 (death: censored there)
    E         600              700              730
    F         -                -                730 (never at risk of relapse)
    G         (status 4: excluded)
    """
    t_rem = [100, 300, 50, 200, 600, 730, 10]
    rem = [1, 1, 1, 1, 1, 0, 1]
    t_rel = [250, 730, 400, 500, 700, np.nan, 20]  # clinical.py: follow-up if no relapse
    rel = [1, 0, 1, 0, 1, 0, 1]
    dims = ("scenario", "patient")
    return xr.Dataset({"time_to_remission": (dims, np.array([t_rem], float)),
                       "remission": (dims, np.array([rem], bool)),
                       "time_to_relapse": (dims, np.array([t_rel], float)),
                       "relapse": (dims, np.array([rel], bool)),
                       "death": (dims, np.array([[0, 0, 0, 1, 0, 0, 0]], bool)),
                       "status": (dims, np.array([[0, 0, 0, 0, 0, 0, 4]]))},
                      coords={"scenario": ["msc"]},
                      attrs={"horizon_days": 730.0, "time_origin": "start"})


def test_relapse_free_counts_from_remission_onset_by_default():
    # From onset: E 100 (event), A 150 (event), D 300 (censored at death), C 350 (event),
    # B 430 (censored at the horizon). KM: 5 at risk at 100 -> 4/5 = 0.8; 4 at risk at 150
    # -> 0.8 * 3/4 = 0.6; D censored at 300; 2 at risk at 350 (C, B) -> 0.6 * 1/2 = 0.3.
    ds = _remitters_dataset()
    c = km_curves(ds, "relapse_free")["msc"]
    np.testing.assert_allclose(c.time, [0, 100, 150, 300, 350, 430])
    np.testing.assert_allclose(c.survival, [1.0, 0.8, 0.6, 0.6, 0.3, 0.3])
    np.testing.assert_array_equal(c.censored_times, [300, 430])
    np.testing.assert_array_equal(c.at_risk([0, 100, 151, 400]), [5, 5, 3, 1])
    # the old origin (day 0) is still available, and differs: first relapse on day 250
    old = km_curves(ds, "relapse_free", origin="time_origin")["msc"]
    np.testing.assert_allclose(old.time, [0, 250, 400, 500, 700, 730])
    with pytest.raises(PlotError, match="remission curves count from the result's time origin"):
        km_curves(ds, "remission", origin="remission_onset")


def test_survival_figures_say_where_time_starts():
    from immunosim.plotting.survival import figures

    ds = _remitters_dataset()
    rem, rf = figures(ds)
    assert rf.figure.axes[1].get_xlabel() == "Time from remission onset (d)"
    assert rem.figure.axes[1].get_xlabel() == "Time from day 0 of the run (d)"
    assert "time_to_relapse - time_to_remission" in rf.caption
    _, rf0 = figures(ds.assign_attrs(time_origin="first_dose"), relapse_origin="time_origin")
    assert rf0.figure.axes[1].get_xlabel() == "Time from the first dose (d)"
    assert "immortal time" in rf0.caption


# --- dose-timing maps -----------------------------------------------------------------------------


def _numpy_map(ds, day, interval_index=0):
    rem = ds.remission.values[0, :, :, :, interval_index]  # (amount, day, infusions, patient)
    t = ds.time_to_remission.values[0, :, :, :, interval_index]
    ok = ds.status.values[0, :, :, :, interval_index] == 0
    hit = np.where(ok, (rem & (t <= day)).astype(float), np.nan)
    return np.nanmean(hit, axis=-1)  # (amount, first_day, n_infusions)


def test_map_grid_is_the_mean_over_patients_at_the_chosen_slice():
    ds = fake_result()
    grid = map_grid(ds, "remission")
    assert grid.dims == ("n_infusions", "amount", "first_day")  # facet, y, x
    assert grid.attrs["day"] == 365.0
    assert "interval between infusions = 30 d" in grid.attrs["note"]
    expected = np.moveaxis(_numpy_map(ds, 365.0), -1, 0)
    np.testing.assert_allclose(grid.values, expected)
    sel = map_grid(ds, "remission", select={"interval": 90})
    np.testing.assert_allclose(sel.values, np.moveaxis(_numpy_map(ds, 365.0, 1), -1, 0))
    avg = map_grid(ds, "remission", average=["interval"])
    np.testing.assert_allclose(avg.values, (expected + sel.values) / 2)


def test_map_grid_relapse_by_day_730_and_capped_at_the_horizon():
    ds = fake_result()
    grid = map_grid(ds, "relapse")
    rel = ds.relapse.values[0, ..., 0, :] & (ds.time_to_relapse.values[0, ..., 0, :] <= 730)
    ok = ds.status.values[0, ..., 0, :] == 0
    expected = np.nanmean(np.where(ok, rel.astype(float), np.nan), axis=-1)
    np.testing.assert_allclose(grid.values, np.moveaxis(expected, -1, 0))
    short = fake_result(horizon=240.0)
    assert map_grid(short, "relapse").attrs["day"] == 240.0


def test_map_with_posterior_draws_shows_the_interval(tmp_path):
    """Per-draw maps: the 2.5/97.5% quantiles across draws (numpy) as ci_low/ci_high, written
    under each cell, and the figure renders."""
    from immunosim.plotting.maps import figures

    ds = fake_result(n_patients=40).assign_coords(draw=("patient", np.repeat(np.arange(4), 10)),
                                                  subject=("patient", np.tile(np.arange(10), 4)))
    grid = map_grid(ds, "remission")
    np.testing.assert_allclose(grid.values, np.moveaxis(_numpy_map(ds, 365.0), -1, 0))
    rem = ds.remission.values[0, :, :, :, 0] & (ds.time_to_remission.values[0, :, :, :, 0] <= 365)
    ok = ds.status.values[0, :, :, :, 0] == 0
    per = np.nanmean(np.where(ok, rem, np.nan).reshape(3, 2, 2, 4, 10), axis=-1)
    lo, hi = np.moveaxis(np.nanquantile(per, [0.025, 0.975], axis=-1), -1, 1)
    np.testing.assert_allclose(grid.ci_low.values, lo)
    np.testing.assert_allclose(grid.ci_high.values, hi)
    assert grid.attrs["n_draws"] == 4 and "ci_low" not in map_grid(
        ds.drop_vars(["draw", "subject"]), "remission").coords
    spec = figures(ds)[0]
    assert "95% interval across 4 posterior draws" in spec.caption
    texts = [t.get_text() for ax in spec.figure.axes for t in ax.texts]
    assert f"{100 * lo[0, 0, 0]:.0f}\u2013{100 * hi[0, 0, 0]:.0f}" in texts
    spec.figure.savefig(tmp_path / "map.png")
    assert (tmp_path / "map.png").stat().st_size > 10_000


def test_relapse_among_remitters_divides_by_remitters_and_masks_small_cells():
    ds = fake_result()
    sl = (0, slice(None), slice(None), slice(None), 0)  # scenario 0, interval 30 d
    ok = ds.status.values[sl] == 0
    rem = ok & ds.remission.values[sl] & (ds.time_to_remission.values[sl] <= 730)
    rel = ok & ds.relapse.values[sl] & (ds.time_to_relapse.values[sl] <= 730)
    num, den = rel.sum(-1), rem.sum(-1)  # (amount, first_day, count)
    grid = map_grid(ds, "relapse_among_remitters", min_remitters=1)
    assert grid.attrs["denominator"] == "remitters"
    np.testing.assert_array_equal(grid.n.values, np.moveaxis(den, -1, 0))
    np.testing.assert_allclose(grid.values, np.moveaxis(num / den, -1, 0))
    population = map_grid(ds, "relapse")
    np.testing.assert_allclose(population.values,
                               np.moveaxis(num / ok.sum(-1), -1, 0))  # all patients
    cut = int(np.median(den))  # cells with fewer remitters than this are masked
    masked = map_grid(ds, "relapse_among_remitters", min_remitters=cut)
    small = np.moveaxis(den < cut, -1, 0)
    assert small.any() and not small.all()
    assert np.isnan(masked.values[small]).all() and np.isfinite(masked.values[~small]).all()


def test_relapse_maps_are_labelled_with_their_denominators():
    from matplotlib.patches import Rectangle

    from immunosim.plotting.maps import figures

    ds = fake_result()
    cut = int(np.median(map_grid(ds, "relapse_among_remitters").n))  # mask about half
    specs = {s.stem: s for s in figures(ds, min_remitters=cut)}
    titles = {k: " ".join(s.figure.get_suptitle().split()) for k, s in specs.items()}
    assert "% of ALL patients" in titles["dose_timing__relapse_map"]
    among = specs["dose_timing__relapse_among_remitters_map"]
    grid = map_grid(ds, "relapse_among_remitters", min_remitters=cut)
    assert "among remitters" in titles[among.stem]
    assert f"fewer than {cut} remitters" in titles[among.stem]
    texts = [t.get_text() for ax in among.figure.axes for t in ax.texts]
    hatched = [pa for ax in among.figure.axes for pa in ax.patches
               if isinstance(pa, Rectangle) and pa.get_hatch()]
    assert len(hatched) == int(np.isnan(grid.values).sum()) > 0
    for n in np.unique(grid.n.values):
        assert f"n={n}" in texts  # every cell says how many remitters it has


def test_map_needs_two_grid_axes():
    ds = fake_result().isel(amount=0, first_day=0, n_infusions=0, drop=True)
    with pytest.raises(PlotError, match="at least two axes"):
        map_grid(ds)


# --- waterfall ------------------------------------------------------------------------------------


def test_waterfall_is_landmark_minus_baseline_sorted():
    ds = fake_result()
    bars = waterfall_data(ds, 365.0)
    assert list(bars) == ["1e5", "1e6", "1e7"]  # one scenario: series = the first sweep axis
    b = bars["1e5"]
    sel = dict(scenario=0, amount=0, first_day=0, n_infusions=0, interval=0)
    change = (ds.activity_at.isel(sel).sel(landmark=365.0) - ds.baseline_activity.isel(sel))
    ok = ds.status.isel(sel).values == 0
    expected = change.values[ok]
    np.testing.assert_allclose(np.sort(b.change), np.sort(expected))
    assert np.all(np.diff(b.change) <= 0)  # sorted from the largest rise to the largest fall
    np.testing.assert_allclose(b.change, change.values[b.run])  # each bar is its patient's
    assert set(b.outcome) <= {"remission", "relapse", "response only", "none"}
    rem, rel = ds.remission.isel(sel).values[b.run], ds.relapse.isel(sel).values[b.run]
    assert np.all((b.outcome == "relapse") == (rem & rel))


def test_waterfall_unknown_landmark_lists_the_valid_ones():
    with pytest.raises(PlotError, match="landmark 100 d is not in the result; valid: 183, 365"):
        waterfall_data(fake_result(), 100.0)


# --- time courses ---------------------------------------------------------------------------------


def test_timecourse_bands_are_numpy_percentiles(small_result):
    with xr.open_zarr(small_result) as ds:
        bands = timecourse_bands(ds)
        assert list(bands.series.values) == ["untreated", "msc"]
        assert "amount = 3e5 cells/kg" in bands.attrs["note"]
        x = ds.traj_activity.isel(scenario=1, amount=0, n_infusions=0).values  # (patient, time)
        ok = ds.status.isel(scenario=1, amount=0, n_infusions=0).values == 0
        q = np.percentile(x[ok], [5, 50, 95], axis=0)
        np.testing.assert_allclose(bands.activity.sel(series="msc").values, q)
        np.testing.assert_allclose(bands.dose_time.sel(series="msc").values[:1], [0.0])
        by_amount = timecourse_bands(ds, ["damage"], select={"scenario": "msc"}, vary="amount")
        x = ds.traj_damage.isel(scenario=1, n_infusions=0).values  # (amount, patient, time)
        ok = ds.status.isel(scenario=1, n_infusions=0).values == 0
        x = np.where(ok[..., None], x, np.nan)
        np.testing.assert_allclose(by_amount.damage.sel(quantile=0.5).values,
                                   np.nanmedian(x, axis=1))


def fake_trajectories(n_series: int = 4, n_patients: int = 12, seed: int = 0) -> xr.Dataset:
    """A result with trajectories only (scenario x amount x patient x time), no ODEs."""
    rng = np.random.default_rng(seed)
    t = np.arange(0.0, 731.0, 14.0)
    shape = (1, n_series, n_patients, t.size)
    dims = ("scenario", "amount", "patient", "time")
    data = {f"traj_{v}": (dims, rng.random(shape) * scale, {"units": u})
            for v, scale, u in (("activity", 12, "points"), ("anti_dsdna", 200, "IU/mL"),
                                ("c3", 120, "mg/dL"), ("damage", 1, "1"), ("reg", 1.5, "1"))}
    data["status"] = (dims[:3], np.zeros(shape[:3], int))
    return xr.Dataset(data, coords={"scenario": ["msc"], "amount": np.logspace(5, 7, n_series),
                                    "patient": np.arange(n_patients), "time": t},
                      attrs={"horizon_days": 730.0})


@pytest.mark.parametrize("variables", [["activity", "anti_dsdna", "c3"],
                                       ["activity", "damage", "reg"], None])
def test_timecourse_y_labels_do_not_overlap(variables):
    from immunosim.plotting.timecourse import figures

    fig = figures(fake_trajectories(), variables=variables)[0].figure
    renderer = fig.canvas.get_renderer()
    fig.draw(renderer)  # constrained layout runs at draw time
    labels = [ax.yaxis.label for ax in fig.axes if ax.get_ylabel()]
    assert len(labels) == (3 if variables else 5)
    boxes = [lab.get_window_extent(renderer) for lab in labels]
    for i, a in enumerate(boxes):
        for b in boxes[i + 1:]:
            assert not a.overlaps(b), (a, b)
    page = fig.bbox
    assert all(b.y0 >= page.y0 and b.y1 <= page.y1 and b.x0 >= page.x0 for b in boxes)


def test_timecourse_of_a_simulate_result():
    import immunosim as im

    ds = im.simulate(horizon=60, save_every=5)
    bands = timecourse_bands(_normalised(ds))
    np.testing.assert_allclose(bands.activity.sel(quantile=0.5).values, ds.activity.values)


def _normalised(ds):
    from immunosim.plotting._data import normalise

    return normalise(ds)


# --- errors ---------------------------------------------------------------------------------------


def test_missing_variables_give_one_line_naming_them():
    ds = fake_result()
    with pytest.raises(PlotError) as e:
        timecourse_bands(ds)
    msg = str(e.value)
    assert msg == ("timecourse: result has no trajectories (traj_activity missing); rerun the "
                   "sweep with output.trajectories = true")
    with pytest.raises(PlotError, match=r"time_to_relapse missing") as e:
        km_curves(ds.drop_vars("time_to_relapse"), "relapse_free")
    assert "\n" not in str(e.value)
    with pytest.raises(PlotError, match=r"activity_at missing"):
        waterfall_data(ds.drop_vars("activity_at"))


def test_named_figures_must_exist_and_be_drawable(tmp_path):
    ds = fake_result()
    with pytest.raises(PlotError, match="unknown name 'heatmap'; valid: " + ", ".join(FIGURES)):
        plot_result(ds, tmp_path, figures=["heatmap"])
    with pytest.raises(PlotError, match="traj_activity missing"):
        plot_result(ds, tmp_path, figures=["waterfall", "timecourse"])
    assert not list(tmp_path.iterdir())  # checked before anything is drawn
    with pytest.raises(PlotError, match="no such result file"):
        plot_result(tmp_path / "missing.zarr", tmp_path / "out")
    with pytest.raises(PlotError, match="unknown format 'jpeg'"):
        plot_result(ds, tmp_path, formats=["jpeg"])


def test_default_selection_skips_and_lists_what_it_cannot_draw(tmp_path):
    written = plot_result(fake_result(), tmp_path, formats=["png"])
    names = {p.name for p in written}
    assert {"dose_timing__remission_map.png", "waterfall__day365.png",
            "survival__remission.png", "index.md"} <= names
    index = (tmp_path / "index.md").read_text()
    assert "## Skipped" in index
    assert "- `timecourse`: timecourse: result has no trajectories" in index
    assert "- `bistability`:" in index


# --- end to end -----------------------------------------------------------------------------------


def test_plot_result_writes_every_figure_and_the_index(small_result, tmp_path):
    out = tmp_path / "figs"
    written = plot_result(small_result, out)
    # held at amount 3e5, n_infusions 1 by default: nobody remits, so no relapse-free curve
    stems = ["timecourse", "dose_timing__remission_map", "dose_timing__relapse_map",
             "dose_timing__relapse_among_remitters_map",
             "survival__remission", "waterfall__day183", "bistability"]
    expected = [out / f"{s}.{f}" for s in stems for f in ("png", "svg")] + [out / "index.md"]
    assert written == expected
    assert all(p.stat().st_size > 0 for p in written)
    assert (out / "timecourse.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    index = (out / "index.md").read_text()
    for s in stems:
        assert f"## {s}" in index
        assert f"[`{s}.png`]({s}.png)" in index
    assert index.count(f"- from: `{small_result}`") == len(stems)
    # an ODE result: only the agent-based family is skipped, with its reason
    skipped = index.split("## Skipped", 1)[1] if "## Skipped" in index else ""
    assert skipped.count("\n- `") == 1 and "- `abm`: abm: needs an agent-based result" in skipped
    assert "day 183 is the landmark closest to 365" in index
    assert "No relapse-free curve (survival__relapse_free): no patient reached remission" in index
    again = plot_result(small_result, out, figures=["survival"], formats=["pdf"],
                        options={"survival": {"select": {"amount": 3e6, "n_infusions": 2}}})
    assert [p.name for p in again] == ["survival__remission.pdf", "survival__relapse_free.pdf",
                                       "index.md"]
    with pytest.raises(PlotError, match="unknown option 'landmark'; valid: select, vary"):
        plot_result(small_result, out, options={"survival": {"landmark": 1}})


def test_cli_plot_missing_result_exits_2_with_one_line(tmp_path, capsys):
    from immunosim.cli import main

    code = main(["plot", str(tmp_path / "nope.zarr"), "-o", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1
    assert err.startswith("immunosim: error: ") and "no such result file" in err
    assert not (tmp_path / "out").exists()


# --- bistability ----------------------------------------------------------------------------------


def test_thresholds_between_healthy_and_diseased_or_nan_when_monostable(default_params):
    from immunosim.model import sle_msc as m
    from immunosim.model.steady_states import steady_states

    states = steady_states(default_params)
    assert [s.stable for s in states] == [True, False, True]
    k = m.STATE_INDEX["damage"]
    thr = thresholds(default_params, "damage")[0]
    assert thr == states[1].y[k]
    assert states[0].y[k] < thr < states[2].y[k]
    deep = default_params.copy()
    deep[m.PARAMETERS.index["activation_rate"]] = 0.5  # only the diseased state exists
    assert np.isnan(thresholds(np.stack([deep, default_params]), "damage")[0])


def test_model_mismatch_flags_day0_values_from_another_model(default_params, diseased_y0):
    from immunosim.model import sle_msc as m
    from immunosim.plotting.bistability import model_mismatch

    k = m.STATE_INDEX["damage"]
    params = np.stack([default_params, default_params])
    day0 = np.full(2, diseased_y0[k])
    assert model_mismatch(day0, params, "damage") < 1e-9
    assert model_mismatch(1.1 * day0, params, "damage") == pytest.approx(0.1)


def test_plot_refuses_what_is_not_a_result(tmp_path):
    # Mutation caught: dropping the attribute check lets an unrelated NetCDF file through
    # (it used to give exit 0 and an index of figures).
    other = tmp_path / "other.nc"
    xr.Dataset({"x": ("t", np.arange(3.0))}).to_netcdf(other)
    with pytest.raises(PlotError, match=r"other\.nc: not an immunosim result"):
        open_result(other)
    partial = tmp_path / "run.zarr.partial"
    xr.Dataset({"x": ("t", np.arange(3.0))}, attrs={"model_digest": "x"}).to_zarr(partial)
    with pytest.raises(PlotError, match=r"interrupted sweep.*-o run\.zarr --resume"):
        open_result(partial)


def _synthetic_crossings(n_series: int = 5, n_patients: int = 300, seed: int = 1):
    """Crossings of a main-job-sized result: noisy ratio trajectories in four outcomes."""
    from immunosim.plotting.bistability import Crossing
    from immunosim.plotting.waterfall import CATEGORIES

    rng = np.random.default_rng(seed)
    t = np.arange(0.0, 731.0, 14.0)
    out = {}
    for k in range(n_series):
        cat = rng.choice(CATEGORIES, n_patients)
        slope = np.where(cat == "remission", -0.01, 0.0) * rng.uniform(0.5, 2, n_patients)
        ratio = np.exp(np.log(rng.uniform(2, 20, n_patients))[:, None] + slope[:, None] * t
                       + 0.1 * rng.standard_normal((n_patients, t.size)))
        out[f"s{k}"] = Crossing(t, ratio, cat, np.ones(n_patients), 3, np.array([0.0]))
    return out


def test_crossing_bands_are_quantiles_per_outcome():
    from immunosim.plotting.bistability import BAND, crossing_bands

    c = _synthetic_crossings(n_series=1, n_patients=40)["s0"]
    b = crossing_bands(c)
    for cat in b.category.values:
        sel = c.ratio[c.outcome == cat]
        assert int(b.n.sel(category=cat)) == sel.shape[0]
        np.testing.assert_allclose(b.ratio.sel(category=cat).values,
                                   np.quantile(sel, BAND, axis=0))


def test_bistability_figure_is_small_for_a_large_cohort(tmp_path, default_params):
    """300 patients x 5 series (the main job) used to give a 565 KB PNG of single lines."""
    from immunosim.plotting.api import write_png
    from immunosim.plotting.bistability import bifurcation, draw_bistability

    bif = bifurcation(default_params, rates=np.logspace(-2, np.log10(0.5), 20))
    fig = draw_bistability(bif, _synthetic_crossings(), coord="damage", title="x")
    write_png(fig, tmp_path / "b.png")
    size = (tmp_path / "b.png").stat().st_size
    assert 10_000 < size < 200_000
    lines = [ln for ax in fig.axes[1:] for ln in ax.lines]
    assert len(lines) < 60  # medians and reference lines, not one line per patient


def test_bistability_marks_the_model_steady_states(small_result):
    from immunosim.model import sle_msc as m
    from immunosim.model.steady_states import steady_states
    from immunosim.plotting.bistability import figures

    with xr.open_zarr(small_result) as ds:
        fig = figures(ds.load())[0].figure
        median = np.median(ds.patient_parameters.values, axis=0)
    k = m.STATE_INDEX["damage"]
    states = steady_states(median)
    left = fig.axes[0]
    marked = next(ln for ln in left.lines if ln.get_gid() == "marked_states")
    np.testing.assert_allclose(marked.get_ydata(), [s.y[k] for s in states])
    np.testing.assert_allclose(marked.get_xdata(), median[m.PARAMETERS.index["activation_rate"]])
    # the branches drawn are the model's equilibria at each activation rate
    branches = {ln.get_label(): ln for ln in left.lines}
    x = branches["diseased (stable)"].get_xdata()
    y = branches["diseased (stable)"].get_ydata()
    i = int(np.nanargmax(np.isfinite(y)))  # a rate with a diseased state
    p = median.copy()
    p[m.PARAMETERS.index["activation_rate"]] = x[i]
    assert y[i] == pytest.approx(max(s.y[k] for s in steady_states(p) if s.stable), rel=1e-9)


def test_axis_labels_read_the_coordinates_and_drop_dimensionless_units():
    """A categorical axis gets its readable name, and a dimensionless parameter axis no unit
    "1" (catches 'potency_uc = 1.5 1' in panel titles and the raw target as a label)."""
    import xarray as xr

    from immunosim.plotting._style import axis_info, fmt_with_unit

    ds = xr.Dataset(coords={
        "source": ("source", ["bm", "uc"], {"sweep_target": "msc.source",
                                            "long_name": "MSC cell source"}),
        "potency_uc": ("potency_uc", [1.0, 1.5], {"sweep_target": "parameters.potency_uc",
                                                  "units": "1"}),
        "other": ("other", [1.0], {"sweep_target": "hsct.trm", "units": "1",
                                   "long_name": "HSCT: probability of treatment-related death"})})
    assert axis_info(ds, "source") == ("MSC source", "")
    assert fmt_with_unit(ds, "potency_uc", 1.5) == "potency_uc = 1.5"
    assert axis_info(ds, "other") == ("HSCT: probability of treatment-related death", "")
