"""Numba kernels of :mod:`immunosim.experiments.clinical` (arrays and scalars in, filled rows
out; the definitions, their sources and the column layout are documented there).

Structure: small criteria at one assessment (``_sri4``, ``_major``, ``_partial``, ``_lldas``),
search helpers (``_first``, ``_first_rise``, ``_event``), the one-run classifier
:func:`classify_one`, its ``prange`` driver :func:`classify_batch`, and
:func:`check_items_batch`, which checks scores against the item weights.
"""

from __future__ import annotations

import numpy as np
from numba import prange

from .._numba_config import JIT, JIT_PARALLEL

#: Slack (days) when matching assessment times to the origin, landmarks and the horizon.
EPS = 1e-9


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
    score (1) or serological points (2) differ from the weights of its items; -1 if none. An
    assessment equal to the one before it (items, score and serology points: most days) is
    not checked again: it fails where that one did, and only the first failure counts."""
    n_items = weights.size
    for r in prange(score.shape[0]):
        first_bad[r, :] = -1
        if not valid[r]:
            continue
        for j in range(score.shape[1]):
            bits = items[r, j]
            if j > 0 and bits == items[r, j - 1] and score[r, j] == score[r, j - 1] \
                    and sero[r, j] == sero[r, j - 1]:
                continue
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
