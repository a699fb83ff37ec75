"""Clinical outcome definitions: hand-worked courses with known answers for every outcome, the
Numba kernel against its slow twin (tests/naive_clinical.py) on random courses, and the input
contract."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from immunosim.experiments import outcomes as old
from immunosim.experiments.clinical import OUTCOMES, OutcomeOptions, classify
from immunosim.experiments.sledai import SLEDAI_2K, ItemTable
from tests.naive_clinical import naive_classify
from tests.naive_outcomes import PER_LANDMARK, PER_RUN, reference_run

T = np.arange(0.0, 456.0)  # daily assessments: one year of follow-up from origins up to day 90
LANDMARKS = [0.0, 91.0, 183.0, 365.0]
BASE = ("proteinuria", "hematuria", "anti_dsdna", "low_complement")  # 12 points


def course(*segments, table=SLEDAI_2K):
    """Items bitmask from ``(start_day, item_names), ...`` (each segment until the next)."""
    bits = np.zeros(T.size, dtype=np.int64)
    for start, names in segments:
        bits[T >= start] = table.mask(*names)
    return bits


def run(bits, prednisone=0.0, *, origin=0.0, death=np.nan, landmarks=LANDMARKS, options=None,
        horizon=365.0):
    """All outcomes of one run as a dict of scalars / 1-D landmark arrays."""
    o = options or OutcomeOptions()
    bits = np.atleast_2d(bits)
    pred = np.broadcast_to(np.asarray(prednisone, dtype=float), bits.shape)
    res = classify(T, o.items.points(bits), items=bits,
                   serology_points=o.items.points(bits, o.items.serology_mask),
                   prednisone=pred, origin=origin, death=death, horizon=horizon,
                   landmarks=landmarks, options=o)
    return {k: v[0] for k, v in res.items()}


# --- hand-worked courses ---------------------------------------------------------------------


def test_durable_remission_and_every_response():
    r = run(course((0, BASE), (40, ("anti_dsdna",))))
    assert r["baseline_activity"] == 12 and r["min_activity"] == 2 and r["follow_up"] == 365
    for ev in ("remission", "response", "major_response", "partial_response"):
        assert r[ev] and r[f"time_to_{ev}"] == 40
    assert not r["flare"] and r["time_to_flare"] == 365  # at risk, censored at the horizon
    assert not r["relapse"] and r["time_to_relapse"] == 365
    assert not r["death"] and r["time_to_death"] == 365
    np.testing.assert_array_equal(r["activity_at"], [12, 2, 2, 2])
    np.testing.assert_array_equal(r["remission_at"], [False, True, True, True])
    np.testing.assert_array_equal(r["doris_at"], [False, True, True, True])  # serology only


def test_never_responding_is_not_at_risk_of_flare():
    r = run(course((0, BASE)))
    for ev in ("remission", "response", "major_response", "partial_response"):
        assert not r[ev] and r[f"time_to_{ev}"] == 365
    for ev in ("flare", "severe_flare", "relapse"):
        assert not r[ev] and np.isnan(r[f"time_to_{ev}"])


def test_death_before_remission_is_confirmed_censors_at_death():
    r = run(course((0, BASE), (100, ())), death=130.0)  # 30 of the 60 days needed
    assert r["death"] and r["time_to_death"] == 130 and r["follow_up"] == 130
    assert not r["remission"] and r["time_to_remission"] == 130
    assert r["response"] and r["time_to_response"] == 100
    assert not r["flare"] and r["time_to_flare"] == 130
    np.testing.assert_array_equal(r["activity_at"], [12, 12, np.nan, np.nan])
    np.testing.assert_array_equal(r["remission_at"], [False, False, False, False])


def test_events_after_death_do_not_count():
    r = run(course((0, BASE), (40, ()), (200, BASE)), death=200.0)  # the flare day is not seen
    assert r["remission"] and r["time_to_remission"] == 40
    assert not r["relapse"] and r["time_to_relapse"] == 200
    assert not r["flare"] and r["time_to_flare"] == 200


def test_death_after_the_horizon_is_censored():
    r = run(course((0, BASE)), death=400.0)
    assert not r["death"] and r["time_to_death"] == 365 and r["follow_up"] == 365


def test_flare_after_partial_response_only():
    # 6 -> 3 (rash + fever): a 50% fall but only 3 points (no SRI-4), fever is major-organ
    # activity (no major response). Rises of 1 and 2 are not flares; +3 on day 200 is.
    r = run(course((0, ("proteinuria", "rash")), (30, ("rash", "fever")),
                   (100, ("rash", "fever", "leukopenia")),
                   (150, ("rash", "fever", "leukopenia", "thrombocytopenia")),
                   (200, ("proteinuria", "rash"))))
    assert r["partial_response"] and r["time_to_partial_response"] == 30
    assert not r["response"] and not r["major_response"]
    assert r["flare"] and r["time_to_flare"] == 200
    assert not r["severe_flare"] and r["time_to_severe_flare"] == 365
    assert r["remission"] and r["time_to_remission"] == 30  # <= 4 from day 30 to 199
    assert r["relapse"] and r["time_to_relapse"] == 200  # +3 and above 4


def test_severe_flare_needs_a_score_above_12():
    r = run(course((0, BASE + ("arthritis",)), (30, ("proteinuria",)),  # 16 -> 4
                   (100, ("proteinuria", "arthritis")),  # 8: mild/moderate flare
                   (150, ("proteinuria", "arthritis", "vasculitis"))))  # 16 > 12: severe
    assert r["flare"] and r["time_to_flare"] == 100
    assert r["severe_flare"] and r["time_to_severe_flare"] == 150
    assert r["response"] and r["partial_response"] and not r["major_response"]


def test_new_organ_item_blocks_sri4_but_new_serology_does_not():
    r = run(course((0, BASE), (50, ("rash", "anti_dsdna")), (120, ("anti_dsdna",))))
    assert r["response"] and r["time_to_response"] == 120  # day 50: fall 8, but rash is new
    np.testing.assert_array_equal(r["sri4_at"], [False, False, True, True])
    np.testing.assert_array_equal(r["lldas_at"], [False, False, True, True])
    r = run(course((0, ("proteinuria", "hematuria")), (50, ("low_complement",))))
    assert r["response"] and r["time_to_response"] == 50  # no BILAG serology domain
    np.testing.assert_array_equal(r["sri4_at"], [False, True, True, True])
    np.testing.assert_array_equal(r["lldas_at"], [False, False, False, False])  # new feature


def test_prednisone_6_blocks_doris_but_not_lldas():
    bits = course((0, BASE), (30, ("anti_dsdna", "low_complement")))  # clinical SLEDAI 0
    pred = np.where(T < 150, 20.0, 6.0)
    pred[T >= 300] = 5.0
    r = run(bits, pred)
    np.testing.assert_array_equal(r["activity_at"], [12, 4, 4, 4])
    np.testing.assert_array_equal(r["doris_at"], [False, False, False, True])
    np.testing.assert_array_equal(r["lldas_at"], [False, False, True, True])


def test_major_organ_item_blocks_lldas_and_major_response():
    r = run(course((0, BASE), (30, ("proteinuria",))), 5.0)  # 4 points, all renal
    assert r["remission"] and r["response"] and not r["major_response"]
    np.testing.assert_array_equal(r["lldas_at"], [False, False, False, False])
    np.testing.assert_array_equal(r["remission_at"], [False, True, True, True])


def test_lldas_new_features_since_baseline_or_previous_visit():
    bits = course((0, ("proteinuria", "anti_dsdna")), (50, ("rash",)))
    r = run(bits)
    np.testing.assert_array_equal(r["lldas_at"], [False, False, False, False])
    r = run(bits, options=OutcomeOptions(lldas_new_since="previous_visit"))
    np.testing.assert_array_equal(r["lldas_at"], [False, False, True, True])


def test_origin_at_day_90_shifts_times_and_baseline():
    segments = [(0, BASE), (40, ()), (200, ("proteinuria", "hematuria"))]
    at0 = run(course(*segments))
    # The same course 90 days later, after a 90-day run-in with a dip that must not count.
    late = course(*[(d + 90, s) for d, s in segments])
    late[(T >= 20) & (T < 89)] = 0
    at90 = run(late, origin=90.0)
    for k in OUTCOMES:
        np.testing.assert_array_equal(at90[k], at0[k], err_msg=k)
    assert at90["time_to_remission"] == 40 and at90["time_to_relapse"] == 200


def test_origin_between_assessments_reads_baseline_before_and_events_after():
    t = np.arange(0.0, 400.0, 7.0)  # weekly
    bits = np.full((1, t.size), SLEDAI_2K.mask(*BASE), dtype=np.int64)
    bits[0, t >= 14] = 0
    score = SLEDAI_2K.points(bits)
    sero = SLEDAI_2K.points(bits, SLEDAI_2K.serology_mask)
    r = classify(t, score, items=bits, serology_points=sero, prednisone=score * 0, origin=10.0,
                 death=np.nan, horizon=365.0, landmarks=[0.0, 4.0], options=None)
    assert r["baseline_activity"][0] == 12 and r["time_to_response"][0] == 4
    np.testing.assert_array_equal(r["activity_at"], [[12, 0]])


def test_failed_rows_are_nan_and_false_and_do_not_touch_others():
    bits = np.stack([course((0, BASE), (40, ()))] * 3)
    score = SLEDAI_2K.points(bits)
    score[1, 50] = np.nan
    pred = np.zeros(bits.shape)
    pred[2, 10] = np.nan
    r = classify(T, score, items=bits,
                 serology_points=SLEDAI_2K.points(bits, SLEDAI_2K.serology_mask), prednisone=pred,
                 origin=0.0, death=np.nan, horizon=365.0, landmarks=LANDMARKS)
    for name, (per_landmark, kind, _) in OUTCOMES.items():
        v = r[name]
        assert v.shape == ((3, 4) if per_landmark else (3,)), name
        assert v.dtype == (bool if kind == "bool" else float), name
        if kind == "bool":
            assert not v[1:].any(), name
        else:
            assert np.isnan(v[1:]).all() and not np.isnan(v[0]).any(), name
    assert r["remission"][0] and r["time_to_remission"][0] == 40


def test_sustained_remission_matches_the_old_classification():
    rng = np.random.default_rng(3)
    bits = np.array([course(*[(d, tuple(rng.choice(BASE, rng.integers(0, 5), replace=False)))
                              for d in np.sort(rng.integers(0, 365, 6))]) for _ in range(40)])
    bits[:, 0] = SLEDAI_2K.mask(*BASE)
    score = SLEDAI_2K.points(bits)
    new = classify(T, score, items=bits, serology_points=SLEDAI_2K.points(
        bits, SLEDAI_2K.serology_mask), prednisone=0 * score, origin=0.0, death=np.nan,
        horizon=T[-1], landmarks=LANDMARKS)
    ref = old.classify(T, score, horizon=T[-1])
    for k in ("remission", "time_to_remission", "baseline_activity", "min_activity"):
        np.testing.assert_array_equal(new[k], ref[k], err_msg=k)


# --- the kernel against its slow twin --------------------------------------------------------

SMALL = ItemTable(names=("nephritis", "vasculitis", "arthritis", "rash", "dsdna", "complement",
                         "fever", "leukopenia"),
                  weights=(4.0, 8.0, 4.0, 2.0, 2.0, 2.0, 1.0, 1.0),
                  major_organ=("nephritis", "vasculitis", "fever"),
                  serology=("dsdna", "complement"))
OPTIONS = [
    OutcomeOptions(items=SMALL),
    OutcomeOptions(items=SMALL, lldas_new_since="previous_visit", severe_flare_score=6.0,
                   remission_min_duration=0.0),
    OutcomeOptions(items=SMALL, remission_threshold=2.0, response_drop=2.0, flare_rise=1.0,
                   major_response_max=5.0, partial_response_fraction=1.0,
                   doris_prednisone_max=0.0, lldas_score_max=8.0, lldas_prednisone_max=10.0),
    OutcomeOptions(),
]


def random_runs(rng, n_runs, table, horizon=365.0):
    t = np.unique(np.concatenate([[0.0, 135.0 + horizon], rng.integers(1, 500, 80),
                                  rng.uniform(0, 500, 20)]))
    k = len(table.names)
    bits = np.zeros((n_runs, t.size), dtype=np.int64)
    pred = np.zeros((n_runs, t.size))
    for r in range(n_runs):
        p_item = rng.uniform(0.05, 0.6)
        for start in np.concatenate([[0], np.sort(rng.uniform(0, 500, rng.integers(0, 9)))]):
            present = rng.random(k) < p_item
            bits[r, t >= start] = int(np.sum(present << np.arange(k)))
            pred[r, t >= start] = rng.choice([0.0, 2.5, 5.0, 6.0, 7.5, 10.0, 30.0])
    origin = np.where(rng.random(n_runs) < 0.3, 0.0,
                      np.where(rng.random(n_runs) < 0.5, t[rng.integers(0, np.sum(t <= 135),
                                                                           n_runs)],
                               rng.uniform(0, 135, n_runs)))
    on_assessment_day = t[np.minimum(np.searchsorted(t, origin + rng.uniform(0.5, 450, n_runs)),
                                     t.size - 1)]  # deaths on a visit day: not assessed that day
    u = rng.random(n_runs)
    death = np.where(u < 0.5, np.nan, np.where(u < 0.75, origin + rng.uniform(0.5, 450, n_runs),
                                              on_assessment_day))
    score = table.points(bits)
    sero = table.points(bits, table.serology_mask)
    score[rng.random(n_runs) < 0.05, rng.integers(0, t.size)] = np.nan
    landmarks = np.sort(np.concatenate([[0.0, horizon], rng.choice(t[t <= horizon], 3),
                                        rng.uniform(0, horizon, 2)]))
    return t, score, {"items": bits, "serology_points": sero, "prednisone": pred,
                      "origin": origin, "death": death, "horizon": horizon,
                      "landmarks": landmarks}


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("o", range(len(OPTIONS)))
def test_kernel_matches_naive_twin(seed, o):
    rng = np.random.default_rng(seed)
    opt = OPTIONS[o]
    t, score, kw = random_runs(rng, 60, opt.items)
    got = classify(t, score, options=opt, **kw)
    want = naive_classify(t, score, options=opt, **kw)
    assert set(got) == set(want) == set(OUTCOMES)
    for name in OUTCOMES:
        np.testing.assert_array_equal(got[name], want[name], err_msg=name)
        assert got[name].dtype == want[name].dtype, name


def test_random_courses_reach_every_outcome():
    """The twin comparison is only as good as the courses it sees: each event occurs in some."""
    seen = dict.fromkeys((k for k, v in OUTCOMES.items() if v[1] == "bool"), False)
    for seed in range(4):
        for opt in OPTIONS[:3]:
            t, score, kw = random_runs(np.random.default_rng(seed), 60, opt.items)
            res = classify(t, score, options=opt, **kw)
            for k in seen:
                seen[k] |= bool(res[k].any())
    assert all(seen.values()), [k for k, v in seen.items() if not v]


# --- contract --------------------------------------------------------------------------------


def _inputs(n=2):
    bits = np.stack([course((0, BASE))] * n)
    return bits, SLEDAI_2K.points(bits), SLEDAI_2K.points(bits, SLEDAI_2K.serology_mask)


@pytest.mark.parametrize(("change", "match"), [
    ({"origin": 91.0}, "origin: run 0 has origin 91; origin \\+ horizon"),
    ({"origin": [0.0, np.nan]}, "origin: run 1"),
    ({"death": [np.nan, 0.0]}, "death: run 1 dies on day 0"),
    ({"landmarks": [91.0, 30.0]}, "landmarks: \\[91.0, 30.0\\]"),
    ({"landmarks": [400.0]}, "within \\[0, 365\\]"),
    ({"horizon": 0.0}, "horizon: 0.0"),
    ({"score_shift": 1.0}, "score: run 0, time 0: 13 points but its items weigh 12"),
    ({"sero_shift": 2.0}, "serology_points: run 0, time 0: 6 points"),
    ({"items": 1 << 30}, "items: run 0, time 0: bitmask 1073741824 sets bits beyond the 24"),
    ({"items": 1.5}, "items: dtype float64"),
    ({"t": T[::-1]}, "t: expected increasing"),
    ({"prednisone": np.zeros((2, 3))}, "prednisone: shape \\(2, 3\\)"),
])
def test_contract_violations_name_the_input(change, match):
    bits, score, sero = _inputs()
    kw = {"items": bits, "serology_points": sero, "prednisone": np.zeros(bits.shape),
          "origin": 0.0, "death": np.nan, "horizon": 365.0, "landmarks": LANDMARKS}
    t = change.pop("t", T)
    score = score + change.pop("score_shift", 0.0)
    kw["serology_points"] = sero + change.pop("sero_shift", 0.0)
    if "items" in change:
        kw["items"] = np.full(bits.shape, change.pop("items"))
    kw.update(change)
    with pytest.raises(ValueError, match=match):
        classify(t, score, **kw)


@pytest.mark.parametrize(("kw", "match"), [
    ({"response_drop": 0.0}, "response_drop: 0.0; expected a number > 0"),
    ({"remission_threshold": -1.0}, "remission_threshold: -1.0"),
    ({"partial_response_fraction": 1.5}, "partial_response_fraction: 1.5"),
    ({"lldas_new_since": "last"}, "lldas_new_since: 'last'"),
])
def test_options_are_validated(kw, match):
    with pytest.raises(ValueError, match=match):
        OutcomeOptions(**kw)


def test_item_table():
    assert len(SLEDAI_2K.names) == 24 and sum(SLEDAI_2K.weights) == 105  # Gladman 2002
    assert SLEDAI_2K.points(SLEDAI_2K.mask(*BASE)) == 12
    assert SLEDAI_2K.points(SLEDAI_2K.mask(*BASE), SLEDAI_2K.serology_mask) == 4
    assert SLEDAI_2K.major_organ_mask & SLEDAI_2K.mask("hematuria", "vasculitis", "fever")
    assert not SLEDAI_2K.major_organ_mask & SLEDAI_2K.mask("arthritis", "rash", "anti_dsdna")
    with pytest.raises(ValueError, match="unknown item\\(s\\) \\['kidney'\\]"):
        ItemTable(names=("a",), weights=(1.0,), major_organ=("kidney",))


def test_metadata_describes_every_outcome():
    for name, (per_landmark, kind, attrs) in OUTCOMES.items():
        assert kind in ("bool", "float") and attrs["long_name"]
        if name.startswith("time_to_") or name == "follow_up":
            assert attrs["units"] == "d" and kind == "float"
        assert per_landmark == name.endswith("_at")


# --- the kernel against the plain-Python reference of docs/outcomes.md (tests/naive_outcomes.py)


@st.composite
def courses(draw):
    """One run: irregular assessment days from 0, a piecewise-constant course of item sets (so
    the score moves in item-weight steps), an origin on, between or before assessments, a death
    (none, between visits, on a visit day, after the horizon), landmarks and options."""
    gaps = draw(st.lists(st.one_of(st.integers(1, 14).map(float),
                                   st.floats(0.25, 30.0, allow_nan=False)),
                         min_size=4, max_size=80))
    t = np.concatenate([[0.0], np.cumsum(gaps)])
    items = st.lists(st.sampled_from(SMALL.names), max_size=3, unique=True)
    sets = [draw(st.lists(st.sampled_from(SMALL.names), min_size=2, max_size=6, unique=True))]
    sets += draw(st.lists(items, max_size=8))  # mostly lower: remissions, then flares
    cuts = sorted(draw(st.lists(st.integers(0, t.size - 1), min_size=len(sets) - 1,
                                max_size=len(sets) - 1)))
    bits = np.zeros(t.size, dtype=np.int64)
    for start, names in zip([0] + cuts, sets):
        bits[start:] = SMALL.mask(*names)
    origin = draw(st.sampled_from([0.0, float(t[t.size // 3]),
                                   float(draw(st.floats(0.0, float(t[-1]) * 0.6)))]))
    horizon = draw(st.floats(0.05, 1.0)) * (float(t[-1]) - origin)
    if horizon <= 0:
        horizon = float(t[-1]) - origin
    later = t[t > origin]
    death = draw(st.sampled_from([np.nan, float(draw(st.sampled_from(list(later)))),
                                  origin + draw(st.floats(0.01, 1.3)) * horizon]))
    landmarks = sorted(draw(st.lists(st.floats(0.0, 1.0), max_size=4)) + [0.0])
    options = draw(st.sampled_from(OPTIONS[:3] + [OutcomeOptions(
        items=SMALL, remission_threshold=6.0, remission_min_duration=14.0, flare_rise=2.0)]))
    return t, bits, origin, horizon, death, [x * horizon for x in landmarks], options


@settings(max_examples=300, deadline=None)
@given(courses())
def test_kernel_matches_the_plain_python_reference(case):
    """Remission, relapse, responses, flares, times to event, censoring at the horizon or at
    death, follow-up, landmark visits: the Numba kernel equals the reference written from the
    words of docs/outcomes.md, value for value (NaN where it says NaN)."""
    t, bits, origin, horizon, death, landmarks, o = case
    score = o.items.points(bits)
    got = classify(t, score[None], items=bits[None],
                   serology_points=o.items.points(bits, o.items.serology_mask)[None],
                   prednisone=np.zeros((1, t.size)), origin=origin, death=death,
                   horizon=horizon, landmarks=landmarks, options=o)
    names = [{o.items.names[k] for k in range(len(o.items.names)) if (int(b) >> k) & 1}
             for b in bits]
    want = reference_run(list(t), list(score), horizon=horizon, origin=origin, death=death,
                         landmarks=landmarks, items=names, options=o)
    for name in PER_RUN + PER_LANDMARK:
        np.testing.assert_array_equal(got[name][0], np.asarray(want[name]), err_msg=name)
