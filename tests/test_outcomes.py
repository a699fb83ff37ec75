"""Outcome classification on constructed activity courses with known answers."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from immunosim.experiments.outcomes import activity_at, classify
from tests.naive_outcomes import reference_activity_only

T = np.arange(0.0, 366.0)  # daily assessments, one year


def course(*segments):
    """Piecewise-constant activity: ``(start_day, value), ...``."""
    a = np.empty(T.size)
    for start, v in segments:
        a[T >= start] = v
    return a


def one(a, **kw):
    kw = {"horizon": 365.0, "remission_threshold": 4, "remission_min_duration": 60,
          "response_drop": 4, "flare_rise": 4, **kw}
    return {k: v[0] for k, v in classify(T, a[None, :], **kw).items()}


def test_never_improves():
    r = one(course((0, 12)))
    assert not r["remission"] and r["time_to_remission"] == 365
    assert not r["response"] and not r["relapse"] and np.isnan(r["time_to_relapse"])


def test_durable_remission():
    r = one(course((0, 12), (40, 2)))
    assert r["remission"] and r["time_to_remission"] == 40
    assert r["response"] and r["time_to_response"] == 40
    assert not r["relapse"] and r["time_to_relapse"] == 365  # at risk, censored at the horizon


def test_too_short_a_dip_is_not_remission():
    r = one(course((0, 12), (40, 2), (80, 12)))  # 40 days <= 4, need 60
    assert not r["remission"] and r["response"]


def test_remission_then_flare():
    r = one(course((0, 12), (30, 2), (200, 6)))  # rise 4 above nadir 2, above threshold
    assert r["remission"] and r["time_to_remission"] == 30
    assert r["relapse"] and r["time_to_relapse"] == 200


def test_small_rise_is_not_a_flare():
    r = one(course((0, 12), (30, 0), (200, 4)))  # +4 but not above the threshold
    assert r["remission"] and not r["relapse"]


def test_remission_confirmed_exactly_at_horizon_edge():
    r = one(course((0, 12), (305, 2)))  # 305 + 60 = 365: just confirmed
    assert r["remission"] and r["time_to_remission"] == 305
    r = one(course((0, 12), (306, 2)))  # cannot be confirmed in time: censored
    assert not r["remission"] and r["time_to_remission"] == 365


def test_failed_runs_are_nan():
    a = course((0, 12))
    a[50] = np.nan
    r = one(a)
    assert np.isnan(r["time_to_remission"]) and not r["remission"]


def test_activity_at_landmarks_takes_last_assessment():
    a = course((0, 12), (91, 6), (183, 2))
    np.testing.assert_array_equal(activity_at(T, a[None], [0, 90.5, 91, 365]), [[12, 12, 6, 2]])


@given(st.lists(st.sampled_from([0, 2, 4, 6, 8, 12]), min_size=2, max_size=30),
       st.integers(1, 120))
def test_invariants(levels, min_dur):
    """Times lie in [0, horizon]; relapse implies remission, and comes after it."""
    a = np.repeat(levels, int(np.ceil(T.size / len(levels))))[: T.size].astype(float)
    r = one(a, remission_min_duration=float(min_dur))
    assert 0 <= r["time_to_remission"] <= 365 and 0 <= r["time_to_response"] <= 365
    if r["relapse"]:
        assert r["remission"] and r["time_to_relapse"] > r["time_to_remission"]
    if not r["remission"]:
        assert np.isnan(r["time_to_relapse"])
    assert r["min_activity"] == min(a)


def test_shape_mismatch():
    with pytest.raises(ValueError, match="time points"):
        classify(T[:10], np.zeros((2, 11)), horizon=10)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 120), st.sampled_from([0, 1, 2, 4, 5, 6, 8, 12, 16])),
                min_size=1, max_size=12),
       st.sampled_from([(4.0, 60.0, 4.0, 4.0), (4.0, 0.0, 4.0, 4.0), (2.0, 30.0, 2.0, 3.0),
                        (6.0, 14.0, 6.0, 1.0)]),
       st.integers(1, 14), st.booleans())
def test_matches_the_plain_python_reference(segments, opts, every, failed):
    """The activity-only kernel against tests/naive_outcomes.py (its section of
    docs/outcomes.md): remission, response, relapse, their times and censoring at the
    horizon, on piecewise-constant courses assessed every ``every`` days."""
    thr, min_dur, drop, rise = opts
    t = np.arange(0.0, 366.0, float(every))
    a = np.zeros(t.size)
    start = 0
    for length, level in segments:
        a[(t >= start)] = level
        start += length
    if failed:
        a[t.size // 2] = np.nan
    kw = {"remission_threshold": thr, "remission_min_duration": min_dur, "response_drop": drop,
          "flare_rise": rise}
    got = {k: v[0] for k, v in classify(t, a[None], horizon=365.0, **kw).items()}
    want = reference_activity_only(t, a, horizon=365.0, **kw)
    for k, v in want.items():
        np.testing.assert_array_equal(got[k], v, err_msg=k)
