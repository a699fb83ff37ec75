"""Interventions as dosing events: exact state jumps at scheduled times.

Dosing follows the pharmacometric ``amt / ii / addl`` record: an :class:`MSCInfusion` is an amount
(cells/kg), a first time, an interval and a count. :class:`HSCT` is an immunoablation event
(fractional depletion of lymphocytes and plasmablasts, most long-lived plasma cells spared);
reconstitution then follows the model's own production terms. :class:`StandardTherapy` is a
background suppression that changes a parameter rather than the state.

An event is ``(time, state_index, op, value)`` with ``op`` one of :data:`OP_ADD`,
:data:`OP_SCALE`, :data:`OP_SET`; the ODE engine applies them inside the batched solve.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import sle_msc as m

OP_ADD = 0
OP_SCALE = 1
OP_SET = 2

Event = tuple[float, int, int, float]

CELLS_PER_UNIT = 1e6  # the MSC state is in 1e6 cells/kg

#: Compartments emptied by HSCT conditioning (high-dose cyclophosphamide + ATG).
HSCT_LYMPHOID = (m.TFH, m.B_NAIVE, m.B_GC, m.B_MEM, m.PLASMABLAST)


@dataclass(frozen=True)
class MSCInfusion:
    """MSC infusion(s): ``count`` doses of ``amount`` cells/kg, ``interval`` days apart.

    Parameters
    ----------
    amount : float
        Cells per kg body weight per infusion (clinical: 1e6, Liang 2010; Sun 2010).
    time : float
        Day of the first infusion.
    interval : float
        Days between infusions (``ii``); needed when ``count > 1``.
    count : int
        Number of infusions (``addl + 1``).
    source : {"bm", "uc"}
        Cell source; scales the dose by the ``potency_bm`` / ``potency_uc`` parameter.
    """

    amount: float
    time: float = 0.0
    interval: float = 0.0
    count: int = 1
    source: str = "bm"

    def __post_init__(self) -> None:
        if not np.isfinite(self.amount) or self.amount < 0:
            raise ValueError(f"amount: {self.amount!r} is not a non-negative number of cells/kg")
        if not np.isfinite(self.time) or self.time < 0:
            raise ValueError(f"time: {self.time!r} is not a non-negative day")
        if int(self.count) != self.count or self.count < 1:
            raise ValueError(f"count: {self.count!r} is not a positive integer")
        if self.count > 1 and not self.interval > 0:
            raise ValueError(f"interval: {self.interval!r} must be > 0 days when count > 1")
        if self.source not in ("bm", "uc"):
            raise ValueError(f"source: {self.source!r} is not one of 'bm', 'uc'")

    def dose_times(self) -> np.ndarray:
        return self.time + self.interval * np.arange(int(self.count))

    def events(self, p: np.ndarray) -> list[Event]:
        potency = p[m.PARAMETERS.index[f"potency_{self.source}"]]
        value = self.amount / CELLS_PER_UNIT * potency
        return [(float(t), m.MSC, OP_ADD, float(value)) for t in self.dose_times()]


@dataclass(frozen=True)
class HSCT:
    """Autologous haematopoietic stem-cell transplantation as an immunoablation event.

    Parameters
    ----------
    time : float
        Day of conditioning / transplant.
    depletion : float
        Fraction of Tfh, naive, GC and memory B cells, plasmablasts and induced regulatory cells
        removed. Default 0.99: assumed for lymphoablative cyclophosphamide + ATG conditioning
        (Burt RK et al., JAMA 2006; Alexander T et al., Blood 2009;113:214 [secondary]).
    llpc_depletion : float
        Fraction of long-lived plasma cells removed; smaller, since LLPC resist cytotoxic drugs
        (Hoyer BF et al., J Exp Med 2004) and ATG removes part of them (Alexander 2009
        [secondary]). Default 0.5, assumed.
    regulatory_reset : float
        Level the regulatory state is set to: the reconstituted immune system is rich in
        regenerated FoxP3+ Tregs and tolerant (Alexander T et al., Blood 2009;113:214
        [secondary]). Default 1.0 (below the peak after 1e6 MSC/kg), assumed.
    """

    time: float
    depletion: float = 0.99
    llpc_depletion: float = 0.5
    regulatory_reset: float = 1.0

    def __post_init__(self) -> None:
        if not np.isfinite(self.time) or self.time < 0:
            raise ValueError(f"time: {self.time!r} is not a non-negative day")
        for name in ("depletion", "llpc_depletion"):
            v = getattr(self, name)
            if not 0.0 <= v <= 1.0:
                raise ValueError(f"{name}: {v!r} is not a fraction in [0, 1]")
        if not (np.isfinite(self.regulatory_reset) and self.regulatory_reset >= 0):
            raise ValueError(f"regulatory_reset: {self.regulatory_reset!r} is not >= 0")

    def dose_times(self) -> np.ndarray:
        return np.array([self.time])

    def events(self, p: np.ndarray) -> list[Event]:
        ev = [(float(self.time), s, OP_SCALE, 1.0 - self.depletion) for s in HSCT_LYMPHOID]
        ev.append((float(self.time), m.LLPC, OP_SCALE, 1.0 - self.llpc_depletion))
        ev.append((float(self.time), m.REG, OP_SET, float(self.regulatory_reset)))
        return ev


@dataclass(frozen=True)
class StandardTherapy:
    """Background standard therapy (steroid / cyclophosphamide-like suppression).

    Sets the ``std_therapy`` parameter: fractional suppression of B-cell activation and
    proliferation for the whole run.
    """

    suppression: float

    def __post_init__(self) -> None:
        if not 0.0 <= self.suppression < 1.0:
            raise ValueError(f"suppression: {self.suppression!r} is not a fraction in [0, 1)")

    def dose_times(self) -> np.ndarray:
        return np.empty(0)

    def events(self, p: np.ndarray) -> list[Event]:
        return []

    def apply(self, p: np.ndarray) -> np.ndarray:
        q = p.copy()
        q[m.PARAMETERS.index["std_therapy"]] = self.suppression
        return q


Intervention = MSCInfusion | HSCT | StandardTherapy


def apply_parameters(interventions, p: np.ndarray) -> np.ndarray:
    """Parameter vector with the parameter-changing interventions applied."""
    for iv in interventions:
        if isinstance(iv, StandardTherapy):
            p = iv.apply(p)
    return p


def schedule(interventions, p: np.ndarray) -> list[Event]:
    """All dosing events of ``interventions`` for parameter vector ``p``, sorted by time."""
    ev: list[Event] = []
    for iv in interventions:
        ev.extend(iv.events(p))
    return sorted(ev, key=lambda e: e[0])
