"""``immunosim report RESULT -o report.html``: one self-contained HTML page about a sweep result.

The page is for modellers comparing scenarios. It holds, in order:

* the title and **provenance**: the result file, the immunosim version that wrote it (and the one
  that wrote the report), the model and its digest, the config name, digest and description, the
  seed, engine and solver, the horizon and time origin, dates, and the config text itself (in a
  collapsible ``<details>``, with an included cohort file);
* the **design**: scenarios and sweep axes with their units and values;
* the **cohort**: its size (posterior draws x subjects), the parameter distributions of the
  config, the parameters and covariates of the simulated patients (quantiles, and every patient
  in a collapsible table), the posterior rows used;
* the **outcome tables** of :func:`immunosim.experiments.summary.summary_tables` (the summary
  ``immunosim run`` and ``immunosim sweep`` print, as HTML tables, with its notes) and, for the
  agent-based engine, :func:`immunosim.experiments.stochastic.probability_frame`;
* every **figure** the result supports (:func:`immunosim.plotting.api.draw_figures`), as PNG data
  URIs with their captions, and the figures skipped with the reason.

``select`` and ``subgroup`` act as in ``immunosim plot`` (a value per axis, nearest within 5% for
floats; patient conditions such as ``activation_rate>q75``) and restrict the tables as well as
the figures, so that every number on the page describes the same runs.

:func:`write_report` writes atomically (a temporary file in the same directory, then a rename)
and refuses to replace an existing file unless ``overwrite=True``.
"""

from __future__ import annotations

import base64
import datetime
import io
import json
import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from ..errors import ImmunosimError
from ..experiments.results import open_result
from ..experiments.stochastic import probability_frame
from ..experiments.summary import format_value as _num
from ..experiments.summary import summary_tables
from ..plotting import parse_select, select_subgroup
from ..plotting._select import resolve_select
from ..plotting.api import draw_figures, write_png

__all__ = ["ReportError", "render_report", "write_report"]

#: Variables a result needs for a report (those of the outcome tables).
NEEDED = ("status", "remission", "time_to_remission", "response", "flare", "relapse", "death",
          "activity_at")
#: Patients listed one by one in the cohort section (the quantile tables cover them all).
MAX_PATIENT_ROWS = 200
#: A scenario with at most this many sweep points also gets a table with a row per point.
MAX_POINT_ROWS = 500
#: Values of a sweep axis listed in the design table before "...".
MAX_AXIS_VALUES = 12
#: Coordinates along ``patient`` that are not covariates.
_NOT_COVARIATES = ("patient", "cohort_redraws", "draw", "subject")


class ReportError(ImmunosimError, ValueError):
    """The report cannot be written (not a sweep result, output exists, no such directory); the
    message is one line naming the path or option and what is expected."""


# --- formatting ---------------------------------------------------------------------------------


def _html_table(df: pd.DataFrame, table_id: str, index: bool = True, kind: str = "data") -> str:
    """``df`` as an escaped HTML table with id ``table_id`` (pandas ``to_html``); ``kind``
    ``"data"`` right-aligns the cells (numbers), ``"text"`` left-aligns them."""
    return df.to_html(table_id=table_id, classes=kind, border=0, escape=True, index=index,
                      na_rep="-")


def _png_data_uri(fig, dpi: float | None = None) -> tuple[str, int, int]:
    """A figure as a palette PNG data URI (:func:`~immunosim.plotting.api.write_png`) and its
    width and height in pixels."""
    from PIL import Image

    buf = io.BytesIO()
    if dpi is None:
        write_png(fig, buf)
    else:
        write_png(fig, buf, dpi)
    data = buf.getvalue()
    with Image.open(io.BytesIO(data)) as im:
        w, h = im.size
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii"), w, h


def _utc(t: float | None = None) -> str:
    when = (datetime.datetime.now(datetime.timezone.utc) if t is None else
            datetime.datetime.fromtimestamp(t, datetime.timezone.utc))
    return when.strftime("%Y-%m-%d %H:%M UTC")


# --- sections -----------------------------------------------------------------------------------


def _config(ds: xr.Dataset) -> dict:
    try:
        return json.loads(ds.attrs.get("config_json", "{}"))
    except (TypeError, ValueError):
        return {}


def _provenance(ds: xr.Dataset, cfg: dict, source: str, modified: float | None
                ) -> list[tuple[str, str]]:
    """Label -> value rows: where the result comes from and how it was computed."""
    from .. import __version__

    a = ds.attrs
    rows = [("result", source),
            ("immunosim", f"{a.get('immunosim_version', '?')} (wrote the result); "
                          f"{__version__} (wrote this report)"),
            ("model", f"{a.get('model', '?')} (digest {a.get('model_digest', '?')})"),
            ("config", f"{cfg.get('name', '?')} (digest {a.get('config_digest', '?')})")]
    if a.get("description"):
        rows.append(("description", str(a["description"])))
    rows.append(("seed", str(a.get("seed", "?"))))
    if str(a.get("engine", "ode")) == "abm":
        size = (cfg.get("engine") or {}).get("system_size", np.nan)
        engine = (f"agent-based: {ds.sizes.get('replicate', '?')} replicates, system size "
                  f"{_num(size)}")
    else:
        engine = f"ODE, {a.get('solver_method', '?')}"
        if "rtol" in a:
            engine += f" (rtol {_num(a['rtol'])}, atol {_num(a['atol'])})"
    rows.append(("engine", engine))
    rows.append(("horizon", f"{_num(a.get('horizon_days', np.nan))} d; outcomes from "
                            f"time_origin = {a.get('time_origin', 'start')}, follow-up "
                            f"{_num(a.get('follow_up_days', np.nan))} d"))
    runs = ds.status.size
    failed = int((ds.status != 0).sum())
    rows.append(("runs", f"{runs} ({failed} failed or without a diseased state)"))
    if modified is not None:
        rows.append(("result modified", _utc(modified)))
    rows.append(("report written", _utc()))
    return rows


def _design(ds: xr.Dataset) -> pd.DataFrame:
    """One row per sweep axis: what it sets, its units, its values and the scenarios it sets."""
    rows = {}
    for name, c in ds.coords.items():
        if "sweep_target" not in c.attrs:
            continue
        vals = np.unique(np.asarray(c.values))
        shown = ", ".join(_num(v) for v in vals[:MAX_AXIS_VALUES])
        if vals.size > MAX_AXIS_VALUES:
            shown += f", ... ({vals.size} values)"
        rows[str(name)] = {"sets": c.attrs["sweep_target"],
                           "description": c.attrs.get("long_name", ""),
                           "units": c.attrs.get("units", ""), "values": shown,
                           "scenarios": c.attrs.get("scenarios", "all")}
    return pd.DataFrame.from_dict(rows, orient="index",
                                  columns=["sets", "description", "units", "values", "scenarios"])


def _spec_table(cfg: dict) -> pd.DataFrame:
    """The cohort's parameter distributions as the config states them (unset fields left out)."""
    from ..model import sle_msc as m

    spec = (cfg.get("cohort") or {}).get("parameters") or {}
    rows = {}
    for name, p in spec.items():
        row = {"unit": m.PARAMETERS[name].unit if name in m.PARAMETERS.index else ""}
        row.update({k: (_num(v) if not isinstance(v, str) else v) for k, v in p.items()
                    if v is not None and v is not False})
        rows[name] = row
    return pd.DataFrame.from_dict(rows, orient="index").fillna("")


def _quantiles(values: Mapping[str, np.ndarray], units: Mapping[str, str]) -> pd.DataFrame:
    """Min, quartiles and max of each numeric column (formatted as the summary does)."""
    rows = {}
    for name, x in values.items():
        x = np.asarray(x, dtype=float)
        x = x[np.isfinite(x)]
        q = np.percentile(x, [0, 25, 50, 75, 100]) if x.size else [np.nan] * 5
        rows[name] = {"unit": units.get(name, ""), "min": _num(q[0]), "25%": _num(q[1]),
                      "median": _num(q[2]), "75%": _num(q[3]), "max": _num(q[4])}
    return pd.DataFrame.from_dict(rows, orient="index")


def _patients(ds: xr.Dataset, cfg: dict) -> pd.DataFrame:
    """One row per patient: posterior draw and subject, the parameters that differ between
    patients (or that the cohort draws), the covariates."""
    cols: dict[str, np.ndarray] = {}
    for c in ("draw", "subject"):
        if c in ds.coords and ds[c].dims == ("patient",):
            cols[c] = np.asarray(ds[c].values)
    if "patient_parameters" in ds:
        pp = ds.patient_parameters.transpose("patient", "parameter")
        drawn = list((cfg.get("cohort") or {}).get("parameters") or {})
        names = [str(p) for p in ds.parameter.values]
        for name in [n for n in drawn if n in names] + [n for n in names if n not in drawn]:
            x = np.asarray(pp.values[:, names.index(name)])
            if name in drawn or np.unique(x).size > 1:
                cols[name] = x
    for name, v in ds.variables.items():
        if v.dims == ("patient",) and name not in _NOT_COVARIATES and name not in cols:
            cols[str(name)] = np.asarray(v.values)
    return pd.DataFrame(cols, index=pd.Index(np.asarray(ds.patient.values), name="patient"))


def _units(ds: xr.Dataset) -> dict[str, str]:
    out = {}
    if "parameter_units" in ds.coords:
        out = dict(zip(map(str, ds.parameter.values), map(str, ds.parameter_units.values)))
    for name, v in ds.variables.items():
        if v.dims == ("patient",) and "units" in v.attrs:
            out[str(name)] = str(v.attrs["units"])
    return out


def _categories(x: pd.Series) -> str:
    counts = x.astype(str).value_counts(sort=False)
    return ", ".join(f"{k}: {n}" for k, n in counts.items())


def _posterior(ds: xr.Dataset, cfg: dict) -> pd.DataFrame | None:
    """Medians and CVs of the posterior rows the result's draws used."""
    post = (cfg.get("cohort") or {}).get("posterior")
    rows_used = ds.attrs.get("posterior_rows")
    if not post or rows_used is None:
        return None
    rows = {}
    for k, r in enumerate(np.atleast_1d(rows_used).astype(int)):
        row = {"posterior row": str(r)}
        for j, p in enumerate(post["parameters"]):
            row[f"{p} median"] = _num(post["median"][r][j])
            row[f"{p} cv"] = _num(post["cv"][r][j])
        pairs = (cfg.get("cohort") or {}).get("correlations") or []
        for j, (a, b, _) in enumerate(pairs):
            if post.get("correlation"):
                row[f"corr {a} ~ {b}"] = _num(post["correlation"][r][j])
        rows[f"draw {k}"] = row
    return pd.DataFrame.from_dict(rows, orient="index")


def _table_name(table) -> str:
    """The file of a population table (the config keeps it parsed: ``{"file": ..., ...}``)."""
    return str(table.get("file", "(given as a DataFrame)")) if isinstance(table, dict) else str(
        table)


def _cohort_size(ds: xr.Dataset, cohort: dict) -> str:
    """``"60 virtual patients: 10 posterior draws x 6 subjects, ..."``."""
    n = ds.sizes["patient"]
    if "draw" in ds.coords and ds["draw"].dims == ("patient",):
        k = np.unique(ds.draw.values).size
        size = f"{n} virtual patients: {k} posterior draws x {n // max(k, 1)} subjects"
    else:
        size = f"{n} virtual patients"
    if "replicate" in ds.dims:
        size += f", each simulated {ds.sizes['replicate']} times (agent-based replicates)"
    table = cohort.get("table")
    if table:
        size += f"; from the population table {_table_name(table)}"
    if ds.attrs.get("cohort_include"):
        size += f"; cohort included from {ds.attrs['cohort_include']}"
    return size


def _cohort(ds: xr.Dataset, sub: xr.Dataset, cfg: dict) -> dict:
    """The cohort section: a sentence on the size of the cohort (``ds``), and tables of the
    patients shown (``sub``: ``ds`` or a subgroup of it)."""
    n = sub.sizes["patient"]
    cohort = cfg.get("cohort") or {}
    patients = _patients(sub, cfg)
    numeric = {c: patients[c].to_numpy() for c in patients
               if patients[c].dtype.kind in "iufb" and c not in ("draw", "subject")}
    categorical = {c: _categories(patients[c]) for c in patients  # not the table's IDs
                   if c not in numeric and c not in ("draw", "subject", "patient_id")}
    shown = patients.head(MAX_PATIENT_ROWS).map(_num)
    post = _posterior(ds, cfg)
    return {
        "size": _cohort_size(ds, cohort),
        "subgroup": str(sub.attrs.get("subgroup", "")),
        "posterior_source": ds.attrs.get("posterior_source", ""),
        "correlations": [f"{a} ~ {b}: {_num(r)}" for a, b, r in cohort.get("correlations") or []],
        "spec": _html_table(_spec_table(cfg), "cohort-distributions", kind="text") if cohort.get(
            "parameters") else "",
        "quantiles": _html_table(_quantiles(numeric, _units(sub)), "cohort-quantiles")
        if numeric else "",
        "categories": categorical,
        "posterior": _html_table(post, "cohort-posterior") if post is not None else "",
        "patients": _html_table(shown, "cohort-patients"),
        "patients_note": (f"the first {MAX_PATIENT_ROWS} of {n} patients"
                          if n > MAX_PATIENT_ROWS else f"all {n} patients"),
    }


def _summary_select(held: Mapping[str, object]) -> dict[str, list[str]]:
    """Resolved plot selections (exact coordinate values) as the summary's ``select``
    (strings that round-trip: ``repr`` of a float parses back to the same float)."""
    return {dim: [repr(float(v)) if isinstance(v, float) else str(v)] for dim, v in held.items()}


def _every_point(df: pd.DataFrame) -> pd.DataFrame | None:
    """A summary table with a column per sweep point, turned into a row per point (the pooled
    column dropped); None when it does not have a column per point."""
    points = [c for c in df.columns if str(c).startswith("point ")]
    return df[points].T if points else None


def _outcomes(ds: xr.Dataset, held: Mapping[str, object]) -> dict:
    """The summary tables (and the agent-based probabilities) as HTML; where a scenario has
    more sweep points than the summary shows one by one, also a row per point (at most
    :data:`MAX_POINT_ROWS`), from the same summary with a column per point."""
    sel = _summary_select(held)
    s = summary_tables(ds, sel)
    every = summary_tables(ds, sel, max_points=MAX_POINT_ROWS).tables
    tables = []
    for i, ((title, df), (_, full)) in enumerate(zip(s.tables, every)):
        t = {"title": title or "scenarios side by side", "id": f"summary-{i}",
             "html": _html_table(df, f"summary-{i}"), "points": "", "n_points": 0,
             "too_many": False}
        if _every_point(df) is None and str(df.columns[0]).startswith("all "):
            rows = _every_point(full)
            t["too_many"] = rows is None
            if rows is not None:
                t["points"], t["n_points"] = _html_table(rows, f"points-{i}"), len(rows)
        tables.append(t)
    prob = None
    if s.probabilities is not None:
        frame = probability_frame(s.probabilities)
        prob = {"html": _html_table(frame, "probabilities", index=False),
                "interval": frame.attrs["interval"]}
    return {"tables": tables, "notes": s.notes, "probabilities": prob}


def _figures(ds: xr.Dataset, figures: Sequence[str] | None, held: Mapping[str, object],
             subgroup: str | Sequence[str] | None, options: Mapping[str, Mapping] | None,
             dpi: float | None) -> tuple[list[dict], dict[str, str]]:
    drawn, skipped = draw_figures(ds, figures, options=options, select=dict(held),
                                  subgroup=subgroup)
    out = []
    for family, spec in drawn:
        uri, w, h = _png_data_uri(spec.figure, dpi)
        out.append({"family": family, "stem": spec.stem, "caption": spec.caption, "src": uri,
                    "width": w, "height": h})
    return out, skipped


# --- the page -----------------------------------------------------------------------------------


def _environment():
    import jinja2

    return jinja2.Environment(loader=jinja2.PackageLoader("immunosim.reporting", "templates"),
                              autoescape=True, undefined=jinja2.StrictUndefined,
                              trim_blocks=True, lstrip_blocks=True)


def _check_result(ds: xr.Dataset, source: str) -> None:
    missing = [v for v in NEEDED if v not in ds]
    if missing or "patient" not in ds.dims:
        raise ReportError(f"{source}: not a sweep result (no '{(missing or ['patient'])[0]}'); "
                          "expected the output of immunosim sweep or immunosim run -o")


def render_report(result: str | Path | xr.Dataset, figures: Sequence[str] | None = None, *,
                  select: Mapping[str, object] | Sequence[str] | None = None,
                  subgroup: str | Sequence[str] | None = None,
                  options: Mapping[str, Mapping] | None = None, dpi: float | None = None,
                  source: str | None = None) -> str:
    """The HTML report of a sweep result, as a string (nothing is written).

    Parameters
    ----------
    result : path or Dataset
        A sweep result (``.zarr`` or ``.nc``; opened with
        :func:`immunosim.experiments.results.open_result`) or one in memory.
    figures : list of str, optional
        Figure families (:data:`immunosim.plotting.api.FIGURES`); default every one the result
        supports, the others listed as skipped.
    select : mapping or list of str, optional
        ``{"amount": 1e6}`` or ``["amount=1e6"]``: hold these scenarios or axes at a value, in
        the figures (as ``immunosim plot --select``) and in the outcome tables.
    subgroup : str or list of str, optional
        Patient conditions (``"activation_rate>q75"``, combined with AND) for the tables,
        cohort and figures. With posterior draws the tables then show no credible intervals
        (a subgroup holds different subjects in each draw).
    options : mapping, optional
        Per-figure keyword options (:func:`~immunosim.plotting.api.draw_figures`).
    dpi : float, optional
        Resolution of the embedded PNGs (default that of ``immunosim plot``, 110).
    source : str, optional
        How the provenance names the result (default its path).

    Returns
    -------
    str
        One HTML document; figures are embedded as base64 PNG data URIs.

    Raises
    ------
    ResultError, ReportError, PlotError, SelectError
        One line: not a readable sweep result, a bad selection, subgroup or figure name.
    """
    if isinstance(result, xr.Dataset):
        return _page(result, source or "an in-memory Dataset", None, figures, select, subgroup,
                     options, dpi)
    path = Path(result)
    ds = open_result(path)
    try:
        return _page(ds, source or str(path), path.stat().st_mtime, figures, select, subgroup,
                     options, dpi)
    finally:
        ds.close()  # a large result stays open (lazy) until here


def _page(ds: xr.Dataset, source: str, modified: float | None, figures, select, subgroup,
          options, dpi) -> str:
    """:func:`render_report` of an open result (``modified``: the file's mtime, if a file)."""
    _check_result(ds, source)
    held = resolve_select(ds, parse_select(select))
    sub = select_subgroup(ds, subgroup)
    draws_dropped = bool(subgroup) and "draw" in sub.coords
    # per-draw shares need every subject of every draw: a subgroup's tables pool the draws
    tables_ds = sub.drop_vars(["draw", "subject"], errors="ignore") if draws_dropped else sub
    cfg = _config(ds)
    figs, skipped = _figures(ds, figures, held, subgroup, options, dpi)
    has_axes = any("sweep_target" in c.attrs for c in ds.coords.values())
    page = {
        "title": str(ds.attrs.get("title", "immunosim result")),
        "description": str(ds.attrs.get("description", "")),
        "provenance": _provenance(ds, cfg, source, modified),
        "config_name": str(cfg.get("name", "config")),
        "config_toml": str(ds.attrs.get("config_toml", "")),
        "cohort_include": str(ds.attrs.get("cohort_include", "")),
        "cohort_toml": str(ds.attrs.get("cohort_toml", "")),
        "scenarios": [str(s) for s in ds.scenario.values],
        "design": _html_table(_design(ds), "design", kind="text") if has_axes else "",
        "held": [f"{k} = {_num(v)}" for k, v in held.items()],
        "subgroup": str(sub.attrs.get("subgroup", "")),
        "draws_dropped": draws_dropped,
        "cohort": _cohort(ds, sub, cfg),
        "outcomes": _outcomes(tables_ds, held),
        "figures": figs,
        "skipped": skipped,
        "max_point_rows": MAX_POINT_ROWS,
    }
    return _environment().get_template("report.html.j2").render(**page)


def _atomic_write(path: Path, text: str) -> None:
    """Write ``text`` to a temporary file next to ``path``, then rename it over ``path``."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_report(result: str | Path | xr.Dataset, output: str | Path,
                 figures: Sequence[str] | None = None, *,
                 select: Mapping[str, object] | Sequence[str] | None = None,
                 subgroup: str | Sequence[str] | None = None,
                 options: Mapping[str, Mapping] | None = None, dpi: float | None = None,
                 overwrite: bool = False) -> Path:
    """Write the HTML report of a sweep result (:func:`render_report`) to ``output``.

    Parameters
    ----------
    result, figures, select, subgroup, options, dpi
        As :func:`render_report`.
    output : path
        The HTML file; its directory must exist. Written atomically (a temporary file in the
        same directory renamed over it), so a reader never sees half a report.
    overwrite : bool
        Replace an existing ``output``; without it an existing file is refused before anything
        is computed.

    Returns
    -------
    Path
        ``output``.

    Raises
    ------
    ReportError
        ``output`` exists (without ``overwrite``), is a directory, or its directory is missing;
        and as :func:`render_report`.
    """
    out = Path(output)
    if out.is_dir():
        raise ReportError(f"-o: {out} is a directory; expected an HTML file name "
                          "(e.g. report.html)")
    if out.exists() and not overwrite:
        raise ReportError(f"-o: {out} exists; pass --overwrite to replace it")
    if not out.resolve().parent.is_dir():
        raise ReportError(f"-o: {out}: the directory does not exist")
    _atomic_write(out, render_report(result, figures, select=select, subgroup=subgroup,
                                     options=options, dpi=dpi))
    return out
