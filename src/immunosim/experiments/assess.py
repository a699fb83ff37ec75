"""From solved runs to clinical outcomes: the model's items on the SLEDAI-2K table, time
origins, treatment-related deaths, and the call of :func:`clinical.classify`.

This is the bridge between a model (which scores the SLEDAI-2K items it can represent, see
``model/activity.py``) and the instrument-level outcome definitions of
:mod:`immunosim.experiments.clinical`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..model import activity as act
from ..model import sle_msc as m
from ..model.interventions import HSCT
from .clinical import classify
from .config import Config, ConfigError
from .sledai import SLEDAI_2K

#: Stream of the per-patient uniform draw that decides treatment-related death.
DEATH_STREAM = 3

#: Bit of each model item in the SLEDAI-2K table, in the order of ``act.ITEMS``.
_TABLE_BITS = np.array([1 << SLEDAI_2K.names.index(it.name) for it in act.ITEMS], dtype=np.int64)


def clinical_inputs(y: np.ndarray, p: np.ndarray) -> dict[str, np.ndarray]:
    """Score, SLEDAI-2K item bitmask, serology points and prednisone dose of solved runs.

    Parameters
    ----------
    y : ndarray, shape (R, T, n_states)
    p : ndarray, shape (R, n_params)

    Returns
    -------
    dict with ``score``, ``serology_points``, ``prednisone`` (float, (R, T)) and ``items``
    (int64 bitmask over :data:`~immunosim.experiments.sledai.SLEDAI_2K`, (R, T)); rows with a
    non-finite state are NaN (their items 0).
    """
    s = act.score_items(y, p, bits=_TABLE_BITS)
    return {"score": s["score"], "serology_points": s["serology_points"], "items": s["items"],
            "prednisone": y[..., m.GC_DOSE]}


def follow_up(cfg: Config, max_origin: float) -> float:
    """Days of follow-up after the origin: ``outcomes.follow_up`` or what the horizon leaves."""
    fu = cfg.outcomes.follow_up
    if fu is None:
        fu = cfg.horizon - max_origin
        if fu <= 0:
            raise ConfigError(f"outcomes.time_origin: a first dose at day {max_origin:g} leaves "
                              f"no follow-up before the horizon ({cfg.horizon:g} d)")
    elif max_origin + fu > cfg.horizon + 1e-9:
        raise ConfigError(f"outcomes.follow_up: {fu:g} d after a first dose at day "
                          f"{max_origin:g} runs past the horizon ({cfg.horizon:g} d); give at "
                          f"most {cfg.horizon - max_origin:g}")
    late = [x for x in cfg.outcomes.landmarks if x > fu + 1e-9]
    if late:
        raise ConfigError(f"outcomes.landmarks: {late[0]:g} is after the follow-up ({fu:g} d "
                          "after the origin)")
    return float(fu)


def death_draws(seed: int, n_patients: int) -> np.ndarray:
    """One uniform draw per patient that decides treatment-related death, shape (n_patients,).

    Patient ``i`` draws from its own stream, ``SeedSequence(seed, spawn_key=(DEATH_STREAM, i))``:
    the same draw in every scenario and sweep point (arms are compared on the same patients), and
    independent of the cohort size, chunking and workers.
    """
    return np.array([np.random.default_rng(np.random.SeedSequence(
        seed, spawn_key=(DEATH_STREAM, i))).random() for i in range(n_patients)])


def death_times(u: np.ndarray, interventions: Sequence[Sequence]) -> np.ndarray:
    """Day of treatment-related death per run (NaN: survives), shape ``(len(u),)``: the earliest
    death of the run's HSCT records for the patient's draw ``u`` (see :func:`death_draws`)."""
    out = np.full(len(u), np.nan)
    for r, (ur, ivs) in enumerate(zip(u, interventions)):
        deaths = [h.death_time(float(ur)) for h in ivs if isinstance(h, HSCT)]
        deaths = [d for d in deaths if d == d]
        if deaths:
            out[r] = min(deaths)
    return out


def assess(cfg: Config, t: np.ndarray, y: np.ndarray, params: np.ndarray, ok: np.ndarray,
           origin: np.ndarray, death: np.ndarray, fu: float) -> dict[str, np.ndarray]:
    """Clinical outcomes of solved runs (the keys of ``clinical.OUTCOMES``), failed runs masked."""
    ci = clinical_inputs(y, params)
    score = np.where(ok[:, None], ci["score"], np.nan)
    return classify(t, score, items=ci["items"], serology_points=ci["serology_points"],
                    prednisone=ci["prednisone"], origin=origin, death=death, horizon=fu,
                    landmarks=cfg.outcomes.landmarks, options=cfg.outcomes.options())


def origins(doses: np.ndarray, time_origin: str) -> np.ndarray:
    """Day outcome times count from, per run: 0 (``"start"``) or the first dose
    (``"first_dose"``; 0 for a run without any).

    Parameters
    ----------
    doses : ndarray, shape (..., n_doses)
        Dosing days, NaN padded (:func:`~immunosim.experiments.simulate.dose_table`).
    time_origin : {"start", "first_dose"}

    Returns
    -------
    ndarray, shape (...), days
    """
    if time_origin != "first_dose":
        return np.zeros(doses.shape[:-1])
    first = np.min(np.where(np.isnan(doses), np.inf, doses), axis=-1)
    return np.where(np.isfinite(first), first, 0.0)


#: Variables a failed run keeps: its status and its work.
UNMASKED = frozenset({"status", "nfev"})


def mask_failed(res: dict[str, np.ndarray]) -> None:
    """A run with ``res["status"] != 0`` carries no outcome (docs/outcomes.md): its values NaN,
    its events False, whatever the engine left in its states before failing (in place)."""
    bad = res["status"] != 0
    if not bad.any():
        return
    for name, v in res.items():
        if name in UNMASKED or v.dtype.kind not in "fb":
            continue
        sel = bad.reshape(bad.shape + (1,) * (v.ndim - bad.ndim))
        res[name] = np.where(sel, False if v.dtype.kind == "b" else np.nan, v)
