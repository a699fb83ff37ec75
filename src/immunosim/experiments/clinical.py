"""Clinical trial outcomes per run: remission, responses, flares, visit-based states, death.

Inputs are, per run and assessment time, the SLEDAI-2K-like score, the items present (a bitmask
over an :class:`~immunosim.experiments.sledai.ItemTable`), the serological points and the
glucocorticoid dose; per run, the time origin (e.g. the first dose) and the day of death. Every
time reported is in days **after the origin**; follow-up ends at ``horizon`` days after the
origin or at death, whichever comes first. The definitions, their sources and what is a proxy
are in ``docs/outcomes.md``; the thresholds are the fields of :class:`OutcomeOptions`.

The classification is a Numba kernel over runs (``_clinical_kernels.classify_one``, driven by
``classify_batch``); :func:`classify` validates, allocates and calls it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from ._clinical_kernels import EPS, check_items_batch, classify_batch
from .sledai import SLEDAI_2K, ItemTable

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
for _per_landmark, _kind, _attrs in OUTCOMES.values():
    if _kind == "bool":  # an event flag is dimensionless: its mean over runs is a share
        _attrs["units"] = "1"
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
