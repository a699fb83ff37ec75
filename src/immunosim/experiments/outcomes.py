"""Clinical outcomes from activity time courses: remission, response, relapse, times to event.

Definitions (defaults in ``docs/outcomes.md`` with their clinical sources):

* **remission**: activity at or under ``remission_threshold`` at every assessment for at least
  ``remission_min_duration`` days; the time to remission is the start of the first such period.
  Not confirmed by the horizon -> censored at the horizon.
* **response**: a fall of at least ``response_drop`` points from baseline (SRI-4 style).
* **relapse** (flare): after a remission starts, a rise of at least ``flare_rise`` points above
  the lowest activity since then, to above the remission threshold (SELENA-SLEDAI flare style).
  Only patients in remission are at risk: ``time_to_relapse`` is NaN for the others, and the
  horizon (censored) for remitters who do not relapse.

Times are days from the start of the run. The classification is a Numba kernel over runs.
The trial definitions for Model 2 (origin, death, SRI-4, DORIS, LLDAS, SELENA flares) are in
:mod:`immunosim.experiments.clinical`; this module stays until the sweep is moved onto it.
"""

from __future__ import annotations

import numpy as np
from numba import prange

from .._numba_config import JIT, JIT_PARALLEL

OUTCOME_ATTRS: dict[str, dict] = {
    "remission": {"long_name": "Remission reached"},
    "time_to_remission": {"units": "d", "long_name": "Time to remission (horizon if censored)"},
    "response": {"long_name": "Response reached"},
    "time_to_response": {"units": "d", "long_name": "Time to response (horizon if censored)"},
    "relapse": {"long_name": "Relapse after remission"},
    "time_to_relapse": {"units": "d",
                        "long_name": "Time to relapse (horizon if censored; NaN if no remission)"},
    "baseline_activity": {"units": "points", "long_name": "Activity at day 0"},
    "min_activity": {"units": "points", "long_name": "Lowest activity"},
}


@JIT
def classify_one(t, a, horizon, thr, min_dur, drop, rise, out):
    """Outcomes of one activity course ``a`` at times ``t`` into ``out`` (8 values, the keys of
    :data:`OUTCOME_ATTRS` in order; booleans as 0/1)."""
    n = t.size
    base = a[0]
    t_rem = np.nan
    start = -1
    for j in range(n):
        if a[j] <= thr:
            if start < 0:
                start = j
            if t[j] - t[start] >= min_dur:
                t_rem = t[start]
                break
        else:
            start = -1
    t_resp = np.nan
    for j in range(n):
        if a[j] <= base - drop:
            t_resp = t[j]
            break
    t_rel = np.nan  # NaN: never in remission, so not at risk
    relapsed = False
    if t_rem == t_rem:
        nadir = a[start]
        t_rel = horizon  # censored unless a flare is found
        for j in range(start, n):
            nadir = min(nadir, a[j])
            if a[j] >= nadir + rise and a[j] > thr:
                t_rel = t[j]
                relapsed = True
                break
    out[0] = 1.0 if t_rem == t_rem else 0.0
    out[1] = t_rem if t_rem == t_rem else horizon
    out[2] = 1.0 if t_resp == t_resp else 0.0
    out[3] = t_resp if t_resp == t_resp else horizon
    out[4] = 1.0 if relapsed else 0.0
    out[5] = t_rel
    out[6] = base
    out[7] = np.min(a)


@JIT_PARALLEL
def classify_batch(t, act, horizon, thr, min_dur, drop, rise, out):
    for r in prange(act.shape[0]):
        classify_one(t, act[r], horizon, thr, min_dur, drop, rise, out[r])


def classify(t: np.ndarray, activity: np.ndarray, *, horizon: float,
             remission_threshold: float = 4.0, remission_min_duration: float = 60.0,
             response_drop: float = 4.0, flare_rise: float = 4.0) -> dict[str, np.ndarray]:
    """Classify activity courses.

    Parameters
    ----------
    t : ndarray, shape (T,)
        Assessment times (d), sorted, starting at 0.
    activity : ndarray, shape (R, T)
        Activity per run; rows with NaN (failed runs) give NaN times and ``False`` events.

    Returns
    -------
    dict of ndarray, each shape (R,)
        Keys of :data:`OUTCOME_ATTRS`; events as ``bool``, times in days.
    """
    act = np.ascontiguousarray(np.atleast_2d(activity), dtype=np.float64)
    t = np.ascontiguousarray(t, dtype=np.float64)
    if act.shape[1] != t.size:
        raise ValueError(f"activity: {act.shape[1]} time points for {t.size} times")
    out = np.empty((act.shape[0], len(OUTCOME_ATTRS)))
    classify_batch(t, act, float(horizon), float(remission_threshold),
                   float(remission_min_duration), float(response_drop), float(flare_rise), out)
    bad = ~np.all(np.isfinite(act), axis=1)
    out[bad] = np.nan
    res = {}
    for k, name in enumerate(OUTCOME_ATTRS):
        col = out[:, k]
        res[name] = (col == 1.0) if name in ("remission", "response", "relapse") else col
    return res


def activity_at(t: np.ndarray, activity: np.ndarray, landmarks) -> np.ndarray:
    """Activity at landmark days (the last assessment at or before each), shape (R, L)."""
    idx = np.searchsorted(t, np.asarray(landmarks, dtype=float), side="right") - 1
    return np.atleast_2d(activity)[:, np.clip(idx, 0, None)]
