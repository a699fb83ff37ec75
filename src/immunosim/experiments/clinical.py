"""Clinical trial outcomes per run: remission, responses, flares, visit-based states, death.

Inputs are, per run and assessment time, the SLEDAI-2K-like score, the items present (a bitmask
over an :class:`~immunosim.experiments.sledai.ItemTable`), the serological points and the
glucocorticoid dose; per run, the time origin (e.g. the first dose) and the day of death. Every
time reported is in days **after the origin**; follow-up ends at ``horizon`` days after the
origin or at death, whichever comes first. The definitions, their sources and what is a proxy
are in ``docs/outcomes.md``; the thresholds are the fields of :class:`OutcomeOptions`.

The classification is a Numba kernel over runs (:func:`classify_one`, driven by
:func:`classify_batch`); :func:`classify` validates, allocates and calls it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from numba import prange

from .._numba_config import JIT, JIT_PARALLEL
from .sledai import SLEDAI_2K, ItemTable

#: Slack (days) when matching assessment times to the origin, landmarks and the horizon.
EPS = 1e-9

_D = {"units": "d"}
_P = {"units": "points"}
#: name -> (per_landmark, kind, attrs). Per-run outcomes have shape (R,), per-landmark ones
#: (R, L). ``kind`` "bool" is an event flag (False for failed runs), "float" a value (NaN for
#: failed runs). The order of each group is the kernel's column order.
OUTCOMES: dict[str, tuple[bool, str, dict]] = {
    "baseline_activity": (False, "float", {**_P, "long_name": "Score at the origin (baseline)"}),
    "min_activity": (False, "float", {**_P, "long_name": "Lowest score during follow-up"}),
    "follow_up": (False, "float", {**_D, "long_name": "Follow-up (horizon, or death if earlier)"}),
    "remission": (False, "bool", {"long_name": "Sustained remission reached"}),
    "time_to_remission": (False, "float", {**_D, "long_name": "Time to sustained remission "
                                           "(follow-up if censored)"}),
    "response": (False, "bool", {"long_name": "SRI-4-style response reached"}),
    "time_to_response": (False, "float", {**_D, "long_name": "Time to SRI-4-style response "
                                          "(follow-up if censored)"}),
    "major_response": (False, "bool", {"long_name": "Major clinical response (proxy) reached"}),
    "time_to_major_response": (False, "float", {**_D, "long_name": "Time to major clinical "
                                                "response (follow-up if censored)"}),
    "partial_response": (False, "bool", {"long_name": "Partial clinical response (proxy) "
                                         "reached"}),
    "time_to_partial_response": (False, "float", {**_D, "long_name": "Time to partial clinical "
                                                  "response (follow-up if censored)"}),
    "flare": (False, "bool", {"long_name": "SELENA-SLEDAI flare after any response"}),
    "time_to_flare": (False, "float", {**_D, "long_name": "Time to flare (follow-up if "
                                       "censored; NaN if never responded)"}),
    "severe_flare": (False, "bool", {"long_name": "Severe SELENA-SLEDAI flare (score > 12) "
                                     "after any response"}),
    "time_to_severe_flare": (False, "float", {**_D, "long_name": "Time to severe flare "
                                              "(follow-up if censored; NaN if never "
                                              "responded)"}),
    "relapse": (False, "bool", {"long_name": "Flare after sustained remission"}),
    "time_to_relapse": (False, "float", {**_D, "long_name": "Time to relapse (follow-up if "
                                         "censored; NaN if no remission)"}),
    "death": (False, "bool", {"long_name": "Death within the horizon"}),
    "time_to_death": (False, "float", {**_D, "long_name": "Time to death (horizon if "
                                       "censored)"}),
    "activity_at": (True, "float", {**_P, "long_name": "Score at landmark visit (NaN after "
                                    "death)"}),
    "remission_at": (True, "bool", {"long_name": "Score at or under the remission threshold "
                                    "at landmark visit"}),
    "sri4_at": (True, "bool", {"long_name": "SRI-4 (proxy) at landmark visit"}),
    "doris_at": (True, "bool", {"long_name": "DORIS remission (proxy) at landmark visit"}),
    "lldas_at": (True, "bool", {"long_name": "LLDAS (proxy) at landmark visit"}),
}
_PER_RUN = tuple(k for k, v in OUTCOMES.items() if not v[0])
_PER_LANDMARK = tuple(k for k, v in OUTCOMES.items() if v[0])
assert len(_PER_RUN) == 19 and len(_PER_LANDMARK) == 5, "classify_one writes this column layout"


@dataclass(frozen=True)
class OutcomeOptions:
    """Thresholds of the outcome definitions (sources and proxies: ``docs/outcomes.md``).

    Scores are in SLEDAI-2K points, durations in days, doses in prednisone-equivalent mg/day.
    """

    remission_threshold: float = 4.0  #: remission: score <= this ...
    remission_min_duration: float = 60.0  #: ... at every assessment for at least this long
    response_drop: float = 4.0  #: SRI-4: fall from baseline of at least this many points
    major_response_max: float = 3.0  #: major clinical response: score <= this (proxy)
    partial_response_fraction: float = 0.5  #: partial response: fall >= this x baseline (proxy)
    flare_rise: float = 3.0  #: SELENA flare: rise above the nadir since response onset
    severe_flare_score: float = 12.0  #: SELENA severe flare: score rises to above this
    doris_prednisone_max: float = 5.0  #: DORIS: clinical SLEDAI 0 and prednisone <= this
    lldas_score_max: float = 4.0  #: LLDAS: score <= this, no major-organ item, ...
    lldas_prednisone_max: float = 7.5  #: ... and prednisone <= this
    #: LLDAS "no new features": compared with the baseline, or with the previous landmark visit
    #: (Franklyn 2016 compares with the previous assessment; baseline for the first visit).
    lldas_new_since: Literal["baseline", "previous_visit"] = "baseline"
    items: ItemTable = field(default=SLEDAI_2K)

    def __post_init__(self):
        for name in ("remission_threshold", "remission_min_duration", "major_response_max",
                     "doris_prednisone_max", "lldas_score_max", "lldas_prednisone_max",
                     "severe_flare_score"):
            v = getattr(self, name)
            if not (np.isfinite(v) and v >= 0):
                raise ValueError(f"OutcomeOptions.{name}: {v!r}; expected a number >= 0")
        for name in ("response_drop", "flare_rise"):
            v = getattr(self, name)
            if not (np.isfinite(v) and v > 0):
                raise ValueError(f"OutcomeOptions.{name}: {v!r}; expected a number > 0")
        if not 0 < self.partial_response_fraction <= 1:
            raise ValueError(f"OutcomeOptions.partial_response_fraction: "
                             f"{self.partial_response_fraction!r}; expected 0 < x <= 1")
        if self.lldas_new_since not in ("baseline", "previous_visit"):
            raise ValueError(f"OutcomeOptions.lldas_new_since: {self.lldas_new_since!r}; "
                             "expected 'baseline' or 'previous_visit'")
        if not isinstance(self.items, ItemTable):
            raise ValueError(f"OutcomeOptions.items: {type(self.items).__name__}; "
                             "expected an ItemTable")

    def _kernel_parameters(self) -> np.ndarray:
        """The thresholds in the order :func:`classify_one` unpacks them."""
        return np.array([self.remission_threshold, self.remission_min_duration,
                         self.response_drop, self.major_response_max,
                         self.partial_response_fraction, self.flare_rise,
                         self.severe_flare_score, self.doris_prednisone_max,
                         self.lldas_score_max, self.lldas_prednisone_max], dtype=np.float64)


# --- criteria at one assessment (shared by the event search and the landmark visits) ----------


@JIT
def _sri4(s, bits, base, base_bits, drop, serology_mask):
    """Fall of >= ``drop`` points and no organ item absent at baseline."""
    return base - s >= drop and (bits & ~base_bits & ~serology_mask) == 0


@JIT
def _major(s, bits, major_max, major_mask):
    return s <= major_max and (bits & major_mask) == 0


@JIT
def _partial(s, base, fraction):
    return s < base and base - s >= fraction * base


@JIT
def _lldas(s, bits, ref_bits, pred, score_max, pred_max, major_mask):
    return (s <= score_max and (bits & major_mask) == 0 and (bits & ~ref_bits) == 0
            and pred <= pred_max)


@JIT
def _f(flag):
    return 1.0 if flag else 0.0


@JIT
def _first(met, j, first):
    """Index of the first assessment meeting a criterion so far (-1: none yet)."""
    return j if met and first < 0 else first


@JIT
def _first_rise(score, start, stop, rise, floor):
    """First ``j`` in ``[start, stop)`` where ``score[j]`` is at least ``rise`` above the lowest
    score since ``start`` and above ``floor``; -1 if none (SELENA-SLEDAI flare)."""
    nadir = score[start]
    for j in range(start, stop):
        nadir = min(nadir, score[j])
        if score[j] >= nadir + rise and score[j] > floor:
            return j
    return -1


@JIT
def _event(out, k, j, at_risk, t, origin, follow):
    """Write event flag and time (follow-up if censored, NaN if never at risk) at ``out[k:k+2]``."""
    out[k] = _f(j >= 0)
    out[k + 1] = t[j] - origin if j >= 0 else (follow if at_risk else np.nan)


@JIT
def classify_one(t, score, items, pred, origin, death, horizon, landmarks, par, major_mask,
                 serology_mask, lldas_previous, out, out_lm):
    """Outcomes of one run into ``out`` (columns: per-run names of :data:`OUTCOMES`) and
    ``out_lm`` (shape (L, 5): per-landmark names). Events as 0/1, times after ``origin``."""
    thr, min_dur, drop, major_max, pfrac = par[0], par[1], par[2], par[3], par[4]
    rise, severe, doris_p, lldas_max, lldas_p = par[5], par[6], par[7], par[8], par[9]
    n = t.size
    end = origin + horizon
    alive = death != death  # NaN: no death
    died = not alive and death <= end
    follow = death - origin if died else horizon
    b = 0  # baseline: last assessment at or before the origin
    while b + 1 < n and t[b + 1] <= origin + EPS:
        b += 1
    j0 = b if t[b] >= origin - EPS else b + 1  # first assessment at or after the origin
    j1 = j0  # one past the last assessment in follow-up: by the horizon, before death
    while j1 < n and t[j1] <= end + EPS and (alive or t[j1] < death):
        j1 += 1
    base, base_bits = score[b], items[b]

    start, j_rem, j_sri, j_maj, j_par = -1, -1, -1, -1, -1
    low = base
    for j in range(j0, j1):
        s, bits = score[j], items[j]
        low = min(low, s)
        if j_rem < 0:
            if s <= thr:
                if start < 0:
                    start = j
                if t[j] - t[start] >= min_dur:
                    j_rem = start
            else:
                start = -1
        j_sri = _first(_sri4(s, bits, base, base_bits, drop, serology_mask), j, j_sri)
        j_maj = _first(_major(s, bits, major_max, major_mask), j, j_maj)
        j_par = _first(_partial(s, base, pfrac), j, j_par)

    # Flares from the onset of any response; relapse from the start of a sustained remission.
    onset = -1
    for j_resp in (j_sri, j_maj, j_par):
        if j_resp >= 0 and (onset < 0 or j_resp < onset):
            onset = j_resp
    j_flare = j_severe = j_relapse = -1
    if onset >= 0:
        j_flare = _first_rise(score, onset, j1, rise, -np.inf)
        j_severe = _first_rise(score, onset, j1, rise, severe)
    if j_rem >= 0:
        j_relapse = _first_rise(score, j_rem, j1, rise, thr)

    out[0], out[1], out[2] = base, low, follow
    for k, j in enumerate((j_rem, j_sri, j_maj, j_par)):
        _event(out, 3 + 2 * k, j, True, t, origin, follow)
    _event(out, 11, j_flare, onset >= 0, t, origin, follow)
    _event(out, 13, j_severe, onset >= 0, t, origin, follow)
    _event(out, 15, j_relapse, j_rem >= 0, t, origin, follow)
    out[17], out[18] = _f(died), follow

    # Landmark visits: the last assessment at or before origin + landmark, if alive that day.
    ref_bits = base_bits
    for m in range(landmarks.size):
        day = origin + landmarks[m]
        if not (alive or day < death):
            out_lm[m, 0] = np.nan
            out_lm[m, 1:] = 0.0
            continue
        j = b
        while j + 1 < n and t[j + 1] <= day + EPS:
            j += 1
        s, bits = score[j], items[j]
        out_lm[m, 0] = s
        out_lm[m, 1] = _f(s <= thr)
        out_lm[m, 2] = _f(_sri4(s, bits, base, base_bits, drop, serology_mask))
        out_lm[m, 3] = _f((bits & ~serology_mask) == 0 and pred[j] <= doris_p)  # clinical 0
        out_lm[m, 4] = _f(_lldas(s, bits, ref_bits, pred[j], lldas_max, lldas_p, major_mask))
        if lldas_previous:
            ref_bits = bits


@JIT_PARALLEL
def classify_batch(t, score, items, pred, origin, death, horizon, landmarks, par, major_mask,
                   serology_mask, lldas_previous, valid, out, out_lm):
    for r in prange(score.shape[0]):
        if valid[r]:
            classify_one(t, score[r], items[r], pred[r], origin[r], death[r], horizon, landmarks,
                         par, major_mask, serology_mask, lldas_previous, out[r], out_lm[r])


@JIT_PARALLEL
def check_items_batch(score, items, sero, weights, serology_mask, valid, first_bad):
    """Per run, the first assessment whose bitmask sets bits beyond the table (column 0), whose
    score (1) or serological points (2) differ from the weights of its items; -1 if none."""
    n_items = weights.size
    for r in prange(score.shape[0]):
        first_bad[r, :] = -1
        if not valid[r]:
            continue
        for j in range(score.shape[1]):
            bits = items[r, j]
            if (bits < 0 or (bits >> n_items) != 0) and first_bad[r, 0] < 0:
                first_bad[r, 0] = j
            total = total_sero = 0.0
            for k in range(n_items):
                if (bits >> k) & 1:
                    total += weights[k]
                    if (serology_mask >> k) & 1:
                        total_sero += weights[k]
            if abs(score[r, j] - total) > 1e-9 * max(1.0, total) and first_bad[r, 1] < 0:
                first_bad[r, 1] = j
            if abs(sero[r, j] - total_sero) > 1e-9 * max(1.0, total_sero) and first_bad[r, 2] < 0:
                first_bad[r, 2] = j


# --- the public function ---------------------------------------------------------------------


def _per_run(name: str, v, n_runs: int) -> np.ndarray:
    a = np.asarray(v, dtype=np.float64)
    if a.ndim > 1 or a.size not in (1, n_runs):
        raise ValueError(f"{name}: shape {a.shape}; expected a number or ({n_runs},)")
    return np.ascontiguousarray(np.broadcast_to(a.reshape(-1), (n_runs,)))


def classify(t: np.ndarray, score: np.ndarray, *, items: np.ndarray,
             serology_points: np.ndarray, prednisone: np.ndarray, origin, death,
             horizon: float, landmarks, options: OutcomeOptions | None = None
             ) -> dict[str, np.ndarray]:
    """Classify R runs assessed at T times.

    Parameters
    ----------
    t : ndarray, shape (T,)
        Assessment days from the start of the run, increasing, ``t[0] == 0``.
    score : ndarray, shape (R, T)
        SLEDAI-2K-like score (points): the sum of the weights of ``items``. Rows with a NaN
        (here, in ``serology_points`` or in ``prednisone``) are failed runs: their events are
        False and their values NaN.
    items : ndarray of int64, shape (R, T)
        Items present, bit ``k`` for item ``k`` of ``options.items``.
    serology_points : ndarray, shape (R, T)
        Points from the serological items (clinical SLEDAI = score - serology_points). Like
        ``score``, checked against the weights of ``items``; a mismatch (e.g. bits in another
        order than the item table) is refused.
    prednisone : ndarray, shape (R, T)
        Glucocorticoid dose, prednisone-equivalent mg/day.
    origin : float or ndarray, shape (R,)
        Day from which outcome times are measured (e.g. the first dose); baseline is the score at
        the last assessment at or before it, and earlier assessments count for no event.
    death : float or ndarray, shape (R,)
        Day of death (a competing event), NaN if alive; nothing is assessed from that day on.
    horizon : float
        Follow-up after the origin (d); every run must be assessed until ``origin + horizon``.
    landmarks : array_like, shape (L,)
        Visit days after the origin, increasing, within ``[0, horizon]``.
    options : OutcomeOptions, optional
        Thresholds and item table; the defaults if omitted.

    Returns
    -------
    dict of ndarray
        The keys of :data:`OUTCOMES`: shape (R,) or (R, L); events ``bool``, times in days after
        the origin, scores in points.
    """
    o = OutcomeOptions() if options is None else options
    t = np.ascontiguousarray(t, dtype=np.float64)
    if t.ndim != 1 or t.size == 0 or t[0] != 0 or np.any(np.diff(t) <= 0):
        raise ValueError("t: expected increasing assessment days starting at 0")
    score = np.ascontiguousarray(np.atleast_2d(score), dtype=np.float64)
    n_runs = score.shape[0]
    if score.shape != (n_runs, t.size):
        raise ValueError(f"score: shape {score.shape}; expected (runs, {t.size}) for {t.size} "
                         "assessment times")
    arrays = {}
    for name, v in (("items", items), ("serology_points", serology_points),
                    ("prednisone", prednisone)):
        a = np.atleast_2d(v)
        if a.shape != score.shape:
            raise ValueError(f"{name}: shape {a.shape}; expected {score.shape} like score")
        arrays[name] = a
    if not np.issubdtype(arrays["items"].dtype, np.integer):
        raise ValueError(f"items: dtype {arrays['items'].dtype}; expected an integer bitmask")
    bits = np.ascontiguousarray(arrays["items"], dtype=np.int64)
    sero = np.ascontiguousarray(arrays["serology_points"], dtype=np.float64)
    pred = np.ascontiguousarray(arrays["prednisone"], dtype=np.float64)
    origin = _per_run("origin", origin, n_runs)
    death = _per_run("death", death, n_runs)
    landmarks = np.ascontiguousarray(np.atleast_1d(landmarks), dtype=np.float64)
    horizon = float(horizon)
    if not (np.isfinite(horizon) and horizon > 0):
        raise ValueError(f"horizon: {horizon!r}; expected days > 0")
    if landmarks.ndim != 1 or np.any(np.diff(landmarks) < 0) or np.any(landmarks < 0) \
            or np.any(landmarks > horizon):
        raise ValueError(f"landmarks: {landmarks.tolist()}; expected increasing days after the "
                         f"origin within [0, {horizon:g}]")

    valid = np.all(np.isfinite(score) & np.isfinite(sero) & np.isfinite(pred), axis=1)
    _check_runs(t, score, bits, sero, origin, death, horizon, valid, o.items)

    out = np.full((n_runs, len(_PER_RUN)), np.nan)
    out_lm = np.full((n_runs, landmarks.size, len(_PER_LANDMARK)), np.nan)
    classify_batch(t, score, bits, pred, origin, death, horizon, landmarks,
                   o._kernel_parameters(), o.items.major_organ_mask, o.items.serology_mask,
                   o.lldas_new_since == "previous_visit", valid, out, out_lm)
    res = {}
    for cols, names in ((out, _PER_RUN), (np.moveaxis(out_lm, 2, 0), _PER_LANDMARK)):
        for k, name in enumerate(names):
            col = cols[:, k] if cols is out else cols[k]
            res[name] = (col == 1.0) if OUTCOMES[name][1] == "bool" else col
    return res


def _check_runs(t, score, bits, sero, origin, death, horizon, valid, table: ItemTable):
    """Refuse inputs that break the contract, naming the first offending run."""
    def first(bad, what):
        bad = np.argwhere(bad & valid.reshape((-1,) + (1,) * (bad.ndim - 1)))
        if bad.size:
            r = tuple(int(i) for i in bad[0])
            raise ValueError(what(r))

    first(~np.isfinite(origin) | (origin < 0) | (origin + horizon > t[-1] + EPS),
          lambda r: f"origin: run {r[0]} has origin {origin[r]:g}; origin + horizon "
                    f"({horizon:g}) must lie within the assessments [0, {t[-1]:g}]")
    first(death <= origin, lambda r: f"death: run {r[0]} dies on day {death[r]:g}, not after "
                                     f"its origin {origin[r]:g}")
    first_bad = np.empty((score.shape[0], 3), dtype=np.int64)
    check_items_batch(score, bits, sero, np.asarray(table.weights, dtype=np.float64),
                      table.serology_mask, valid, first_bad)
    for col, what in enumerate((
            lambda r, j: f"bitmask {bits[r, j]} sets bits beyond the {len(table.names)} items "
                         "of the table",
            lambda r, j: f"{score[r, j]:g} points but its items weigh "
                         f"{table.points(bits[r, j]):g}",
            lambda r, j: f"{sero[r, j]:g} points but its serological items weigh "
                         f"{table.points(bits[r, j], table.serology_mask):g}")):
        rows = np.flatnonzero(first_bad[:, col] >= 0)
        if rows.size:
            r, j = rows[0], first_bad[rows[0], col]
            name = ("items", "score", "serology_points")[col]
            raise ValueError(f"{name}: run {r}, time {t[j]:g}: {what(r, j)}")
