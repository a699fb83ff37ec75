"""Each intervention's effect through the engine against an analytic solution of its own
(linear) sub-system: drug effect compartments, pulse decays, CD4 recovery after HSCT."""

import numpy as np
import pytest

from immunosim.engines.ode.solver import EventTable, solve
from immunosim.model import regimens as rg
from immunosim.model import sle_msc as m
from immunosim.model.interventions import HSCT, schedule
from immunosim.model.steady_states import diseased_state

P = m.PARAMETERS.defaults()
Y0 = diseased_state(P)
T = np.linspace(0.0, 200.0, 401)


def run(ivs, t=T):
    ev = EventTable.from_lists([schedule(ivs, P)])
    sol = solve(Y0, P, t, events=ev, rtol=1e-10, atol=1e-12)
    assert sol.status[0] == 0
    return sol.y[0]


def k(name):
    return np.log(2) / P[m.PARAMETERS.index[name]]


def test_oral_dose_fills_its_effect_compartment_exponentially():
    y = run([rg.Mycophenolate(2.0, start=10.0, stop=100.0), rg.Hydroxychloroquine(400.0)])
    km, kh = k("mmf_effect_half_life"), k("hcq_half_life")
    on = (T >= 10) & (T < 100)
    exact = np.where(on, 2.0 * (1 - np.exp(-km * (T - 10))), 0.0)
    off = T >= 100
    exact[off] = 2.0 * (1 - np.exp(-km * 90)) * np.exp(-km * (T[off] - 100))
    np.testing.assert_allclose(y[:, m.MMF], exact, atol=1e-7)
    np.testing.assert_allclose(y[:, m.HCQ], 400.0 * (1 - np.exp(-kh * T)), rtol=1e-7)


def test_glucocorticoid_taper_steps_through_the_effect_compartment():
    gc = rg.Glucocorticoid(0.0, pulse_mg=500, pulse_days=3, oral_mg=40, taper_to=5,
                           taper_weeks=3)
    y = run([gc])
    kg = k("gc_effect_half_life")
    exact, level, e = np.zeros(T.size), 0.0, 0.0
    steps = gc.doses() + [(np.inf, 0.0)]
    for (t0, dose), (t1, _) in zip(steps[:-1], steps[1:]):
        sel = (T >= t0) & (T < t1)
        exact[sel] = dose + (e - dose) * np.exp(-kg * (T[sel] - t0))
        e = dose + (e - dose) * np.exp(-kg * (min(t1, T[-1]) - t0))
        level = dose
    np.testing.assert_allclose(y[:, m.GC], exact, rtol=1e-7, atol=1e-7)
    assert y[-1, m.GC_DOSE] == level == 5.0


def test_pulses_decay_and_superpose():
    cyc = rg.Cyclophosphamide.euro_lupus(5.0)
    rtx = rg.Rituximab(time=0.0)
    y = run([cyc, rtx])
    kc, kr = k("cyc_effect_half_life"), k("rtx_half_life")
    exact_c = sum(cyc.dose * np.exp(-kc * (T - t)) * (T >= t) for t in cyc.dose_times())
    exact_r = sum(np.exp(-kr * (T - t)) * (T >= t) for t in rtx.dose_times())
    np.testing.assert_allclose(y[:, m.CYC], exact_c, rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(y[:, m.RTX], exact_r, rtol=1e-7, atol=1e-9)


def test_hsct_cd4_pool_recovers_with_its_half_life_and_conditioning_kills():
    h = HSCT(0.0)
    y = run([h], t=np.linspace(0, 720, 721))
    t = np.linspace(0, 720, 721)
    kc = k("cd4_recovery_half_life")
    np.testing.assert_allclose(y[:, m.CD4], 1 - 0.95 * np.exp(-kc * t), rtol=1e-7)
    assert y[0, m.B_NAIVE] == pytest.approx(0.01 * Y0[m.B_NAIVE])
    assert y[0, m.LLPC] == pytest.approx(0.5 * Y0[m.LLPC])
    assert y[365, m.TFH] < 0.5 * Y0[m.TFH]  # Tfh stay low while the CD4 pool recovers


def test_cart_expands_then_contracts_and_depletes_b_cells():
    y = run([rg.CART(0.0)], t=np.linspace(0, 365, 366))
    peak = int(np.argmax(y[:, m.CART]))
    assert 6 <= peak <= 30 and y[peak, m.CART] > 1.5 * 1.0  # expansion after the day-5 infusion
    assert y[-1, m.CART] < 0.2 * y[peak, m.CART]  # then contraction
    assert y[30, m.B_NAIVE] < 0.2 * Y0[m.B_NAIVE]
    assert y[30, m.LLPC] > 0.8 * Y0[m.LLPC]  # CD19-negative long-lived plasma cells spared
