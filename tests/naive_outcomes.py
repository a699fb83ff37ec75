"""A plain-Python reference of the outcome definitions, written from the words of
``docs/outcomes.md`` (not from the kernels, nor from ``tests/naive_clinical.py``).

One run at a time, in days rather than indices: the follow-up is the list of ``(day, score,
items)`` visits it keeps, a remission is the first *stretch* of consecutive visits at or under the
threshold that spans the minimum duration, a flare is read against the running minimum since its
start. Every sentence of the docs that decides a value is quoted next to the line that applies it.

It covers what a course of scores (and items) decides: remission, relapse, SRI-4 / major /
partial response, flare and severe flare, with their times and censoring; death and follow-up;
baseline, lowest score, and the score and remission state at landmark visits.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

from immunosim.experiments.clinical import OutcomeOptions

NAN = math.nan


@dataclass(frozen=True)
class Visit:
    t: float  # day of the run
    day: float  # after the origin
    score: float
    items: frozenset


def reference_run(t, score, *, horizon: float, origin: float = 0.0, death: float = NAN,
                  landmarks=(), items=None, options: OutcomeOptions | None = None,
                  eps: float = 1e-9) -> dict:
    """Outcomes of one run.

    Parameters
    ----------
    t, score : sequences of float, length T
        Assessment days from the start of the run (increasing, from 0) and the score there.
    horizon : float
        Follow-up after the origin (d).
    origin, death : float
        Day outcome times count from; day of death (NaN: alive).
    landmarks : sequence of float
        Visit days after the origin.
    items : sequence of sets of item names, length T, optional
        Items present at each assessment (none if omitted).
    options : OutcomeOptions, optional

    Returns
    -------
    dict of Python floats / bools, and lists for ``activity_at`` and ``remission_at``.
    """
    o = options or OutcomeOptions()
    table = o.items
    serology, major_organ = set(table.serology), set(table.major_organ)
    items = [frozenset()] * len(t) if items is None else [frozenset(s) for s in items]
    alive = math.isnan(death)

    # "Baseline is the score (and the items) at the last assessment at or before the origin."
    before = [k for k in range(len(t)) if t[k] <= origin + eps]
    base_k = before[-1]
    base, base_items = float(score[base_k]), items[base_k]
    # "Follow-up ends at origin + horizon, or at death if earlier: follow_up = min(horizon,
    # death - origin). Nothing is assessed on or after the day of death." "Assessments before
    # the origin count for no event."
    died = not alive and death <= origin + horizon
    follow_up = (death - origin) if died else horizon
    visits = [Visit(t[k], t[k] - origin, float(score[k]), items[k]) for k in range(len(t))
              if origin - eps <= t[k] <= origin + horizon + eps and (alive or t[k] < death)]

    def time_of(visit):
        # "time_to_X is the day (after the origin) of the first assessment at which the event
        # is met; if it never is, X is False and time_to_X is the end of follow-up"
        return follow_up if visit is None else visit.day

    # Remission: "score <= 4 at every assessment for at least 60 days; the time is the first
    # day of that period. Not confirmed within follow-up: censored".
    remission_start = None
    for low, stretch in itertools.groupby(visits, key=lambda v: v.score <= o.remission_threshold):
        stretch = list(stretch)
        if low and stretch[-1].t - stretch[0].t >= o.remission_min_duration:
            remission_start = stretch[0]
            break

    # SRI-4: "score fell >= 4 points from baseline, and no organ item (non-serological) is
    # present that was absent at baseline".
    def sri4(v):
        return base - v.score >= o.response_drop and not (v.items - base_items - serology)

    # Major clinical response (proxy): "score <= 3 and no major-organ item present".
    def major(v):
        return v.score <= o.major_response_max and not (v.items & major_organ)

    # Partial clinical response (proxy): "score fell by at least 50% of baseline (and by more
    # than 0)".
    def partial(v):
        return base - v.score > 0 and base - v.score >= o.partial_response_fraction * base

    def first(criterion, among=visits):
        return next((v for v in among if criterion(v)), None)

    responses = {"response": first(sri4), "major_response": first(major),
                 "partial_response": first(partial)}

    def rise_after(start, also):
        """First visit from ``start`` on whose score is at least ``flare_rise`` above the
        lowest score since ``start`` (that visit included) and meets ``also``."""
        since = [v for v in visits if v.t >= start.t]
        lowest = itertools.accumulate((v.score for v in since), min)
        return next((v for v, m in zip(since, lowest)
                     if v.score >= m + o.flare_rise and also(v)), None)

    def at_risk_event(start, also):
        # "For flares and relapse only runs that responded (remitted) are at risk: their time
        # is NaN for the others."
        if start is None:
            return False, NAN
        hit = rise_after(start, also)
        return hit is not None, time_of(hit)

    # Flare: "at risk from the onset of the first response (the earliest of SRI-4, major,
    # partial response) ... a score >= 3 points above the lowest score since that onset";
    # severe: "a flare (as above) with a score above 12".
    onset = min((v for v in responses.values() if v is not None), key=lambda v: v.day,
                default=None)
    flare = at_risk_event(onset, lambda v: True)
    severe = at_risk_event(onset, lambda v: v.score > o.severe_flare_score)
    # Relapse: "from the start of the remission, a score >= flare_rise above the lowest since
    # then, and above remission_threshold".
    relapse = at_risk_event(remission_start, lambda v: v.score > o.remission_threshold)

    out = {"baseline_activity": base,
           # "lowest score at baseline or during follow-up"
           "min_activity": min([base] + [v.score for v in visits]),
           "follow_up": follow_up,
           "remission": remission_start is not None,
           "time_to_remission": time_of(remission_start),
           "flare": flare[0], "time_to_flare": flare[1],
           "severe_flare": severe[0], "time_to_severe_flare": severe[1],
           "relapse": relapse[0], "time_to_relapse": relapse[1],
           # "death is True when the run dies within the horizon, and time_to_death is the day
           # of death (after the origin), or the horizon if censored"
           "death": died, "time_to_death": follow_up}
    for name, v in responses.items():
        out[name], out[f"time_to_{name}"] = v is not None, time_of(v)

    # "Landmark visits read the last assessment at or before origin + landmark. A visit on or
    # after the day of death has no assessment: activity_at is NaN and the visit states are
    # False."
    out["activity_at"], out["remission_at"] = [], []
    for lm in landmarks:
        day = origin + lm
        if not alive and day >= death:
            out["activity_at"].append(NAN)
            out["remission_at"].append(False)
            continue
        k = max(k for k in range(len(t)) if t[k] <= day + eps)
        out["activity_at"].append(float(score[k]))
        out["remission_at"].append(float(score[k]) <= o.remission_threshold)
    return out


#: Outcomes :func:`reference_run` gives, per run and per landmark.
PER_RUN = ("baseline_activity", "min_activity", "follow_up", "remission", "time_to_remission",
           "response", "time_to_response", "major_response", "time_to_major_response",
           "partial_response", "time_to_partial_response", "flare", "time_to_flare",
           "severe_flare", "time_to_severe_flare", "relapse", "time_to_relapse", "death",
           "time_to_death")
PER_LANDMARK = ("activity_at", "remission_at")


def reference_activity_only(t, activity, *, horizon: float, remission_threshold: float = 4.0,
                            remission_min_duration: float = 60.0, response_drop: float = 4.0,
                            flare_rise: float = 4.0) -> dict:
    """The earlier activity-only classification (``outcomes.classify``), from its section of
    docs/outcomes.md: times from day 0, baseline at day 0, no items, no death; every assessment
    counts; "Times are the event day or the horizon if censored; time_to_relapse is NaN for
    runs that never remitted"; response is "a fall of at least 4 points from day 0 (no
    new-item condition)". Failed runs (a NaN activity) have NaN times and False events."""
    if any(math.isnan(a) for a in activity):
        return {"remission": False, "time_to_remission": NAN, "response": False,
                "time_to_response": NAN, "relapse": False, "time_to_relapse": NAN,
                "baseline_activity": NAN, "min_activity": NAN}
    o = OutcomeOptions(remission_threshold=remission_threshold,
                       remission_min_duration=remission_min_duration,
                       response_drop=response_drop, flare_rise=flare_rise)
    # every assessment counts, and censored times are the horizon: follow-up to the last one
    r = reference_run(list(t), list(activity), horizon=float(t[-1]), options=o)
    out = {k: r[k] for k in ("remission", "response", "relapse", "baseline_activity",
                             "min_activity")}
    for k in ("remission", "response", "relapse"):
        censored = not r[k] and not math.isnan(r[f"time_to_{k}"])
        out[f"time_to_{k}"] = horizon if censored else r[f"time_to_{k}"]
    return out
