"""SLEDAI-2K-like disease-activity score computed from the model states.

SLEDAI-2K (Gladman DD, Ibanez D, Urowitz MB, J Rheumatol 2002;29:288) scores 24 descriptors as
present or absent in the last 10 days. The model represents the serological and renal ones, which
carry the disease in refractory lupus nephritis (Liang J et al., Ann Rheum Dis 2010: SLEDAI
12.2 +- 3.3 at baseline):

============== ====== ===================================== ========================================
item           points model read-out                        threshold (source)
============== ====== ===================================== ========================================
anti-dsDNA     2      ``anti_dsdna`` (IU/mL)                > 30 IU/mL (assay cut-off; assumed)
low complement 2      ``c3`` (mg/dL)                        < 90 mg/dL (lower reference limit of C3)
proteinuria    4      ``proteinuria`` (g/24h)               > 0.5 g/24h (SLEDAI-2K definition)
hematuria      4      ``renal_inflammation`` (1)            > 1, i.e. immune complexes above the
                                                            half-maximal injury level (assumed proxy
                                                            for > 5 RBC/hpf of active nephritis)
============== ====== ===================================== ========================================

The maximum of the modelled items is 12; the default patient's diseased state scores all four.
Other SLEDAI items (rash, arthritis, ...) are not modelled.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import sle_msc as m


@dataclass(frozen=True)
class ActivityItem:
    """One SLEDAI-like descriptor: ``points`` when ``variable`` is beyond ``threshold``."""

    name: str
    points: int
    variable: str
    threshold: float
    above: bool
    unit: str
    source: str


ITEMS: tuple[ActivityItem, ...] = (
    ActivityItem("anti_dsdna", 2, "anti_dsdna", 30.0, True, "IU/mL",
                 "SLEDAI-2K increased DNA binding; cut-off assumed (assay-specific)"),
    ActivityItem("low_complement", 2, "c3", 90.0, False, "mg/dL",
                 "SLEDAI-2K low complement; C3 lower reference limit"),
    ActivityItem("proteinuria", 4, "proteinuria", 0.5, True, "g/24h",
                 "SLEDAI-2K proteinuria > 0.5 g/24 h"),
    ActivityItem("hematuria", 4, "renal_inflammation", 1.0, True, "1",
                 "SLEDAI-2K hematuria; assumed proxy: IC above half-maximal injury"),
)

#: Read-outs derived from the states (name -> (unit, long name)).
OBSERVABLES: dict[str, tuple[str, str]] = {
    "proteinuria": ("g/24h", "24-hour urinary protein"),
    "renal_inflammation": ("1", "Immune-complex renal inflammation (IC / ic_k50)"),
    "activity": ("points", "SLEDAI-2K-like disease activity"),
}


def _param(p: np.ndarray, name: str, ndim: int) -> np.ndarray:
    """Parameter ``name`` from ``p`` (shape (n_params,) or (P, n_params)) broadcast to states."""
    v = np.asarray(p)[..., m.PARAMETERS.index[name]]
    return np.reshape(v, np.shape(v) + (1,) * (ndim - 1 - np.ndim(v)))


def observables(y: np.ndarray, p: np.ndarray) -> dict[str, np.ndarray]:
    """Derived read-outs.

    Parameters
    ----------
    y : ndarray, shape (..., n_states)
        States; leading axes e.g. ``(P, n_time)``.
    p : ndarray, shape (n_params,) or (P, n_params)
        Parameters; a 2-D ``p`` matches the first axis of ``y``.

    Returns
    -------
    dict of ndarray, each of shape ``y.shape[:-1]``
        ``proteinuria`` (g/24h), ``renal_inflammation`` (1), ``activity`` (points).
    """
    y = np.asarray(y, dtype=float)
    nd = y.ndim
    dmg = y[..., m.DAMAGE]
    prot = _param(p, "proteinuria_base", nd) + _param(p, "proteinuria_max", nd) * dmg
    infl = y[..., m.IC] / _param(p, "ic_k50", nd)
    values = {
        "anti_dsdna": y[..., m.ANTI_DSDNA],
        "c3": y[..., m.C3],
        "proteinuria": prot,
        "renal_inflammation": infl,
    }
    score = np.zeros(y.shape[:-1])
    for item in ITEMS:
        v = values[item.variable]
        hit = v > item.threshold if item.above else v < item.threshold
        score = score + item.points * hit
    return {"proteinuria": prot, "renal_inflammation": infl, "activity": score}


def activity(y: np.ndarray, p: np.ndarray) -> np.ndarray:
    """SLEDAI-2K-like score (points), shape ``y.shape[:-1]``; see the module docstring."""
    return observables(y, p)["activity"]
