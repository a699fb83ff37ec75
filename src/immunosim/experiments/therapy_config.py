"""Therapy records of a scenario: ``therapy = [{ drug = "...", ... }, ...]``.

One strict pydantic model per drug, chosen by its ``drug`` key; ``build()`` returns the record of
:mod:`immunosim.model.regimens` (its ``__post_init__`` checks apply too, so an impossible record
is refused before any compute). Doses are in the units of the model records:

=====================  ========================================================================
``glucocorticoid``     ``start`` d, ``pulse_mg`` mg/d methylprednisolone, ``pulse_days``,
                       ``oral_mg`` mg/d prednisone, ``taper_to`` mg/d, ``taper_weeks``, ``stop`` d
``cyclophosphamide``   ``regimen = "nih" | "euro_lupus"`` with ``time`` d (and ``g_per_m2``,
                       ``count`` for nih), or ``dose`` mg/kg, ``time``, ``interval`` d, ``count``
``mycophenolate``      ``dose`` g/d, ``start`` d, ``stop`` d
``hydroxychloroquine`` ``dose`` mg/d, ``start`` d, ``stop`` d
``rituximab``          ``dose`` mg per infusion, ``time`` d, ``interval`` d, ``count``
``car_t``              ``time`` d, ``cells`` per kg, ``lymphodepletion`` mg/kg/d cyclophosphamide
=====================  ========================================================================

Plausible-but-suspicious values (a likely unit slip) are not errors: :meth:`_Record.suspicious`
lists them and the config warns with the key path.
"""

from __future__ import annotations

import dataclasses
import difflib
from typing import Annotated, Any, ClassVar, Literal, Union

from pydantic import BeforeValidator, Field, model_validator

from ..model.regimens import (
    BODY_WEIGHT_KG,
    CART,
    Cyclophosphamide,
    Glucocorticoid,
    Hydroxychloroquine,
    Mycophenolate,
    Rituximab,
)
from ._config_types import Count, NonNeg, Pos, _Strict


class _Record(_Strict):
    """A dosing record of one drug; subclasses set ``drug`` to a literal tag."""

    drug: str
    #: The model record this config record builds (its fields are the config's, less ``drug``).
    kind: ClassVar[type]

    def build(self) -> Any:
        """The model record (a frozen dataclass with ``events(p)`` and ``dose_times()``)."""
        return self.kind(**self.model_dump(exclude={"drug"}))

    def _form(self) -> None:
        """Cross-field checks before building (messages start with the field name)."""

    def suspicious(self) -> list[tuple[str, str]]:
        """``(field, message)`` for values that are allowed but likely a unit slip."""
        return []

    @model_validator(mode="after")
    def _buildable(self):
        self._form()
        self.build()  # ValueError "field: ..." from the model record's own checks
        return self


class GlucocorticoidRecord(_Record):
    """Methylprednisolone pulses (optional), then an oral prednisone taper."""

    drug: Literal["glucocorticoid"]
    kind: ClassVar[type] = Glucocorticoid
    start: NonNeg = 0.0
    pulse_mg: NonNeg = 0.0
    pulse_days: Count = 3
    oral_mg: NonNeg = 0.0
    taper_to: NonNeg = 0.0
    taper_weeks: NonNeg = 0.0
    stop: NonNeg | None = None


    def suspicious(self) -> list[tuple[str, str]]:
        out = []
        if self.oral_mg > 100:
            out.append(("oral_mg", f"{self.oral_mg:g} mg/d prednisone is above 100 mg/d "
                                   "(induction is 0.5-1 mg/kg/d, 35-70 mg/d)"))
        if 0 < self.pulse_mg < 10:
            out.append(("pulse_mg", f"{self.pulse_mg:g} mg/d methylprednisolone is tiny; "
                                    "pulse_mg is in mg (500-1000), not g"))
        return out


class CyclophosphamideRecord(_Record):
    """IV cyclophosphamide: a published ``regimen`` or an explicit pulse schedule."""

    drug: Literal["cyclophosphamide"]
    kind: ClassVar[type] = Cyclophosphamide
    regimen: Literal["nih", "euro_lupus"] | None = None
    time: NonNeg = 0.0
    g_per_m2: Pos | None = None
    dose: NonNeg | None = None
    interval: NonNeg | None = None
    count: Count | None = None

    def _form(self) -> None:
        if self.regimen is None:
            if self.dose is None:
                raise ValueError("dose: missing; give dose (mg/kg per pulse) or "
                                 "regimen = 'nih' | 'euro_lupus'")
            if self.g_per_m2 is not None:
                raise ValueError("g_per_m2: only with regimen = 'nih'; give dose in mg/kg")
            if self.dose > 60:
                raise ValueError(f"dose: {self.dose:g} is above 60 mg/kg per pulse; dose is "
                                 f"mg/kg, not mg (500 mg is {500 / BODY_WEIGHT_KG:.2f} mg/kg)")
            return
        for k in ("dose", "interval"):
            if getattr(self, k) is not None:
                raise ValueError(f"{k}: not with regimen = '{self.regimen}', which sets it; "
                                 "leave out regimen for an explicit schedule")
        if self.regimen == "euro_lupus":
            for k in ("g_per_m2", "count"):
                if getattr(self, k) is not None:
                    raise ValueError(f"{k}: only with regimen = 'nih' (euro_lupus is "
                                     "500 mg every 2 weeks x 6)")

    def build(self) -> Cyclophosphamide:
        if self.regimen == "nih":
            return Cyclophosphamide.nih(self.time, *(() if self.g_per_m2 is None
                                                     else (self.g_per_m2,)),
                                        **({} if self.count is None else {"count": self.count}))
        if self.regimen == "euro_lupus":
            return Cyclophosphamide.euro_lupus(self.time)
        return Cyclophosphamide(self.dose, self.time, self.interval or 0.0, self.count or 1)


class MycophenolateRecord(_Record):
    """Mycophenolate mofetil at ``dose`` g/d from ``start`` to ``stop``."""

    drug: Literal["mycophenolate"]
    kind: ClassVar[type] = Mycophenolate
    dose: NonNeg
    start: NonNeg = 0.0
    stop: NonNeg | None = None

    def _form(self) -> None:
        if self.dose > 100:
            raise ValueError(f"dose: {self.dose:g} is in g/d, not mg/d (2000 mg/d is dose = 2)")


    def suspicious(self) -> list[tuple[str, str]]:
        if self.dose > 3:
            return [("dose", f"{self.dose:g} g/d mycophenolate is above the usual 3 g/d "
                             "maximum (ALMS: 2-3 g/d)")]
        return []


class HydroxychloroquineRecord(_Record):
    """Hydroxychloroquine at ``dose`` mg/d from ``start`` to ``stop``."""

    drug: Literal["hydroxychloroquine"]
    kind: ClassVar[type] = Hydroxychloroquine
    dose: NonNeg
    start: NonNeg = 0.0
    stop: NonNeg | None = None


    def suspicious(self) -> list[tuple[str, str]]:
        if self.dose > 400:
            return [("dose", f"{self.dose:g} mg/d hydroxychloroquine is above 400 mg/d "
                             "(<= 5 mg/kg/d recommended)")]
        if 0 < self.dose < 10:
            return [("dose", f"{self.dose:g} mg/d hydroxychloroquine is tiny; dose is in "
                             "mg/d (200-400), not g/d or mg/kg")]
        return []


class RituximabRecord(_Record):
    """Rituximab: ``count`` infusions of ``dose`` mg, ``interval`` days apart."""

    drug: Literal["rituximab"]
    kind: ClassVar[type] = Rituximab
    dose: NonNeg = 1000.0
    time: NonNeg = 0.0
    interval: NonNeg = 14.0
    count: Count = 2


    def suspicious(self) -> list[tuple[str, str]]:
        if 0 < self.dose < 100:
            return [("dose", f"{self.dose:g} mg rituximab is tiny; dose is in mg per infusion "
                             "(1000), not g")]
        return []


class CARTRecord(_Record):
    """CD19 CAR-T: lymphodepletion on days ``time``..``time + 2``, cells on ``time + 5``."""

    drug: Literal["car_t"]
    kind: ClassVar[type] = CART
    time: NonNeg = 0.0
    cells: NonNeg = 1e6
    lymphodepletion: NonNeg = 8.0


    def suspicious(self) -> list[tuple[str, str]]:
        if 0 < self.cells < 1e3:
            return [("cells", f"{self.cells:g} CAR-T cells/kg is tiny; cells is per kg "
                              "(1e6, not 1)")]
        return []


#: ``drug`` tag -> config record and model record.
DRUGS: dict[str, type[_Record]] = {
    "glucocorticoid": GlucocorticoidRecord,
    "cyclophosphamide": CyclophosphamideRecord,
    "mycophenolate": MycophenolateRecord,
    "hydroxychloroquine": HydroxychloroquineRecord,
    "rituximab": RituximabRecord,
    "car_t": CARTRecord,
}
KINDS: dict[str, type] = {tag: rec.kind for tag, rec in DRUGS.items()}
#: Sweepable fields per drug: the numeric fields of the model record.
TARGETS = {d: {f.name for f in dataclasses.fields(k)} for d, k in KINDS.items()}
INT_FIELDS = frozenset({"count", "pulse_days"})

_GC_ORAL = ("glucocorticoid", " (oral_mg, taper_to, taper_weeks)")
_GC_PULSE = ("glucocorticoid", " (pulse_mg, pulse_days)")
#: Common names -> (drug tag, note); an empty tag is a note only.
_ALIASES = {
    "prednisone": _GC_ORAL, "prednisolone": _GC_ORAL, "methylprednisolone": _GC_PULSE,
    "steroid": _GC_ORAL, "steroids": _GC_ORAL, "gc": _GC_ORAL,
    "cyc": ("cyclophosphamide", ""), "cytoxan": ("cyclophosphamide", ""),
    "mmf": ("mycophenolate", ""), "mycophenolate_mofetil": ("mycophenolate", ""),
    "cellcept": ("mycophenolate", ""), "hcq": ("hydroxychloroquine", ""),
    "plaquenil": ("hydroxychloroquine", ""), "rtx": ("rituximab", ""),
    "cart": ("car_t", ""), "car-t": ("car_t", ""), "cd19_car_t": ("car_t", ""),
    "msc": ("", "not a drug record: give msc = {...} in the scenario"),
    "hsct": ("", "not a drug record: give hsct = {...} in the scenario"),
}


def _drug_tag(v: Any) -> Any:
    """Refuse a record without a known ``drug`` in one line, with the valid drugs and a hint."""
    valid = ", ".join(DRUGS)
    if not isinstance(v, dict):
        raise ValueError(f"expected a table {{ drug = ..., ... }} with drug one of {valid}")
    drug = v.get("drug")
    if drug is None:
        raise ValueError(f"drug: missing; expected one of {valid}")
    if not isinstance(drug, str):
        raise ValueError(f"drug: {drug!r} is invalid: expected one of {valid}")
    if drug not in DRUGS:
        tag, note = _ALIASES.get(drug.lower(), ("", ""))
        close = difflib.get_close_matches(drug.lower(), DRUGS, n=1)
        hint = (f"; {drug} is drug = '{tag}'{note}" if tag else f"; {drug} is {note}" if note
                else f"; did you mean '{close[0]}'?" if close else "")
        raise ValueError(f"drug: unknown drug '{drug}'; expected one of {valid}{hint}")
    return v


TherapyRecord = Annotated[
    Union[tuple(DRUGS.values())],  # noqa: UP007 (a runtime union of the records)
    Field(discriminator="drug"),
    BeforeValidator(_drug_tag),
]
