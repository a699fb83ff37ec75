"""Experiment configs: a TOML file, validated strictly before any compute.

The schema is a tree of pydantic models with ``extra="forbid"``. Any problem becomes one
:class:`ConfigError` line naming the key path, the bad value and what is expected, with a
close-match suggestion for unknown keys::

    scenarios.msc.msc.dose_per_kg: unknown key 'dose_per_kg'; did you mean 'amount'?

See ``configs/*.toml`` for annotated examples and ``docs/configs.md`` for the reference.
"""

from __future__ import annotations

import dataclasses
import difflib
import itertools
import math
import sys
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal, get_args, get_origin

import numpy as np
from pydantic import (
    BaseModel,
    BeforeValidator,
    Field,
    PrivateAttr,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

from ..engines.ode.tableaus import METHODS
from ..errors import ImmunosimError
from ..model import sle_msc as m
from ..model.interventions import HSCT, MSCInfusion, StandardTherapy
from ._config_types import Count, Float, Fraction, Int, NonNeg, Pos, _Strict
from ._include import Included, IncludeError, resolve_cohort
from .scenario import Scenario, SolverOptions
from .therapy_config import DRUGS, INT_FIELDS, TARGETS, TherapyRecord, _Record


class ConfigError(ImmunosimError, ValueError):
    """Invalid config; the message is one line: ``key.path: problem``."""


class ConfigWarning(UserWarning):
    """Allowed but suspicious config value (a likely unit slip); names the key path."""


MAX_DEPTH = 24  # nesting of arrays / tables in a config file
MAX_BYTES = 1_000_000  # a config is a small hand-written file


# --- model and solver -------------------------------------------------------------------------


def _check_parameters(v: dict[str, Float]) -> dict[str, Float]:
    for name, value in v.items():
        if name not in m.PARAMETERS:
            raise ValueError(m.PARAMETERS.unknown_message(name))
        bad = domain_problem(name, [value])
        if bad:
            raise ValueError(f"{name}: {bad}")
    return v


def domain_problem(name: str, values, what: str = "") -> str | None:
    """Why ``values`` of model parameter ``name`` leave its hard domain (None if they do not):
    ``0 is invalid: expected > 0 (d, the hard domain of msc_half_life)``."""
    p = m.PARAMETERS[name]
    vals = np.atleast_1d(np.asarray(values, dtype=float))
    out = vals[~p.in_domain(vals)]
    if out.size == 0:
        return None
    unit = "" if p.unit == "1" else f"{p.unit}, "
    return (f"{what}{out[0]:g} is invalid: expected {p.domain_text} ({unit}the hard domain "
            f"of {name}; plausible {p.low:g} to {p.high:g})")


def implausible_message(key: str, name: str, values) -> str | None:
    """Why a value of model parameter ``name`` inside its hard domain is outside its plausible
    range (None if none is)."""
    p = m.PARAMETERS[name]
    vals = np.atleast_1d(np.asarray(values, dtype=float))
    out = vals[~p.plausible(vals)]
    if out.size:
        return (f"{key}: {out[0]:g} is outside the plausible range of {name} "
                f"({p.low:g} to {p.high:g} {p.unit}); allowed, but check it")
    return None


#: Plausible MSC amounts per infusion, cells/kg: outside them a value is more likely a unit slip
#: (cells instead of millions, a total instead of per kg) than a dose; clinical doses are
#: 1e5-1e7 (docs/configs.md).
MSC_AMOUNT_PLAUSIBLE = (1e4, 1e8)


def msc_amount_message(key: str, amount: float, what: str = "") -> str | None:
    """A unit-slip hint for an MSC ``amount`` outside :data:`MSC_AMOUNT_PLAUSIBLE` (0, a sham
    infusion, is fine)."""
    from ..model.regimens import BODY_WEIGHT_KG

    lo, hi = MSC_AMOUNT_PLAUSIBLE
    head = f"{key}: {what}{amount:g} cells/kg is"
    if 0 < amount < lo:
        hint = (f"; did you mean {amount * 1e6:g}?" if 0.1 <= amount <= 10 else "")
        return (f"{head} below the plausible floor of {lo:g} cells/kg (typical 1e5-1e7); "
                f"amount is cells per kg, not millions of cells{hint}")
    if amount > hi:
        return (f"{head} above the plausible ceiling of {hi:g} cells/kg (typical 1e5-1e7); "
                f"amount is per kg of body weight, not the total: did you mean "
                f"{amount / BODY_WEIGHT_KG:.3g} ({amount:g} over {BODY_WEIGHT_KG:g} kg)?")
    return None


#: A cohort distribution may put at most this share of its draws outside the hard domain
#: (those draws are redrawn, like a patient without a diseased state; more would distort it).
MAX_OUT_OF_DOMAIN = 0.05


def distribution_problem(name: str, d) -> tuple[str | None, float]:
    """Check a cohort distribution of ``name`` over the support it can produce: (error or None,
    share of its draws outside the hard domain)."""
    p = m.PARAMETERS[name]
    lo, hi, lo_open, hi_open = p.domain
    if d.distribution in ("uniform", "truncnormal"):
        bad = domain_problem(name, [d.low, d.high])
        if bad:
            return f"low/high: {bad}", 0.0
        return None, 0.0

    def below(z: float) -> float:  # standard normal cdf
        return 0.5 * math.erfc(-z / math.sqrt(2.0))

    if d.distribution == "lognormal":  # support (0, inf): in log space a normal
        # cv * cv, not cv**2: a huge cv gives inf (an infinitely wide lognormal), not an
        # OverflowError that would lose the key
        s, mu = math.sqrt(math.log1p(d.cv * d.cv)), math.log(d.median)
        share = ((below((math.log(lo) - mu) / s) if lo > 0 else 0.0)
                 + (below((mu - math.log(hi)) / s) if math.isfinite(hi) else 0.0))
    else:
        share = below((lo - d.mean) / d.sd) + (below((d.mean - hi) / d.sd)
                                                if math.isfinite(hi) else 0.0)
    if share > MAX_OUT_OF_DOMAIN:
        kind = d.distribution
        fix = ("use truncnormal with low and high inside it" if kind == "normal"
               else "use uniform or truncnormal inside it, or a smaller median/cv")
        return (f"{100 * share:.3g}% of the draws of this {kind} fall outside the hard domain "
                f"of {name} ({p.domain_text}); {fix}"), share
    return None, share


class ModelConfig(_Strict):
    """``[model]``: which model and parameter overrides of its defaults."""

    name: Literal["sle_msc"] = "sle_msc"
    parameters: dict[str, Float] = Field(default_factory=dict)

    _v = field_validator("parameters")(_check_parameters)


class SolverConfig(_Strict):
    """``[solver]``: ODE engine settings."""

    engine: Literal["ode"] = "ode"
    method: str = "dopri5"
    rtol: Annotated[Float, Field(gt=0, lt=1)] = 1e-6
    atol: Pos = 1e-8
    max_steps: Annotated[Int, Field(ge=1)] = 100_000

    @field_validator("method")
    @classmethod
    def _method(cls, v: str) -> str:
        if v not in METHODS:
            raise ValueError(f"unknown method '{v}'; expected one of {', '.join(sorted(METHODS))}")
        return v

    def options(self) -> SolverOptions:
        return SolverOptions(method=self.method, rtol=self.rtol, atol=self.atol,
                             max_steps=self.max_steps)


class EngineConfig(_Strict):
    """``[engine]``: which engine runs the sweep, and the agent-based engine's settings
    (``docs/abm.md``). ``kind = "ode"`` uses ``[solver]``; ``kind = "abm"`` simulates
    autoreactive B-lineage clones with stochastic fates, ``replicates`` times per run."""

    kind: Literal["ode", "abm"] = "ode"
    replicates: Annotated[Int, Field(ge=1, le=100_000)] = 1
    system_size: Annotated[Float, Field(ge=1, le=1e9)] = 1e3
    dt: Annotated[Float, Field(gt=0, le=5)] = 0.5
    substeps: Annotated[Int, Field(ge=0, le=1000)] = 0  # 0: per patient (engines/abm/solver)
    burn_in: Annotated[Float, Field(ge=0, le=1e4)] = 120.0
    exact_below: Annotated[Int, Field(ge=1)] = 20
    max_probability: Annotated[Float, Field(gt=0, le=1)] = 0.1
    max_clones: Annotated[Int, Field(ge=1)] = 1_000_000

    @model_validator(mode="after")
    def _kind(self):
        if self.kind == "ode" and self.replicates != 1:
            raise ValueError(f"replicates: {self.replicates} needs kind = \"abm\" (the ODE "
                             "engine is deterministic: one run per patient)")
        return self

    def abm_options(self):
        """The agent-based engine's :class:`~immunosim.engines.abm.solver.ABMOptions`."""
        from ..engines.abm.solver import ABMOptions

        return ABMOptions(system_size=self.system_size, dt=self.dt, substeps=self.substeps,
                          burn_in=self.burn_in, n_crit=self.exact_below,
                          p_max=self.max_probability, max_clones=self.max_clones)


# --- scenarios ----------------------------------------------------------------------------------


class MSCConfig(_Strict):
    """One MSC dosing record: ``count`` doses of ``amount`` cells/kg, ``interval`` days apart
    (``interval = 0`` with ``count > 1``: ``count`` infusions on the same day)."""

    amount: NonNeg
    time: NonNeg = 0.0
    interval: NonNeg = 0.0
    count: Count = 1
    source: Literal["bm", "uc"] = "bm"

    def build(self) -> MSCInfusion:
        return MSCInfusion(self.amount, self.time, self.interval, self.count, self.source)


_HSCT = {f.name: f.default for f in dataclasses.fields(HSCT)}


class HSCTConfig(_Strict):
    """Autologous HSCT (:class:`~immunosim.model.interventions.HSCT`; defaults are the model's):
    conditioning on days ``time`` to ``time + 3``, fractions depleted, regulatory level after
    conditioning, and treatment-related mortality ``trm`` within ``trm_window`` days."""

    time: NonNeg = 0.0
    depletion: Fraction = _HSCT["depletion"]
    t_cell_depletion: Fraction = _HSCT["t_cell_depletion"]
    llpc_depletion: Fraction = _HSCT["llpc_depletion"]
    regulatory_reset: NonNeg = _HSCT["regulatory_reset"]
    trm: Fraction = _HSCT["trm"]
    trm_window: Pos = _HSCT["trm_window"]

    def build(self) -> HSCT:
        return HSCT(**self.model_dump())


class StandardTherapyConfig(_Strict):
    suppression: Annotated[Float, Field(ge=0, lt=1)]

    def build(self) -> StandardTherapy:
        return StandardTherapy(self.suppression)


class DoseTableSource(_Strict):
    """Where a scenario's dosing records came from (``doses = "FILE"``): the table's rows are
    already the scenario's records, from ``msc_from`` in ``msc`` and ``therapy_from`` in
    ``therapy`` on (:func:`~immunosim.experiments.tables.dose_records`)."""

    file: str
    records: Annotated[Int, Field(ge=0)]
    msc_from: Annotated[Int, Field(ge=0)] = 0
    therapy_from: Annotated[Int, Field(ge=0)] = 0


def _not_a_path(v: Any) -> Any:
    """A table name that reached the schema was never read (``Config.model_validate`` on a raw
    TOML dict): refuse it rather than run without the table."""
    if isinstance(v, str) or hasattr(v, "__fspath__") or type(v).__name__ == "DataFrame":
        raise ValueError(f"{str(v)!r} is a table to read: load the config with "
                         "load_config(path) or parse_config(data, base_dir=...)")
    return v


class ScenarioConfig(_Strict):
    """``[scenarios.NAME]``: interventions (any of ``msc``, ``hsct``, ``standard_therapy`` and a
    ``therapy`` list of drug records) and parameter overrides. An empty table is the untreated
    scenario. ``doses = "FILE"`` adds the records of a dosing table (``docs/configs.md``)."""

    msc: MSCConfig | list[MSCConfig] | None = None
    hsct: HSCTConfig | None = None
    standard_therapy: StandardTherapyConfig | None = None
    therapy: list[TherapyRecord] = Field(default_factory=list)
    parameters: dict[str, Float] = Field(default_factory=dict)
    doses: DoseTableSource | None = None

    _v = field_validator("parameters")(_check_parameters)
    _d = field_validator("doses", mode="before")(_not_a_path)

    @field_validator("therapy", mode="before")
    @classmethod
    def _therapy_list(cls, v: Any) -> Any:
        if not isinstance(v, list):
            raise ValueError("expected a list of drug records: [[scenarios.NAME.therapy]] "
                             "tables, or therapy = [{ drug = ..., ... }]")
        return v

    def msc_list(self) -> list[MSCConfig]:
        if self.msc is None:
            return []
        return list(self.msc) if isinstance(self.msc, list) else [self.msc]

    def records(self, drug: str) -> list[_Record]:
        """The therapy records of ``drug``, in config order."""
        return [r for r in self.therapy if r.drug == drug]

    def has(self, head: str) -> bool:
        """Whether the scenario has something a sweep target ``head.<field>`` can set."""
        if head == "parameters":
            return True
        if head in DRUGS:
            return bool(self.records(head))
        return getattr(self, head) is not None

    def build(self, name: str) -> Scenario:
        ivs: list = [c.build() for c in self.msc_list()]
        if self.hsct is not None:
            ivs.append(self.hsct.build())
        if self.standard_therapy is not None:
            ivs.append(self.standard_therapy.build())
        ivs.extend(r.build() for r in self.therapy)
        return Scenario(name, tuple(ivs), dict(self.parameters))


# --- sweep design -------------------------------------------------------------------------------

TARGETS_INTERVENTION = {
    "msc": set(MSCConfig.model_fields),
    "hsct": set(HSCTConfig.model_fields),
    "standard_therapy": set(StandardTherapyConfig.model_fields),
    **TARGETS,  # therapy records by drug name: every record of that drug
}


def target_field(target: str):
    """The pydantic field (``FieldInfo``) an intervention target sets, None for
    ``parameters.<name>``."""
    head, _, field = target.partition(".")
    model = {"msc": MSCConfig, "hsct": HSCTConfig, "standard_therapy": StandardTherapyConfig,
             **DRUGS}.get(head)
    return None if model is None else model.model_fields.get(field)


def categories(target: str) -> tuple[str, ...] | None:
    """The values a categorical target takes (``msc.source``: ``("bm", "uc")``), None for a
    numeric one."""
    info = target_field(target)
    if info is None or get_origin(info.annotation) is not Literal:
        return None
    return tuple(get_args(info.annotation))


def _one_kind(v: Any) -> Any:
    """``values`` are all numbers or all strings (a categorical axis)."""
    if isinstance(v, list) and any(isinstance(x, str) for x in v) and not all(
            isinstance(x, str) for x in v):
        raise ValueError(f"{v!r} mixes strings and numbers; expected numbers, or strings for "
                         "a categorical target such as msc.source")
    return v


#: Most values one linspace / logspace axis may have (numpy would try to allocate any ``num``).
MAX_AXIS_VALUES = 100_000


class SpaceConfig(_Strict):
    start: Float
    stop: Float
    num: Annotated[Int, Field(ge=1, le=MAX_AXIS_VALUES)]


class AxisConfig(_Strict):
    """``[sweep.axes.NAME]``: what the axis sets and its values.

    ``target`` is ``"msc.amount"``, ``"msc.time"``, ``"msc.count"``, ``"msc.interval"``,
    ``"msc.source"`` (categorical: ``values = ["bm", "uc"]``), ``"hsct.time"``, ``"hsct.trm"``,
    ..., a therapy field by drug name (``"mycophenolate.dose"``, ``"glucocorticoid.oral_mg"``:
    every record of that drug), or ``"parameters.<model parameter>"``. Give exactly one of
    ``values``, ``linspace``, ``logspace`` (grid designs) or ``range`` (random designs).
    ``override_cohort = true`` lets a ``parameters.<name>`` axis replace a parameter the cohort
    draws per patient (refused otherwise).
    """

    target: str
    values: Annotated[list[Float] | list[str], BeforeValidator(_one_kind)] | None = None
    linspace: SpaceConfig | None = None
    logspace: SpaceConfig | None = None
    range: tuple[Float, Float] | None = None
    scale: Literal["linear", "log"] = "linear"
    scenarios: list[str] | None = None
    override_cohort: bool = False

    @field_validator("target")
    @classmethod
    def _target(cls, v: str) -> str:
        head, _, field = v.partition(".")
        if head == "parameters":
            if field not in m.PARAMETERS:
                raise ValueError(m.PARAMETERS.unknown_message(field))
            return v
        if head not in TARGETS_INTERVENTION:
            valid = [f"{k}.<field>" for k in TARGETS_INTERVENTION] + ["parameters.<name>"]
            close = difflib.get_close_matches(head, [*TARGETS_INTERVENTION, "parameters"], n=1)
            hint = f"; did you mean '{close[0]}.{field}'?" if close else ""
            raise ValueError(f"unknown target '{v}'; expected one of {', '.join(valid)}{hint}")
        if field not in TARGETS_INTERVENTION[head]:
            close = difflib.get_close_matches(field, TARGETS_INTERVENTION[head], n=1)
            hint = f"; did you mean '{head}.{close[0]}'?" if close else ""
            raise ValueError(f"unknown target '{v}'{hint}")
        return v

    @model_validator(mode="after")
    def _one_spec(self):
        given = [k for k in ("values", "linspace", "logspace", "range") if getattr(self, k)
                 is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of values, linspace, logspace, range "
                             f"(got {', '.join(given) or 'none'})")
        if self.values is not None and len(self.values) == 0:
            raise ValueError("values: empty axis; give at least one value")
        self._check_kind()
        if self.override_cohort and not self.target.startswith("parameters."):
            raise ValueError(f"override_cohort: only for parameters.<name> targets (it lets "
                             f"an axis replace a parameter the cohort draws), not {self.target}")
        if self.logspace is not None and min(self.logspace.start, self.logspace.stop) <= 0:
            raise ValueError("logspace: start and stop must be > 0 (values, not exponents)")
        if self.range is not None:
            lo, hi = self.range
            if not lo < hi:
                raise ValueError(f"range: {list(self.range)!r} must be [low, high] with low < high")
            if self.scale == "log" and lo <= 0:
                raise ValueError(f"range: {list(self.range)!r} must be > 0 with scale = 'log'")
        return self

    def _check_kind(self) -> None:
        """Numbers for a numeric target, its categories for a categorical one."""
        cats = categories(self.target)
        text = self.values is not None and any(isinstance(v, str) for v in self.values)
        if cats is None:
            if text:
                raise ValueError(f"values: {self.values!r} are strings; {self.target} takes "
                                 "numbers")
            if self.values is not None and not np.all(np.isfinite(self.values)):
                raise ValueError(f"values: {self.values!r} must be finite numbers")
            return
        choices = ", ".join(repr(c) for c in cats)
        if self.values is None or not text:
            raise ValueError(f"{self.target} is categorical: give values = [...] of {choices}")
        bad = [v for v in self.values if v not in cats]
        if bad:
            raise ValueError(f"values: {bad[0]!r} is invalid for {self.target}: expected one of "
                             f"{choices}")

    @property
    def categorical(self) -> bool:
        """Whether the axis takes strings (``msc.source``)."""
        return categories(self.target) is not None

    def grid_values(self) -> np.ndarray | None:
        """The values of a grid axis, shape ``(n,)``: floats, or strings for a categorical
        axis; None for a random design's ``range``."""
        if self.values is not None:
            return np.asarray(self.values, dtype=str if self.categorical else float)
        if self.linspace is not None:
            s = self.linspace
            return np.linspace(s.start, s.stop, s.num)
        if self.logspace is not None:
            s = self.logspace
            return np.geomspace(s.start, s.stop, s.num)
        return None


class SweepConfig(_Strict):
    """``[sweep]``: a grid (full factorial over the axes) or a random design over axis ranges.

    ``zip = { regimen = ["amount", "count"] }`` walks the named grid axes together: one result
    dimension ``regimen`` (row ``i`` takes value ``i`` of each axis, so the axes need equal
    lengths) instead of one dimension per axis; each axis is a coordinate along it.
    """

    design: Literal["grid", "lhs", "sobol"] = "grid"
    samples: Annotated[Int, Field(ge=1)] | None = None
    axes: dict[str, AxisConfig] = Field(default_factory=dict)
    zip: dict[str, list[str]] = Field(default_factory=dict)

    def _check_zip(self) -> None:
        """Group names free; groups of >= 2 known axes of equal length, disjoint."""
        from .names import is_reserved

        if self.zip and self.design != "grid":
            raise ValueError(f"zip: only for design = 'grid' (design = '{self.design}' varies "
                             "every axis along one point dimension already)")
        seen: dict[str, str] = {}
        for group, names in self.zip.items():
            where = f"zip.{group}"
            if group in self.axes or is_reserved(group):
                what = ("an axis" if group in self.axes
                        else "already a dimension or variable of the result")
                raise ValueError(f"{where}: '{group}' is {what}; name the zipped dimension "
                                 "something else")
            if len(names) < 2:
                raise ValueError(f"{where}: {names!r} zips {len(names)} axis; list at least two "
                                 "axes of sweep.axes")
            for a in names:
                if a not in self.axes:
                    close = difflib.get_close_matches(a, list(self.axes), n=1)
                    hint = (f"; did you mean '{close[0]}'?" if close
                            else f"; expected one of {', '.join(self.axes) or 'no axes'}")
                    raise ValueError(f"{where}: unknown axis '{a}'{hint}")
                if a in seen:
                    raise ValueError(f"{where}: axis '{a}' is zipped in '{seen[a]}' already; "
                                     "an axis belongs to one zipped dimension")
                seen[a] = group
            lengths = {a: self.axes[a].grid_values().size for a in names}
            if len(set(lengths.values())) > 1:
                (a, na), (b, nb) = next((x, y) for x, y in itertools.combinations(
                    lengths.items(), 2) if x[1] != y[1])
                raise ValueError(f"{where}: axes {a} ({na} values) and {b} ({nb} values) differ "
                                 "in length; zipped axes take one value per row, so they need "
                                 "equal lengths")

    def dimensions(self) -> dict[str, list[str]]:
        """Result dimensions of a grid, in axis order, each with the axes along it: an axis
        alone, or a zipped group where its first axis stands."""
        group = {a: g for g, names in self.zip.items() for a in names}
        dims: dict[str, list[str]] = {}
        for a in self.axes:
            g = group.get(a)
            if g is None:
                dims[a] = [a]
            elif g not in dims:
                dims[g] = list(self.zip[g])
        return dims

    @model_validator(mode="after")
    def _design(self):
        for name, ax in self.axes.items():
            if self.design != "grid" and ax.categorical:
                raise ValueError(f"axes.{name}: {ax.target} is categorical; it is an axis of "
                                 "grid designs only")
            if self.design == "grid" and ax.range is not None:
                raise ValueError(f"axes.{name}.range: only for design = 'lhs' or 'sobol'; "
                                 "use values, linspace or logspace for a grid")
            if self.design != "grid" and ax.range is None:
                raise ValueError(f"axes.{name}: design = '{self.design}' needs range = [low, high]")
        if self.design != "grid" and self.samples is None:
            raise ValueError(f"samples: design = '{self.design}' needs samples = N")
        if self.design != "grid" and not self.axes:
            raise ValueError("axes: a random design needs at least one axis")
        self._check_zip()
        return self


# --- cohort -------------------------------------------------------------------------------------


class DistributionConfig(_Strict):
    """``[cohort.parameters.NAME]``: the distribution of one parameter across patients.

    * ``lognormal``: ``median`` and ``cv`` (coefficient of variation);
    * ``normal``: ``mean`` and ``sd``;
    * ``uniform``: ``low`` and ``high``;
    * ``truncnormal``: ``mean``, ``sd``, ``low``, ``high``.

    ``truncate = true`` (lognormal, normal) says that the draws outside the parameter's hard
    domain are redrawn on purpose: the intended distribution is the one truncated to the domain
    (as ``immunosim calibrate`` fits it). It silences the warning about those draws; more than
    ``MAX_OUT_OF_DOMAIN`` of them is still refused.
    """

    distribution: Literal["lognormal", "normal", "uniform", "truncnormal"]
    median: Pos | None = None
    #: A CV above 100 (log-SD 3: the middle 95% spanning a factor of 1e5) is not a cohort spread.
    cv: Annotated[Float, Field(gt=0, le=100)] | None = None
    mean: Float | None = None
    sd: Pos | None = None
    low: Float | None = None
    high: Float | None = None
    truncate: bool = False

    @model_validator(mode="after")
    def _fields(self):
        need = {"lognormal": ("median", "cv"), "normal": ("mean", "sd"),
                "uniform": ("low", "high"), "truncnormal": ("mean", "sd", "low", "high")}
        req = need[self.distribution]
        missing = [k for k in req if getattr(self, k) is None]
        extra = [k for k in ("median", "cv", "mean", "sd", "low", "high")
                 if k not in req and getattr(self, k) is not None]
        if missing:
            raise ValueError(f"distribution '{self.distribution}' needs {', '.join(missing)}")
        if extra:
            raise ValueError(f"distribution '{self.distribution}' does not take "
                             f"{', '.join(extra)}; it takes {', '.join(req)}")
        if self.low is not None and self.high is not None and not self.low < self.high:
            raise ValueError(f"low = {self.low:g} must be below high = {self.high:g}")
        if self.truncate and self.distribution not in ("lognormal", "normal"):
            raise ValueError(f"truncate = true applies to lognormal and normal only; a "
                             f"'{self.distribution}' stays inside low and high")
        return self


def _matrix(name: str, rows: list[list[float]], ncol: int, positive: bool) -> None:
    """Each row has ``ncol`` finite entries (> 0 when ``positive``, else in (-1, 1))."""
    for k, row in enumerate(rows):
        if len(row) != ncol:
            raise ValueError(f"{name}[{k}]: {len(row)} values; expected {ncol} (one per "
                             f"{'posterior parameter' if positive else 'cohort correlation'})")
        for j, v in enumerate(row):
            bad = not v > 0 if positive else not -1 < v < 1
            if bad:
                raise ValueError(f"{name}[{k}][{j}]: {v!r} is invalid: expected "
                                 + ("a value > 0" if positive else "-1 < r < 1"))


class PosteriorConfig(_Strict):
    """``[cohort.posterior]``: draws of the cohort's distributions from a fitted posterior.

    Draw ``k`` replaces the ``median`` and ``cv`` of the lognormal entries named in ``parameters``
    by ``median[k]`` and ``cv[k]``, and the values of ``cohort.correlations`` (in order) by
    ``correlation[k]``. Shapes: ``(n_draws, len(parameters))`` and ``(n_draws,
    len(cohort.correlations))``.
    """

    source: str = ""
    parameters: list[str]
    median: list[list[Float]]
    cv: list[list[Float]]
    correlation: list[list[Float]] | None = None

    @model_validator(mode="after")
    def _shapes(self):
        if not self.parameters:
            raise ValueError("parameters: empty list; name at least one lognormal parameter")
        if len(set(self.parameters)) != len(self.parameters):
            raise ValueError(f"parameters: {self.parameters!r} names a parameter twice")
        if not self.median:
            raise ValueError("median: no draws; expected a list of rows, one per draw")
        for name in ("cv", "correlation"):
            rows = getattr(self, name)
            if rows is not None and len(rows) != len(self.median):
                raise ValueError(f"{name}: {len(rows)} draws; expected {len(self.median)} "
                                 "(as many as median)")
        _matrix("median", self.median, len(self.parameters), positive=True)
        _matrix("cv", self.cv, len(self.parameters), positive=True)
        return self

    @property
    def n_draws(self) -> int:
        return len(self.median)


class PopulationTable(_Strict):
    """``[cohort] table``: the content of a population table (one entry per patient, in table
    order), as read by :func:`~immunosim.experiments.tables.read_population`; in the config so
    that its digest covers the table's content.

    ``parameters``: name -> values (n_patients,), in the parameter's unit; ``covariates``:
    name -> numbers (None where blank) or strings (n_patients,).
    """

    file: str
    ids: list[str]
    parameters: dict[str, list[Float]] = Field(default_factory=dict)
    covariates: dict[str, list[float | None] | list[str]] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _shape(self):
        n = len(self.ids)
        if n == 0:
            raise ValueError("ids: no patients; expected one per table row")
        if len(set(self.ids)) != n:
            raise ValueError("ids: duplicate patient IDs; expected one row per patient")
        for kind, cols in (("parameters", self.parameters), ("covariates", self.covariates)):
            for name, vals in cols.items():
                if len(vals) != n:
                    raise ValueError(f"{kind}.{name}: {len(vals)} values; expected {n} (one "
                                     "per patient)")
        for name, vals in self.parameters.items():
            if name not in m.PARAMETERS:
                raise ValueError(f"parameters: {m.PARAMETERS.unknown_message(name)}")
            bad = domain_problem(name, vals)
            if bad:
                raise ValueError(f"parameters.{name}: {bad}")
        return self

    @property
    def size(self) -> int:
        return len(self.ids)


class CohortConfig(_Strict):
    """``[cohort]``: virtual patients, each starting from their own diseased steady state.

    With ``posterior_draws = K > 0`` the cohort is ``K`` copies of ``size`` patients, copy ``k``
    drawn from the distributions of posterior draw ``k`` (see :class:`PosteriorConfig` and
    :func:`~immunosim.experiments.cohort.draw_configs`). With a ``table`` the cohort is exactly
    its patients: their parameters from the table, the others from ``parameters``
    (distributions) or the defaults.
    """

    size: Annotated[Int, Field(ge=1)] = 1
    parameters: dict[str, DistributionConfig] = Field(default_factory=dict)
    correlations: list[tuple[str, str, Float]] = Field(default_factory=list)
    max_redraws: Annotated[Int, Field(ge=0)] = 50
    posterior: PosteriorConfig | None = None
    posterior_draws: Annotated[Int, Field(ge=0)] = 0
    table: PopulationTable | None = None
    covariates: list[str] | None = None

    _t = field_validator("table", mode="before")(_not_a_path)

    @model_validator(mode="after")
    def _table(self):
        t = self.table
        if t is None:
            if self.covariates is not None:
                raise ValueError("covariates: only with cohort.table (its covariate columns)")
            return self
        if "size" in self.model_fields_set and self.size != t.size:
            raise ValueError(f"size: {self.size} is invalid: cohort.table '{t.file}' has "
                             f"{t.size} patients, which is the cohort; leave size out")
        object.__setattr__(self, "size", t.size)
        for name in self.parameters:
            if name in t.parameters:
                raise ValueError(f"parameters.{name}: also a column of cohort.table "
                                 f"'{t.file}'; expected one source per parameter (drop the "
                                 "distribution or the column)")
        return self

    @field_validator("parameters")
    @classmethod
    def _names(cls, v):
        for name in v:
            if name not in m.PARAMETERS:
                raise ValueError(m.PARAMETERS.unknown_message(name))
        for name, d in v.items():
            bad, _ = distribution_problem(name, d)
            if bad:
                raise ValueError(f"{name}: {bad}")
        return v

    @model_validator(mode="after")
    def _corr(self):
        for a, b, r in self.correlations:
            for name in (a, b):
                if name not in self.parameters:
                    raise ValueError(f"correlations: '{name}' has no distribution in "
                                     "cohort.parameters")
            if a == b or not -1 < r < 1:
                raise ValueError(f"correlations: [{a!r}, {b!r}, {r!r}] needs two different "
                                 "parameters and -1 < r < 1")
        if self.correlations:  # each pair may be valid and the matrix still not a correlation
            names = list(self.parameters)
            corr = np.eye(len(names))
            for a, b, r in self.correlations:
                corr[names.index(a), names.index(b)] = corr[names.index(b), names.index(a)] = r
            if np.linalg.eigvalsh(corr).min() <= 1e-12:
                raise ValueError("correlations: the correlation matrix is not positive definite "
                                 "(these pairs cannot hold together); reduce the correlations")
        if self.posterior is not None:
            self._check_posterior(self.posterior)
        elif self.posterior_draws > 0:
            raise ValueError(f"posterior_draws: {self.posterior_draws} needs a "
                             "[cohort.posterior] table (e.g. from an included calibrated cohort)")
        return self

    def _check_posterior(self, post: PosteriorConfig) -> None:
        """The posterior's parameters are lognormal entries; its shapes match the cohort's."""
        for j, name in enumerate(post.parameters):
            d = self.parameters.get(name)
            if d is None or d.distribution != "lognormal":
                what = "has no distribution" if d is None else f"is {d.distribution}"
                raise ValueError(f"posterior.parameters[{j}]: '{name}' {what} in "
                                 "cohort.parameters; posterior draws need a lognormal entry")
        n_corr = len(self.correlations)
        if post.correlation is None and n_corr:
            raise ValueError(f"posterior.correlation: missing; expected one row of {n_corr} "
                             "values per draw (one per cohort.correlations entry)")
        if post.correlation is not None:
            _matrix("posterior.correlation", post.correlation, n_corr, positive=False)
        for j, name in enumerate(post.parameters):  # each draw's lognormal, over its support
            d = self.parameters[name]
            for k, (med, cv) in enumerate(zip((r[j] for r in post.median),
                                              (r[j] for r in post.cv))):
                bad, _ = distribution_problem(name, d.model_copy(update={"median": med,
                                                                         "cv": cv}))
                if bad:
                    raise ValueError(f"posterior.median[{k}][{j}]: {name} under draw {k}: {bad}")
        if self.posterior_draws > post.n_draws:
            raise ValueError(f"posterior_draws: {self.posterior_draws} is more than the "
                             f"{post.n_draws} draws of cohort.posterior")

    @property
    def n_draws(self) -> int:
        """Cohort copies: ``posterior_draws``, or 1 for the point cohort."""
        return max(self.posterior_draws, 1)


# --- outcomes and output ------------------------------------------------------------------------


DEFAULT_LANDMARKS = (91.0, 183.0, 365.0, 730.0)  # 3, 6, 12, 24 months (days)


class OutcomesConfig(_Strict):
    """``[outcomes]``: clinical outcome definitions (see docs/outcomes.md for the sources)."""

    remission_threshold: NonNeg = 4.0
    remission_min_duration: NonNeg = 60.0
    response_drop: Pos = 4.0
    major_response_max: NonNeg = 3.0
    partial_response_fraction: Annotated[Float, Field(gt=0, le=1)] = 0.5
    flare_rise: Pos = 3.0
    severe_flare_score: NonNeg = 12.0
    doris_prednisone_max: NonNeg = 5.0
    lldas_score_max: NonNeg = 4.0
    lldas_prednisone_max: NonNeg = 7.5
    lldas_new_since: Literal["baseline", "previous_visit"] = "baseline"
    #: Where outcome times start: the start of the run, or each run's first dose (MSC infusion,
    #: HSCT or drug); landmarks and ``follow_up`` count from it.
    time_origin: Literal["start", "first_dose"] = "start"
    #: Days of follow-up after the origin (default: the horizon minus the latest origin).
    follow_up: Pos | None = None
    landmarks: list[NonNeg] | None = None  # default: 3, 6, 12, 24 months within the follow-up
    assessment_every: Pos = 1.0

    @field_validator("landmarks")
    @classmethod
    def _landmarks(cls, v):
        if v is not None and len(v) == 0:
            raise ValueError("empty list; give at least one day, or leave it out "
                             "for the default landmarks")
        return v

    def options(self):
        """The :class:`~immunosim.experiments.clinical.OutcomeOptions` of these settings."""
        import dataclasses

        from .clinical import OutcomeOptions

        keys = [f.name for f in dataclasses.fields(OutcomeOptions) if f.name != "items"]
        return OutcomeOptions(**{k: getattr(self, k) for k in keys})


class OutputConfig(_Strict):
    path: str | None = None
    format: Literal["zarr", "netcdf"] | None = None
    trajectories: bool = False
    trajectory_every: Pos = 7.0
    trajectory_variables: list[str] = Field(
        default_factory=lambda: ["activity", "anti_dsdna", "c3", "damage", "msc", "reg"])
    chunk_size: Annotated[Int, Field(ge=1)] = 256

    @field_validator("trajectory_variables")
    @classmethod
    def _vars(cls, v):
        from ..model.activity import OBSERVABLES

        if len(v) == 0:
            raise ValueError("empty list; give at least one variable, "
                             "or leave it out for the default set")

        valid = list(m.STATE_NAMES) + list(OBSERVABLES)
        for name in v:
            if name not in valid:
                close = difflib.get_close_matches(name, valid, n=1)
                hint = f"; did you mean '{close[0]}'?" if close else ""
                raise ValueError(f"unknown variable '{name}'{hint}")
        return v


class Config(_Strict):
    """A whole experiment."""

    name: str = "experiment"
    description: str = ""
    seed: Annotated[Int, Field(ge=0)] = 0
    horizon: Pos = 730.0
    #: Turn every ConfigWarning of the config (a likely unit slip, a parameter outside its
    #: plausible range) into a ConfigError.
    strict: bool = False
    model: ModelConfig = Field(default_factory=ModelConfig)
    solver: SolverConfig = Field(default_factory=SolverConfig)
    engine: EngineConfig = Field(default_factory=EngineConfig)
    scenarios: dict[str, ScenarioConfig] = Field(
        default_factory=lambda: {"untreated": ScenarioConfig()})
    sweep: SweepConfig = Field(default_factory=SweepConfig)
    cohort: CohortConfig = Field(default_factory=CohortConfig)
    outcomes: OutcomesConfig = Field(default_factory=OutcomesConfig)
    output: OutputConfig = Field(default_factory=OutputConfig)
    _source_text: str = PrivateAttr(default="")
    _included: Included | None = PrivateAttr(default=None)

    @classmethod
    def _validate_raw(cls, data: Any) -> Config:
        """pydantic's own validation (pydantic errors; :func:`parse_config` formats them)."""
        return super().model_validate(data)

    @classmethod
    def model_validate(cls, obj: Any, *args: Any, **kwargs: Any) -> Config:
        """Validate a config dictionary as :func:`parse_config` does (one-line
        :class:`ConfigError`); anything else as pydantic does, errors in one line too."""
        if isinstance(obj, Mapping) and not args and not kwargs:
            return parse_config(dict(obj))
        return _validated(lambda: super(Config, cls).model_validate(obj, *args, **kwargs))

    def replace(self, changes: Mapping[str, Any] | None = None, /, **kwargs: Any) -> Config:
        """A validated copy with some keys replaced.

        ``cfg.replace({"cohort.size": 10, "scenarios.msc.msc.amount": 5e5}, seed=3)``: keys are
        dotted paths into the config's tables (an integer picks a list item: ``"scenarios.a.
        therapy.0.dose"``); a value replaces that key whole (a table replaces the table). The
        copy is validated like a file (:class:`ConfigError` naming the key, warnings, ``strict``).
        Unlike ``model_copy(update=...)``, which pydantic does not validate.

        Returns
        -------
        Config
            Its ``source_text`` is this config's, with a comment line listing the changes.
        """
        changes = {**(changes or {}), **kwargs}
        data = self.model_dump(exclude_unset=True)
        for key, value in changes.items():
            if isinstance(value, BaseModel):
                value = value.model_dump(exclude_unset=True)
            _set_path(data, key, value)
        cfg = parse_config(data, self._source_text + f"\n# Config.replace: {changes!r}\n")
        cfg._included = self._included
        return cfg

    @model_validator(mode="after")
    def _cross(self):
        if not self.scenarios:
            raise ValueError("scenarios: no scenario; add at least one [scenarios.NAME] table")
        self._check_horizon()
        for aname, ax in self.sweep.axes.items():
            _refuse_reserved_axis_name(aname)
            head = ax.target.partition(".")[0]
            names = self.axis_scenarios(ax)
            for n in names:
                if n not in self.scenarios:
                    raise ValueError(f"sweep.axes.{aname}.scenarios: unknown scenario '{n}'; "
                                     f"expected one of {', '.join(self.scenarios)}")
                if not self.scenarios[n].has(head):
                    raise ValueError(f"sweep.axes.{aname}.scenarios: scenario '{n}' has no "
                                     f"{head} to set {ax.target}")
            if not names:
                raise ValueError(f"sweep.axes.{aname}: no scenario has '{head}' to sweep")
            vals = ax.grid_values() if ax.range is None else np.asarray(ax.range)
            self._check_axis_values(aname, ax, vals)
            self._check_cohort_override(aname, ax)
        self._check_one_axis_per_target()
        self._check_schedules()
        fu = self.outcomes.follow_up
        if fu is not None and fu > self.horizon:
            raise ValueError(f"outcomes.follow_up: {fu:g} is longer than the horizon "
                             f"({self.horizon:g} d)")
        end = self.horizon if fu is None else fu
        if self.outcomes.landmarks is None:
            lm = [d for d in DEFAULT_LANDMARKS if d <= end] or [end]
            object.__setattr__(self.outcomes, "landmarks", lm)
        if self.outcomes.assessment_every > self.horizon:
            raise ValueError(f"outcomes.assessment_every: {self.outcomes.assessment_every:g} "
                             f"is longer than the horizon ({self.horizon:g} d)")
        every, step = self.output.trajectory_every, self.outcomes.assessment_every
        if self.output.trajectories and abs(every / step - round(every / step)) > 1e-9:
            raise ValueError(f"output.trajectory_every: {every:g} must be a multiple of "
                             f"outcomes.assessment_every ({step:g}): time courses are kept at "
                             "assessments")
        for v in self.outcomes.landmarks:
            if v > end:
                what = "the horizon" if fu is None else "outcomes.follow_up"
                raise ValueError(f"outcomes.landmarks: {v:g} is after {what} ({end:g} d)")
        if sorted(self.outcomes.landmarks) != list(self.outcomes.landmarks):
            raise ValueError(f"outcomes.landmarks: {self.outcomes.landmarks!r} must be increasing")
        self._warn_suspicious()  # last: a refused config prints its error alone
        return self

    def axis_scenarios(self, ax: AxisConfig) -> list[str]:
        """The scenarios an axis applies to: its ``scenarios`` list, or every scenario that has
        the intervention it targets (all scenarios for model parameters)."""
        head = ax.target.partition(".")[0]
        if ax.scenarios is not None:
            return list(ax.scenarios)
        return [n for n, sc in self.scenarios.items() if sc.has(head)]

    def _check_one_axis_per_target(self) -> None:
        """Two axes setting one field of one scenario would fight (the later would win)."""
        owner: dict[tuple[str, str], str] = {}
        for aname, ax in self.sweep.axes.items():
            for n in self.axis_scenarios(ax):
                first = owner.setdefault((ax.target, n), aname)
                if first != aname:
                    raise ValueError(f"sweep.axes.{aname}: {ax.target} of scenario '{n}' is set "
                                     f"by sweep.axes.{first} already; zip the two axes, or "
                                     "give each its own scenarios")

    def _check_cohort_override(self, aname: str, ax: AxisConfig) -> None:
        """An axis on a parameter the cohort draws per patient replaces every patient's draw
        with one value: refused unless the axis says ``override_cohort = true``."""
        head, _, field = ax.target.partition(".")
        if head != "parameters" or ax.override_cohort:
            return
        table = self.cohort.table
        if field in self.cohort.parameters:
            source = f"drawn per patient by cohort.parameters.{field}"
        elif table is not None and field in table.parameters:
            source = f"given per patient by cohort.table '{table.file}'"
        else:
            return
        raise ValueError(f"sweep.axes.{aname}: {ax.target} is {source}; the axis would give "
                         "every patient the same value. Set override_cohort = true on the axis "
                         "to do that on purpose, or remove the axis")

    def _check_horizon(self) -> None:
        """Every dose of every scenario (HSCT: each conditioning day) within the horizon."""
        h = self.horizon
        for name, sc in self.scenarios.items():
            for t in (t for c in sc.msc_list() for t in c.build().dose_times()):
                if t > h:
                    raise ValueError(f"scenarios.{name}: dose at day {t:g} is after the horizon "
                                     f"({h:g} d)")
            last = max(sc.hsct.build().dose_times()) if sc.hsct is not None else 0.0
            if last > h:
                raise ValueError(f"scenarios.{name}.hsct: conditioning ends on day {last:g}, "
                                 f"after the horizon ({h:g} d)")
            for i, r in enumerate(sc.therapy):
                late = [t for t in r.build().dose_times() if t > h]
                if late:
                    raise ValueError(f"scenarios.{name}.therapy.{i}: {r.drug} dose at day "
                                     f"{late[0]:g} is after the horizon ({h:g} d)")

    def _suspicious(self, message: str | None) -> None:
        """A :class:`ConfigWarning`, or with ``strict = true`` an error (``message`` starts with
        the key path)."""
        if message is None:
            return
        if self.strict:
            raise ValueError(f"{message} (an error because strict = true)")
        warnings.warn(message, ConfigWarning, stacklevel=4)

    def _warn_suspicious(self) -> None:
        """Warn about values that are allowed but likely a unit slip (refuse them with
        ``strict = true``)."""
        self._warn_implausible_parameters()
        for aname, ax in self.sweep.axes.items():
            self._suspicious(_shadowing_axis_name(aname, ax.target))
        for group in self.sweep.zip:
            self._suspicious(_shadowing_axis_name(group, None))
        for name, sc in self.scenarios.items():
            own = sc.doses  # records of a dosing table were warned about with their row
            for i, r in enumerate(sc.msc_list()[:None if own is None else own.msc_from]):
                key = f"scenarios.{name}.msc" + (f".{i}" if isinstance(sc.msc, list) else "")
                self._suspicious(msc_amount_message(f"{key}.amount", r.amount))
            for i, r in enumerate(sc.therapy[:None if own is None else own.therapy_from]):
                for field, msg in r.suspicious():
                    self._suspicious(f"scenarios.{name}.therapy.{i}.{field}: {msg}")
        for aname, ax in self.sweep.axes.items():
            if ax.target == "msc.amount":
                vals = ax.grid_values() if ax.range is None else np.asarray(ax.range)
                for v in vals:
                    self._suspicious(msc_amount_message(f"sweep.axes.{aname}", float(v), "value "))

    def _warn_implausible_parameters(self) -> None:
        """A ConfigWarning per model parameter set outside its plausible range (``low`` to
        ``high`` of the parameter table): model and scenario overrides, axis values, the
        centre of cohort distributions."""
        for name, v in self.model.parameters.items():
            self._suspicious(implausible_message(f"model.parameters.{name}", name, v))
        for sname, sc in self.scenarios.items():
            for name, v in sc.parameters.items():
                self._suspicious(implausible_message(f"scenarios.{sname}.parameters.{name}",
                                                     name, v))
        for aname, ax in self.sweep.axes.items():
            head, _, field = ax.target.partition(".")
            if head == "parameters":
                vals = ax.grid_values() if ax.range is None else np.asarray(ax.range)
                self._suspicious(implausible_message(f"sweep.axes.{aname}", field, vals))
        for name, d in self.cohort.parameters.items():
            centre = {"lognormal": d.median, "normal": d.mean,
                      "truncnormal": d.mean}.get(d.distribution)
            vals = [centre] if centre is not None else [d.low, d.high]
            self._suspicious(implausible_message(f"cohort.parameters.{name}", name, vals))
            share = distribution_problem(name, d)[1]
            if share > 1e-6 and not d.truncate:
                self._suspicious(f"cohort.parameters.{name}: {100 * share:.2g}% of the draws "
                                 f"fall outside the hard domain "
                                 f"({m.PARAMETERS[name].domain_text}) and are redrawn "
                                 "(truncate = true if intended)")

    def _check_axis_values(self, aname: str, ax: AxisConfig, vals: np.ndarray) -> None:
        """Each value alone must satisfy the field's own constraints."""
        head, _, field = ax.target.partition(".")
        where = f"sweep.axes.{aname}"
        if head == "parameters":
            bad = domain_problem(field, vals, "value ")
            if bad:
                raise ValueError(f"{where}: {bad}")
            return
        if head in DRUGS:
            self._check_therapy_values(where, ax, vals)
            return
        if ax.categorical:
            return  # checked against the categories by AxisConfig
        info = target_field(ax.target)
        check = TypeAdapter(Annotated[(info.annotation, *info.metadata)])
        for v in vals:
            if field == "count" and float(v) != int(v):
                raise ValueError(f"{where}: value {v:g} for {ax.target} is not an integer")
            try:
                check.validate_python(int(v) if field == "count" else float(v))
            except ValidationError as e:
                raise ValueError(f"{where}: value {v:g} for {ax.target}: "
                                 f"{_short(e.errors()[0]['msg'])}") from None

    def _check_therapy_values(self, where: str, ax: AxisConfig, vals: np.ndarray) -> None:
        """Each value must make a valid record of every targeted record of that drug."""
        drug, _, field = ax.target.partition(".")
        for v in vals:
            if field in INT_FIELDS and float(v) != int(v):
                raise ValueError(f"{where}: value {v:g} for {ax.target} is not an integer")
            for n in self.axis_scenarios(ax):
                for r in self.scenarios[n].records(drug):
                    try:
                        dataclasses.replace(r.build(), **{field: _cast(field, v)})
                    except ValueError as e:
                        raise ValueError(f"{where}: value {v:g} for {ax.target}: {e}") from None

    def _check_therapy_corners(self, name: str, sc: ScenarioConfig, axes: dict) -> None:
        """Every corner of the axes on one drug's records: a valid record, doses in the horizon
        (grids hold these corners; random designs approach them)."""
        for r in sc.therapy:
            on = [(t.partition(".")[2], a, ax) for t, (a, ax) in axes.items()
                  if t.partition(".")[0] == r.drug]
            if not on:
                continue
            ends = [(lambda x: (float(np.min(x)), float(np.max(x))))(
                ax.grid_values() if ax.range is None else np.asarray(ax.range)) for *_, ax in on]
            for corner in itertools.product(*ends):
                setting = {f: _cast(f, v) for (f, *_), v in zip(on, corner)}
                what = ", ".join(f"{r.drug}.{f} = {v:g}" for f, v in setting.items())
                who = f"sweep.axes.{on[0][1]}"
                try:
                    rec = dataclasses.replace(r.build(), **setting)
                except ValueError as e:
                    raise ValueError(f"{who}: {what} in scenario '{name}': {e}") from None
                last = float(np.max(rec.dose_times(), initial=0.0))
                if last > self.horizon:
                    raise ValueError(f"{who}: {what} puts a {r.drug} dose at day {last:g} in "
                                     f"scenario '{name}', after the horizon ({self.horizon:g} d)")

    def _check_schedules(self) -> None:
        """Worst case over the axes: no dose after the horizon (an MSC record with
        ``interval = 0`` and ``count > 1`` gives its doses on one day)."""
        for name, sc in self.scenarios.items():
            axes = {ax.target: (a, ax) for a, ax in self.sweep.axes.items()
                    if name in self.axis_scenarios(ax)}

            def span(target, rec_value, agg, axes=axes):
                if target not in axes:
                    return rec_value
                a, ax = axes[target]
                vals = ax.grid_values() if ax.range is None else np.asarray(ax.range)
                return float(agg(vals))

            for rec in sc.msc_list():
                count = span("msc.count", rec.count, np.max)
                last = (span("msc.time", rec.time, np.max)
                        + span("msc.interval", rec.interval, np.max) * (count - 1))
                if last > self.horizon:
                    culprits = [f"sweep.axes.{axes[t][0]}" for t in
                                ("msc.time", "msc.interval", "msc.count") if t in axes]
                    raise ValueError(f"{culprits[0] if culprits else 'scenarios.' + name}: "
                                     f"puts a dose at day {last:g} in scenario '{name}', after "
                                     f"the horizon ({self.horizon:g} d)")
            if (sc.hsct is not None and max(dataclasses.replace(
                    sc.hsct.build(), time=span("hsct.time", sc.hsct.time, np.max)).dose_times())
                    > self.horizon):
                raise ValueError(f"sweep.axes.{axes['hsct.time'][0]}: puts HSCT conditioning "
                                 f"after the horizon ({self.horizon:g} d)")
            self._check_therapy_corners(name, sc, axes)

    def build_scenarios(self) -> list[Scenario]:
        return [sc.build(name) for name, sc in self.scenarios.items()]

    @property
    def source_text(self) -> str:
        """The TOML text the config was read from (stored in results for provenance)."""
        return self._source_text

    @property
    def included(self) -> Included | None:
        """The file named by ``cohort.include`` (name, path, text), or None."""
        return self._included


def _set_path(data: dict, key: str, value: Any) -> None:
    """``data[a][b][c] = value`` for ``key = "a.b.c"`` (tables created on the way; an integer
    part indexes a list); a path that cannot be followed is a one-line ConfigError."""
    parts = key.split(".")
    node: Any = data
    for i, part in enumerate(parts[:-1]):
        where = ".".join(parts[: i + 1])
        if isinstance(node, list):
            if not (part.isdigit() and int(part) < len(node)):
                raise ConfigError(f"{where}: no item {part} in a list of {len(node)}")
            node = node[int(part)]
        elif isinstance(node, dict):
            node = node.setdefault(part, {})
        else:
            raise ConfigError(f"{where}: {node!r} is not a table; cannot set {key}")
    last = parts[-1]
    if isinstance(node, list):
        if not (last.isdigit() and int(last) < len(node)):
            raise ConfigError(f"{key}: no item {last} in a list of {len(node)}")
        node[int(last)] = value
    elif isinstance(node, dict):
        node[last] = value
    else:
        raise ConfigError(f"{key}: {'.'.join(parts[:-1])} is not a table")


def _refuse_reserved_axis_name(name: str) -> None:
    """An axis becomes a result dimension: it cannot take the name of another dimension or
    variable of the result (``patient``, ``remission``, ``traj_*``, ...)."""
    from .names import is_reserved

    if is_reserved(name):
        raise ValueError(f"sweep.axes.{name}: '{name}' is already a dimension or variable of "
                         "the result; give the axis another name")


#: Suggested names for axes whose name shadows an xarray attribute, by target.
_AXIS_NAME_SUGGESTIONS = {"msc.count": "n_infusions", "rituximab.count": "n_rituximab",
                          "cyclophosphamide.count": "n_pulses"}


def _shadowing_axis_name(name: str, target: str | None) -> str | None:
    """The warning for an axis (or zipped group, ``target`` None) name that is an attribute of
    xarray Datasets or DataArrays (``count``, ``mean``, ``values``): ``ds.<name>`` would be
    that, not the axis."""
    from .names import XARRAY_ATTRIBUTES as taken

    if name not in taken:
        return None
    if target is None:
        return (f"sweep.zip.{name}: the name '{name}' is an attribute of xarray Datasets "
                f"(ds.{name} is that, not this dimension); rename it, e.g. '{name}_rows'")
    head, _, field = target.partition(".")
    good = _AXIS_NAME_SUGGESTIONS.get(target) or next(
        n for n in (field, f"{head}_{field}", f"axis_{name}") if n != name and n not in taken)
    return (f"sweep.axes.{name}: the name '{name}' is an attribute of xarray Datasets "
            f"(ds.{name} is that, not this axis; ds.sel({name}=...) still works); rename "
            f"the axis, e.g. '{good}'")


def _cast(field: str, v: float) -> float | int:
    return int(v) if field in INT_FIELDS else float(v)


# --- loading and error messages -----------------------------------------------------------------


def _short(msg: str) -> str:
    msg = msg.removeprefix("Value error, ")
    return {
        "Input should be a valid number, unable to parse string as a number": "expected a number",
        "Input should be a valid number": "expected a number",
        "Input should be a valid integer, unable to parse string as an integer":
            "expected an integer",
        "Input should be a valid integer": "expected an integer",
        "Input should be a valid dictionary or instance of": "expected a table",
        "Input should be a valid string": "expected a string",
        "Input should be a valid list": "expected a list",
        "Input should be a valid boolean": "expected true or false",
    }.get(msg, msg[0].lower() + msg[1:] if msg else msg)


def _model_at(loc: tuple) -> type[BaseModel] | None:
    """The pydantic model class that holds the key at ``loc`` (for unknown-key suggestions)."""
    cls: Any = Config
    for part in loc[:-1]:
        if isinstance(part, str) and part in DRUGS and cls is _Record:
            cls = DRUGS[part]  # the discriminated therapy record
            continue
        if isinstance(part, int) and isinstance(cls, type) and issubclass(cls, BaseModel):
            continue  # a list index where a "record or list of records" union resolved already
        if isinstance(cls, type) and issubclass(cls, BaseModel):
            f = cls.model_fields.get(str(part))
            if f is None:
                return None
            cls = f.annotation
        else:
            cls = _unwrap(cls, part)
            if cls is None:
                return None
        cls = _unwrap(cls, None)
    return cls if isinstance(cls, type) and issubclass(cls, BaseModel) else None


def _unwrap(tp: Any, part: Any) -> Any:
    """Step through Optional / Union / dict / list annotations towards a model class."""
    if tp is TherapyRecord:
        return _Record  # before the drug tag is known: the field every record has
    origin = get_origin(tp)
    if origin is dict:
        return get_args(tp)[1] if part is not None else tp
    if origin is list:
        return get_args(tp)[0] if part is not None else tp
    if origin is not None:  # Union / Optional / Annotated: first model among the options
        for a in get_args(tp):
            if isinstance(a, type) and issubclass(a, BaseModel):
                return a
            if get_origin(a) in (dict, list):
                return a
        return None
    return tp


_TYPE_MISMATCH = {"model_type", "list_type", "dict_type", "model_attributes_type"}


def _clean_loc(loc: tuple, drugs: bool = False) -> tuple:
    """Drop pydantic's union-branch tags (``function-after[...]``, ``list[...]``, class names)
    and, unless ``drugs``, the therapy records' drug tags (``therapy.0.mycophenolate.dose``)."""
    names = {c.__name__ for c in _Strict.__subclasses__()}
    out = tuple(p for p in loc if not (isinstance(p, str) and ("[" in p or p in names)))
    if drugs:
        return out
    return tuple(p for i, p in enumerate(out)
                 if not (p in DRUGS and i > 0 and isinstance(out[i - 1], int)))


def _join(loc: tuple) -> str:
    """``cohort.posterior.median[3][1]``: matrix indices of the posterior in brackets; other
    list indices dotted (``scenarios.a.therapy.0.dose``), as before."""
    out = ""
    for p in loc:
        if isinstance(p, int) and "posterior." in out:
            out += f"[{p}]"
        else:
            out += f".{p}" if out else str(p)
    return out


def _pick(errors: list[dict]) -> dict:
    """The most useful error: not a union branch of the wrong type; unknown keys first."""
    errs = [e for e in errors if e["type"] not in _TYPE_MISMATCH] or errors
    extra = [e for e in errs if e["type"] == "extra_forbidden"]
    return (extra or errs)[0]


def _format_error(err: dict, errors: list[dict] | None = None) -> str:
    loc = _clean_loc(err["loc"])
    tagged = _clean_loc(err["loc"], drugs=True)  # to find the record class of a therapy entry
    path = _join(loc)
    typ = err["type"]
    if typ == "extra_forbidden":
        key = str(loc[-1])
        owner = _model_at(tagged)
        valid = sorted(owner.model_fields) if owner else []
        missing = [str(_clean_loc(e["loc"])[-1]) for e in errors or []
                   if e["type"] == "missing" and _clean_loc(e["loc"])[:-1] == loc[:-1]]
        close = difflib.get_close_matches(key, valid, n=1, cutoff=0.6) or missing[:1]
        hint = (f"; did you mean '{close[0]}'?" if close
                else f"; expected one of {', '.join(valid)}" if valid else "")
        return f"{path}: unknown key '{key}'{hint}"
    msg = _short(err["msg"])
    if typ == "missing":
        return f"{path}: missing required key"
    owner = _model_at(tagged + ("_",))
    head, sep, rest = msg.partition(": ")
    first = head.partition(".")[0].partition("[")[0]  # "median[3][1]", "posterior.cv[0]"
    if sep and owner is not None and first in owner.model_fields:
        path, msg = f"{path}.{head}" if path else head, rest
    elif sep and loc and loc[-1] == "parameters" and head in m.PARAMETERS:
        path, msg = f"{path}.{head}", rest  # model.parameters.NAME, cohort.parameters.NAME
    shown = err.get("input")
    if isinstance(shown, (dict, list)) or typ == "value_error":
        return f"{path}: {msg}" if path else msg
    return f"{path}: {shown!r} is invalid: {msg}"


def parse_config(data: dict, source_text: str = "", *,
                 base_dir: str | Path | None = None) -> Config:
    """Validate a config dictionary (as read from TOML); raise :class:`ConfigError`.

    ``base_dir`` is where a ``[cohort] include = "FILE"``, a ``[cohort] table = "FILE"`` and a
    scenario's ``doses = "FILE"`` are looked up (the config file's directory; :func:`load_config`
    passes it). Without it a file name is refused; ``doses`` and ``table`` may also be pandas
    DataFrames (``immunosim.experiments.tables``).
    """
    if not data:
        raise ConfigError("empty config: give at least one [scenarios.NAME] table")
    depth = _depth(data)
    if depth > MAX_DEPTH:
        raise ConfigError(f"{depth_path(data)}: nested {depth} levels deep; expected at most "
                          f"{MAX_DEPTH}")
    local_cohort = data.get("cohort")
    try:
        data, included = resolve_cohort(data, base_dir)
    except IncludeError as e:
        raise ConfigError(_one_line(str(e))) from None
    if _names_tables(data):
        from .tables import resolve_tables  # builds on this module; imports pandas

        data = resolve_tables(data, local_cohort, base_dir,
                              None if included is None else included.path.parent)
    cfg = _validated(lambda: Config._validate_raw(data), included)
    cfg._source_text = source_text
    cfg._included = included
    return cfg


def _validated(build, included: Included | None = None) -> Any:
    """``build()`` with every validation problem as one :class:`ConfigError` line."""
    try:
        return build()
    except ConfigError:
        raise
    except ValidationError as e:
        errors = e.errors()
        msg = _one_line(_format_error(_pick(errors), errors))
        if included is not None and msg.startswith("cohort"):
            msg += f" (cohort.include = '{included.name}')"
        raise ConfigError(msg) from None
    except RecursionError:
        raise ConfigError("config nested too deeply") from None
    except (TypeError, ValueError, ArithmeticError, MemoryError) as e:  # odd input
        raise ConfigError(_one_line(f"invalid config: {e}")) from None


def _names_tables(data: dict) -> bool:
    """Whether the config has a ``cohort.table`` or a scenario's ``doses`` to read."""
    cohort, scenarios = data.get("cohort"), data.get("scenarios")
    return ((isinstance(cohort, dict) and "table" in cohort)
            or (isinstance(scenarios, dict)
                and any(isinstance(sc, dict) and "doses" in sc for sc in scenarios.values())))


def _one_line(msg: str) -> str:
    return " ".join(msg.split())


def _depth(data: Any) -> int:
    """Nesting depth of a TOML value, without recursion."""
    best, stack = 0, [(data, 0)]
    while stack:
        v, d = stack.pop()
        best = max(best, d)
        if d > MAX_DEPTH:
            return d
        if isinstance(v, dict):
            stack.extend((x, d + 1) for x in v.values())
        elif isinstance(v, list):
            stack.extend((x, d + 1) for x in v)
    return best


def depth_path(data: Any) -> str:
    """The key path down to where a value nests deeper than MAX_DEPTH."""
    parts: list[str] = []
    v, d = data, 0
    while d <= MAX_DEPTH:
        kids = (list(v.items()) if isinstance(v, dict) else
                list(enumerate(v)) if isinstance(v, list) else [])
        kids = [(k, x) for k, x in kids if _depth(x) > MAX_DEPTH - d - 1]
        if not kids:
            break
        k, v = kids[0]
        if isinstance(k, str):
            parts.append(k)
        d += 1
    return ".".join(parts) or "config"


def load_config(path: str | Path) -> Config:
    """Read and validate a TOML config file.

    Raises
    ------
    ConfigError
        One line naming the key path, the bad value and what is expected.
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise ConfigError(f"{path}: cannot read config ({e.strerror})") from None
    if len(raw) > MAX_BYTES:
        raise ConfigError(f"{path}: {len(raw)} bytes; a config is expected to be under "
                          f"{MAX_BYTES} bytes")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ConfigError(f"{path}: not UTF-8 text (byte {raw[e.start]:#04x} at offset "
                          f"{e.start}); expected a UTF-8 TOML file") from None
    return _loads(text, str(path), path.parent)


def loads_config(text: str, *, base_dir: str | Path | None = None) -> Config:
    """Validate a config given as TOML text, as :func:`load_config` does a file.

    Parameters
    ----------
    text : str
        The TOML document.
    base_dir : path, optional
        Where a ``[cohort] include = "FILE"`` is looked up (refused without it).

    Raises
    ------
    ConfigError
        One line naming the key path, the bad value and what is expected.
    """
    if len(text) > MAX_BYTES:
        raise ConfigError(f"config: {len(text)} characters; a config is expected to be under "
                          f"{MAX_BYTES} bytes")
    return _loads(text, "config", base_dir)


def _loads(text: str, where: str, base_dir: str | Path | None) -> Config:
    """Parse TOML ``text`` (from ``where``: a path, or "config") and validate it."""
    text = text.removeprefix("\ufeff")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(_one_line(f"{where}: not valid TOML ({e})")) from None
    except RecursionError:
        raise ConfigError(f"{where}: arrays or tables nested too deeply; expected at most "
                          f"{MAX_DEPTH} levels") from None
    if not data:
        raise ConfigError(f"{where}: empty config; expected at least one [scenarios.NAME] table")
    if _depth(data) > MAX_DEPTH:
        raise ConfigError(f"{where}: {depth_path(data)}: arrays or tables nested too deeply; "
                          f"expected at most {MAX_DEPTH} levels")
    try:
        return parse_config(data, text, base_dir=base_dir)
    except ConfigError as e:
        if str(e).startswith(("empty config", "config nested")):
            raise ConfigError(f"{where}: {e}") from None
        raise
