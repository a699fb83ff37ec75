"""Drug regimens as dosing records: glucocorticoids, cyclophosphamide, mycophenolate,
hydroxychloroquine, rituximab and CD19 CAR-T.

Each drug acts on the model through its own state (``docs/model.md``, "Drugs"):

* **oral drugs** (prednisone taper, mycophenolate, hydroxychloroquine) set a *dose* state
  (``gc_dose`` mg/d, ``mmf_dose`` g/d, ``hcq_dose`` mg/d) with ``OP_SET`` events at every dose
  change; an effect compartment follows the dose with the drug's own half-life;
* **IV pulses** (methylprednisolone pulses are a dose held for the pulse days; cyclophosphamide,
  rituximab, CAR-T) add to an exposure state with ``OP_ADD`` events, which then decays (or, for
  CAR-T, expands on its target and contracts).

Every record is a frozen dataclass with ``events(p)`` and ``dose_times()``, like
:class:`~immunosim.model.interventions.MSCInfusion`, so the engine applies them as exact jumps
inside the solve.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import sle_msc as m
from .interventions import OP_ADD, OP_SET, Event, check_number, repeated_times

#: Methylprednisolone is 1.25x as potent as prednisone (standard glucocorticoid equivalence).
METHYLPRED_TO_PREDNISONE = 1.25
#: Reference adult for fixed (mg) doses: 70 kg, 1.8 m2 (assumed; doses are per kg in the model).
BODY_WEIGHT_KG = 70.0
BODY_SURFACE_M2 = 1.8
RITUXIMAB_UNIT_MG = 1000.0  # the rtx state is in units of one 1000 mg infusion


@dataclass(frozen=True)
class Glucocorticoid:
    """Glucocorticoids: optional IV methylprednisolone pulses, then an oral prednisone taper.

    Parameters
    ----------
    start : float
        Day of the first dose.
    pulse_mg : float
        Methylprednisolone per pulse day (mg; 500-1000 mg in lupus nephritis induction, KDIGO
        2021); 0 = no pulses. Converted to prednisone equivalents (x1.25).
    pulse_days : int
        Number of consecutive pulse days (usually 3).
    oral_mg : float
        Oral prednisone (mg/d) after the pulses (0.5-1 mg/kg/d, i.e. 35-70 mg/d, in induction).
    taper_to : float
        Maintenance dose (mg/d) reached at the end of the taper (<= 7.5 mg/d targeted).
    taper_weeks : float
        Length of the taper (weeks); the dose falls geometrically in weekly steps.
    stop : float, optional
        Day the glucocorticoid is stopped (default: maintained to the end of the run).
    """

    start: float = 0.0
    pulse_mg: float = 0.0
    pulse_days: int = 3
    oral_mg: float = 0.0
    taper_to: float = 0.0
    taper_weeks: float = 0.0
    stop: float | None = None

    def __post_init__(self) -> None:
        check_number("start", self.start, unit="d")
        check_number("pulse_mg", self.pulse_mg, 0, 2000, "mg/d")
        check_number("oral_mg", self.oral_mg, 0, 200, "mg/d")
        check_number("taper_to", self.taper_to, 0, max(self.oral_mg, 0.0), "mg/d (<= oral_mg)")
        check_number("taper_weeks", self.taper_weeks, 0, 520, "weeks")
        if int(self.pulse_days) != self.pulse_days or self.pulse_days < 1:
            raise ValueError(f"pulse_days: {self.pulse_days!r} is not a positive integer")
        if self.stop is not None and not self.stop > self.start:
            raise ValueError(f"stop: {self.stop!r} must be after start ({self.start:g})")

    def doses(self) -> list[tuple[float, float]]:
        """``(day, prednisone-equivalent mg/d from that day)``, in time order."""
        out: list[tuple[float, float]] = []
        t = float(self.start)
        if self.pulse_mg > 0:
            out.append((t, self.pulse_mg * METHYLPRED_TO_PREDNISONE))
            t += self.pulse_days
        weeks = int(round(self.taper_weeks))
        if weeks > 0 and self.oral_mg > 0:
            lo = max(self.taper_to, 1e-3 * self.oral_mg)
            for w in range(weeks + 1):
                level = self.oral_mg * (lo / self.oral_mg) ** (w / weeks)
                out.append((t + 7.0 * w, self.taper_to if w == weeks else level))
        else:
            out.append((t, self.oral_mg))
        if self.stop is not None:
            out = [(d, v) for d, v in out if d < self.stop] + [(float(self.stop), 0.0)]
        return out

    def dose_times(self) -> np.ndarray:
        return np.array([d for d, _ in self.doses()])

    def events(self, p: np.ndarray) -> list[Event]:
        return [(d, m.GC_DOSE, OP_SET, float(v)) for d, v in self.doses()]


@dataclass(frozen=True)
class Cyclophosphamide:
    """IV cyclophosphamide pulses: ``count`` pulses of ``dose`` mg/kg, ``interval`` days apart.

    Use :meth:`nih` (0.75 g/m2 monthly x 6) or :meth:`euro_lupus` (500 mg every 2 weeks x 6,
    Houssiau FA et al., Arthritis Rheum 2002;46:2121) for the published induction regimens.
    """

    dose: float
    time: float = 0.0
    interval: float = 0.0
    count: int = 1

    def __post_init__(self) -> None:
        check_number("dose", self.dose, 0, 60, "mg/kg")
        repeated_times(self.time, self.interval, self.count)

    @classmethod
    def nih(cls, time: float = 0.0, g_per_m2: float = 0.75, count: int = 6) -> Cyclophosphamide:
        """NIH regimen: ``g_per_m2`` monthly (Austin HA et al., NEJM 1986;314:614)."""
        return cls(g_per_m2 * 1000.0 * BODY_SURFACE_M2 / BODY_WEIGHT_KG, time, 30.0, count)

    @classmethod
    def euro_lupus(cls, time: float = 0.0) -> Cyclophosphamide:
        """Euro-Lupus: 500 mg every 2 weeks x 6 (Houssiau 2002)."""
        return cls(500.0 / BODY_WEIGHT_KG, time, 14.0, 6)

    def dose_times(self) -> np.ndarray:
        return repeated_times(self.time, self.interval, self.count)

    def events(self, p: np.ndarray) -> list[Event]:
        return [(float(t), m.CYC, OP_ADD, float(self.dose)) for t in self.dose_times()]


@dataclass(frozen=True)
class _OralCourse:
    """An oral drug at a constant daily dose from ``start`` to ``stop`` (default: the end)."""

    dose: float
    start: float = 0.0
    stop: float | None = None

    _STATE = -1
    _MAX = np.inf
    _UNIT = ""

    def __post_init__(self) -> None:
        check_number("dose", self.dose, 0, self._MAX, self._UNIT)
        check_number("start", self.start, unit="d")
        if self.stop is not None and not self.stop > self.start:
            raise ValueError(f"stop: {self.stop!r} must be after start ({self.start:g})")

    def dose_times(self) -> np.ndarray:
        return np.array([self.start] + ([self.stop] if self.stop is not None else []), float)

    def events(self, p: np.ndarray) -> list[Event]:
        ev = [(float(self.start), self._STATE, OP_SET, float(self.dose))]
        if self.stop is not None:
            ev.append((float(self.stop), self._STATE, OP_SET, 0.0))
        return ev


@dataclass(frozen=True)
class Mycophenolate(_OralCourse):
    """Mycophenolate mofetil, ``dose`` g/d (2-3 g/d in induction: ALMS, Appel GB et al., J Am
    Soc Nephrol 2009;20:1103)."""

    _STATE = m.MMF_DOSE
    _MAX = 4.0
    _UNIT = "g/d"


@dataclass(frozen=True)
class Hydroxychloroquine(_OralCourse):
    """Hydroxychloroquine, ``dose`` mg/d (200-400 mg/d; <= 5 mg/kg/d)."""

    _STATE = m.HCQ_DOSE
    _MAX = 800.0
    _UNIT = "mg/d"


@dataclass(frozen=True)
class Rituximab:
    """Rituximab infusions: ``count`` x ``dose`` mg, ``interval`` days apart (1000 mg x 2, two
    weeks apart, is the usual lupus course). CD20+ B cells die ``rtx_kill_fold`` times faster
    while the effect lasts (Pan S et al., Br J Clin Pharmacol 2019;85:1790); plasmablasts and
    plasma cells (CD20-negative) are spared."""

    dose: float = 1000.0
    time: float = 0.0
    interval: float = 14.0
    count: int = 2

    def __post_init__(self) -> None:
        check_number("dose", self.dose, 0, 3000, "mg")
        repeated_times(self.time, self.interval, self.count)

    def dose_times(self) -> np.ndarray:
        return repeated_times(self.time, self.interval, self.count)

    def events(self, p: np.ndarray) -> list[Event]:
        v = float(self.dose / RITUXIMAB_UNIT_MG)
        return [(float(t), m.RTX, OP_ADD, v) for t in self.dose_times()]


@dataclass(frozen=True)
class CART:
    """CD19 CAR-T: lymphodepletion (cyclophosphamide on three days) then ``cells`` per kg.

    The cells expand on CD19+ B cells, kill B cells and plasmablasts (not the mostly CD19-negative
    long-lived plasma cells, Mei HE et al., Blood 2015;125:1739) and contract; B cells return
    from the naive pool once the CAR-T fall below their half-maximal kill level.

    Parameters
    ----------
    time : float
        Day of the first lymphodepletion dose; the infusion is at ``time + 5``.
    cells : float
        CAR-T cells per kg (1e6/kg in the first lupus series).
    lymphodepletion : float
        Cyclophosphamide per day on days ``time``, ``time + 1``, ``time + 2`` (mg/kg; about
        1000 mg/m2 in total as in common fludarabine/cyclophosphamide conditioning); 0 = none.
    """

    time: float = 0.0
    cells: float = 1e6
    lymphodepletion: float = 8.0

    def __post_init__(self) -> None:
        check_number("time", self.time, unit="d")
        check_number("cells", self.cells, 0, 1e9, "cells/kg")
        check_number("lymphodepletion", self.lymphodepletion, 0, 60, "mg/kg/d")

    def dose_times(self) -> np.ndarray:
        return np.array([self.time + 5.0])

    def events(self, p: np.ndarray) -> list[Event]:
        ev = [(float(self.time + d), m.CYC, OP_ADD, float(self.lymphodepletion))
              for d in range(3) if self.lymphodepletion > 0]
        ev.append((float(self.time + 5.0), m.CART, OP_ADD, float(self.cells / 1e6)))
        return ev


REGIMENS = (Glucocorticoid, Cyclophosphamide, Mycophenolate, Hydroxychloroquine, Rituximab, CART)
