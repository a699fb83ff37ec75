"""Result conventions (units and coordinates), open_result, shares with the right units."""

import numpy as np
import pytest
import xarray as xr

import immunosim as im
from immunosim.experiments.config import TARGETS_INTERVENTION, load_config
from immunosim.experiments.results import (
    EAGER_LIMIT,
    TARGET_ATTRS,
    ResultError,
    event_counts,
    open_result,
    proportion,
    target_attrs,
)
from immunosim.experiments.sweep import sweep
from immunosim.model import sle_msc as m
from tests.conftest import SMALL_CONFIG


@pytest.fixture(scope="module")
def result(tmp_path_factory):
    p = tmp_path_factory.mktemp("res") / "small.toml"
    p.write_text(SMALL_CONFIG)
    return sweep(load_config(p), progress=False)


def assert_conventions(ds: xr.Dataset) -> None:
    """Every dimension has a coordinate; every coordinate a long_name; every numeric one units."""
    for d in ds.dims:
        assert d in ds.coords, f"dimension {d} has no coordinate"
    for name, c in ds.coords.items():
        assert c.attrs.get("long_name"), name
        if c.dtype.kind in "iuf":
            assert c.attrs.get("units"), f"coordinate {name} has no units"


def test_every_coordinate_has_units_and_every_dimension_a_coordinate(result):
    # Old behaviour: `dose` had no coordinate, `amount` and `patient` no units.
    assert_conventions(result)
    assert result.amount.attrs["units"] == "cells/kg"
    assert result.landmark.attrs["units"] == "d" and result.time.attrs["units"] == "d"
    assert result.patient.attrs["units"] == "1" and result.n_infusions.attrs["units"] == "1"
    np.testing.assert_array_equal(result.dose.values, [0, 1])
    np.testing.assert_array_equal(result.dose_time.sel(scenario="msc", amount=3e5,
                                                       n_infusions=2, dose=1), 30.0)
    # each parameter's unit is a coordinate along `parameter`
    assert list(result.parameter_units.values) == [p.unit for p in m.PARAMETERS]
    assert result.parameter_units.sel(parameter="msc_half_life") == "d"


def test_axes_keep_the_config_values_integers_stay_integers(result):
    # Old behaviour: n_infusions (msc.count) was stored as 1.0, 2.0.
    assert result.n_infusions.dtype.kind == "i"
    assert result.n_infusions.values.tolist() == [1, 2]
    assert result.amount.dtype.kind == "f" and result.amount.values.tolist() == [3e5, 3e6]
    a = result.n_infusions.attrs
    assert a["sweep_target"] == "msc.count" and a["scenarios"] == "msc"
    assert result.amount.attrs["long_name"] == "MSC amount per infusion"


def test_random_design_has_a_point_coordinate_and_integer_axes(small_config_path):
    text = small_config_path.read_text().replace('values = [3e5, 3e6]', 'range = [1e5, 1e7]')
    text = text.replace('values = [1, 2]', 'range = [1, 3]').replace(
        '[sweep.axes.amount]', '[sweep]\ndesign = "sobol"\nsamples = 4\n[sweep.axes.amount]')
    small_config_path.write_text(text.replace("size = 6", "size = 1"))
    ds = sweep(load_config(small_config_path), progress=False)
    assert_conventions(ds)
    np.testing.assert_array_equal(ds.point.values, np.arange(4))
    assert ds.n_infusions.dims == ("point",) and ds.n_infusions.dtype.kind == "i"
    assert set(ds.n_infusions.values) <= {1, 2}


def test_every_sweep_target_has_units():
    """A target added to the config schema without units fails here."""
    targets = {f"{h}.{f}" for h, fields in TARGETS_INTERVENTION.items() for f in fields}
    assert targets == set(TARGET_ATTRS)
    p = target_attrs("parameters.reg_half_life")
    assert p["units"] == m.PARAMETERS["reg_half_life"].unit and "reg_half_life" in p["long_name"]


def test_simulate_follows_the_conventions():
    ds = im.simulate(horizon=100, save_every=5)
    assert_conventions(ds)
    assert "dose" in ds.coords and ds.landmark.values.tolist() == [91.0]


@pytest.mark.parametrize("suffix", [".zarr", ".nc"])
def test_open_result_loads_small_results_eagerly(result, small_config_path, tmp_path, suffix):
    """Eager below the limit: numpy arrays, so where(drop=True) and groupby work directly;
    lazy (Dask) above it. The file round trip keeps every attribute."""
    out = sweep(load_config(small_config_path), tmp_path / f"r{suffix}", progress=False)
    ds = open_result(out)
    xr.testing.assert_identical(ds, result)
    assert isinstance(ds.remission.data, np.ndarray)
    rem = ds.time_to_remission.where(ds.remission, drop=True)  # fails on Dask arrays
    assert rem.sizes["patient"] <= ds.sizes["patient"]
    by_event = ds.time_to_remission.groupby(ds.remission).median()  # fails on Dask arrays
    assert set(by_event.remission.values) <= {False, True}
    lazy = open_result(out, eager_limit=0)
    assert lazy.remission.chunks is not None
    xr.testing.assert_identical(lazy.load(), result)
    assert 0 < result.nbytes < EAGER_LIMIT


def test_open_result_refuses_what_is_not_a_result(tmp_path):
    other = tmp_path / "other.nc"
    xr.Dataset({"x": ("t", np.arange(3.0))}).to_netcdf(other)
    text = tmp_path / "notes.nc"
    text.write_text("not a file xarray can read\n")
    partial = tmp_path / "run.zarr.partial"
    partial.mkdir()
    cases = [(other, r"other\.nc: not an immunosim result \(no 'model_digest'"),
             (text, r"notes\.nc: cannot read as a result"),
             (partial, r"interrupted sweep.*-o run\.zarr --resume"),
             (tmp_path / "missing.zarr", r"missing\.zarr: no such result file")]
    for path, message in cases:
        with pytest.raises(ResultError, match=message) as e:
            open_result(path)
        assert "\n" not in str(e.value)


def test_open_result_is_exported_lazily():
    import subprocess
    import sys

    code = ("import sys, immunosim; assert 'xarray' not in sys.modules; "
            "assert callable(immunosim.open_result); assert 'xarray' in sys.modules")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def test_proportion_is_dimensionless_and_counts_only_successful_runs(result):
    # Old behaviour (the README's recipe): `remission & (time_to_remission <= 365)` kept
    # units "d" from the time.
    ds = result.copy()
    status = ds.status.values.copy()
    status[1, 1, 1, 0] = 3  # one failed run of the msc scenario
    ds["status"] = (ds.status.dims, status, ds.status.attrs)
    p = proportion(ds, "remission", within=200)
    assert p.attrs == {"units": "1", "long_name": "P(remission by 200 d)"}
    assert p.dims == ("scenario", "amount", "n_infusions")
    ok = status[1, 1, 1] == 0
    hit = ds.remission.values[1, 1, 1] & (ds.time_to_remission.values[1, 1, 1] <= 200) & ok
    assert float(p[1, 1, 1]) == hit.sum() / ok.sum() and ok.sum() == 5
    k, n = event_counts(ds, "relapse", among="remission")
    rem = ds.remission.values & (status == 0)
    np.testing.assert_array_equal(n.values, rem.sum(axis=-1))
    assert k.attrs["units"] == "1" and n.attrs["units"] == "1"
