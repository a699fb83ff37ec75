"""The summary that ``immunosim run`` and ``immunosim sweep`` print: labelled statistics per
scenario, for all sweep points pooled and for chosen points.

Without sweep points (``immunosim run``, a sweep without axes) one table compares the scenarios
side by side. Otherwise each scenario gets its own table: a column for its points pooled, then
one column per point when there are at most ``max_points``, or the points with the highest and
lowest share of sustained remission, or the points chosen with ``select`` (``--select
amount=1e6``). The first rows give each column's axis values; every statistic names what it
counts and over whom (``sustained remission by 365 d: 42% (126/300)``). Axes that do not set a
scenario (their ``scenarios`` attribute) are held at their first value for it: its runs are the
same along them.
"""

from __future__ import annotations

import itertools
import textwrap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import xarray as xr

from ..errors import ImmunosimError
from .posterior import credible_interval, has_draws

#: Every point of a scenario gets its own column when it has at most this many.
MAX_POINTS = 4
#: Dimensions of a result that are not sweep points.
_RUN_DIMS = ("patient", "replicate")
_NEEDED = ("status", "remission", "time_to_remission", "response", "flare", "relapse", "death",
           "activity_at")


class SelectError(ImmunosimError, ValueError):
    """A bad ``--select``; one line naming the key, the value and the valid ones."""


def parse_select(items: Sequence[str] | None) -> dict[str, list[str]]:
    """``["amount=1e6", "interval=30,90"]`` -> ``{"amount": ["1e6"], "interval": ["30", "90"]}``."""
    out: dict[str, list[str]] = {}
    for item in items or ():
        name, eq, values = item.partition("=")
        if not eq or not name.strip() or not values.strip():
            raise SelectError(f"--select: {item!r} is invalid: expected AXIS=VALUE (e.g. "
                              "amount=1e6; several values: interval=30,90)")
        out.setdefault(name.strip(), []).extend(v.strip() for v in values.split(","))
    return out


def format_value(v) -> str:
    """``3e5``, ``91``, ``0.15``, names (and booleans) as they are; ``-`` for NaN: how the
    summary (and the HTML report) print a coordinate or a statistic."""
    if isinstance(v, (str, np.str_, bool, np.bool_)):
        return str(v)
    v = float(v)
    if v != v:
        return "-"
    text = f"{v:.4g}"
    if "e" in text:
        mant, exp = text.split("e")
        text = f"{mant}e{int(exp)}"
    return text


def _pct(k: int, n: int, ci: str = "") -> str:
    return f"{100 * k / n:.0f}%{ci} ({k}/{n})" if n else "-"


def _median_iqr(x: np.ndarray) -> str:
    x = x[np.isfinite(x)]
    if not x.size:
        return "-"
    q1, med, q3 = np.percentile(x, [25, 50, 75])
    return f"{med:.4g} [{q1:.4g}-{q3:.4g}]"


def _point_dims(ds: xr.Dataset) -> list[str]:
    return [d for d in ds["status"].dims if d not in ("scenario", *_RUN_DIMS)]


def _matches(coord: xr.DataArray, wanted: list[str]) -> np.ndarray:
    vals = np.asarray(coord.values)
    if vals.dtype.kind in "USO":
        return np.isin(vals.astype(str), wanted)
    hit = np.zeros(vals.shape, dtype=bool)
    for w in wanted:
        try:
            v = float(w)
        except ValueError:
            raise SelectError(f"--select: {coord.name} = {w!r} is not a number") from None
        hit |= np.isclose(vals.astype(float), v, rtol=1e-9, atol=0.0)
    return hit


def _apply_select(ds: xr.Dataset, select: Mapping[str, list[str]]) -> xr.Dataset:
    """``ds`` restricted to the chosen scenarios and axis values (each key a dimension or a
    coordinate along the sweep points, such as an axis of a random design)."""
    pdims = _point_dims(ds)
    valid = ["scenario"] + [c for c in ds.coords if c != "scenario" and ds[c].dims
                            and set(ds[c].dims) <= set(pdims)]
    for name, wanted in select.items():
        if name not in valid:
            raise SelectError(f"--select: '{name}' is not a scenario or sweep axis of the "
                              f"result; valid: {', '.join(valid)}")
        hit = _matches(ds[name], wanted)
        if not hit.any():
            shown = ", ".join(format_value(v) for v in np.unique(ds[name].values)[:12])
            raise SelectError(f"--select: {name} = {','.join(wanted)} is not in the result; "
                              f"valid: {shown}")
        (dim,) = ds[name].dims
        ds = ds.isel({dim: np.nonzero(hit)[0]})
    return ds


def _held(ds: xr.Dataset, scenario: str) -> tuple[xr.Dataset, list[str]]:
    """The scenario's runs with the axes that do not set it held at their first value."""
    d = ds.sel(scenario=scenario)
    held = [a for a in _point_dims(d) if a in d.coords and "scenarios" in d[a].attrs
            and scenario not in str(d[a].attrs["scenarios"]).split(", ")]
    return d.isel({a: 0 for a in held}), held


class _Column:
    """Statistics of one column: the runs of ``ds`` (every dimension pooled)."""

    def __init__(self, ds: xr.Dataset):
        self.ds = ds
        flat = {v: np.asarray(ds[v].transpose(..., *(("landmark",) if v == "activity_at"
                                                      else ())).values)
                for v in _NEEDED if v in ds}
        self.ok = (flat["status"] == 0).ravel()
        self.v = {k: (a.reshape(-1, a.shape[-1]) if k == "activity_at" else a.ravel())
                  for k, a in flat.items()}
        self.draws = has_draws(ds)

    def share(self, event: str, among: str | None = None, within: float | None = None) -> str:
        if event not in self.v or (among is not None and among not in self.v):
            return "-"
        at_risk = self.ok & (self.v[among].astype(bool) if among else True)
        hit = at_risk & self.v[event].astype(bool)
        if within is not None:
            hit &= self.v[f"time_to_{event}"] <= within
        ci = ""
        if self.draws and within is None and at_risk.any():
            iv = credible_interval(self.ds, event, among=among, keep=()).interval.values
            if np.isfinite(iv[[0, -1]]).all():
                ci = f" [{100 * iv[0]:.0f}-{100 * iv[-1]:.0f}]"
        return _pct(int(hit.sum()), int(at_risk.sum()), ci)

    def time_to(self, event: str) -> str:
        hit = self.ok & self.v[event]
        return _median_iqr(self.v[f"time_to_{event}"][hit])

    def activity(self, k: int) -> str:
        return _median_iqr(self.v["activity_at"][self.ok, k])


def _axis_cell(ds: xr.Dataset, name: str) -> str:
    vals = np.unique(np.asarray(ds[name].values))
    if vals.size == 1:
        return format_value(vals[0])
    if vals.dtype.kind in "USO":
        return f"{vals.size} values"
    return f"{format_value(vals.min())}..{format_value(vals.max())} ({vals.size} values)"


def _rows(columns: dict[str, xr.Dataset], axes: list[str], follow_up: float) -> pd.DataFrame:
    """The table: one row per axis value and statistic, one column per entry of ``columns``."""
    any_ds = next(iter(columns.values()))
    rows: dict[str, list[str]] = {}
    for a in axes:
        units = any_ds[a].attrs.get("units", "")
        rows[a + (f" ({units})" if units and units != "1" else "")] = [
            _axis_cell(d, a) for d in columns.values()]
    cols = [_Column(d) for d in columns.values()]
    rows["runs: successful/all"] = [f"{int(c.ok.sum())}/{c.ok.size}" for c in cols]
    if follow_up > 365:
        rows["sustained remission by 365 d"] = [c.share("remission", within=365) for c in cols]
    rows[f"sustained remission by {follow_up:g} d (end of follow-up)"] = [
        c.share("remission") for c in cols]
    rows["time to remission (d), median [IQR] of remitters"] = [
        c.time_to("remission") for c in cols]
    rows["relapse among remitters"] = [c.share("relapse", among="remission") for c in cols]
    rows["SRI-4 response (proxy)"] = [c.share("response") for c in cols]
    rows["flare among responders"] = [c.share("flare", among="response") for c in cols]
    rows["death"] = [c.share("death") for c in cols]
    for k, day in enumerate(np.asarray(any_ds.landmark.values)):
        rows[f"activity at {day:g} d (points), median [IQR]"] = [c.activity(k) for c in cols]
    return pd.DataFrame.from_dict(rows, orient="index", columns=list(columns))


def _text(df: pd.DataFrame) -> str:
    """The table as text, at least two spaces between columns (headers included)."""
    width = {c: 1 + max(len(c), *(len(v) for v in df[c])) for c in df}
    return df.to_string(col_space=width)


def _point_columns(d: xr.Dataset, max_points: int) -> dict[str, xr.Dataset]:
    """The columns of one scenario: all points pooled, then each point (at most
    ``max_points``) or the best and worst by the share of sustained remission."""
    pdims = _point_dims(d)
    shape = tuple(d.sizes[p] for p in pdims)
    n = int(np.prod(shape)) if shape else 1
    cols = {f"all {n} points" if n > 1 else "all": d}
    if n <= 1:
        return cols
    if n <= max_points:
        for i, idx in enumerate(itertools.product(*map(range, shape))):
            cols[f"point {i + 1}"] = d.isel(dict(zip(pdims, idx)))
        return cols
    ok = d.status == 0
    runs = [x for x in _RUN_DIMS if x in d.dims]
    p = ((d.remission & ok).sum(runs) / ok.sum(runs).where(ok.sum(runs) > 0)).transpose(*pdims)
    p = np.nan_to_num(np.asarray(p.values), nan=-1.0)
    for label, i in (("best remission", int(np.argmax(p))),
                     ("worst remission", int(np.argmin(np.where(p < 0, np.inf, p))))):
        cols[label] = d.isel(dict(zip(pdims, np.unravel_index(i, shape))))
    return cols


@dataclass(frozen=True)
class Summary:
    """The summary as tables (what :func:`summary_table` prints, for other renderers).

    Attributes
    ----------
    tables : list of (str, DataFrame)
        One ``(title, table)`` per scenario (title ``"scenario msc"``, possibly with the axes
        held for it), or a single ``("", table)`` with one column per scenario when no scenario
        has several sweep points. Rows are the axis values and statistics, columns the pooled
        points and the chosen points; cells are the printed strings.
    notes : list of str
        What the numbers are (one paragraph each).
    probabilities : Dataset or None
        Agent-based results only: the selected runs, for
        :func:`~immunosim.experiments.stochastic.probability_table`.
    """

    tables: list[tuple[str, pd.DataFrame]]
    notes: list[str]
    probabilities: xr.Dataset | None = None


def summary_tables(ds: xr.Dataset, select: Mapping[str, list[str]] | None = None,
                   max_points: int = MAX_POINTS) -> Summary:
    """The summary of a result as tables (see the module docstring and :func:`summary_table`,
    which prints them)."""
    sel = dict(select or {})
    res = _apply_select(ds[[v for v in _NEEDED if v in ds]], sel).load()
    fu = float(res.attrs.get("follow_up_days", res.attrs.get("horizon_days", np.nan)))
    scenarios = {str(s): _held(res, str(s)) for s in res.scenario.values}
    multi = any(_n_points(d) > 1 for d, _ in scenarios.values())
    # the axes: coordinates along the sweep points (grid dimensions, axes of a random design)
    pdims = _point_dims(res)
    axes = [d for d in pdims if d in res.coords] + [
        c for c in res.coords if c not in res.dims and res[c].dims
        and set(res[c].dims) <= set(pdims)]
    if multi:
        tables = [(_title(name, held), _rows(_point_columns(d, max_points), axes, fu))
                  for name, (d, held) in scenarios.items()]
    else:  # one table, a column per scenario
        tables = [("", _rows({n: d for n, (d, _) in scenarios.items()}, axes, fu))]
    probabilities = _apply_select(ds, sel) if "replicate" in res.dims else None
    return Summary(tables, _notes(res, multi, max_points), probabilities)


def summary_table(ds: xr.Dataset, select: Mapping[str, list[str]] | None = None,
                  max_points: int = MAX_POINTS) -> str:
    """The summary of a result as text (see the module docstring).

    Parameters
    ----------
    ds : Dataset
        A sweep result (``scenario``, sweep dimensions, ``patient``, [``replicate``]).
    select : mapping, optional
        Axis or ``scenario`` -> values to show (:func:`parse_select`); numbers match within a
        relative 1e-9.
    max_points : int
        A scenario with at most this many (selected) points shows each one.

    Returns
    -------
    str
        Percentages are ``k/n`` of the runs with ``status == 0`` (``n`` also among responders or
        remitters where the row says so); with posterior draws (a ``draw`` coordinate) followed
        by ``[lo-hi]``, the 95% interval across draws of the per-draw share.
    """
    s = summary_tables(ds, select, max_points)
    blocks = [(title + "\n" if title else "") + _text(df) for title, df in s.tables]
    text = "\n\n".join(blocks) + "\n" + "\n".join(textwrap.fill(n, 100) for n in s.notes)
    if s.probabilities is not None:
        from .stochastic import probability_table

        text += ("\n\nAgent-based engine: outcome probabilities per scenario and sweep point\n"
                 + probability_table(s.probabilities))
    return text


def _n_points(d: xr.Dataset) -> int:
    return int(np.prod([d.sizes[p] for p in _point_dims(d)]))


def _title(name: str, held: list[str]) -> str:
    extra = f" (not set by {', '.join(held)}: held at their first value)" if held else ""
    return f"scenario {name}{extra}"


def _notes(ds: xr.Dataset, multi: bool, max_points: int) -> list[str]:
    """What the numbers are, under the tables (one paragraph each)."""
    notes = ["k/n: runs with the outcome / runs with status 0 (among remitters or responders "
             "where named); times and landmarks in days after the origin (time_origin = "
             f"{ds.attrs.get('time_origin', 'start')})"]
    if multi:
        notes.append(f"columns: all points pooled, then each point (at most {max_points}) or the "
                     "points with the best and worst share of sustained remission; choose "
                     "points with --select AXIS=VALUE")
    failed = int((ds.status != 0).sum())
    if failed:
        notes.append(f"{failed} runs failed or had no diseased state; see the 'status' variable")
    if has_draws(ds):
        k = int(ds.draw.max()) + 1
        notes.append(f"x% [lo-hi]: pooled over all {k} posterior draws, then the 95% interval "
                     "across draws of the per-draw percentage (subjects shared by every draw)")
    return notes
