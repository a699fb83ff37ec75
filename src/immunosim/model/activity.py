"""Graded SLEDAI-2K-like disease activity and the observables clinicians read.

SLEDAI-2K (Gladman DD, Ibanez D, Urowitz MB, J Rheumatol 2002;29:288) scores 24 descriptors,
each with a fixed weight, as present or absent in the last 10 days. The model scores every item
it can represent from three read-outs:

* **renal activity** ``renal_inflammation = IC * renal_susceptibility * (1 - GC effect) /
  ic_k50`` (immune-complex nephritis; glucocorticoids act on it within days);
* **systemic activity** ``extrarenal_activity = inflammation * extrarenal_susceptibility``
  (the systemic inflammation state, driven by immune complexes);
* **serology and urine**: anti-dsDNA (IU/mL), C3 (mg/dL), proteinuria (g/24h).

Each item has its SLEDAI-2K weight and a threshold on its read-out. The thresholds of the renal
and systemic items are staggered (``assumed``: no data tie a deposit level to a descriptor), so
that as activity falls the items clear one by one and a partial response can stop between them;
the two patient-level susceptibilities spread the cohort's baseline (observed 12.2 +- 3.3,
Liang 2010). Items the model cannot represent (CNS, myositis, ...) are not scored.

Two versions of the score:

* ``activity``: the SLEDAI-2K-like total (integer points), an item counts when its read-out is
  past its threshold;
* ``expected_activity``: each item weighted by a smooth probability of being recorded,
  ``v^k / (v^k + thr^k)`` with ``k = ITEM_STEEPNESS`` (for means and smooth plots).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import prange

from .._numba_config import JIT_PARALLEL
from . import sle_msc as m


@dataclass(frozen=True)
class ActivityItem:
    """One SLEDAI-2K descriptor: ``points`` when ``variable`` is beyond ``threshold``."""

    name: str
    points: int
    variable: str
    threshold: float
    above: bool
    domain: str  # "renal", "serology", "extrarenal"
    source: str


_RENAL = "assumed threshold on renal immune-complex activity (staggered)"
_SYST = "assumed threshold on systemic inflammation (staggered)"

ITEMS: tuple[ActivityItem, ...] = (
    ActivityItem("proteinuria", 4, "proteinuria", 0.5, True, "renal",
                 "SLEDAI-2K: new onset or increase > 0.5 g/24 h"),
    ActivityItem("hematuria", 4, "renal_inflammation", 1.5, True, "renal",
                 "SLEDAI-2K: > 5 RBC/hpf; " + _RENAL),
    ActivityItem("pyuria", 4, "renal_inflammation", 3.0, True, "renal",
                 "SLEDAI-2K: > 5 WBC/hpf; " + _RENAL),
    ActivityItem("urinary_casts", 4, "renal_inflammation", 4.5, True, "renal",
                 "SLEDAI-2K: heme-granular or RBC casts; " + _RENAL),
    ActivityItem("anti_dsdna", 2, "anti_dsdna", 30.0, True, "serology",
                 "SLEDAI-2K increased DNA binding; cut-off assumed (assay-specific)"),
    ActivityItem("low_complement", 2, "c3", 90.0, False, "serology",
                 "SLEDAI-2K low complement; C3 lower reference limit 90 mg/dL"),
    ActivityItem("rash", 2, "extrarenal_activity", 1.0, True, "extrarenal",
                 "SLEDAI-2K: inflammatory rash; " + _SYST),
    ActivityItem("arthritis", 4, "extrarenal_activity", 1.5, True, "extrarenal",
                 "SLEDAI-2K: >= 2 joints with pain and signs of inflammation; " + _SYST),
    ActivityItem("leukopenia", 1, "extrarenal_activity", 2.0, True, "extrarenal",
                 "SLEDAI-2K: < 3000 WBC/mm3; " + _SYST),
    ActivityItem("alopecia", 2, "extrarenal_activity", 2.5, True, "extrarenal",
                 "SLEDAI-2K: abnormal, patchy or diffuse hair loss; " + _SYST),
    ActivityItem("mucosal_ulcers", 2, "extrarenal_activity", 3.0, True, "extrarenal",
                 "SLEDAI-2K: oral or nasal ulcerations; " + _SYST),
    ActivityItem("fever", 1, "extrarenal_activity", 3.5, True, "extrarenal",
                 "SLEDAI-2K: > 38 C without infection; " + _SYST),
    ActivityItem("pleurisy", 2, "extrarenal_activity", 4.0, True, "extrarenal",
                 "SLEDAI-2K: pleuritic pain with rub, effusion or thickening; " + _SYST),
    ActivityItem("thrombocytopenia", 1, "extrarenal_activity", 5.0, True, "extrarenal",
                 "SLEDAI-2K: < 100,000 platelets/mm3; " + _SYST),
    ActivityItem("vasculitis", 8, "extrarenal_activity", 6.0, True, "extrarenal",
                 "SLEDAI-2K: ulceration, gangrene, nodules, infarction or biopsy-proven; " + _SYST),
)

#: Steepness of the smooth item probability behind ``expected_activity`` (assumed: an item is
#: recorded with probability 0.5 at its threshold and 0.9 at 1.44x it).
ITEM_STEEPNESS = 6.0

#: Item weights (points), thresholds and direction, in the order of :data:`ITEMS`.
ITEM_WEIGHTS = np.array([it.points for it in ITEMS], dtype=np.float64)
_THRESHOLD = np.array([it.threshold for it in ITEMS])
_ABOVE = np.array([it.above for it in ITEMS])

#: Read-outs derived from the states (name -> (unit, long name)).
OBSERVABLES: dict[str, tuple[str, str]] = {
    "proteinuria": ("g/24h", "24-hour urinary protein"),
    "renal_inflammation": ("1", "Renal immune-complex activity (IC x susceptibility / ic_k50)"),
    "extrarenal_activity": ("1", "Systemic inflammation x extra-renal susceptibility"),
    "activity": ("points", "SLEDAI-2K-like disease activity"),
    "expected_activity": ("points", "SLEDAI-2K-like activity, expected (smooth) version"),
    "clinical_activity": ("points", "SLEDAI-2K-like activity without serology"),
}


def _param(p: np.ndarray, name: str, ndim: int) -> np.ndarray:
    """Parameter ``name`` from ``p`` (shape (n_params,) or (P, n_params)) broadcast to states."""
    v = np.asarray(p)[..., m.PARAMETERS.index[name]]
    return np.reshape(v, np.shape(v) + (1,) * (ndim - 1 - np.ndim(v)))


def readouts(y: np.ndarray, p: np.ndarray) -> dict[str, np.ndarray]:
    """The variables the items are scored on, each of shape ``y.shape[:-1]``.

    Parameters
    ----------
    y : ndarray, shape (..., n_states)
        States; leading axes e.g. ``(P, n_time)``.
    p : ndarray, shape (n_params,) or (P, n_params)
        Parameters; a 2-D ``p`` matches the first axis of ``y``.
    """
    y = np.asarray(y, dtype=float)
    nd = y.ndim
    prot = _param(p, "proteinuria_base", nd) + _param(p, "proteinuria_max", nd) * y[..., m.DAMAGE]
    gc = np.maximum(y[..., m.GC], 0.0)
    e_gc = gc / (gc + _param(p, "gc_ec50", nd))
    renal = (np.maximum(y[..., m.IC], 0.0) * _param(p, "renal_susceptibility", nd)
             * (1.0 - _param(p, "gc_emax_renal", nd) * e_gc) / _param(p, "ic_k50", nd))
    syst = np.maximum(y[..., m.INFLAMMATION], 0.0) * _param(p, "extrarenal_susceptibility", nd)
    return {"proteinuria": prot, "renal_inflammation": renal, "extrarenal_activity": syst,
            "anti_dsdna": y[..., m.ANTI_DSDNA], "c3": y[..., m.C3]}


def _by_item(values: dict[str, np.ndarray]) -> np.ndarray:
    """Each item's read-out, shape ``(..., n_items)``."""
    return np.stack([values[it.variable] for it in ITEMS], axis=-1)


def item_presence(values: dict[str, np.ndarray]) -> np.ndarray:
    """Items present, shape ``(..., n_items)`` (bool), from :func:`readouts`."""
    v = _by_item(values)
    return np.where(_ABOVE, v > _THRESHOLD, v < _THRESHOLD)


def item_probability(values: dict[str, np.ndarray]) -> np.ndarray:
    """Smooth probability that each item is recorded, shape ``(..., n_items)``."""
    r = np.maximum(_by_item(values), 0.0) / _THRESHOLD
    with np.errstate(divide="ignore", over="ignore"):
        rk = np.where(_ABOVE, r**ITEM_STEEPNESS, r**-ITEM_STEEPNESS)
        return np.where(np.isinf(rk), 1.0, rk / (1.0 + rk))


def score_items(y: np.ndarray, p: np.ndarray, bits: np.ndarray | None = None,
                ) -> dict[str, np.ndarray]:
    """The score, its serology points and (optionally) a bitmask of the items present.

    One compiled pass over the states (:func:`_score_kernel`), never building the read-outs or
    the ``(..., n_items)`` presence array (a sweep scores every saved day of every run: the
    3-D array cost more than the integration). It computes the read-outs of :func:`readouts`
    with the same operations in the same order, so every item is scored on the same values;
    :func:`item_presence` is the per-item twin.

    Parameters
    ----------
    y : ndarray, shape (..., n_states)
    p : ndarray, shape (n_params,) or (P, n_params)
        A 2-D ``p`` matches the first axis of ``y``.
    bits : ndarray of int64, shape (n_items,), optional
        The bit each item sets in ``items`` (e.g. its place in an instrument's table).

    Returns
    -------
    dict with ``score`` and ``serology_points`` (points, ``y.shape[:-1]``; NaN where a state is
    not finite) and, with ``bits``, ``items`` (int64 bitmask, ``y.shape[:-1]``; 0 where a state
    is not finite).
    """
    y = np.asarray(y, dtype=np.float64)
    p = np.asarray(p, dtype=np.float64)
    shape = y.shape[:-1]
    rows = p.shape[0] if p.ndim == 2 else 1
    y3 = np.ascontiguousarray(y).reshape(rows, -1, y.shape[-1])
    p2 = np.ascontiguousarray(p.reshape(rows, -1))
    score = np.empty(y3.shape[:2])
    sero = np.empty(y3.shape[:2])
    items = np.empty(y3.shape[:2], dtype=np.int64)
    b = np.zeros(len(ITEMS), dtype=np.int64) if bits is None else np.asarray(bits, np.int64)
    _score_kernel(y3, p2, _STATE_COLS, _PARAM_COLS, _ITEM_VARIABLE, _THRESHOLD.astype(float),
                  _ABOVE, ITEM_WEIGHTS, _SEROLOGY, b, score, sero, items)
    out = {"score": score.reshape(shape), "serology_points": sero.reshape(shape)}
    if bits is not None:
        out["items"] = items.reshape(shape)
    return out


#: Inputs of :func:`_score_kernel`: the states and parameters the read-outs use, and each
#: item's read-out (its place in :data:`_READOUTS`) and domain.
_READOUTS = ("proteinuria", "renal_inflammation", "extrarenal_activity", "anti_dsdna", "c3")
_STATE_COLS = np.array([m.DAMAGE, m.GC, m.IC, m.INFLAMMATION, m.ANTI_DSDNA, m.C3])
_PARAM_COLS = np.array([m.PARAMETERS.index[n] for n in (
    "proteinuria_base", "proteinuria_max", "gc_ec50", "renal_susceptibility", "gc_emax_renal",
    "ic_k50", "extrarenal_susceptibility")])
_ITEM_VARIABLE = np.array([_READOUTS.index(it.variable) for it in ITEMS])
_SEROLOGY = np.array([it.domain == "serology" for it in ITEMS])


@JIT_PARALLEL
def _score_kernel(y, p, state_cols, param_cols, item_variable, threshold, above, points,
                  serology, bits, score, sero, items):
    """Score, serology points and item bits of ``y (R, T, n_states)`` with parameters
    ``p (R, n_params)`` into ``(R, T)`` arrays. The read-outs are :func:`readouts`' expressions,
    operation for operation (so the same floating-point values)."""
    i_damage, i_gc, i_ic, i_infl, i_dsdna, i_c3 = (state_cols[0], state_cols[1], state_cols[2],
                                                   state_cols[3], state_cols[4], state_cols[5])
    for r in prange(y.shape[0]):
        prot_base, prot_max, ec50 = p[r, param_cols[0]], p[r, param_cols[1]], p[r, param_cols[2]]
        renal_sus, emax, k50 = p[r, param_cols[3]], p[r, param_cols[4]], p[r, param_cols[5]]
        extrarenal_sus = p[r, param_cols[6]]
        v = np.empty(5)
        for t in range(y.shape[1]):
            x = y[r, t]
            finite = True
            for s in range(x.size):
                if not np.isfinite(x[s]):
                    finite = False
            if not finite:
                score[r, t], sero[r, t], items[r, t] = np.nan, np.nan, 0
                continue
            gc = max(x[i_gc], 0.0)
            e_gc = gc / (gc + ec50)
            v[0] = prot_base + prot_max * x[i_damage]
            v[1] = max(x[i_ic], 0.0) * renal_sus * (1.0 - emax * e_gc) / k50
            v[2] = max(x[i_infl], 0.0) * extrarenal_sus
            v[3], v[4] = x[i_dsdna], x[i_c3]
            sc, se, b = 0.0, 0.0, 0
            for k in range(item_variable.size):
                value = v[item_variable[k]]
                if (value > threshold[k]) if above[k] else (value < threshold[k]):
                    sc += points[k]
                    if serology[k]:
                        se += points[k]
                    b |= bits[k]
            score[r, t], sero[r, t], items[r, t] = sc, se, b


def observables(y: np.ndarray, p: np.ndarray) -> dict[str, np.ndarray]:
    """Derived read-outs (the keys of :data:`OBSERVABLES`), each of shape ``y.shape[:-1]``.

    Parameters
    ----------
    y : ndarray, shape (..., n_states)
    p : ndarray, shape (n_params,) or (P, n_params)
    """
    s = score_items(y, p)
    v = readouts(y, p)
    expected = np.where(np.isnan(s["score"]), np.nan, item_probability(v) @ ITEM_WEIGHTS)
    return {"proteinuria": v["proteinuria"], "renal_inflammation": v["renal_inflammation"],
            "extrarenal_activity": v["extrarenal_activity"], "activity": s["score"],
            "expected_activity": expected,
            "clinical_activity": s["score"] - s["serology_points"]}


def activity(y: np.ndarray, p: np.ndarray) -> np.ndarray:
    """SLEDAI-2K-like score (points), shape ``y.shape[:-1]``; see the module docstring."""
    return score_items(y, p)["score"]
