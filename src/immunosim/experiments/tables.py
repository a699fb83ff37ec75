"""Data-driven inputs: dosing-record tables and population tables (CSV files or DataFrames).

**Dosing records** (``[scenarios.NAME] doses = "doses.csv"``) use the NONMEM / mrgsolve column
names: ``TIME`` (d), ``AMT``, ``II`` (d), ``ADDL``, ``EVID``, ``ID``, plus ``KIND`` (or ``CMT``)
naming the intervention and ``SOURCE`` (``bm`` / ``uc``) for MSCs. Each row becomes one dosing
record of the scenario (:data:`DOSE_KINDS` lists the kinds and the unit of ``AMT`` for each), so
the engines, sweep axes and checks treat it like the same record written in TOML.

**Population tables** (``[cohort] table = "patients.csv"``) hold one row per patient: an ``ID``
column, model parameters by name, and any other columns as covariates, which the sweep result
carries as coordinates along ``patient``.

Every problem is one :class:`~immunosim.experiments.config.ConfigError` line naming the file, the
row (1-based data row; blank lines and lines starting with ``#`` are not rows, and the file line is
given too) and the column, the bad value and what is expected. ``docs/configs.md`` ("Tables")
documents both formats.
"""

from __future__ import annotations

import csv
import difflib
import io
import math
import os
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pydantic import TypeAdapter, ValidationError

from ..model import sle_msc as m
from ._config_types import MAX_DOSES
from .config import (
    ConfigError,
    ConfigWarning,
    HSCTConfig,
    MSCConfig,
    domain_problem,
)
from .names import is_reserved
from .therapy_config import TherapyRecord

#: A table is data, not a hand-written config, but a file this large is a mistake.
MAX_TABLE_BYTES = 200_000_000

#: A table given as a path (str or path-like, relative to the config file) or a DataFrame.
TableSource = str | os.PathLike | pd.DataFrame


@dataclass(frozen=True)
class DoseKind:
    """One value of the ``KIND`` column: what ``AMT`` means and which record it becomes."""

    amount: str  # unit and meaning of AMT ("" : AMT must be blank)
    record: str  # the record it becomes (docs)


#: ``KIND`` values, the unit of ``AMT`` and the record each row becomes.
DOSE_KINDS: dict[str, DoseKind] = {
    "msc": DoseKind("cells/kg per infusion", "msc = { amount = AMT, time = TIME, "
                    "interval = II, count = ADDL + 1, source = SOURCE }"),
    "hsct": DoseKind("", "hsct = { time = TIME } (the model's default conditioning)"),
    "cyclophosphamide": DoseKind("mg/kg per pulse", "cyclophosphamide { dose = AMT, time, "
                                 "interval = II, count = ADDL + 1 }"),
    "rituximab": DoseKind("mg per infusion", "rituximab { dose = AMT, time, interval = II, "
                          "count = ADDL + 1 }"),
    "car_t": DoseKind("cells/kg", "car_t { time = TIME, cells = AMT } (lymphodepletion on "
                      "days TIME to TIME + 2, cells on TIME + 5)"),
    "methylprednisolone": DoseKind("mg per pulse day", "glucocorticoid { start = TIME, "
                                   "pulse_mg = AMT, pulse_days = ADDL + 1 } (II = 1)"),
    "glucocorticoid": DoseKind("mg prednisone per dose", "glucocorticoid { start = TIME, "
                               "oral_mg = AMT / II, stop = TIME + (ADDL + 1) * II }"),
    "mycophenolate": DoseKind("g per dose", "mycophenolate { dose = AMT / II, start = TIME, "
                              "stop = TIME + (ADDL + 1) * II }"),
    "hydroxychloroquine": DoseKind("mg per dose", "hydroxychloroquine { dose = AMT / II, "
                                   "start = TIME, stop = TIME + (ADDL + 1) * II }"),
}
_THERAPY = TypeAdapter(TherapyRecord)
#: Oral drugs: a daily dose held from TIME to the end of the last dosing interval.
ORAL = {"glucocorticoid": "oral_mg", "mycophenolate": "dose", "hydroxychloroquine": "dose"}
#: Oral courses that set the same dose state must not overlap.
_DOSE_STATE = {"glucocorticoid": "glucocorticoid", "methylprednisolone": "glucocorticoid",
               "mycophenolate": "mycophenolate", "hydroxychloroquine": "hydroxychloroquine"}
#: Common names of the kinds (a hint in the error, never accepted silently).
_KIND_ALIASES = {"prednisone": "glucocorticoid", "prednisolone": "glucocorticoid",
                 "steroid": "glucocorticoid", "mmf": "mycophenolate", "hcq": "hydroxychloroquine",
                 "cyc": "cyclophosphamide", "rtx": "rituximab", "cart": "car_t",
                 "car-t": "car_t", "mp": "methylprednisolone", "ivmp": "methylprednisolone"}

DOSE_REQUIRED = ("TIME", "AMT")
DOSE_OPTIONAL = ("ID", "II", "ADDL", "EVID", "SOURCE")
#: NONMEM data items that are read but not used (observation rows are skipped).
DOSE_IGNORED = ("DV", "MDV")
#: NONMEM data items the engine cannot honour: refused unless blank or 0 on every dose row.
DOSE_UNSUPPORTED = {"RATE": "doses are instantaneous (bolus) jumps; infusions are not modelled",
                    "SS": "steady-state dosing is not modelled; write the doses out"}
_DOSE_COLUMNS = (*DOSE_REQUIRED, "KIND", "CMT", *DOSE_OPTIONAL, *DOSE_IGNORED,
                 *DOSE_UNSUPPORTED)

#: Record fields -> the table column a problem with them points at.
_FIELD_COLUMN = {"amount": "AMT", "dose": "AMT", "cells": "AMT", "oral_mg": "AMT",
                 "pulse_mg": "AMT", "time": "TIME", "start": "TIME", "interval": "II",
                 "count": "ADDL", "pulse_days": "ADDL", "stop": "ADDL", "source": "SOURCE"}

#: A non-parameter population column this close to a parameter name is taken for a misspelt
#: parameter (difflib ratio), unless it is listed in ``cohort.covariates``.
TYPO_CUTOFF = 0.88


# --- reading a table ----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Frame:
    """A table as read: its label for messages, cells as objects, file line of each data row."""

    name: str
    df: pd.DataFrame
    lines: np.ndarray | None  # (n_rows,) file lines; None for a DataFrame
    rows: np.ndarray | None = None  # (n_rows,) 1-based data rows, if some were dropped

    def at(self, i: int, col: str | None = None) -> str:
        """``doses.csv, row 3 (line 5), column AMT`` for the ``i``-th row of ``df``."""
        out = f"{self.name}, row {i + 1 if self.rows is None else int(self.rows[i])}"
        if self.lines is not None:
            out += f" (line {int(self.lines[i])})"
        return out + (f", column {col}" if col else "")

    @property
    def header(self) -> str:
        return f"{self.name}, header" + (" (line 1)" if self.lines is not None else "")


def _missing(v: Any) -> bool:
    """Blank, NONMEM's ``.``, None, NaN or pandas' NA."""
    if isinstance(v, str):
        return v.strip() in ("", ".")
    try:
        return bool(pd.isna(v))
    except (TypeError, ValueError):  # not a scalar
        return False


def _show(v: Any) -> str:
    return repr(v.strip()) if isinstance(v, str) else repr(v)


def _label(source: TableSource, name: str | None) -> str:
    if name is not None:
        return name
    return "DataFrame" if isinstance(source, pd.DataFrame) else str(source)


def _frame(source: TableSource, name: str | None = None,
           base_dir: str | Path | None = None) -> _Frame:
    """Read a CSV file (``base_dir / source`` if relative) or take a DataFrame."""
    label = _label(source, name)
    if isinstance(source, pd.DataFrame):
        df = source
        if df.index.name is not None and str(df.index.name).strip().upper() == "ID":
            df = df.reset_index()
        cols = [str(c).strip() for c in df.columns]
        _check_header(label, cols, None)
        df = pd.DataFrame(df.to_numpy(dtype=object), columns=cols)
        return _Frame(label, df, None)
    if not isinstance(source, (str, os.PathLike)):
        raise ConfigError(f"{label}: {type(source).__name__} is invalid: expected a CSV file "
                          "name or a pandas DataFrame")
    path = Path(source)
    if base_dir is not None and not path.is_absolute():
        path = Path(base_dir) / path
    return _read_csv(label, path)


def _read_csv(label: str, path: Path) -> _Frame:
    try:
        size = path.stat().st_size
        if size > MAX_TABLE_BYTES:
            raise ConfigError(f"{label}: {size} bytes; expected a table under "
                              f"{MAX_TABLE_BYTES} bytes")
        raw = path.read_bytes()
    except OSError as e:
        raise ConfigError(f"{label}: cannot read the table ({path}: {e.strerror})") from None
    try:
        text = raw.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as e:
        raise ConfigError(f"{label}: not UTF-8 text (byte {raw[e.start]:#04x} at offset "
                          f"{e.start}); expected a CSV file") from None
    if "\x00" in text:
        raise ConfigError(f"{label}: binary data (a NUL byte); expected a CSV text file")
    rows: list[tuple[int, list[str]]] = []  # (file line where the record starts, cells)
    reader = csv.reader(io.StringIO(text, newline=""), skipinitialspace=True)
    start = 1
    try:
        for rec in reader:
            rows.append((start, rec))
            start = reader.line_num + 1  # a quoted cell may span lines
    except csv.Error as e:
        raise ConfigError(" ".join(f"{label}, line {start}: not valid CSV ({e})".split())
                          ) from None
    rows = [(ln, [c.strip() for c in r]) for ln, r in rows
            if any(c.strip() for c in r) and not r[0].lstrip().startswith("#")]
    if not rows:
        raise ConfigError(f"{label}: empty table; expected a header line naming the columns, "
                          "then one row per record")
    (head_line, header), body = rows[0], rows[1:]
    _check_header(label, header, head_line)
    for ln, r in body:
        if len(r) > len(header) and any(r[len(header):]):
            raise ConfigError(f"{label}, line {ln}: {len(r)} cells; expected at most "
                              f"{len(header)} (one per header column)")
    cells = [r[:len(header)] + [""] * (len(header) - len(r)) for _, r in body]
    df = pd.DataFrame(cells, columns=header, dtype=object)
    return _Frame(label, df, np.array([ln for ln, _ in body], dtype=np.int64))


def _check_header(label: str, cols: list[str], line: int | None) -> None:
    where = f"{label}, header" + (f" (line {line})" if line is not None else "")
    for j, c in enumerate(cols):
        if not c:
            raise ConfigError(f"{where}: column {j + 1} has no name; expected a name for "
                              "every column")
    seen: dict[str, int] = {}
    for j, c in enumerate(cols):
        k = c.upper()
        if k in seen:
            raise ConfigError(f"{where}: column '{c}' appears twice (columns {seen[k] + 1} and "
                              f"{j + 1}); expected each column once")
        seen[k] = j


def _numbers(f: _Frame, col: str, what: str = "a number") -> np.ndarray:
    """The numbers of column ``col``, NaN where blank (``""`` or ``.``); refuses text, inf, NaN
    written out and true/false, naming the first bad cell."""
    s = f.df[col]
    miss = s.map(_missing).to_numpy(dtype=bool)
    boolean = s.map(lambda v: isinstance(v, (bool, np.bool_))).to_numpy(dtype=bool)
    num = pd.to_numeric(s.where(~miss & ~boolean), errors="coerce").to_numpy(dtype=float)
    bad = ~miss & (boolean | ~np.isfinite(num))
    if bad.any():
        i = int(np.argmax(bad))
        raise ConfigError(f"{f.at(i, col)}: {_show(s.iloc[i])} is invalid: expected {what}")
    return np.where(miss, np.nan, num)


# --- dosing records -----------------------------------------------------------------------------


def read_doses(source: TableSource, *, name: str | None = None,
               base_dir: str | Path | None = None) -> pd.DataFrame:
    """Read and check a dosing-record table.

    Parameters
    ----------
    source : path or DataFrame
        A CSV file (relative paths start from ``base_dir``) or a DataFrame with the columns
        ``TIME``, ``AMT``, ``KIND`` (or ``CMT``) and optionally ``ID``, ``II``, ``ADDL``,
        ``EVID``, ``SOURCE`` (names in any case; ``DV`` and ``MDV`` are ignored).
    name : str, optional
        How messages name the table (default: the path, or ``"DataFrame"``).

    Returns
    -------
    pandas.DataFrame
        One row per dosing record (``EVID = 1``), indexed by its 1-based data row ``row``, with
        the columns ``TIME`` (d), ``AMT`` (unit by kind, :data:`DOSE_KINDS`; NaN for ``hsct``),
        ``II`` (d), ``ADDL`` (int), ``KIND`` (lower case) and ``SOURCE`` (``"bm"``/``"uc"`` for
        MSC rows, ``""`` otherwise). Observation rows (``EVID = 0``) are dropped with a
        :class:`~immunosim.experiments.config.ConfigWarning`.

    Raises
    ------
    ConfigError
        One line naming the file, row, column, bad value and what is expected.
    """
    return _dose_frame(_frame(source, name, base_dir))


#: Columns of the table :func:`read_doses` returns.
_READ_COLUMNS = ["TIME", "AMT", "II", "ADDL", "KIND", "SOURCE"]


def _dose_frame(f: _Frame) -> pd.DataFrame:
    cols = _dose_columns(f)
    f = _dose_rows(f, cols)
    n = len(f.df)

    def column(name: str, what: str) -> np.ndarray:
        return _numbers(f, cols[name], what) if name in cols else np.full(n, np.nan)

    time = column("TIME", "a day >= 0 (TIME, days from the start of the run)")
    amt = column("AMT", "an amount >= 0 (AMT; unit by KIND)")
    ii = column("II", "an interval >= 0 in days")
    addl = column("ADDL", "a whole number >= 0 of additional doses")
    out: dict[str, list] = {k: [] for k in _READ_COLUMNS}
    for i in range(n):
        kind = _kind(f, i, cols["KIND"])
        t = _nonneg(f, i, cols["TIME"], time[i], "TIME", required=True)
        a = _amount(f, i, cols["AMT"], amt[i], kind)
        interval = _nonneg(f, i, cols.get("II"), ii[i], "II")
        extra = _addl(f, i, cols.get("ADDL"), addl[i], kind)
        if extra > 0 and not interval > 0:
            raise ConfigError(f"{f.at(i, cols.get('II', 'II'))}: {interval:g} is invalid: "
                              f"ADDL = {extra} additional doses need II > 0 days")
        src = _source(f, i, cols.get("SOURCE"), kind)
        for k, v in zip(out, (t, a, interval, extra, kind, src)):
            out[k].append(v)
    df = pd.DataFrame(out, index=pd.Index(f.rows, name="row"))
    df.attrs["name"] = f.name
    if f.lines is not None:
        df.attrs["lines"] = f.lines.tolist()
    return df.astype({"ADDL": np.int64})


def _dose_columns(f: _Frame) -> dict[str, str]:
    """Upper-case column name -> the column as written (``CMT`` is filed under ``KIND``);
    refuses unknown, missing and unsupported columns."""
    cols = {c.upper(): c for c in f.df.columns}
    expected = (f"expected {', '.join(DOSE_REQUIRED)}, KIND (or CMT) and optionally "
                f"{', '.join(DOSE_OPTIONAL)}")
    for c in f.df.columns:
        if c.upper() not in _DOSE_COLUMNS:
            close = difflib.get_close_matches(c.upper(), _DOSE_COLUMNS, n=1, cutoff=0.6)
            hint = f"did you mean '{close[0]}'? " if close else ""
            raise ConfigError(f"{f.header}: unknown column '{c}'; {hint}{expected}")
    if "KIND" in cols and "CMT" in cols:
        raise ConfigError(f"{f.header}: both KIND and CMT columns; expected one of them naming "
                          "the intervention")
    if "CMT" in cols:
        cols["KIND"] = cols.pop("CMT")
    for req in DOSE_REQUIRED + ("KIND",):
        if req not in cols:
            what = "KIND (or CMT)" if req == "KIND" else req
            raise ConfigError(f"{f.header}: missing required column {what}; {expected}")
    return cols


def _dose_rows(f: _Frame, cols: dict[str, str]) -> _Frame:
    """The dosing rows (EVID 1 or blank), keeping their row numbers; observation rows (EVID 0)
    are dropped with a warning; IDs and the RATE / SS columns are checked on the rest."""
    n = len(f.df)
    evid = _numbers(f, cols["EVID"]) if "EVID" in cols else np.ones(n)
    for i, e in enumerate(evid):
        if not (np.isnan(e) or e in (0, 1)):
            raise ConfigError(f"{f.at(i, cols['EVID'])}: {_show(f.df[cols['EVID']].iloc[i])} "
                              "is not supported: expected 1 (a dose) or 0 (an observation row, "
                              "skipped); EVID 2-4 (other events, resets) are not modelled")
    dose = np.isnan(evid) | (evid == 1)
    skipped = int((~dose).sum())
    if skipped:
        warnings.warn(f"{f.name}: {skipped} observation row{'s' if skipped > 1 else ''} "
                      "(EVID 0) skipped; only dosing records (EVID 1) are used",
                      ConfigWarning, stacklevel=5)
    keep = np.nonzero(dose)[0]
    f = _Frame(f.name, f.df.iloc[keep].reset_index(drop=True),
               None if f.lines is None else f.lines[keep], keep + 1)
    if len(f.df) == 0:
        raise ConfigError(f"{f.name}: no dosing records; expected at least one row "
                          "(EVID 1 or blank)")
    if "ID" in cols:
        _refuse_ids(f, cols["ID"])
    for c, why in DOSE_UNSUPPORTED.items():
        if c in cols:
            v = _numbers(f, cols[c])
            bad = ~np.isnan(v) & (v != 0)
            if bad.any():
                i = int(np.argmax(bad))
                raise ConfigError(f"{f.at(i, cols[c])}: {_show(f.df[cols[c]].iloc[i])} is not "
                                  f"supported ({why}); expected 0 or blank")
    return f


def _refuse_ids(f: _Frame, col: str) -> None:
    """Per-patient schedules are not supported: every ID must be blank or ``.``."""
    for i, v in enumerate(f.df[col]):
        if not _missing(v):
            raise ConfigError(f"{f.at(i, col)}: {_show(v)} keys a per-patient schedule, which "
                              "is not supported: every patient of a scenario gets the same "
                              "schedule; expected '.' or blank (or leave out the ID column)")


def _kind(f: _Frame, i: int, col: str) -> str:
    v = f.df[col].iloc[i]
    valid = ", ".join(DOSE_KINDS)
    if _missing(v):
        raise ConfigError(f"{f.at(i, col)}: blank; expected the intervention, one of {valid}")
    k = str(v).strip().lower()
    if k in DOSE_KINDS:
        return k
    alias = _KIND_ALIASES.get(k)
    close = difflib.get_close_matches(k, DOSE_KINDS, n=1)
    hint = (f"; {v} is '{alias}'" if alias else f"; did you mean '{close[0]}'?" if close
            else "; CMT names the intervention here, not a compartment number"
            if k.replace(".", "").isdigit() else "")
    raise ConfigError(f"{f.at(i, col)}: {_show(v)} is not an intervention; expected one of "
                      f"{valid}{hint}")


def _nonneg(f: _Frame, i: int, col: str | None, v: float, what: str,
            required: bool = False) -> float:
    if np.isnan(v):
        if required:
            raise ConfigError(f"{f.at(i, col)}: blank; expected a day >= 0 ({what})")
        return 0.0
    if v < 0:
        raise ConfigError(f"{f.at(i, col)}: {v:g} is invalid: expected {what} >= 0 (days)")
    return float(v)


def _amount(f: _Frame, i: int, col: str, v: float, kind: str) -> float:
    unit = DOSE_KINDS[kind].amount
    if not unit:  # hsct: no amount
        if not np.isnan(v):
            raise ConfigError(f"{f.at(i, col)}: {v:g} is invalid for hsct: expected blank or "
                              "'.' (HSCT has no amount; set its other fields with hsct = "
                              "{ ... } in the config instead)")
        return float("nan")
    if np.isnan(v):
        raise ConfigError(f"{f.at(i, col)}: blank; expected the {kind} amount ({unit})")
    if v < 0:
        raise ConfigError(f"{f.at(i, col)}: {v:g} is invalid: expected an amount >= 0 "
                          f"({kind}: {unit})")
    return float(v)


#: Most additional doses of an oral course (a span of days: no dose list is built).
MAX_ORAL_ADDL = 10_000_000


def _addl(f: _Frame, i: int, col: str | None, v: float, kind: str) -> int:
    if np.isnan(v):
        return 0
    top = MAX_ORAL_ADDL if kind in ORAL else MAX_DOSES - 1
    if v < 0 or v != int(v) or v > top:
        raise ConfigError(f"{f.at(i, col)}: {v:g} is invalid: expected a whole number of "
                          f"additional doses from 0 to {top} ({kind})")
    return int(v)


def _source(f: _Frame, i: int, col: str | None, kind: str) -> str:
    v = None if col is None else f.df[col].iloc[i]
    if _missing(v):
        return "bm" if kind == "msc" else ""
    s = str(v).strip().lower()
    if kind != "msc":
        raise ConfigError(f"{f.at(i, col)}: {_show(v)} is invalid for {kind}: SOURCE is the "
                          "MSC source; expected blank on other rows")
    if s not in ("bm", "uc"):
        raise ConfigError(f"{f.at(i, col)}: {_show(v)} is invalid: expected 'bm' (bone marrow) "
                          "or 'uc' (umbilical cord)")
    return s


def dose_records(source: TableSource, *, horizon: float | None = None,
                 name: str | None = None, base_dir: str | Path | None = None) -> dict:
    """The scenario keys a dosing table stands for: ``{"msc": [...], "hsct": {...},
    "therapy": [...]}`` (only the keys it uses), each record as in a TOML config.

    ``source`` is a table for :func:`read_doses` or the DataFrame it returned. Oral courses end
    at ``TIME + (ADDL + 1) * II``; one that would end at or after ``horizon`` is kept to the end
    of the run. Each record is checked as the config checks it (its problems name the row and
    column), its doses must fall within ``horizon`` (if given), oral courses of one drug must
    not overlap, and values that look like a unit slip raise a ConfigWarning naming the row.
    """
    if isinstance(source, pd.DataFrame) and source.index.name == "row" and \
            list(source.columns) == _READ_COLUMNS:
        df = source  # what read_doses returned
    else:
        df = read_doses(source, name=name, base_dir=base_dir)
    label = df.attrs.get("name", _label(source, name))
    lines = df.attrs.get("lines")
    at = _Frame(label, df, None if lines is None else np.asarray(lines),
                df.index.to_numpy()).at
    msc, therapy, hsct, courses = [], [], [], []
    for i, (_, r) in enumerate(df.iterrows()):
        kind = r["KIND"]
        slot, rec = _record(r, horizon)
        where = at(i)
        built = _checked(slot, rec, kind, where, r)
        if horizon is not None:
            _within(built, kind, where, r, horizon)
        _warn_slip(slot, rec, where)
        if kind in _DOSE_STATE:
            end = (float(rec["start"]) + rec["pulse_days"] if kind == "methylprednisolone"
                   else math.inf if rec.get("stop") is None else float(rec["stop"]))
            courses.append((_DOSE_STATE[kind], float(rec["start"]), end, where))
        {"msc": msc, "therapy": therapy, "hsct": hsct}[slot].append((r["TIME"], i, rec))
    _no_overlap(courses)
    if len(hsct) > 1:
        raise ConfigError(f"{label}: {len(hsct)} hsct rows; expected at most one transplant "
                          "per scenario")
    out: dict[str, Any] = {}
    if msc:
        out["msc"] = [rec for *_, rec in sorted(msc, key=lambda x: x[:2])]
    if hsct:
        out["hsct"] = hsct[0][2]
    if therapy:  # time order: a course ending on the day the next starts comes first
        out["therapy"] = [rec for *_, rec in sorted(therapy, key=lambda x: x[:2])]
    return out


def _record(r: pd.Series, horizon: float | None) -> tuple[str, dict]:
    """The config record of one dosing row."""
    kind, t, a, ii, n = r["KIND"], float(r["TIME"]), float(r["AMT"]), float(r["II"]), \
        int(r["ADDL"]) + 1
    if kind == "msc":
        return "msc", {"amount": a, "time": t, "interval": ii, "count": n, "source": r["SOURCE"]}
    if kind == "hsct":
        return "hsct", {"time": t}
    if kind in ("cyclophosphamide", "rituximab"):
        return "therapy", {"drug": kind, "dose": a, "time": t, "interval": ii, "count": n}
    if kind == "car_t":
        return "therapy", {"drug": kind, "time": t, "cells": a}
    if kind == "methylprednisolone":
        return "therapy", {"drug": "glucocorticoid", "start": t, "pulse_mg": a, "pulse_days": n}
    stop: float | None = t + n * ii
    if horizon is not None and stop >= horizon:
        stop = None  # the course runs past the end of the run
    return "therapy", {"drug": kind, "start": t, ORAL[kind]: a / ii if ii > 0 else a,
                       "stop": stop}


def _checked(slot: str, rec: dict, kind: str, where: str, r: pd.Series):
    """The model record of ``rec``, validated as the config does; a problem names the column
    it comes from."""
    if kind in ("hsct", "car_t") and r["ADDL"] > 0:
        col, msg = "ADDL", f"{r['ADDL']} is invalid for {kind}: expected 0 (one {kind} per row)"
    elif kind in ORAL and not r["II"] > 0:
        col, msg = "II", (f"{r['II']:g} is invalid for {kind}: expected the dosing interval > 0 "
                          "days (an oral course: e.g. II = 1 and ADDL = 179 for 180 daily "
                          "doses)")
    elif kind == "methylprednisolone" and r["ADDL"] > 0 and r["II"] != 1:
        col, msg = "II", (f"{r['II']:g} is invalid for methylprednisolone: pulses are on "
                          "consecutive days; expected II = 1")
    elif kind == "hsct" and r["II"] > 0:
        col, msg = "II", f"{r['II']:g} is invalid for hsct: expected 0 or blank"
    else:
        model = {"msc": MSCConfig, "hsct": HSCTConfig}.get(slot)
        try:
            return (model(**rec) if model is not None else _THERAPY.validate_python(rec)).build()
        except ValidationError as e:
            err = e.errors()[0]
            msg = str(err["msg"]).removeprefix("Value error, ")
            field = str(err["loc"][-1]) if err["loc"] else msg.partition(":")[0]
            col = _FIELD_COLUMN.get(field, "AMT")
            msg = f"{_value(r, col)} is invalid for {kind} ({msg})"
    raise ConfigError(f"{where}, column {col}: {msg}")


def _value(r: pd.Series, col: str) -> str:
    v = r[col]
    return f"{v:g}" if isinstance(v, (float, int, np.number)) else repr(v)


def _within(built, kind: str, where: str, r: pd.Series, horizon: float) -> None:
    times = np.asarray(built.dose_times(), dtype=float)
    if times.size and times.max() > horizon:
        col = "TIME" if r["TIME"] > horizon else "ADDL"
        raise ConfigError(f"{where}, column {col}: puts a {kind} dose at day {times.max():g}, "
                          f"after the horizon ({horizon:g} d); expected every dose within it")


def _warn_slip(slot: str, rec: dict, where: str) -> None:
    """A ConfigWarning naming the row for a value that looks like a unit slip."""
    if slot == "msc" and 0 < rec["amount"] < 1e3:
        warnings.warn(f"{where}, column AMT: {rec['amount']:g} cells/kg is tiny; AMT is MSC "
                      "cells per kg (1e6, not 1)", ConfigWarning, stacklevel=5)
    if slot == "therapy":
        for field, msg in _THERAPY.validate_python(rec).suspicious():
            warnings.warn(f"{where}, column {_FIELD_COLUMN.get(field, 'AMT')}: {msg}",
                          ConfigWarning, stacklevel=5)


def _no_overlap(courses: list[tuple[str, float, float, str]]) -> None:
    """Oral courses of one drug hold one daily dose: a course must end before the next starts."""
    for state in {c[0] for c in courses}:
        mine = sorted((c for c in courses if c[0] == state), key=lambda c: c[1])
        for a, b in zip(mine, mine[1:]):
            if b[1] < a[2]:
                end = "the end of the run" if math.isinf(a[2]) else f"day {a[2]:g}"
                raise ConfigError(f"{b[3]}, column TIME: {b[1]:g} is invalid: this {state} "
                                  f"course starts before the course of {a[3]} ends ({end}); "
                                  "the model holds one daily dose per drug, so courses must "
                                  "not overlap (write a dose change as consecutive courses)")


# --- population tables --------------------------------------------------------------------------


def read_population(source: TableSource, *, covariates: list[str] | None = None,
                    name: str | None = None, base_dir: str | Path | None = None
                    ) -> pd.DataFrame:
    """Read and check a population table: one row per patient.

    Parameters
    ----------
    source : path or DataFrame
        A CSV file (relative paths start from ``base_dir``) or a DataFrame (an index named
        ``ID`` counts as the ID column).
    covariates : list of str, optional
        The covariate columns. Given, every other column must be ``ID`` or a model parameter.
        Left out, every column that is not a parameter is a covariate, except one that looks
        like a misspelt parameter name (refused with the suggestion).
    name : str, optional
        How messages name the table.

    Returns
    -------
    pandas.DataFrame
        Indexed by ``ID`` (str), shape (n_patients, n_columns): parameter columns as floats (in
        the parameter's unit, ``immunosim info``), covariates as floats (NaN where blank) or
        strings. ``df.attrs["parameters"]`` and ``df.attrs["covariates"]`` list the columns.

    Raises
    ------
    ConfigError
        Missing ID column, blank or duplicate IDs, non-numeric or out-of-domain parameter
        values, unknown parameter columns, reserved covariate names, an empty table: one line
        naming the file, row, column, the bad value and what is expected. A value inside the
        hard domain but outside the plausible range gives a ConfigWarning.
    """
    return _population_frame(_frame(source, name, base_dir), covariates)


def _population_frame(f: _Frame, covariates: list[str] | None) -> pd.DataFrame:
    ids = [c for c in f.df.columns if c.upper() == "ID"]
    if not ids:
        raise ConfigError(f"{f.header}: missing required column ID; expected ID, then model "
                          "parameters by name (immunosim info) and covariate columns")
    id_col = ids[0]
    params, covs = _classify(f, id_col, covariates)
    if len(f.df) == 0:
        raise ConfigError(f"{f.name}: no patients; expected one row per patient after the "
                          "header")
    id_values = _ids(f, id_col)
    out: dict[str, Any] = {}
    for col in params:
        vals = _numbers(f, col, f"a number ({col}, {m.PARAMETERS[col].unit})")
        blank = np.isnan(vals)
        if blank.any():
            i = int(np.argmax(blank))
            raise ConfigError(f"{f.at(i, col)}: blank; expected a value of {col} for every "
                              "patient (leave the column out to use a distribution or the "
                              "default)")
        _check_domain(f, col, vals)
        out[col] = vals
    for col in covs:
        out[col] = _covariate(f, col)
    df = pd.DataFrame(out, index=pd.Index(id_values, name="ID"))
    df.attrs.update(name=f.name, parameters=params, covariates=covs)
    return df


def _classify(f: _Frame, id_col: str, covariates: list[str] | None) -> tuple[list, list]:
    """(parameter columns, covariate columns), in table order."""
    cols = [c for c in f.df.columns if c != id_col]
    if covariates is not None:
        for c in covariates:
            if c not in cols:
                raise ConfigError(f"{f.header}: no column '{c}', listed in cohort.covariates; "
                                  f"expected one of {', '.join(cols) or '(no columns)'}")
    params, covs = [], []
    for c in cols:
        if c in m.PARAMETERS:
            if covariates is not None and c in covariates:
                raise ConfigError(f"{f.header}, column {c}: '{c}' is a model parameter, listed "
                                  "in cohort.covariates; expected it in one role (remove it "
                                  "from covariates, or rename the column)")
            params.append(c)
            continue
        if covariates is None or c not in covariates:
            close = difflib.get_close_matches(c, m.PARAMETER_NAMES, n=1, cutoff=TYPO_CUTOFF
                                              if covariates is None else 0.6)
            if close or covariates is not None:
                hint = f"did you mean '{close[0]}'? " if close else ""
                fix = ("; list it in cohort.covariates if it is a covariate" if covariates
                       is None else " or a column listed in cohort.covariates")
                raise ConfigError(f"{f.header}, column {c}: unknown parameter '{c}'; {hint}"
                                  f"expected a model parameter name (immunosim info){fix}")
        if is_reserved(c):
            raise ConfigError(f"{f.header}, column {c}: '{c}' is a name of the result itself; "
                              "expected another covariate name (rename the column)")
        covs.append(c)
    return params, covs


def _ids(f: _Frame, col: str) -> list[str]:
    out: list[str] = []
    first: dict[str, int] = {}
    for i, v in enumerate(f.df[col]):
        if _missing(v):
            raise ConfigError(f"{f.at(i, col)}: blank; expected a patient ID on every row")
        s = (str(int(v)) if isinstance(v, (float, np.floating)) and float(v).is_integer()
             else str(v).strip())
        if s in first:
            raise ConfigError(f"{f.at(i, col)}: '{s}' is a duplicate of row {first[s] + 1}; "
                              "expected one row per patient (unique IDs)")
        first[s] = i
        out.append(s)
    return out


def _check_domain(f: _Frame, col: str, vals: np.ndarray) -> None:
    p = m.PARAMETERS[col]
    out = ~p.in_domain(vals)
    if out.any():
        i = int(np.argmax(out))
        raise ConfigError(f"{f.at(i, col)}: {domain_problem(col, vals[i:i + 1])}")
    odd = ~p.plausible(vals)
    if odd.any():
        i = int(np.argmax(odd))
        more = f" (and {int(odd.sum()) - 1} more rows)" if odd.sum() > 1 else ""
        warnings.warn(f"{f.at(i, col)}: {vals[i]:g} is outside the plausible range of {col} "
                      f"({p.low:g} to {p.high:g} {p.unit}){more}; allowed, but check it",
                      ConfigWarning, stacklevel=5)


def _covariate(f: _Frame, col: str) -> np.ndarray:
    """Numbers (NaN where blank) when every filled cell is a number, else strings."""
    s = f.df[col]
    miss = s.map(_missing).to_numpy(dtype=bool)
    num = pd.to_numeric(s.where(~miss), errors="coerce").to_numpy(dtype=float)
    if np.all(miss | np.isfinite(num)):
        return np.where(miss, np.nan, num)
    return np.array(["" if x else str(v).strip() for v, x in zip(s, miss)], dtype=object)


def population_table(source: TableSource, *, covariates: list[str] | None = None,
                     name: str | None = None, base_dir: str | Path | None = None) -> dict:
    """The ``cohort.table`` entry of a config for a population table (``file``, ``ids``,
    ``parameters``, ``covariates``): its content, so the config digest covers it."""
    df = read_population(source, covariates=covariates, name=name, base_dir=base_dir)
    return _table_entry(df)


def _table_entry(df: pd.DataFrame) -> dict:
    covs = {}
    for c in df.attrs["covariates"]:
        v = df[c].to_numpy()
        covs[c] = ([None if x != x else float(x) for x in v] if v.dtype.kind == "f"
                   else [str(x) for x in v])
    return {"file": df.attrs["name"], "ids": [str(i) for i in df.index],
            "parameters": {c: df[c].astype(float).tolist() for c in df.attrs["parameters"]},
            "covariates": covs}


# --- configs: tables in place of their names ----------------------------------------------------


def resolve_tables(data: dict, local_cohort: Any, base_dir: str | Path | None,
                   included_dir: str | Path | None = None) -> dict:
    """``data`` (a config dict) with each ``scenarios.NAME.doses`` and ``cohort.table`` read
    and put in place: dosing rows become the scenario's records, the population table its
    content. Not modified in place.

    Parameters
    ----------
    data : dict
        The config, with an included cohort already merged.
    local_cohort : object
        The config's own ``[cohort]`` table before the include (its ``size`` is checked against
        the table's rows; an included ``size`` is replaced).
    base_dir : path or None
        Where relative table paths start (the config file's directory).
    included_dir : path or None
        The included cohort file's directory, for a ``table`` that came from it.
    """
    data = dict(data)
    horizon = data.get("horizon", 730.0)
    horizon = float(horizon) if isinstance(horizon, (int, float)) and not isinstance(
        horizon, bool) and horizon > 0 else None
    scenarios = data.get("scenarios")
    if isinstance(scenarios, dict):
        data["scenarios"] = {k: (_resolve_doses(k, v, base_dir, horizon)
                                 if isinstance(v, dict) and "doses" in v else v)
                             for k, v in scenarios.items()}
    cohort = data.get("cohort")
    if isinstance(cohort, dict) and "table" in cohort:
        local = local_cohort if isinstance(local_cohort, dict) else {}
        where = base_dir if "table" in local or included_dir is None else included_dir
        data["cohort"] = _resolve_population(cohort, local, where, data)
    return data


def _is_source(v: Any) -> bool:
    return isinstance(v, (str, os.PathLike, pd.DataFrame))


def _needs_dir(key: str, v: Any, base_dir) -> None:
    if base_dir is None and not isinstance(v, pd.DataFrame) and not Path(v).is_absolute():
        raise ConfigError(f"{key}: '{v}' needs a base directory for the file; use "
                          "load_config(path) or parse_config(data, base_dir=...), or pass a "
                          "DataFrame")


def _resolve_doses(name: str, sc: dict, base_dir, horizon: float | None) -> dict:
    key = f"scenarios.{name}.doses"
    src = sc["doses"]
    if not _is_source(src):
        return sc  # already resolved (a dumped config), or invalid: the schema says which
    _needs_dir(key, src, base_dir)
    label = (f"{key} (DataFrame)" if isinstance(src, pd.DataFrame) else str(src))
    recs = dose_records(src, horizon=horizon, name=label, base_dir=base_dir)
    out = dict(sc)
    msc = sc.get("msc")
    own_msc = [msc] if isinstance(msc, dict) else list(msc) if isinstance(msc, list) else None
    if recs.get("msc"):
        if own_msc is None and msc is not None:
            return sc  # an invalid msc entry: the schema refuses it
        out["msc"] = (own_msc or []) + recs["msc"]
    if "hsct" in recs:
        if sc.get("hsct") is not None:
            raise ConfigError(f"{key}: {label} has an hsct row and the scenario has its own "
                              "hsct; expected one transplant per scenario")
        out["hsct"] = recs["hsct"]
    therapy = sc.get("therapy", [])
    if recs.get("therapy") and isinstance(therapy, list):
        out["therapy"] = list(therapy) + recs["therapy"]
    out["doses"] = {"file": "DataFrame" if isinstance(src, pd.DataFrame) else str(src),
                    "records": sum(len(recs.get(k, [])) for k in ("msc", "therapy"))
                    + ("hsct" in recs),
                    "msc_from": len(own_msc or []), "therapy_from": len(therapy)
                    if isinstance(therapy, list) else 0}
    return out


def _resolve_population(cohort: dict, local: dict, base_dir, data: dict) -> dict:
    src = cohort["table"]
    if not _is_source(src):
        return cohort  # already resolved, or invalid: the schema says which
    _needs_dir("cohort.table", src, base_dir)
    covs = cohort.get("covariates")
    if covs is not None and not (isinstance(covs, list) and all(isinstance(c, str)
                                                                for c in covs)):
        raise ConfigError(f"cohort.covariates: {covs!r} is invalid: expected a list of column "
                          "names")
    label = "cohort.table (DataFrame)" if isinstance(src, pd.DataFrame) else str(src)
    df = read_population(src, covariates=covs, name=label, base_dir=base_dir)
    # A size given with the table (both local, or both from the included file) must agree;
    # an included size is replaced by a local table's.
    size = local.get("size") if "size" in local or "table" in local else cohort.get("size")
    if size is not None and size != len(df):
        raise ConfigError(f"cohort.size: {size!r} is invalid: cohort.table '{label}' has "
                          f"{len(df)} patients, which is the cohort; leave size out")
    axes = (data.get("sweep") or {}).get("axes") if isinstance(data.get("sweep"), dict) else None
    for c in df.attrs["covariates"]:
        if isinstance(axes, Mapping) and c in axes:
            raise ConfigError(f"{label}, header, column {c}: '{c}' is also a sweep axis name; "
                              "expected another covariate name (rename the column or the axis)")
    entry = _table_entry(df)
    if isinstance(src, pd.DataFrame):
        entry["file"] = "DataFrame"
    return {**cohort, "table": entry, "size": len(df)}
