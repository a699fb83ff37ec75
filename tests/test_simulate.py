"""The simulate() API: one Dataset per call, every state with units, dosing marked."""

import numpy as np
import pytest

import immunosim as im
from immunosim.experiments.simulate import NoDiseasedState
from immunosim.model import sle_msc as m


@pytest.fixture(scope="module")
def ds():
    return im.simulate([im.Scenario("untreated"),
                        im.Scenario("msc", (im.MSCInfusion(1e6, time=10, interval=30, count=2),)),
                        im.Scenario("hsct", (im.HSCT(0.0),))], horizon=400, save_every=2)


def test_layout_units_and_names(ds):
    assert ds.sizes["scenario"] == 3 and ds.time.values[-1] == 400 and ds.time.values[1] == 2
    for name in list(m.STATE_NAMES) + ["activity", "proteinuria", "renal_inflammation"]:
        assert ds[name].dims == ("scenario", "time")
        assert ds[name].attrs["units"] and ds[name].attrs["long_name"], name
    assert ds.time.attrs["units"] == "d"
    assert (ds.status == 0).all() and (ds.nfev > 0).all()
    assert ds.attrs["model"] == "sle_msc" and len(ds.attrs["model_digest"]) == 16


def test_untreated_stays_in_the_diseased_state(ds):
    u = ds.sel(scenario="untreated")
    assert (u.activity == 14).all()
    np.testing.assert_allclose(u.anti_dsdna, u.anti_dsdna[0], rtol=1e-6)


def test_doses_marked_and_applied(ds):
    np.testing.assert_array_equal(ds.dose_time.sel(scenario="msc").values[:2], [10, 40])
    msc = ds.msc.sel(scenario="msc")
    assert float(msc.sel(time=8)) == 0.0 and float(msc.sel(time=10)) == pytest.approx(1.0)
    assert float(ds.activity.sel(scenario="msc", time=400)) < 14


def test_hsct_depletes_then_reconstitutes(ds):
    h = ds.sel(scenario="hsct")
    u = ds.sel(scenario="untreated")
    assert float(h.b_naive.sel(time=0)) == pytest.approx(0.01 * float(u.b_naive.sel(time=0)))
    assert float(h.b_naive.sel(time=400)) > 0.5  # naive B cells come back from the marrow


def test_errors():
    with pytest.raises(ValueError, match="duplicate names"):
        im.simulate([im.Scenario("a"), im.Scenario("a")])
    with pytest.raises(NoDiseasedState, match="no diseased steady state"):
        im.simulate(parameters={"activation_rate": 0.005})
    with pytest.raises(KeyError, match="did you mean 'reg_half_life'"):
        im.simulate(parameters={"reg_halflife": 5})


def test_save_grid_ends_at_the_horizon_when_not_a_multiple():
    """horizon=10, save_every=3 used to stop at day 9."""
    d = im.simulate(im.Scenario("untreated"), horizon=10, save_every=3)
    np.testing.assert_array_equal(d.time.values, [0, 3, 6, 9, 10])
    assert np.isfinite(d.activity.values).all()


SIMULATE_VS_SWEEP = """
name = "reference_patient"
horizon = 400
[scenarios.untreated]
[scenarios.msc]
msc = { amount = 3e6, time = 30, interval = 60, count = 2 }
therapy = [{ drug = "glucocorticoid", oral_mg = 7.5, start = 45 }]
[outcomes]
time_origin = "first_dose"
landmarks = [91, 300]
assessment_every = 2
"""


def test_outcomes_are_the_sweeps(tmp_path):
    """simulate returns the sweep's outcome variables, with the same values for the same
    patient (the default one-patient cohort is the reference patient) and settings, whatever
    save_every. Old behaviour: no outcome variables at all."""
    from immunosim.experiments.clinical import OUTCOMES
    from immunosim.experiments.config import load_config
    from immunosim.experiments.sweep import sweep

    p = tmp_path / "c.toml"
    p.write_text(SIMULATE_VS_SWEEP)
    cfg = load_config(p)
    ref = sweep(cfg, progress=False).isel(patient=0)
    ds = im.simulate(cfg.build_scenarios(), horizon=400, save_every=7,
                     outcomes={"time_origin": "first_dose", "landmarks": [91, 300],
                               "assessment_every": 2})
    for name in OUTCOMES:
        np.testing.assert_array_equal(ds[name].values, ref[name].values, err_msg=name)
        assert ds[name].attrs == ref[name].attrs and ds[name].dtype == ref[name].dtype
    np.testing.assert_array_equal(ds.origin.values, [0.0, 30.0])
    assert ds.remission.sel(scenario="msc") and not ds.remission.sel(scenario="untreated")
    assert ds.time.values[1] == 7 and ds.attrs["follow_up_days"] == ref.attrs["follow_up_days"]


def test_outcome_settings_are_checked_like_a_config():
    from immunosim.experiments.config import ConfigError

    with pytest.raises(ConfigError, match=r"^outcomes\.landmarks: 500 is after the horizon"):
        im.simulate(horizon=400, outcomes={"landmarks": [91, 500]})
    with pytest.raises(ConfigError, match=r"^outcomes\.remision_threshold: unknown key"):
        im.simulate(outcomes={"remision_threshold": 3})
