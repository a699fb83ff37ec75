"""Drug regimens as dosing events, against hand-worked schedules."""

import math

import numpy as np
import pytest

from immunosim.model import sle_msc as m
from immunosim.model.interventions import HSCT, OP_ADD, OP_SCALE, OP_SET
from immunosim.model.regimens import (
    CART,
    Cyclophosphamide,
    Glucocorticoid,
    Hydroxychloroquine,
    Mycophenolate,
    Rituximab,
)

P = m.PARAMETERS.defaults()


def _approx(events):
    return [(t, s, op, pytest.approx(v)) for t, s, op, v in events]


def test_glucocorticoid_pulses_then_geometric_taper():
    # 500 mg methylprednisolone = 625 mg prednisone; 40 -> 5 mg/d in 3 weekly halvings.
    gc = Glucocorticoid(pulse_mg=500, pulse_days=3, oral_mg=40, taper_to=5, taper_weeks=3)
    assert gc.events(P) == _approx([(0.0, m.GC_DOSE, OP_SET, 625.0),
                                    (3.0, m.GC_DOSE, OP_SET, 40.0),
                                    (10.0, m.GC_DOSE, OP_SET, 20.0),
                                    (17.0, m.GC_DOSE, OP_SET, 10.0),
                                    (24.0, m.GC_DOSE, OP_SET, 5.0)])
    np.testing.assert_allclose(gc.dose_times(), [0, 3, 10, 17, 24])


def test_glucocorticoid_constant_dose_and_stop():
    assert Glucocorticoid(start=2, oral_mg=10).events(P) == [(2.0, m.GC_DOSE, OP_SET, 10.0)]
    gc = Glucocorticoid(oral_mg=40, taper_to=5, taper_weeks=3, stop=12)
    assert gc.events(P) == _approx([(0.0, m.GC_DOSE, OP_SET, 40.0),
                                    (7.0, m.GC_DOSE, OP_SET, 20.0),
                                    (12.0, m.GC_DOSE, OP_SET, 0.0)])


def test_cyclophosphamide_nih_is_monthly_mg_per_kg():
    cyc = Cyclophosphamide.nih()  # 0.75 g/m2 x 1.8 m2 / 70 kg = 19.29 mg/kg
    assert cyc.dose == pytest.approx(19.2857, abs=1e-4)
    assert cyc.events(P) == _approx([(30.0 * k, m.CYC, OP_ADD, 19.2857142857) for k in range(6)])
    assert Cyclophosphamide.nih(time=10, g_per_m2=1.0, count=3).events(P) == _approx(
        [(t, m.CYC, OP_ADD, 1000 * 1.8 / 70) for t in (10.0, 40.0, 70.0)])


def test_cyclophosphamide_euro_lupus_every_two_weeks():
    cyc = Cyclophosphamide.euro_lupus(time=7)  # 500 mg / 70 kg = 7.14 mg/kg
    assert cyc.events(P) == _approx([(7.0 + 14 * k, m.CYC, OP_ADD, 7.142857) for k in range(6)])
    np.testing.assert_allclose(cyc.dose_times(), [7, 21, 35, 49, 63, 77])


def test_oral_courses_set_their_dose_state():
    assert Mycophenolate(2.0, start=7, stop=100).events(P) == [
        (7.0, m.MMF_DOSE, OP_SET, 2.0), (100.0, m.MMF_DOSE, OP_SET, 0.0)]
    assert Hydroxychloroquine(400).events(P) == [(0.0, m.HCQ_DOSE, OP_SET, 400.0)]
    np.testing.assert_array_equal(Mycophenolate(2.0, 7, 100).dose_times(), [7, 100])


def test_rituximab_in_units_of_1000_mg():
    assert Rituximab(1000, count=2).events(P) == [(0.0, m.RTX, OP_ADD, 1.0),
                                                  (14.0, m.RTX, OP_ADD, 1.0)]
    assert Rituximab(375, time=1, interval=7, count=4).events(P)[-1] == (22.0, m.RTX, OP_ADD,
                                                                          0.375)


def test_cart_lymphodepletion_then_cells():
    ev = CART(time=0, cells=1e6, lymphodepletion=8).events(P)
    assert ev == [(0.0, m.CYC, OP_ADD, 8.0), (1.0, m.CYC, OP_ADD, 8.0), (2.0, m.CYC, OP_ADD, 8.0),
                  (5.0, m.CART, OP_ADD, 1.0)]
    assert CART(time=3, lymphodepletion=0).events(P) == [(8.0, m.CART, OP_ADD, 1.0)]
    np.testing.assert_array_equal(CART(time=3).dose_times(), [8.0])


def test_hsct_conditioning_depletion_and_trm():
    h = HSCT(10.0, depletion=0.9, t_cell_depletion=0.8, llpc_depletion=0.4)
    ev = h.events(P)
    assert [e for e in ev if e[1] == m.CYC] == [(t, m.CYC, OP_ADD, 50.0)
                                                for t in (10.0, 11.0, 12.0, 13.0)]
    np.testing.assert_array_equal(h.dose_times(), [10.0, 11.0, 12.0, 13.0])  # what is checked
    scale = {s: v for t, s, op, v in ev if op == OP_SCALE}
    assert scale[m.B_NAIVE] == pytest.approx(0.1) and scale[m.PLASMABLAST] == pytest.approx(0.1)
    assert scale[m.CD4] == pytest.approx(0.2) and scale[m.TFH] == pytest.approx(0.2)
    assert scale[m.LLPC] == pytest.approx(0.6)
    assert h.death_time(0.01) == pytest.approx(10 + 100 * 0.01 / 0.05)
    assert math.isnan(h.death_time(0.5)) and math.isnan(HSCT(0, trm=0).death_time(0.0))


@pytest.mark.parametrize("bad, field", [
    (lambda: Glucocorticoid(oral_mg=10, taper_to=20), "taper_to"),
    (lambda: Glucocorticoid(oral_mg=10, pulse_days=0), "pulse_days"),
    (lambda: Glucocorticoid(oral_mg=10, start=5, stop=5), "stop"),
    (lambda: Glucocorticoid(pulse_mg=5000), "pulse_mg"),
    (lambda: Cyclophosphamide(500.0), "dose"),
    (lambda: Cyclophosphamide(10.0, count=3), "interval"),
    (lambda: Cyclophosphamide(10.0, count=2.5, interval=14), "count"),
    (lambda: Mycophenolate(2000.0), "dose"),
    (lambda: Mycophenolate(2.0, start=-1), "start"),
    (lambda: Hydroxychloroquine(float("nan")), "dose"),
    (lambda: Rituximab(count=0), "count"),
    (lambda: CART(cells=-1), "cells"),
    (lambda: CART(lymphodepletion=100), "lymphodepletion"),
    (lambda: HSCT(0, trm=1.5), "trm"),
    (lambda: HSCT(0, t_cell_depletion=-0.1), "t_cell_depletion"),
    (lambda: HSCT(0, trm_window=0), "trm_window"),
])
def test_invalid_records_name_the_field(bad, field):
    with pytest.raises(ValueError, match=f"^{field}: "):
        bad()
