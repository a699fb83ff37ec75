"""Graded activity: each SLEDAI-2K item on constructed states with known answers."""

import numpy as np
import pytest

from immunosim.experiments.assess import clinical_inputs
from immunosim.experiments.sledai import SLEDAI_2K
from immunosim.model import activity as act
from immunosim.model import sle_msc as m

P = m.PARAMETERS.vector({"renal_susceptibility": 1.0, "extrarenal_susceptibility": 1.0})


def healthy_state():
    y = np.zeros(m.N_STATES)
    y[m.ANTI_DSDNA], y[m.C3], y[m.CD4] = 10.0, 120.0, 1.0
    return y


def test_healthy_state_scores_zero():
    assert act.activity(healthy_state(), P) == 0


@pytest.mark.parametrize("item", act.ITEMS, ids=lambda it: it.name)
def test_each_item_switches_at_its_threshold(item):
    """Just past its threshold an item adds exactly its SLEDAI-2K weight (the items with a lower
    threshold on the same read-out are present too); just short of it, it does not."""
    ic50 = P[m.PARAMETERS.index["ic_k50"]]
    base = P[m.PARAMETERS.index["proteinuria_base"]]
    pmax = P[m.PARAMETERS.index["proteinuria_max"]]

    def state(value):
        y = healthy_state()
        if item.variable == "renal_inflammation":
            y[m.IC] = value * ic50
        elif item.variable == "extrarenal_activity":
            y[m.INFLAMMATION] = value
        elif item.variable == "proteinuria":
            y[m.DAMAGE] = (value - base) / pmax
        elif item.variable == "anti_dsdna":
            y[m.ANTI_DSDNA] = value
        else:
            y[m.C3] = value
        return y

    eps = 1e-6 * item.threshold
    beyond = item.threshold + (eps if item.above else -eps)
    short = item.threshold - (eps if item.above else -eps)
    present_beyond = act.item_presence(act.readouts(state(beyond), P))
    present_short = act.item_presence(act.readouts(state(short), P))
    k = act.ITEMS.index(item)
    assert present_beyond[k] and not present_short[k]
    diff = act.activity(state(beyond), P) - act.activity(state(short), P)
    assert diff == item.points == SLEDAI_2K.weights[SLEDAI_2K.names.index(item.name)]


def test_glucocorticoid_lowers_renal_activity_by_its_emax():
    y = healthy_state()
    y[m.IC] = 6.0
    r0 = act.readouts(y, P)["renal_inflammation"]
    y[m.GC] = P[m.PARAMETERS.index["gc_ec50"]]  # half-maximal effect
    r1 = act.readouts(y, P)["renal_inflammation"]
    assert r1 == pytest.approx(r0 * (1 - 0.5 * P[m.PARAMETERS.index["gc_emax_renal"]]))


def test_expected_score_is_half_the_weight_at_the_threshold():
    y = healthy_state()
    y[m.INFLAMMATION] = 6.0  # vasculitis threshold: probability 1/2 for its 8 points
    probs = act.item_probability(act.readouts(y, P))
    assert probs[[it.name for it in act.ITEMS].index("vasculitis")] == pytest.approx(0.5)


def test_clinical_inputs_put_model_items_on_the_sledai_table():
    y = healthy_state()
    y[m.IC], y[m.ANTI_DSDNA], y[m.C3], y[m.GC_DOSE] = 5.0 * 3.0, 200.0, 60.0, 7.5
    ci = clinical_inputs(y[None, None, :], P[None, :])
    assert ci["score"][0, 0] == SLEDAI_2K.points(ci["items"])[0, 0] == act.activity(y, P)
    assert ci["serology_points"][0, 0] == 4 and ci["prednisone"][0, 0] == 7.5
    assert ci["items"][0, 0] & SLEDAI_2K.mask("hematuria", "pyuria", "urinary_casts")


def test_model_serology_items_are_the_instruments():
    assert {it.name for it in act.ITEMS if it.domain == "serology"} == set(SLEDAI_2K.serology)


def test_score_items_matches_its_per_item_twin_on_random_states():
    """The accumulating scorer against the plain one (presence array @ weights), on random
    states spanning every threshold, with a few non-finite rows. Catches a wrong weight, a
    flipped direction (C3 scores when *below*), serology points on a non-serology item, or a
    bit set for an absent item."""
    rng = np.random.default_rng(7)
    n = 4000
    y = np.tile(healthy_state(), (n, 1))
    ic50 = P[m.PARAMETERS.index["ic_k50"]]
    y[:, m.IC] = rng.uniform(0, 6, n) * ic50
    y[:, m.INFLAMMATION] = rng.uniform(0, 7, n)
    y[:, m.DAMAGE] = rng.uniform(0, 1, n)
    y[:, m.ANTI_DSDNA] = rng.uniform(0, 80, n)
    y[:, m.C3] = rng.uniform(40, 140, n)
    y[:, m.GC] = rng.uniform(0, 60, n)
    y[::97, m.C3] = np.nan
    bits = np.array([1 << (3 * k + 1) for k in range(len(act.ITEMS))], dtype=np.int64)
    s = act.score_items(y, P, bits=bits)
    present = act.item_presence(act.readouts(y, P))
    bad = np.isnan(y).any(axis=1)
    sero = np.array([it.domain == "serology" for it in act.ITEMS])
    w = np.array([it.points for it in act.ITEMS], dtype=float)
    np.testing.assert_array_equal(s["score"][~bad], (present @ w)[~bad])
    np.testing.assert_array_equal(s["serology_points"][~bad], (present @ (w * sero))[~bad])
    np.testing.assert_array_equal(s["items"][~bad], (present * bits).sum(axis=1)[~bad])
    assert np.isnan(s["score"][bad]).all() and (s["items"][bad] == 0).all()
    assert np.unique(s["score"][~bad]).size > 10 and present.any(axis=0).all()  # all items seen


def test_score_items_uses_each_runs_parameters_on_run_by_time_states():
    """A sweep scores states ``(runs, times, n_states)`` with one parameter row per run: each
    run's items follow its own susceptibilities, thresholds and glucocorticoid effect (the
    read-outs of :func:`readouts`, value for value), non-finite states score NaN."""
    rng = np.random.default_rng(3)
    runs, times = 40, 30
    p = np.tile(P, (runs, 1))
    for name, lo, hi in (("renal_susceptibility", 0.2, 3.0), ("extrarenal_susceptibility", 0.2,
                                                                3.0), ("ic_k50", 1.5, 6.0),
                         ("gc_emax_renal", 0.0, 0.9), ("proteinuria_max", 0.5, 3.0)):
        p[:, m.PARAMETERS.index[name]] = rng.uniform(lo, hi, runs)
    y = np.tile(healthy_state(), (runs, times, 1))
    y[..., m.IC] = rng.uniform(0, 12, (runs, times))
    y[..., m.INFLAMMATION] = rng.uniform(0, 7, (runs, times))
    y[..., m.DAMAGE] = rng.uniform(0, 1, (runs, times))
    y[..., m.GC] = rng.uniform(0, 60, (runs, times))
    y[..., m.ANTI_DSDNA] = rng.uniform(0, 80, (runs, times))
    y[..., m.C3] = rng.uniform(40, 140, (runs, times))
    y[5, 7, m.B_GC] = np.inf
    s = act.score_items(y, p, bits=np.array([1 << k for k in range(len(act.ITEMS))]))
    present = act.item_presence(act.readouts(y, p))  # (runs, times, items), run by run
    w = np.array([it.points for it in act.ITEMS], dtype=float)
    ok = np.isfinite(y).all(axis=-1)
    np.testing.assert_array_equal(s["score"][ok], (present @ w)[ok])
    np.testing.assert_array_equal(s["items"][ok], (present * (1 << np.arange(w.size))).sum(-1)[ok])
    assert np.isnan(s["score"][5, 7]) and s["items"][5, 7] == 0 and (~ok).sum() == 1
    one = act.score_items(y[9], p[9])  # a run alone, its parameters as a vector
    np.testing.assert_array_equal(one["score"], s["score"][9])
