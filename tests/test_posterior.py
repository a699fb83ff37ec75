"""Posterior draws in results: per-draw shares and credible intervals against numpy."""

import numpy as np
import pytest
import xarray as xr

from immunosim.experiments.posterior import (
    by_draw,
    credible_interval,
    has_draws,
    proportion_by_draw,
    split_draws,
)


def fake(k=5, n=30, seed=0):
    """scenario x amount x patient (k draws x n subjects), draw d remits with p = 0.1 * (d+1)."""
    rng = np.random.default_rng(seed)
    p = np.repeat(0.1 * (np.arange(k) + 1), n)
    shape = (2, 3, k * n)
    rem = rng.random(shape) < p
    resp = rem | (rng.random(shape) < 0.5)
    status = np.where(rng.random(shape) < 0.1, 3, 0)
    dims = ("scenario", "amount", "patient")
    return xr.Dataset({"remission": (dims, rem), "response": (dims, resp),
                       "status": (dims, status)},
                      coords={"scenario": ["a", "b"], "amount": [1e5, 1e6, 1e7],
                              "patient": np.arange(k * n),
                              "draw": ("patient", np.repeat(np.arange(k), n)),
                              "subject": ("patient", np.tile(np.arange(n), k))})


def test_split_and_by_draw_are_reshapes():
    ds = fake()
    s = split_draws(ds.remission)
    assert s.dims == ("scenario", "amount", "draw", "subject") and s.shape == (2, 3, 5, 30)
    np.testing.assert_array_equal(s.values, ds.remission.values.reshape(2, 3, 5, 30))
    np.testing.assert_allclose(by_draw(ds.remission.astype(float)).values,
                               ds.remission.values.reshape(2, 3, 5, 30).mean(-1))
    assert has_draws(ds) and not has_draws(ds.drop_vars(["draw", "subject"]))
    with pytest.raises(ValueError, match="no posterior draws"):
        split_draws(ds.drop_vars("draw").remission)
    with pytest.raises(ValueError, match="not ordered"):
        split_draws(ds.remission.isel(patient=slice(1, None)))


def test_credible_interval_matches_numpy():
    ds = fake()
    ok = ds.status.values == 0
    rem = ds.remission.values & ok
    ci = credible_interval(ds, "remission")
    per = rem.reshape(2, 3, 5, 30).sum((1, 3)) / ok.reshape(2, 3, 5, 30).sum((1, 3))
    np.testing.assert_allclose(ci.per_draw.values, per)
    np.testing.assert_allclose(ci.interval.sel(quantile=0.975).values,
                               np.quantile(per, 0.975, axis=1))
    np.testing.assert_allclose(ci.pooled.values, rem.sum((1, 2)) / ok.sum((1, 2)))
    assert ci.interval.dims == ("scenario", "quantile") and ci.attrs["n_draws"] == 5
    assert (np.diff(ci.per_draw.values, axis=1) > -0.1).all()  # p grows with the draw
    # among: the share of responders who remitted; keep another dimension
    cond = proportion_by_draw(ds, "remission", among="response", keep=("scenario", "amount"))
    den = ok & ds.response.values
    expected = ((rem & den).reshape(2, 3, 5, 30).sum(-1) / den.reshape(2, 3, 5, 30).sum(-1))
    np.testing.assert_allclose(cond.values, expected)


def test_shares_are_dimensionless_and_inherit_nothing():
    """Old behaviour: the shares carried the status variable's flag attributes (through
    ``status == 0``) and no units."""
    ds = fake()
    ds["status"].attrs = {"long_name": "Run status", "flag_values": [0, 3],
                          "flag_meanings": "success failed"}
    ds["remission"].attrs = {"long_name": "Sustained remission reached", "units": "1"}
    ci = credible_interval(ds, "remission", among="response")
    for name in ("per_draw", "interval", "pooled"):
        assert set(ci[name].attrs) == {"units", "long_name"} and ci[name].attrs["units"] == "1"
        assert ci[name].attrs["long_name"].startswith("P(remission | response), ")
    assert ci["quantile"].attrs["units"] == "1"


def test_a_held_axis_named_like_an_output_does_not_collide():
    """Old behaviour: a point of a sweep with an ``interval`` axis (the main job's) carries
    ``interval`` as a scalar coordinate, which collided with the ``interval`` output
    (MergeError), so ``immunosim sweep`` with posterior draws crashed in its summary."""
    ds = fake().rename(amount="interval")
    point = ds.isel(interval=1)
    ci = credible_interval(point, "remission", keep=())
    ok = point.status.values == 0
    per = (point.remission.values & ok).reshape(2, 5, 30).sum((0, 2)) / ok.reshape(
        2, 5, 30).sum((0, 2))
    np.testing.assert_allclose(ci.per_draw.values, per)
    np.testing.assert_allclose(ci.interval.values, np.quantile(per, [0.025, 0.5, 0.975]))
