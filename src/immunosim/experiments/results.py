"""Result datasets: their conventions, how to open them, and shares computed from them.

Every result (a sweep's, :func:`~immunosim.experiments.simulate.simulate`'s) follows the
conventions of ``docs/results.md``:

* every dimension has a coordinate (an index ``0..n-1`` where nothing else fits: ``dose``,
  ``point``);
* every numeric coordinate has ``units`` (``"1"`` when dimensionless) and a ``long_name``;
  label coordinates (``scenario``, ``parameter``, string axes) have a ``long_name`` only: a
  label is not a quantity;
* a sweep axis keeps its config values, as integers when its target is an integer field
  (``msc.count``), and records its ``sweep_target`` and the ``scenarios`` it sets (names
  separated by ``", "``);
* shares derived from a result (:func:`proportion`) carry ``units = "1"``, never the units of
  the times they were computed from.

:func:`open_result` opens a ``.zarr`` store or NetCDF file, checks it is an immunosim result and
loads it into memory when it is small (a lazy, Dask-backed Dataset otherwise).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import xarray as xr

from ..errors import ImmunosimError
from ..model import sle_msc as m

#: Default largest in-memory size (bytes) that :func:`open_result` loads eagerly.
EAGER_LIMIT = 1_000_000_000

_D = "d"
#: Units and long names of every sweep target (``head.field``); ``parameters.<name>`` take the
#: parameter table's unit. A test checks that every target a config accepts is listed here.
TARGET_ATTRS: dict[str, tuple[str, str]] = {
    "msc.amount": ("cells/kg", "MSC amount per infusion"),
    "msc.time": (_D, "Day of the first MSC infusion"),
    "msc.interval": (_D, "Days between MSC infusions"),
    "msc.count": ("1", "Number of MSC infusions"),
    "msc.source": ("", "MSC cell source (bm: bone marrow, uc: umbilical cord)"),
    "hsct.time": (_D, "Day HSCT conditioning starts"),
    "hsct.depletion": ("1", "HSCT: fraction of the B lineage depleted"),
    "hsct.t_cell_depletion": ("1", "HSCT: fraction of CD4 T cells and Tfh depleted"),
    "hsct.llpc_depletion": ("1", "HSCT: fraction of long-lived plasma cells depleted"),
    "hsct.regulatory_reset": ("1", "HSCT: regulatory level after conditioning"),
    "hsct.trm": ("1", "HSCT: probability of treatment-related death"),
    "hsct.trm_window": (_D, "HSCT: days within which treatment-related deaths fall"),
    "standard_therapy.suppression": ("1", "Standard-therapy suppression (legacy)"),
    "glucocorticoid.start": (_D, "Day glucocorticoids start"),
    "glucocorticoid.pulse_mg": ("mg/d", "IV methylprednisolone per pulse day"),
    "glucocorticoid.pulse_days": (_D, "Methylprednisolone pulse days"),
    "glucocorticoid.oral_mg": ("mg/d", "Oral prednisone after the pulses"),
    "glucocorticoid.taper_to": ("mg/d", "Prednisone at the end of the taper"),
    "glucocorticoid.taper_weeks": ("week", "Prednisone taper length"),
    "glucocorticoid.stop": (_D, "Day glucocorticoids stop"),
    "cyclophosphamide.dose": ("mg/kg", "Cyclophosphamide per pulse"),
    "cyclophosphamide.time": (_D, "Day of the first cyclophosphamide pulse"),
    "cyclophosphamide.interval": (_D, "Days between cyclophosphamide pulses"),
    "cyclophosphamide.count": ("1", "Number of cyclophosphamide pulses"),
    "mycophenolate.dose": ("g/d", "Mycophenolate mofetil dose"),
    "mycophenolate.start": (_D, "Day mycophenolate starts"),
    "mycophenolate.stop": (_D, "Day mycophenolate stops"),
    "hydroxychloroquine.dose": ("mg/d", "Hydroxychloroquine dose"),
    "hydroxychloroquine.start": (_D, "Day hydroxychloroquine starts"),
    "hydroxychloroquine.stop": (_D, "Day hydroxychloroquine stops"),
    "rituximab.dose": ("mg", "Rituximab per infusion"),
    "rituximab.time": (_D, "Day of the first rituximab infusion"),
    "rituximab.interval": (_D, "Days between rituximab infusions"),
    "rituximab.count": ("1", "Number of rituximab infusions"),
    "car_t.time": (_D, "Day CAR-T lymphodepletion starts"),
    "car_t.cells": ("cells/kg", "CD19 CAR-T cells"),
    "car_t.lymphodepletion": ("mg/kg/d", "Lymphodepleting cyclophosphamide per day"),
}

#: Attributes of the coordinates every result may have (other than sweep axes). Label
#: coordinates (strings) have no ``units``.
COORD_ATTRS: dict[str, dict[str, str]] = {
    "scenario": {"long_name": "Scenario"},
    "patient": {"units": "1", "long_name": "Virtual patient (index in the cohort)"},
    "replicate": {"units": "1", "long_name": "Stochastic replicate (agent-based engine)"},
    "point": {"units": "1", "long_name": "Point of the random sweep design"},
    "landmark": {"units": "d", "long_name": "Landmark visit (days after the time origin)"},
    "time": {"units": "d", "long_name": "Time since the start of the run"},
    "dose": {"units": "1", "long_name": "Dose number (MSC infusions, HSCT conditioning days and "
             "drug dose changes, in time order)"},
    "parameter": {"long_name": "Model parameter"},
    "parameter_units": {"long_name": "Unit of the model parameter"},
    "draw": {"units": "1", "long_name": "Posterior draw"},
    "subject": {"units": "1", "long_name": "Subject (random stream, shared by every draw)"},
}


class ResultError(ImmunosimError, ValueError):
    """A path is not a readable immunosim result; the message is one line naming the path."""


def target_attrs(target: str) -> dict[str, str]:
    """``units``, ``long_name`` and ``sweep_target`` of a sweep axis on ``target``.

    Parameters
    ----------
    target : str
        ``head.field`` as in ``[sweep.axes.NAME] target`` (``msc.amount``,
        ``parameters.reg_half_life``, ...).
    """
    head, _, field = target.partition(".")
    if head == "parameters" and field in m.PARAMETERS:
        p = m.PARAMETERS[field]
        units, long_name = p.unit, f"{p.description} ({field})"
    elif target in TARGET_ATTRS:
        units, long_name = TARGET_ATTRS[target]
    else:  # a target added without an entry: tests/test_results.py catches it
        units, long_name = "", target
    out = {"long_name": long_name, "sweep_target": target}
    if units:
        out["units"] = units
    return out


def _int_field(target: str) -> bool:
    from .therapy_config import INT_FIELDS

    return target.partition(".")[2] in INT_FIELDS


def _coord_values(values: np.ndarray, target: str | None) -> np.ndarray:
    """Axis values as stored: integers for an integer field (values equal to the config's)."""
    v = np.asarray(values)
    if target is not None and v.dtype.kind == "f" and _int_field(target) and v.size and \
            np.all(np.isfinite(v)) and np.all(v == np.round(v)):
        return v.astype(np.int64)
    return v


def apply_conventions(ds: xr.Dataset, axes: Mapping[str, str] | None = None,
                      axis_scenarios: Mapping[str, Sequence[str]] | None = None) -> xr.Dataset:
    """``ds`` with the result conventions applied to its coordinates.

    Every dimension without a coordinate gets an index coordinate; known coordinates get their
    attributes (:data:`COORD_ATTRS`); each sweep axis coordinate gets its target's units, long
    name and ``sweep_target`` (and ``scenarios``), and integer values when its target is an
    integer field. Generic over the axes: any coordinate named in ``axes`` is an axis, whatever
    dimension it lies on (a grid dimension, ``point`` of a random design).

    Parameters
    ----------
    ds : Dataset
    axes : mapping, optional
        Axis name -> target (``"msc.count"``).
    axis_scenarios : mapping, optional
        Axis name -> names of the scenarios the axis sets.
    """
    axes = dict(axes or {})
    axis_scenarios = dict(axis_scenarios or {})
    missing = {d: np.arange(n) for d, n in ds.sizes.items() if d not in ds.coords}
    ds = ds.assign_coords({d: (d, v) for d, v in missing.items()})
    new = {}
    for name, c in ds.coords.items():
        attrs = dict(c.attrs)
        values = c.values
        if name in axes:
            values = _coord_values(values, axes[name])
            attrs.update(target_attrs(axes[name]))
            if values.dtype.kind in "USO":
                attrs.pop("units", None)
            if name in axis_scenarios:
                attrs["scenarios"] = ", ".join(axis_scenarios[name])  # str: same in NetCDF
        elif name in COORD_ATTRS:
            attrs.update(COORD_ATTRS[name])
        elif name in missing:  # an index added above
            attrs.update({"units": "1", "long_name": f"{name} (index)"})
        new[name] = (c.dims, values, attrs)
    return ds.assign_coords(new)


def parameter_coords() -> dict:
    """``parameter`` (names) and ``parameter_units`` coordinates of the model's parameters."""
    return {"parameter": ("parameter", list(m.PARAMETER_NAMES), COORD_ATTRS["parameter"]),
            "parameter_units": ("parameter", [p.unit for p in m.PARAMETERS],
                                COORD_ATTRS["parameter_units"])}


# --- opening ---------------------------------------------------------------------------------


def _is_zarr(path: Path) -> bool:
    return path.suffix == ".zarr" or (path.is_dir() and any(
        (path / f).exists() for f in (".zgroup", "zarr.json")))


def check_result(attrs: Mapping, where: str) -> None:
    """Raise :class:`ResultError` unless ``attrs`` are an immunosim result's (they carry the
    ``model_digest``: every sweep and simulate result does; sweeps also a ``config_digest``)."""
    if "model_digest" not in attrs:
        raise ResultError(f"{where}: not an immunosim result (no 'model_digest' attribute); "
                          "expected the output of 'immunosim sweep' or immunosim.simulate")


def open_result(path: str | Path, *, eager_limit: float = EAGER_LIMIT) -> xr.Dataset:
    """Open an immunosim result (``.zarr`` store or NetCDF file).

    Parameters
    ----------
    path : str or Path
    eager_limit : float
        Largest in-memory size (bytes, default 1 GB) loaded eagerly: below it the Dataset holds
        numpy arrays (``groupby``, ``where(drop=True)`` work directly) and the file is closed;
        above it the variables are Dask arrays (call ``.load()`` on what you select).

    Returns
    -------
    xarray.Dataset

    Raises
    ------
    ResultError
        One line: no such path, an unfinished sweep (``.partial``), unreadable, or not an
        immunosim result.
    """
    path = Path(path)
    if path.name.endswith(".partial"):
        final = path.name[: -len(".partial")]
        raise ResultError(f"{path}: an interrupted sweep, not a result; finish it with "
                          f"'immunosim sweep CONFIG -o {final} --resume'")
    if not path.exists():
        raise ResultError(f"{path}: no such result file")
    try:
        ds = xr.open_zarr(path) if _is_zarr(path) else xr.open_dataset(path, chunks={})
    except Exception as e:  # unreadable: one line, without the library's traceback
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise ResultError(f"{path}: cannot read as a result (.zarr or .nc): {first}") from None
    try:
        check_result(ds.attrs, str(path))
    except ResultError:
        ds.close()
        raise
    if ds.nbytes <= eager_limit:
        loaded = ds.load()
        ds.close()
        return loaded
    return ds


# --- shares ------------------------------------------------------------------------------------


def event_counts(ds: xr.Dataset, event: str, *, within: float | None = None,
                 among: str | None = None, over: Sequence[str] = ("patient", "replicate")
                 ) -> tuple[xr.DataArray, xr.DataArray]:
    """Runs with ``event`` (numerator) and runs at risk (denominator), summed over ``over``.

    Runs at risk have ``status == 0`` (and ``among`` true, if given); with ``within``, the
    event counts only when ``time_to_<event>`` is at most ``within`` days after the origin.

    Returns
    -------
    (k, n) : DataArray of int, dims of ``ds[event]`` less ``over``
    """
    ok = ds["status"] == 0 if "status" in ds else xr.ones_like(ds[event], dtype=bool)
    if among is not None:
        ok = ok & ds[among].astype(bool)
    hit = ok & ds[event].astype(bool)
    if within is not None:
        hit = hit & (ds[f"time_to_{event}"] <= within)
    dims = [d for d in over if d in hit.dims]
    k, n = hit.sum(dims), ok.sum(dims)
    k.attrs, n.attrs = {"units": "1", "long_name": f"Runs with {event}"}, {
        "units": "1", "long_name": "Runs at risk" + (f" (among {among})" if among else "")}
    return k, n


def proportion(ds: xr.Dataset, event: str, *, within: float | None = None,
               among: str | None = None, over: Sequence[str] = ("patient", "replicate")
               ) -> xr.DataArray:
    """Share of the runs at risk with ``event``: ``k / n`` of :func:`event_counts`.

    For example ``proportion(ds, "remission", within=365)`` is P(remission by 12 months) per
    scenario and sweep point. NaN where no run is at risk. Its ``units`` are ``"1"`` (the
    attributes of ``time_to_<event>`` are not inherited).
    """
    k, n = event_counts(ds, event, within=within, among=among, over=over)
    p = k / n.where(n > 0)
    what = f"P({event}" + (f" by {within:g} d" if within is not None else "") + (
        f" | {among})" if among else ")")
    p.attrs = {"units": "1", "long_name": what}
    return p.rename(f"p_{event}")
