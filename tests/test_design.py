"""Sweep designs (``experiments/design.py``): the Sobol design, and axes on ``hsct.*`` and
``standard_therapy.*`` fields, through expansion, ``apply_point`` and a tiny sweep."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import qmc

from immunosim.experiments.config import parse_config, tomllib
from immunosim.experiments.design import apply_point, expand
from immunosim.experiments.sweep import sweep
from immunosim.model import sle_msc as m
from immunosim.model.interventions import HSCT, StandardTherapy

SOBOL = """
name = "sobol"
seed = 11
horizon = 90
[scenarios.msc]
msc = { amount = 1e6 }
[sweep]
design = "sobol"
samples = 8
[sweep.axes.amount]
target = "msc.amount"
range = [1e5, 1e7]
scale = "log"
[sweep.axes.first_day]
target = "msc.time"
range = [0, 60]
[cohort]
size = 1
[outcomes]
landmarks = [90]
"""


def _unit(values: np.ndarray) -> np.ndarray:
    """Sobol points back on the unit square: log scale for the amount, linear for the day."""
    return np.column_stack([(np.log(values[:, 0]) - np.log(1e5)) / (np.log(1e7) - np.log(1e5)),
                            values[:, 1] / 60.0])


def test_sobol_design_is_a_seeded_balanced_net():
    """Eight scrambled Sobol' points from the design stream (``SeedSequence(seed,
    spawn_key=(2,))``, docs/configs.md) mapped onto the ranges, log scale for the amount. They
    form a (0, 3, 2)-net: every box of area 1/8 of the unit square (1x8, 2x4, 4x2, 8x1)
    holds exactly one point, which Latin hypercube or plain random points do not.

    Catches: LHS or random points under design = "sobol", another random stream (results
    would change with it), a linear map on a log axis."""
    cfg = parse_config(tomllib.loads(SOBOL))
    d = expand(cfg)
    assert d.dims == ("point",) and d.shape == (8,)
    rng = np.random.default_rng(np.random.SeedSequence(11, spawn_key=(2,)))
    u = qmc.Sobol(d=2, scramble=True, seed=rng).random(8)
    np.testing.assert_allclose(_unit(d.values), u, rtol=1e-12, atol=1e-12)
    for a, b in [(1, 8), (2, 4), (4, 2), (8, 1)]:
        cells = {(int(x * a), int(y * b)) for x, y in _unit(d.values)}
        assert len(cells) == 8, (a, b)
    again = expand(parse_config(tomllib.loads(SOBOL)))
    np.testing.assert_array_equal(again.values, d.values)
    other = expand(parse_config(tomllib.loads(SOBOL.replace("seed = 11", "seed = 12"))))
    assert not np.array_equal(other.values, d.values)


def test_sobol_design_through_a_sweep():
    """The points become the ``point`` dimension with the axes as coordinates, and each run
    gets its point's schedule (the infusion day is the ``first_day`` coordinate)."""
    cfg = parse_config(tomllib.loads(SOBOL))
    ds = sweep(cfg, progress=False)
    assert ds.remission.dims == ("scenario", "point", "patient")
    np.testing.assert_array_equal(ds.amount.values, expand(cfg).values[:, 0])
    np.testing.assert_array_equal(ds.dose_time.isel(scenario=0, dose=0).values,
                                  ds.first_day.values)
    assert (ds.status == 0).all()


AXES = """
name = "axes"
seed = 3
horizon = 120
[scenarios.untreated]
[scenarios.hsct]
hsct = { time = 0, trm = 0.0 }
[scenarios.soc]
standard_therapy = { suppression = 0.2 }
[sweep.axes.day]
target = "hsct.time"
values = [0, 30]
[sweep.axes.supp]
target = "standard_therapy.suppression"
values = [0.0, 0.6]
[cohort]
size = 2
[outcomes]
landmarks = [30, 120]
[output]
trajectories = true
trajectory_every = 10
trajectory_variables = ["activity", "b_gc"]
"""


def test_hsct_and_standard_therapy_axes_set_their_records_only():
    """``hsct.time`` moves the transplant of the HSCT arm only; ``standard_therapy.suppression``
    sets the suppression of the arm that has it only (in its parameter ``std_therapy``).

    Catches: an axis applied to a scenario without its record, a field set on the wrong
    record kind, an axis value that never reaches the runs."""
    cfg = parse_config(tomllib.loads(AXES))
    assert cfg.axis_scenarios(cfg.sweep.axes["day"]) == ["hsct"]
    assert cfg.axis_scenarios(cfg.sweep.axes["supp"]) == ["soc"]
    d = expand(cfg)
    assert d.dims == ("day", "supp") and d.shape == (2, 2)
    scen = {s.name: s for s in cfg.build_scenarios()}
    p = m.PARAMETERS.defaults()
    for point, (day, supp) in enumerate(d.values):
        (h,), q = apply_point(d, point, scen["hsct"], p)
        assert isinstance(h, HSCT) and h.time == day and h.trm == 0.0
        np.testing.assert_array_equal(q, p)
        (st,), q = apply_point(d, point, scen["soc"], p)
        assert st == StandardTherapy(supp)
        assert st.apply(q)[m.PARAMETERS.index["std_therapy"]] == supp
        ivs, q = apply_point(d, point, scen["untreated"], p)
        assert ivs == () and np.array_equal(q, p)

    ds = sweep(cfg, progress=False)
    assert (ds.status == 0).all()
    conditioning = ds.dose_time.sel(scenario="hsct")
    np.testing.assert_array_equal(conditioning.sel(day=30).isel(supp=0), [30, 31, 32, 33])
    np.testing.assert_array_equal(conditioning.sel(day=0).isel(supp=0), [0, 1, 2, 3])
    gc = ds.traj_b_gc
    # HSCT depletes at its day: at day 10, the day-30 arm is untouched, the day-0 arm depleted
    hs = gc.sel(scenario="hsct", time=10).isel(supp=0)
    assert (hs.sel(day=30) > 10 * hs.sel(day=0)).all()
    # suppression changes the standard-therapy arm (and only it), whatever the HSCT day
    soc = gc.sel(scenario="soc")
    assert not np.allclose(soc.sel(supp=0.0), soc.sel(supp=0.6))
    np.testing.assert_array_equal(soc.sel(day=0).values, soc.sel(day=30).values)
    untreated = gc.sel(scenario="untreated")
    assert (untreated == untreated.isel(day=0, supp=0)).all()


def test_an_hsct_axis_past_the_horizon_is_refused_by_its_key():
    data = tomllib.loads(AXES)
    data["sweep"]["axes"]["day"]["values"] = [0, 118]
    from immunosim.experiments.config import ConfigError

    with pytest.raises(ConfigError, match=r"^sweep\.axes\.day: puts HSCT conditioning after the "
                       r"horizon \(120 d\)$"):
        parse_config(data)
