"""Interventions as dosing events (amt / ii / addl records, HSCT, background therapy)."""

import numpy as np
import pytest

from immunosim.model import sle_msc as m
from immunosim.model.interventions import (
    HSCT,
    OP_ADD,
    OP_SCALE,
    OP_SET,
    MSCInfusion,
    StandardTherapy,
    apply_parameters,
    schedule,
)

P = m.PARAMETERS.defaults()


def test_msc_record_expands_to_repeated_doses_with_potency():
    p = m.PARAMETERS.vector({"potency_uc": 1.5})
    ev = MSCInfusion(2e6, time=5, interval=30, count=3, source="uc").events(p)
    assert ev == [(5.0, m.MSC, OP_ADD, 3.0), (35.0, m.MSC, OP_ADD, 3.0), (65.0, m.MSC, OP_ADD, 3.0)]


def test_same_day_repeat_is_count_doses_and_the_engine_applies_each():
    """``interval = 0, count = 2``: two infusions on one day (it used to be refused). The engine
    applies every event at the same time, so two doses of 5e5 act as one of 1e6."""
    from immunosim.experiments.simulate import Scenario, simulate

    double = MSCInfusion(5e5, time=3, interval=0, count=2)
    assert double.events(P) == [(3.0, m.MSC, OP_ADD, 0.5), (3.0, m.MSC, OP_ADD, 0.5)]
    np.testing.assert_array_equal(double.dose_times(), [3.0, 3.0])
    ds = simulate([Scenario("double", (double,)), Scenario("one", (MSCInfusion(1e6, time=3),)),
                   Scenario("half", (MSCInfusion(5e5, time=3),))], horizon=60)
    msc = ds.msc.sel(time=4.0).values
    assert msc[0] == pytest.approx(msc[1], rel=1e-9) and msc[0] > 1.5 * msc[2]
    np.testing.assert_allclose(ds.reg.sel(scenario="double"), ds.reg.sel(scenario="one"),
                               rtol=1e-9, atol=1e-12)


def test_hsct_events():
    ev = HSCT(12.0, depletion=0.9, t_cell_depletion=0.8, llpc_depletion=0.4,
              regulatory_reset=0.7).events(P)
    scale = {s: v for t, s, op, v in ev if op == OP_SCALE}
    assert scale[m.B_MEM] == pytest.approx(0.1) and scale[m.LLPC] == pytest.approx(0.6)
    assert scale[m.CD4] == pytest.approx(0.2) and scale[m.TFH] == pytest.approx(0.2)
    assert (12.0, m.REG, OP_SET, 0.7) in ev and m.ANTI_DSDNA not in scale
    # conditioning: cyclophosphamide 4 x 50 mg/kg on days t..t+3; the rest at t
    assert sorted(t for t, s, op, v in ev if s == m.CYC and op == OP_ADD) == [12, 13, 14, 15]
    assert all(t == 12.0 for t, s, *_ in ev if s != m.CYC)


def test_standard_therapy_is_a_parameter():
    q = apply_parameters([StandardTherapy(0.3)], P)
    assert q[m.PARAMETERS.index["std_therapy"]] == 0.3 and P[m.PARAMETERS.index["std_therapy"]] == 0
    assert StandardTherapy(0.3).events(P) == []


def test_schedule_sorts_across_interventions():
    ev = schedule([MSCInfusion(1e6, time=50), HSCT(10.0)], P)
    assert np.all(np.diff([e[0] for e in ev]) >= 0) and ev[-1][1] == m.MSC


@pytest.mark.parametrize("bad, msg", [
    (lambda: MSCInfusion(-1), "amount"), (lambda: MSCInfusion(1e6, count=2, interval=-1),
                                          "interval"),
    (lambda: MSCInfusion(1e6, source="fat"), "source"), (lambda: HSCT(0, depletion=1.5),
                                                           "depletion"),
    (lambda: StandardTherapy(1.0), "suppression"), (lambda: MSCInfusion(1e6, count=0), "count"),
    (lambda: HSCT(0, trm=2), "trm"),
])
def test_invalid_interventions(bad, msg):
    with pytest.raises(ValueError, match=msg):
        bad()


def test_potency_of_a_source_not_infused_cannot_matter(default_params, diseased_y0):
    """Sweeps share the runs of a bone-marrow arm along a potency_uc axis: sound only while the
    equations never read ``potency_*`` (only MSCInfusion.events does)."""
    from immunosim.model.interventions import unused_parameters

    assert unused_parameters([]) == ["potency_bm", "potency_uc"]
    assert unused_parameters([MSCInfusion(1e6), HSCT(0.0)]) == ["potency_uc"]
    assert unused_parameters([MSCInfusion(1e6, source="uc"), MSCInfusion(1e6)]) == []
    y = diseased_y0 * np.linspace(0.5, 1.5, diseased_y0.size)
    y[m.MSC] = 2.0  # MSCs present
    for name in ("potency_bm", "potency_uc"):
        p = default_params.copy()
        p[m.PARAMETERS.index[name]] = 0.5
        q = p.copy()
        q[m.PARAMETERS.index[name]] = 2.0
        np.testing.assert_array_equal(m.rhs_py(3.0, y, p), m.rhs_py(3.0, y, q))
    bm = MSCInfusion(1e6).events(p)
    assert bm == MSCInfusion(1e6).events(default_params)  # p differs in potency_uc only
