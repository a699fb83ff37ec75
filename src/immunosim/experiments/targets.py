"""Calibration targets: published outcomes as data, their 95% intervals, how the model reads them.

A target (one ``[[target]]`` of ``immunosim/data/targets.toml`` or of a user file) is a published
figure: a proportion ``k`` of ``n`` or a mean with its SD and ``n``, read at ``time`` days after
the infusion or transplant in one calibration ``arm``. Its ``outcome`` names an entry of
:data:`OUTCOME_MAPS`, which turns per-patient model features into the numerator and denominator
(proportions) or the value (means) of that figure, so that a weighted cohort predicts it as
``sum(w * num) / sum(w * den)`` or ``sum(w * value) / sum(w)``.

Intervals: Clopper-Pearson (exact binomial) for proportions, Student t for means
(:func:`data_interval`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Annotated, Literal

import numpy as np
import tomllib
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from scipy import stats

from ..errors import ImmunosimError

#: Days of a year in the targets' yearly windows.
YEAR = 365.0


class Target(BaseModel):
    """One published figure (see the header of ``immunosim/data/targets.toml``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    source: str
    arm: str
    intervention: str = ""
    background: str = ""
    outcome: str
    time: Annotated[float, Field(ge=0)]
    kind: Literal["proportion", "mean"]
    k: Annotated[int, Field(ge=0)] | None = None
    n: Annotated[int, Field(ge=1)]
    mean: float | None = None
    sd: Annotated[float, Field(gt=0)] | None = None
    unit: str = ""
    definition: str = ""
    nested: str = ""
    derived: str = ""
    fit: bool = True
    why_not_fitted: str = ""
    #: Days by which a patient must reach SLEDAI < 3 to count as a responder (HSCT targets).
    responder_time: Annotated[float, Field(ge=0)] = 183.0
    #: Follow-up (days) over which relapses are counted for ``relapse_by_among_relapsers``.
    window: Annotated[float, Field(gt=0)] = 1095.0

    @model_validator(mode="after")
    def _fields(self):
        if self.outcome not in OUTCOME_MAPS:
            raise ValueError(f"outcome: {self.outcome!r} is unknown; expected one of "
                             f"{sorted(OUTCOME_MAPS)}")
        if self.kind == "proportion":
            if self.k is None or self.k > self.n:
                raise ValueError(f"k: {self.k!r}; a proportion needs 0 <= k <= n ({self.n})")
            if self.mean is not None or self.sd is not None:
                raise ValueError("mean/sd: a proportion takes k and n only")
        elif self.mean is None or self.sd is None or self.k is not None:
            raise ValueError("kind 'mean' needs mean, sd and n (and no k)")
        if OUTCOME_MAPS[self.outcome].kind != self.kind:
            raise ValueError(f"outcome: {self.outcome!r} is a {OUTCOME_MAPS[self.outcome].kind};"
                             f" the target is a {self.kind}")
        return self

    @property
    def observed(self) -> float:
        """The published value: k / n, or the mean."""
        return self.k / self.n if self.kind == "proportion" else float(self.mean)


def data_interval(t: Target, level: float = 0.95) -> tuple[float, float]:
    """The data's interval: Clopper-Pearson for k/n, Student t (n - 1 df) for a mean."""
    a = 1 - level
    if t.kind == "proportion":
        lo = 0.0 if t.k == 0 else stats.beta.ppf(a / 2, t.k, t.n - t.k + 1)
        hi = 1.0 if t.k == t.n else stats.beta.ppf(1 - a / 2, t.k + 1, t.n - t.k)
        return float(lo), float(hi)
    half = stats.t.ppf(1 - a / 2, t.n - 1) * t.sd / np.sqrt(t.n)
    return float(t.mean - half), float(t.mean + half)


class TargetError(ImmunosimError, ValueError):
    """A targets file is missing or malformed (one-line message naming the file and entry)."""


def load_targets(path: str | Path | None = None) -> list[Target]:
    """Targets from a TOML file (``[[target]]`` tables); default: the package's own set."""
    if path is None or str(path) == "default":
        text = resources.files("immunosim").joinpath("data/targets.toml").read_text()
        where = "immunosim/data/targets.toml"
    else:
        try:
            text = Path(path).read_text()
        except OSError as e:
            raise TargetError(f"targets: cannot read '{path}': {e.strerror}") from None
        where = str(path)
    try:
        raw = tomllib.loads(text).get("target", [])
    except tomllib.TOMLDecodeError as e:
        raise TargetError(f"{where}: {e}") from None
    out = []
    for i, entry in enumerate(raw):
        try:
            out.append(Target(**entry))
        except ValidationError as e:
            err = e.errors()[0]
            loc = ".".join(str(x) for x in err["loc"])
            name = entry.get("id", f"#{i}")
            msg = err["msg"].removeprefix("Value error, ")
            raise TargetError(f"{where}: target {name}{'.' + loc if loc else ''}: {msg}") from None
    ids = [t.id for t in out]
    dup = {x for x in ids if ids.count(x) > 1}
    if dup:
        raise TargetError(f"{where}: duplicate target id {sorted(dup)[0]!r}")
    if not out:
        raise TargetError(f"{where}: no [[target]] entries")
    return out


# --- how the model reads each outcome ---------------------------------------------------------


@dataclass(frozen=True)
class OutcomeMap:
    """How per-patient features give a target's figure.

    ``fn(features, target)`` returns ``(num, den)`` for a proportion (arrays (N,) of 0/1) or
    ``(value, None)`` for a mean. ``competing_death``: the figure counts treatment-related death
    as failure, so a proportion is multiplied by ``1 - trm`` in arms with a transplant.
    ``analytic``: the figure is the arm's treatment-related mortality itself (no features).
    ``visit``: the figure is read at a landmark visit (``time`` must be one, or 0 for baseline).
    """

    kind: str
    fn: Callable | None
    competing_death: bool = False
    analytic: str = ""
    description: str = ""
    visit: bool = False


def _landmark(f: dict, t: float) -> int:
    lm = f["landmarks"]
    hits = np.flatnonzero(np.isclose(lm, t))
    if hits.size == 0:
        raise ValueError(f"time {t:g} d is not among the landmarks {lm.tolist()}")
    return int(hits[0])


def _flare_by(f: dict, t: float) -> np.ndarray:
    return f["flare"] & (f["time_to_flare"] <= t)


def _responded_by(f: dict, t: float) -> np.ndarray:
    return np.fmin(f["time_to_response"], f["time_to_partial_response"]) <= t


def _one(f: dict) -> np.ndarray:
    return np.ones(f["flare"].shape[0])


def _complete_remission_at(f, tg):
    return f["major_at"][:, _landmark(f, tg.time)], _one(f)


def _relapse_in_year(f, tg):
    ttf = f["time_to_flare"]
    return f["flare"] & (ttf > tg.time - YEAR) & (ttf <= tg.time), _one(f)


def _score_at(f, tg):
    if tg.time == 0:
        return f["baseline_activity"], None
    return f["activity_at"][:, _landmark(f, tg.time)], None


def _proteinuria_at(f, tg):  # g/24h -> mg/24h
    col = f["proteinuria_baseline"] if tg.time == 0 else \
        f["proteinuria_at"][:, _landmark(f, tg.time)]
    return 1000.0 * col, None


def _flare(f, tg):
    return _flare_by(f, tg.time), _one(f)


def _sustained_response_at(f, tg):
    return _responded_by(f, tg.time) & ~_flare_by(f, tg.time), _one(f)


def _below_3_by(f, tg):
    return f["time_to_low"] <= tg.time, _one(f)


def _relapse_among_responders(f, tg):
    resp = f["time_to_low"] <= tg.responder_time
    return resp & _flare_by(f, tg.time), resp


def _relapse_by_among_relapsers(f, tg):
    relapsers = (f["time_to_low"] <= tg.responder_time) & _flare_by(f, tg.window)
    return relapsers & (f["time_to_flare"] <= tg.time), relapsers


def _disease_free_at(f, tg):
    return _responded_by(f, tg.time) & ~_flare_by(f, tg.time), _one(f)


OUTCOME_MAPS: dict[str, OutcomeMap] = {
    "complete_remission_at": OutcomeMap("proportion", _complete_remission_at, visit=True,
                                        description=(
        "score <= 3 and no major-organ item at the visit (Nanjing complete remission proxy)")),
    "relapse_in_year": OutcomeMap("proportion", _relapse_in_year, description=(
        "first flare after response in the year ending at `time`")),
    "sledai_at": OutcomeMap("mean", _score_at, visit=True,
                            description="SLEDAI-2K-like score at the visit"),
    "proteinuria_at": OutcomeMap("mean", _proteinuria_at, visit=True, description=(
        "24-h proteinuria (mg) at the visit")),
    "flare_by": OutcomeMap("proportion", _flare, description="a flare after response by `time`"),
    "sustained_response_at": OutcomeMap("proportion", _sustained_response_at, description=(
        "a partial or SRI-4 response by `time` and no flare since")),
    "sledai_below_3_by": OutcomeMap("proportion", _below_3_by, competing_death=True,
                                    description="a score <= 2 at some visit by `time`, alive"),
    "relapse_among_responders": OutcomeMap("proportion", _relapse_among_responders, description=(
        "flare by `time` among patients with a score <= 2 by `responder_time`")),
    "relapse_by_among_relapsers": OutcomeMap("proportion", _relapse_by_among_relapsers,
                                             description=("of responders relapsing within "
                                                          "`window`, those relapsing by `time`")),
    "treatment_related_death": OutcomeMap("proportion", None, analytic="trm", description=(
        "the transplant's treatment-related death probability")),
    "disease_free_at": OutcomeMap("proportion", _disease_free_at, competing_death=True,
                                  description="alive, responded and no flare by `time`"),
    "alive_at": OutcomeMap("proportion", None, analytic="survival", description=(
        "alive at `time` (the model has treatment-related death only)")),
}


class TargetColumns:
    """Targets as columns of one matrix, so that a weighted cohort predicts them all at once.

    Parameters
    ----------
    features : dict
        Per arm, per-patient features (the same N patients in every arm), as produced by
        :func:`immunosim.experiments.cloud.visit_features` plus the standard outcomes.
    transplant : dict
        Per arm, whether treatment-related death applies.
    targets : list of Target

    Attributes
    ----------
    F : ndarray, shape (N, c)
        Numerators and denominators of proportions; value, value squared and a count column of
        means. Patients whose run failed count in no column.
    """

    def __init__(self, features: dict, transplant: dict, targets: list[Target]):
        self.targets = targets
        cols: list[np.ndarray] = []
        self.slots: list[tuple] = []
        n = next(iter(features.values()))["ok"].shape[0] if features else 0
        for t in targets:
            om = OUTCOME_MAPS[t.outcome]
            if om.analytic:
                self.slots.append(("analytic", om.analytic, transplant.get(t.arm, False)))
                continue
            f = features[t.arm]
            ok = f["ok"].astype(float)
            a, b = om.fn(f, t)
            if t.kind == "proportion":
                death = om.competing_death and transplant[t.arm]
                self.slots.append(("prop", len(cols), len(cols) + 1, death))
                cols += [np.asarray(a, float) * ok, np.asarray(b, float) * ok]
            else:
                v = np.where(f["ok"], a, 0.0)
                self.slots.append(("mean", len(cols), len(cols) + 1, len(cols) + 2))
                cols += [v, v**2, ok]
        self.F = np.ascontiguousarray(np.stack(cols, axis=1)) if cols else np.zeros((n, 0))

    def predict(self, s: np.ndarray, trm: float) -> tuple[np.ndarray, np.ndarray]:
        """Model value of each target from the column sums ``s = w @ F`` (c,), and the model SD
        of mean targets (NaN for proportions); ``trm`` is the transplant's treatment-related
        mortality."""
        val = np.full(len(self.targets), np.nan)
        sd = np.full(len(self.targets), np.nan)
        for i, slot in enumerate(self.slots):
            if slot[0] == "analytic":
                tx = slot[2]
                val[i] = (trm if tx else 0.0) if slot[1] == "trm" else (1 - trm if tx else 1.0)
            elif slot[0] == "prop":
                p = s[slot[1]] / s[slot[2]] if s[slot[2]] > 0 else np.nan
                val[i] = p * (1 - trm) if slot[3] else p
            else:
                n = s[slot[3]]
                if n > 0:
                    val[i] = s[slot[1]] / n
                    sd[i] = np.sqrt(max(s[slot[2]] / n - val[i] ** 2, 0.0))
        return val, sd
