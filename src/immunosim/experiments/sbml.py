"""SBML export of ``sle_msc``: one patient under one scenario as an SBML Level 3 Version 2 model.

The model is written as Antimony text generated from the model's own tables, then converted to
SBML with ``antimony`` and checked with ``libsbml`` (the optional extra ``immunosim[sbml]``).
``docs/sbml.md`` describes the encoding; in short:

* every state of :data:`~immunosim.model.sle_msc.STATES` is an SBML *parameter with a rate rule*
  (not a species, so that no compartment or concentration scaling enters), with its unit;
* every model parameter is a constant global parameter with its unit, its description in a
  comment;
* the treatment signals and the per-cell rates of the B-lineage transitions are assignment rules;
  the rows of ``b_naive``, ``b_gc``, ``b_mem``, ``plasmablast`` and ``llpc`` are assembled from
  :data:`~immunosim.model.sle_msc.TRANSITIONS`, like the compiled right-hand side;
* ``max(x, 0)`` is the function ``pos(x) = piecewise(x, x > 0, 0)``, the ``msc > 0`` guard a
  ``piecewise``;
* doses at t = 0 are folded into the initial values (the patient's untreated diseased steady
  state, then the doses in immunosim's order); each later dosing day is one event triggered at
  ``time >= t_k`` with ``persistent = true``, ``useValuesFromTriggerTime = true``,
  ``initialValue = true`` and an explicit priority (earlier days first). The day's jumps are
  composed in immunosim's application order inside that one event, so several doses of one
  state on one day add up whatever a tool does with simultaneous events.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..model import sle_msc as m
from ..model.interventions import OP_ADD, OP_SCALE, OP_SET, apply_parameters, schedule
from .simulate import NoDiseasedState, initial_states

EXTRA_HINT = ("SBML export needs the optional extra 'sbml' (antimony, python-libsbml, "
              "libroadrunner): pip install 'immunosim[sbml]'")


class SBMLExportError(ValueError):
    """The export failed (missing extra, bad scenario or patient, invalid SBML); one line."""


def require_extra():
    """Import and return ``(antimony, libsbml)``; :class:`SBMLExportError` naming the extra if
    either is missing."""
    try:
        import antimony
        import libsbml
    except ImportError as e:
        raise SBMLExportError(f"{EXTRA_HINT} ({e})") from None
    return antimony, libsbml


# --- units -------------------------------------------------------------------------------------

#: Model unit string -> (SBML unit id, Antimony definition; None for an SBML base unit).
UNITS: dict[str, tuple[str, str | None]] = {
    "1": ("dimensionless", None),
    "d": ("day", "86400 second"),
    "1/d": ("per_day", "1 / day"),
    "1e6 cells/kg": ("Mcells_per_kg", "1e6 item / kilogram"),
    "IU/mL": ("IU_per_mL", "dimensionless"),  # IU is not an SI unit: declared dimensionless
    "IU/mL/d": ("IU_per_mL_per_day", "1 / day"),  # likewise: per day
    "mg/dL": ("mg_per_dL", "1e-2 gram / litre"),
    "g/24h": ("g_per_day", "gram / day"),
    "g/d": ("g_per_day", "gram / day"),
    "mg/d": ("mg_per_day", "1e-3 gram / day"),
    "mg/kg": ("mg_per_kg", "1e-3 gram / kilogram"),
}

#: Identifiers that SBML math or Antimony give a meaning of their own.
RESERVED = frozenset({
    "time", "pi", "avogadro", "exponentiale", "true", "false", "infinity", "notanumber", "inf",
    "nan", "e", "ln", "log", "log10", "exp", "abs", "sqrt", "pow", "power", "root", "floor",
    "ceil", "factorial", "sin", "cos", "tan", "delay", "rateOf", "piecewise", "min", "max", "and",
    "or", "not", "xor", "at", "after", "priority", "persistent", "fromTrigger", "t0", "has",
    "unit", "const", "var", "species", "compartment", "model", "end", "function", "formula",
    "reaction", "in", "is", "import", "delete", "event", "substance", "volume", "area", "length",
    "extent", "time_unit", "DNA", "gene", "operator", "pos"
})
_SID = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _unit(u: str) -> str:
    try:
        return UNITS[u][0]
    except KeyError:
        raise SBMLExportError(f"unit '{u}' has no SBML unit definition in "
                              "immunosim.experiments.sbml.UNITS") from None


def _num(v: float) -> str:
    """Shortest text that reads back as the same double."""
    v = float(v)
    if not math.isfinite(v):
        raise SBMLExportError(f"non-finite number {v!r} in the model")
    return repr(v)


# --- the right-hand side as formulas -------------------------------------------------------------

#: Signals of ``sle_msc.signals_at`` and helpers of ``sle_msc.rhs_at``, as assignment rules
#: (name, formula, comment), in dependency order.
SIGNALS: tuple[tuple[str, str, str], ...] = (
    ("e_msc", "piecewise(msc / (msc + msc_ec50), msc > 0, 0)", "direct MSC effect (0..1)"),
    ("msc_signal", "msc_response * (e_msc + pos(reg))", "MSC signal (direct + induced)"),
    ("sz", "msc_signal / (msc_signal + msc_signal_k50)", "saturated MSC signal"),
    ("e_gc", "pos(gc) / (pos(gc) + gc_ec50)", "glucocorticoid effect"),
    ("e_mmf", "mmf_emax * pos(mmf) / (pos(mmf) + mmf_ec50)", "mycophenolate effect"),
    ("e_hcq", "hcq_emax * pos(hcq) / (pos(hcq) + hcq_ec50)", "hydroxychloroquine effect"),
    ("kill_cyc", "cyc_kmax * pos(cyc) / (pos(cyc) + cyc_ec50)",
     "cyclophosphamide kill of proliferating cells (1/d)"),
    ("kill_rtx", "(rtx_kill_fold - 1) * naive_turnover * pos(rtx) / (pos(rtx) + rtx_ec50)",
     "rituximab kill of CD20+ B cells (1/d)"),
    ("kill_car", "car_kill * pos(cart) / (pos(cart) + car_kill_k50)",
     "CAR-T kill of CD19+ B cells and plasmablasts (1/d)"),
    ("lymph", "(1 - gc_emax_lymphocyte * e_gc) * (1 - e_mmf)",
     "lymphocyte suppression by drugs"),
    ("ag_sensed", "(pos(antigen) * (1 - e_hcq) / antigen_k50)^antigen_hill",
     "sensed antigen to the Hill power"),
    ("stim", "ag_sensed / (ag_sensed + 1)", "antigen stimulation"),
    ("tfh_help", "pos(tfh) / (pos(tfh) + tfh_help_k50)", "Tfh help"),
    # lineage_rates_from
    ("drug", "(1 - std_therapy) * lymph", "background and drug suppression"),
    ("f_act", "1 - emax_activation * sz", "MSC factor on activation"),
    ("f_diff", "1 - emax_differentiation * sz", "MSC factor on differentiation"),
    ("niche", "llpc / llpc_capacity", "LLPC niche occupancy"),
    ("help_stim", "stim * tfh_help * f_act * drug", "stimulation x help x suppressions"),
)

#: Per-cell rates (1/d) of each transition of ``sle_msc.TRANSITIONS`` (``lineage_rates_from``).
TRANSITION_RATES: dict[str, str] = {
    "activation": "activation_rate * help_stim",
    "gc_division": ("gc_renewal * (gc_death + gc_to_pc + gc_to_memory) * tfh_help"
                    " * (1 - emax_prolif * sz) * (1 - std_therapy) * (1 - e_mmf)"
                    " * (1 - b_gc / gc_capacity)"),
    "gc_death": ("gc_death + kill_cyc + kill_rtx + kill_car"
                 " + gc_to_pc * (1 - f_diff + f_diff * llpc_fraction * niche)"),
    "gc_to_memory": "gc_to_memory",
    "gc_to_plasmablast": "gc_to_pc * f_diff * (1 - llpc_fraction)",
    "gc_to_llpc": "gc_to_pc * f_diff * llpc_fraction * (1 - niche)",
    "memory_reactivation": "memory_reactivation * help_stim",
    "memory_death": "memory_turnover + kill_rtx + kill_car",
    "plasmablast_death": "1 / plasmablast_lifespan + kill_cyc + kill_car",
    "llpc_death": "ln(2) / llpc_half_life",
}

#: Helpers of the rows outside the B lineage (``rhs_at``).
HELPERS: tuple[tuple[str, str, str], ...] = (
    ("ic_form", "ic_formation * anti_dsdna * antigen", "immune-complex formation"),
    ("icr", "pos(immune_complex) * renal_susceptibility * (1 - gc_emax_renal * e_gc)",
     "renal immune-complex drive"),
    ("injury", "icr * icr / (icr * icr + ic_k50 * ic_k50)", "renal injury (Hill 2)"),
    ("b_targets", "pos(b_naive) + pos(b_mem)", "CD19+ targets of CAR-T"),
    ("proteinuria", "proteinuria_base + proteinuria_max * damage",
     "read-out: 24-hour urinary protein (g/24h)"),
)

#: Rows outside the B lineage; the lineage rows are generated from the transitions table.
ROWS: dict[str, str] = {
    "msc": "-ln(2) / msc_half_life * msc",
    "reg": "reg_induction * e_msc * (1 - reg / reg_max) - ln(2) / reg_half_life * reg",
    "cd4": "ln(2) / cd4_recovery_half_life * (1 - cd4)",
    "tfh": ("tfh_turnover * pos(cd4) * (1 + tfh_expansion * stim) * (1 - emax_tfh * sz) * lymph"
            " - (tfh_turnover + kill_cyc) * tfh"),
    "anti_dsdna": ("secretion_pb * plasmablast * (1 - emax_secretion * sz)"
                   " + secretion_llpc * llpc - ln(2) / igg_half_life * anti_dsdna - ic_form"),
    "antigen": ("antigen_clearance * (1 + damage_antigen_release * damage"
                " + inflammation_antigen_release * pos(inflammation))"
                " - antigen_clearance * antigen - antigen_consumption * ic_form"),
    "immune_complex": ("ic_form - ic_clearance * (ic_clearance_c3_independent"
                       " + (1 - ic_clearance_c3_independent) * c3 / c3_normal) * immune_complex"),
    "c3": "c3_turnover * (c3_normal - c3) - c3_consumption * immune_complex * c3",
    "damage": ("damage_rate * injury * (1 - damage)"
               " - repair_rate * (1 + emax_repair * sz) * damage"),
    "inflammation": ("inflammation_rate * (pos(immune_complex) / ic_k50"
                     " * (1 - gc_emax_inflammation * e_gc) - inflammation)"),
    "gc_dose": "0",
    "gc": "ln(2) / gc_effect_half_life * (gc_dose - gc)",
    "cyc": "-ln(2) / cyc_effect_half_life * cyc",
    "mmf_dose": "0",
    "mmf": "ln(2) / mmf_effect_half_life * (mmf_dose - mmf)",
    "hcq_dose": "0",
    "hcq": "ln(2) / hcq_half_life * (hcq_dose - hcq)",
    "rtx": "-ln(2) / rtx_half_life * rtx",
    "cart": "(car_expansion * b_targets / (b_targets + car_target_k50) - car_contraction) * cart",
}
#: Source terms of lineage rows that are not transitions (naive production and drug kill).
LINEAGE_EXTRA: dict[str, str] = {
    "b_naive": "naive_turnover - (naive_turnover + kill_rtx + kill_car) * b_naive",
}


def lineage_rows() -> dict[str, str]:
    """Rows of ``LINEAGE_SOURCES`` assembled from ``TRANSITIONS`` (as ``lineage_drift`` does)."""
    names = [t.name for t in m.TRANSITIONS]
    if set(names) != set(TRANSITION_RATES):
        raise SBMLExportError(
            f"the SBML exporter's transition rates ({', '.join(TRANSITION_RATES)}) do not match "
            f"sle_msc.TRANSITIONS ({', '.join(names)}); update TRANSITION_RATES")
    rows = {}
    for c, state in enumerate(m.LINEAGE_SOURCES):
        name = m.STATE_NAMES[state]
        terms = [LINEAGE_EXTRA[name]] if name in LINEAGE_EXTRA else []
        for t in m.TRANSITIONS:
            nu = t.change[c]
            if nu == 0:
                continue
            flux = f"r_{t.name} * {m.STATE_NAMES[t.source]}"
            coef = "" if abs(nu) == 1 else f"{abs(nu)} * "
            terms.append(("+ " if nu > 0 else "- ") + coef + flux)
        text = " ".join(terms).removeprefix("+ ")
        rows[name] = text or "0"
    return rows


# --- events ------------------------------------------------------------------------------------

def _compose(expr: str, op: int, value: float) -> str:
    if op == OP_ADD:
        return f"{expr} + {_num(value)}"
    if op == OP_SCALE:
        return f"({expr}) * {_num(value)}"
    if op == OP_SET:
        return _num(value)
    raise SBMLExportError(f"unknown event op {op!r}")


def _apply(y: np.ndarray, state: int, op: int, value: float) -> None:
    """The engine's jump (``engines.ode._kernels._apply_event``)."""
    if op == OP_ADD:
        y[state] += value
    elif op == OP_SCALE:
        y[state] *= value
    else:
        y[state] = value


def dosing_days(events: Sequence[tuple[float, int, int, float]]
                ) -> list[tuple[float, dict[int, str]]]:
    """Events with ``t > 0`` grouped by day: ``(t, {state: assignment formula})``, the jumps of
    a day composed in the given (immunosim's) order."""
    days: dict[float, dict[int, str]] = {}
    for t, s, op, v in events:
        if t <= 0.0:
            continue
        day = days.setdefault(float(t), {})
        day[s] = _compose(day.get(s, m.STATE_NAMES[s]), op, v)
    return sorted(days.items())


# --- the Antimony text ---------------------------------------------------------------------------

@dataclass(frozen=True)
class PatientModel:
    """What is exported: the integrated parameters, the initial state and the dosing events.

    Attributes
    ----------
    params : ndarray, shape (n_params,)
        Parameters integrated (parameter-changing interventions applied).
    y0 : ndarray, shape (n_states,)
        Untreated diseased steady state with the doses at t = 0 applied.
    events : list of (time, state, op, value)
        All dosing events in immunosim's application order (those at t = 0 included).
    title : str
    """

    params: np.ndarray
    y0: np.ndarray
    events: list
    title: str = ""


def patient_model(params: np.ndarray, interventions: Sequence, title: str = "") -> PatientModel:
    """The exported model of the untreated patient ``params`` under ``interventions``, as
    ``run_batch`` integrates it: initial state from the untreated parameters, events and
    parameters with the interventions applied, doses at t = 0 folded into the initial state."""
    params = np.asarray(params, dtype=np.float64)
    y, ok = initial_states(params[None, :])
    if not ok[0]:
        raise NoDiseasedState(f"{title or 'patient'}: no untreated diseased steady state to "
                              "start from")
    treated = apply_parameters(interventions, params)
    events = schedule(interventions, treated)
    y0 = y[0].copy()
    for t, s, op, v in events:
        if t <= 0.0:
            _apply(y0, s, op, v)
    return PatientModel(treated, y0, events, title)


def _check_ids(names: Sequence[str]) -> None:
    for n in names:
        if not _SID.match(n) or n in RESERVED:
            raise SBMLExportError(f"'{n}' is not usable as an SBML identifier")


def antimony_text(pm: PatientModel, name: str = m.NAME) -> str:
    """Antimony source of one patient model (see the module docstring for the encoding)."""
    rates = [(f"r_{t.name}", TRANSITION_RATES[t.name], t.description) for t in m.TRANSITIONS]
    rows = {**ROWS, **lineage_rows()}
    _check_ids([*m.STATE_NAMES, *m.PARAMETER_NAMES, *(n for n, _, _ in SIGNALS + HELPERS),
                *(n for n, _, _ in rates), name])
    missing = set(m.STATE_NAMES) ^ set(rows)
    if missing:
        raise SBMLExportError(f"rows missing or unknown in the SBML exporter: {sorted(missing)}")
    out = [
        "// sle_msc: autoreactive B-cell / plasma-cell / antibody / kidney model of refractory",
        "// SLE under MSC therapy, exported by immunosim (docs/sbml.md). Time in days.",
        f"// {pm.title}" if pm.title else "//",
        "",
        "// max(x, 0) of the compiled right-hand side",
        "function pos(x)",
        "  piecewise(x, x > 0, 0)",
        "end",
        "",
        f"model {name}()",
        "  // --- units (IU is not an SI unit: IU/mL is declared dimensionless)",
    ]
    seen = set()
    for uid, definition in UNITS.values():
        if definition is not None and uid not in seen:
            seen.add(uid)
            out.append(f"  unit {uid} = {definition}")
    out += ["  unit time_unit = day", "", "  // --- states: rate rules on parameters (not species)"]
    for s, v in zip(m.STATES, pm.y0):
        out.append(f"  {s.name} = {_num(v)};  // {s.unit}: {s.long_name}")
    for s in m.STATES:
        out.append(f"  {s.name} has {_unit(s.unit)}")
    out += ["", "  // --- parameters (constants); ranges and sources: docs/parameters.md"]
    for p, v in zip(m.PARAMETERS, pm.params):
        out.append(f"  const {p.name} = {_num(v)};  // {p.unit}: {p.description}")
    for p in m.PARAMETERS:
        out.append(f"  {p.name} has {_unit(p.unit)}")
    out += ["", "  // --- treatment signals (sle_msc.signals_at) and helpers"]
    for n, f, c in SIGNALS + HELPERS:
        out.append(f"  {n} := {f};  // {c}")
    out += ["", "  // --- per-cell rates (1/d) of the B-lineage transitions (sle_msc.TRANSITIONS)"]
    for n, f, c in rates:
        out.append(f"  {n} := {f};  // {c}")
    out += ["", "  // --- right-hand side (state unit per day)"]
    for s in m.STATE_NAMES:
        out.append(f"  {s}' = {rows[s]}")
    days = dosing_days(pm.events)
    out += ["", "  // --- dosing: one event per day after day 0 (doses at day 0 are in the "
            "initial values)"]
    for k, (t, assign) in enumerate(days):
        body = ", ".join(f"{m.STATE_NAMES[s]} = {e}" for s, e in assign.items())
        out.append(f"  dose_{k + 1}: at time >= {_num(t)}, priority = {len(days) - k}, t0 = true, "
                   f"persistent = true, fromTrigger = true: {body}")
    out.append("end")
    return "\n".join(out) + "\n"


# --- SBML ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Export:
    """An exported model: Antimony and SBML text, and libsbml's consistency findings."""

    antimony: str
    sbml: str
    warnings: int
    model: PatientModel


def to_sbml(text: str, name: str = m.NAME) -> tuple[str, int]:
    """SBML L3V2 of Antimony ``text``; libsbml ``checkConsistency`` must find no error.

    Returns the SBML string and the number of consistency warnings (unit checks mostly)."""
    antimony, libsbml = require_extra()
    antimony.clearPreviousLoads()
    if antimony.loadAntimonyString(text) < 0:
        raise SBMLExportError("antimony: " + " ".join(antimony.getLastError().split()))
    doc = libsbml.readSBMLFromString(antimony.getSBMLString(name))
    if (doc.getLevel(), doc.getVersion()) != (3, 2) and not doc.setLevelAndVersion(3, 2):
        raise SBMLExportError("libsbml: cannot convert the model to SBML Level 3 Version 2")
    doc.checkConsistency()
    errors, warnings = [], 0
    for i in range(doc.getNumErrors()):
        e = doc.getError(i)
        if e.getSeverity() >= libsbml.LIBSBML_SEV_ERROR:
            errors.append(f"{e.getErrorId()} {' '.join(e.getMessage().split())}")
        else:
            warnings += 1
    if errors:
        raise SBMLExportError(f"libsbml: {len(errors)} consistency errors, first: {errors[0]}")
    return libsbml.writeSBMLToString(doc), warnings


def export_model(pm: PatientModel, name: str = m.NAME) -> Export:
    text = antimony_text(pm, name)
    sbml, warnings = to_sbml(text, name)
    return Export(text, sbml, warnings, pm)


def config_patient(cfg, scenario: str | None = None, patient: int | None = None):
    """``(untreated parameters, interventions, title)`` of a config's scenario for the reference
    patient (``model.parameters``) or cohort patient ``patient``, with the scenario's parameter
    overrides (sweep axes are not applied: the scenario's own values are exported)."""
    from .cohort import sample_cohort

    names = list(cfg.scenarios)
    if scenario is None:
        scenario = names[0]
    if scenario not in cfg.scenarios:
        raise SBMLExportError(f"--scenario: unknown scenario '{scenario}'; expected one of "
                              f"{', '.join(names)}")
    sc = cfg.scenarios[scenario].build(scenario)
    base = m.PARAMETERS.vector(cfg.model.parameters)
    if patient is None:
        params, who = base, "reference patient"
    else:
        if not 0 <= patient < cfg.cohort.size * cfg.cohort.n_draws:
            raise SBMLExportError(f"--patient: {patient} is not a cohort patient; expected 0 to "
                                  f"{cfg.cohort.size * cfg.cohort.n_draws - 1}")
        params, who = sample_cohort(cfg.cohort, base, cfg.seed).params[patient], \
            f"cohort patient {patient}"
    params = params.copy()
    for k, v in sc.parameters.items():
        params[m.PARAMETERS.index[k]] = v
    return params, sc.interventions, f"config {cfg.name}, scenario {scenario}, {who}"


def export_config(cfg, scenario: str | None = None, patient: int | None = None) -> Export:
    """Export scenario ``scenario`` (default: the first) of a loaded config for the reference
    patient or cohort patient ``patient``."""
    require_extra()
    params, ivs, title = config_patient(cfg, scenario, patient)
    return export_model(patient_model(params, ivs, title))
