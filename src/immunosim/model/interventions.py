"""Interventions as dosing events: exact state jumps at scheduled times.

Dosing follows the pharmacometric ``amt / ii / addl`` record: an :class:`MSCInfusion` is an amount
(cells/kg), a first time, an interval and a count. :class:`HSCT` is an immunoablation event
(fractional depletion of lymphocytes and plasmablasts, most long-lived plasma cells spared);
reconstitution then follows the model's own production and recovery terms. Drug regimens are in
:mod:`immunosim.model.regimens`. :class:`StandardTherapy` is a legacy constant suppression that
changes a parameter rather than the state.

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


def check_number(name: str, value: float, low: float = 0.0, high: float = np.inf,
                 unit: str = "") -> None:
    """Raise ``ValueError("name: ...")`` unless ``low <= value <= high`` (finite)."""
    if not (np.isfinite(value) and low <= value <= high):
        rng = f">= {low:g}" if high == np.inf else f"in [{low:g}, {high:g}]"
        raise ValueError(f"{name}: {value!r} is not a number {rng}{' ' + unit if unit else ''}")


def repeated_times(time: float, interval: float, count: int, *,
                   same_day: bool = False) -> np.ndarray:
    """Days of ``count`` doses ``interval`` days apart from ``time`` (the ``ii / addl`` record),
    checked: a non-negative start, a positive integer count, an interval > 0 when repeated
    (``>= 0`` with ``same_day``: ``interval = 0`` then gives ``count`` doses on day ``time``)."""
    check_number("time", time, unit="d")
    if int(count) != count or count < 1:
        raise ValueError(f"count: {count!r} is not a positive integer")
    if same_day:
        check_number("interval", interval, unit="d")
    elif count > 1 and not interval > 0:
        raise ValueError(f"interval: {interval!r} must be > 0 days when count > 1")
    return time + interval * np.arange(int(count))

#: MSC cell sources; each has a ``potency_<source>`` parameter, read only by
#: :meth:`MSCInfusion.events` (never by the model's equations).
MSC_SOURCES = ("bm", "uc")

#: B-lineage compartments removed by HSCT (conditioning plus a CD34-selected graft).
HSCT_B_LINEAGE = (m.B_NAIVE, m.B_GC, m.B_MEM, m.PLASMABLAST)
#: Cyclophosphamide conditioning: 50 mg/kg on each of 4 days, 200 mg/kg in all (Burt RK et al.,
#: JAMA 2006;295:527).
HSCT_CYC_MG_PER_KG = 50.0
HSCT_CYC_DAYS = 4


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
        Days between infusions (``ii``). ``0`` with ``count > 1`` gives ``count`` infusions on
        day ``time`` (a same-day repeat: ``count * amount`` cells/kg that day, each infusion a
        separate dose event).
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
        check_number("amount", self.amount, unit="cells/kg")
        repeated_times(self.time, self.interval, self.count, same_day=True)
        if self.source not in MSC_SOURCES:
            raise ValueError(f"source: {self.source!r} is not one of 'bm', 'uc'")

    def dose_times(self) -> np.ndarray:
        """Days of the infusions, shape ``(count,)`` (repeated days for a same-day repeat)."""
        return repeated_times(self.time, self.interval, self.count, same_day=True)

    def events(self, p: np.ndarray) -> list[Event]:
        potency = p[m.PARAMETERS.index[f"potency_{self.source}"]]
        value = self.amount / CELLS_PER_UNIT * potency
        return [(float(t), m.MSC, OP_ADD, float(value)) for t in self.dose_times()]


@dataclass(frozen=True)
class HSCT:
    """Autologous haematopoietic stem-cell transplantation as a regimen.

    Conditioning is cyclophosphamide 200 mg/kg (4 x 50 mg/kg, through the model's own
    cyclophosphamide kill of dividing cells) with rabbit/equine ATG (Burt RK et al., JAMA
    2006;295:527); the graft is CD34-selected. Reconstitution then follows the model's own
    kinetics: naive B cells return from the marrow within months (``naive_turnover``), the CD4
    T-cell pool over one to two years (``cd4_recovery_half_life``), and Tfh with it.

    Parameters
    ----------
    time : float
        Day conditioning starts (day 0 of the transplant).
    depletion : float
        Fraction of naive, GC and memory B cells and plasmablasts removed by ATG and the selected
        graft beyond the cyclophosphamide kill. Default 0.99, assumed for lymphoablative
        conditioning (Alexander T et al., Blood 2009;113:214 [secondary]).
    t_cell_depletion : float
        Fraction of the CD4 T-cell pool (and Tfh) removed by ATG. Default 0.95, assumed (CD4
        counts fall to a few percent of normal after ATG-based conditioning [secondary]).
    llpc_depletion : float
        Fraction of long-lived plasma cells removed; small, since LLPC resist cytotoxic drugs
        (Hoyer BF et al., J Exp Med 2004) and ATG removes part of them (Alexander 2009
        [secondary]). Default 0.5, assumed.
    regulatory_reset : float
        Level the regulatory state is set to after conditioning. ATG removes regulatory cells
        with the rest; the regenerated repertoire is Treg-rich (Alexander 2009) but this comes
        back with the CD4 pool. Default 0.0, assumed.
    trm : float
        Probability of treatment-related death (competing event). Default 0.05, between the
        2% of Burt 2006 and the 12% of the European registry (Jayne D et al., Lupus
        2004;13:168).
    trm_window : float
        Deaths fall uniformly within this many days after ``time`` (assumed: transplant-related
        deaths are early, mostly infections within the first 100 days).
    """

    time: float
    depletion: float = 0.99
    t_cell_depletion: float = 0.95
    llpc_depletion: float = 0.5
    regulatory_reset: float = 0.0
    trm: float = 0.05
    trm_window: float = 100.0

    def __post_init__(self) -> None:
        check_number("time", self.time, unit="d")
        for name in ("depletion", "t_cell_depletion", "llpc_depletion", "trm"):
            check_number(name, getattr(self, name), 0.0, 1.0, "(a fraction)")
        check_number("regulatory_reset", self.regulatory_reset)
        if not (np.isfinite(self.trm_window) and self.trm_window > 0):
            raise ValueError(f"trm_window: {self.trm_window!r} is not > 0 days")

    def dose_times(self) -> np.ndarray:
        """The conditioning days, ``time`` to ``time + 3``."""
        return self.time + np.arange(float(HSCT_CYC_DAYS))

    def events(self, p: np.ndarray) -> list[Event]:
        t = float(self.time)
        ev: list[Event] = [(float(d), m.CYC, OP_ADD, HSCT_CYC_MG_PER_KG) for d in self.dose_times()]
        ev += [(t, s, OP_SCALE, 1.0 - self.depletion) for s in HSCT_B_LINEAGE]
        ev += [(t, s, OP_SCALE, 1.0 - self.t_cell_depletion) for s in (m.CD4, m.TFH)]
        ev.append((t, m.LLPC, OP_SCALE, 1.0 - self.llpc_depletion))
        ev.append((t, m.REG, OP_SET, float(self.regulatory_reset)))
        return ev

    def death_time(self, u: float) -> float:
        """Day of treatment-related death for a patient's uniform draw ``u``, or NaN (survives):
        death when ``u < trm``, at ``time + trm_window * u / trm``."""
        if u < self.trm:
            return float(self.time + self.trm_window * u / self.trm)
        return float("nan")


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


Intervention = MSCInfusion | HSCT | StandardTherapy  # and the drug records of .regimens


def apply_parameters(interventions, p: np.ndarray) -> np.ndarray:
    """Parameter vector with the parameter-changing interventions applied."""
    for iv in interventions:
        if isinstance(iv, StandardTherapy):
            p = iv.apply(p)
    return p


def unused_parameters(interventions) -> list[str]:
    """Model parameters that runs with ``interventions`` cannot depend on: the potency of each
    MSC source none of them infuses (``potency_*`` enter only through
    :meth:`MSCInfusion.events`). A sweep computes runs that differ only in these once."""
    used = {iv.source for iv in interventions if isinstance(iv, MSCInfusion)}
    return [f"potency_{s}" for s in MSC_SOURCES if s not in used]


def schedule(interventions, p: np.ndarray) -> list[Event]:
    """All dosing events of ``interventions`` for parameter vector ``p``, sorted by time."""
    ev: list[Event] = []
    for iv in interventions:
        ev.extend(iv.events(p))
    return sorted(ev, key=lambda e: e[0])
