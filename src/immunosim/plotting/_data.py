"""Reading results for plotting: opening files, checking variables, choosing what to compare.

Every figure family compares **series**: the scenarios of a result, or, when a sweep has a single
scenario, the values of its first sweep axis. Sweep axes that are not compared are held at one
value (the first, unless the caller selects another), and the choice is written into the caption.
Random designs (a ``point`` dimension) are pooled over their points.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import xarray as xr

from ._errors import PlotError
from ._select import match_index
from ._style import MAX_SERIES, axis_info, fmt_value, fmt_with_unit

#: Dimensions of a sweep result that are not sweep axes.
NON_AXIS_DIMS = ("scenario", "patient", "landmark", "time", "dose", "parameter", "point",
                 "replicate")

TRAJECTORY_HINT = "rerun the sweep with output.trajectories = true"


def open_result(result: str | Path | xr.Dataset) -> tuple[xr.Dataset, str]:
    """Open a result (``.zarr`` store or NetCDF file; checked and opened by
    :func:`immunosim.experiments.results.open_result`); return it and a name for captions."""
    if isinstance(result, xr.Dataset):
        return result, "an in-memory Dataset"
    from ..experiments.results import ResultError
    from ..experiments.results import open_result as open_checked

    try:
        ds = open_checked(result)
    except ResultError as e:
        raise PlotError(str(e)) from None
    return normalise(ds), str(result)


def normalise(ds: xr.Dataset) -> xr.Dataset:
    """Give a :func:`immunosim.simulate` Dataset (``scenario x time`` state variables) the layout
    of a sweep result with trajectories: ``traj_<var>`` over a one-patient ``patient`` axis."""
    if "patient" in ds.dims or "time" not in ds.dims or "activity" not in ds:
        return ds
    out = {}
    for name, da in ds.data_vars.items():
        if "time" in da.dims:
            out[f"traj_{name}"] = da.expand_dims(patient=[0], axis=da.dims.index("time"))
    extra = {k: ds[k] for k in ("dose_time", "status") if k in ds}
    if "status" in extra:
        extra["status"] = extra["status"].expand_dims(patient=[0], axis=-1)
    res = xr.Dataset({**out, **extra}, attrs=dict(ds.attrs))
    res.attrs.setdefault("horizon_days", float(ds.time.max()))
    res.attrs.setdefault("title", "immunosim.simulate result")
    return res


def pool_replicates(ds: xr.Dataset) -> xr.Dataset:
    """An agent-based result with its ``replicate`` dimension folded into ``patient`` (run
    ``patient * R + replicate``), so that every per-patient figure treats each stochastic run as
    a patient of a larger cohort. Results without replicates are returned unchanged."""
    if "replicate" not in ds.dims:
        return ds
    R = ds.sizes["replicate"]
    out = {}
    for name, da in ds.data_vars.items():
        if "patient" not in da.dims:
            out[name] = da
            continue
        if "replicate" not in da.dims:
            da = da.expand_dims(replicate=R, axis=da.dims.index("patient") + 1)
        dims = [d for d in da.dims if d not in ("patient", "replicate")]
        i = da.dims.index("patient")
        da = da.transpose(*dims[:i], "patient", "replicate", *dims[i:])
        shape = da.shape[:i] + (da.shape[i] * R,) + da.shape[i + 2:]
        out[name] = (dims[:i] + ["patient"] + dims[i:], da.data.reshape(shape), da.attrs)
    coords = {k: v for k, v in ds.coords.items() if "patient" not in v.dims
              and "replicate" not in v.dims}
    res = xr.Dataset(out, coords=coords, attrs=dict(ds.attrs))
    return res.assign_coords(patient=np.arange(ds.sizes["patient"] * R))


def require(ds: xr.Dataset, figure: str, names: list[str], hint: str | None = None) -> None:
    """Raise a one-line :class:`PlotError` naming the first missing variable of ``names``."""
    for n in names:
        if n not in ds.variables:
            what = "trajectories" if n.startswith("traj_") else f"variable '{n}'"
            msg = f"{figure}: result has no {what} ({n} missing)"
            if hint is None and n.startswith("traj_"):
                hint = TRAJECTORY_HINT
            raise PlotError(msg + (f"; {hint}" if hint else ""))


def sweep_axes(ds: xr.Dataset) -> list[str]:
    """Grid sweep axes of a result, in storage order (empty for random designs)."""
    ref = next((ds[v] for v in ("status", "remission", "traj_activity") if v in ds), None)
    dims = ref.dims if ref is not None else tuple(ds.dims)
    return [d for d in dims if d not in NON_AXIS_DIMS]


def horizon(ds: xr.Dataset) -> float:
    if "horizon_days" in ds.attrs:
        return float(ds.attrs["horizon_days"])
    if "time" in ds.coords:
        return float(ds.time.max())
    raise PlotError("result has no horizon_days attribute and no time axis")


def ok_mask(ds: xr.Dataset) -> xr.DataArray | None:
    """True for runs with solver status 0 (the others are excluded from every figure)."""
    return (ds.status == 0) if "status" in ds else None


def masked(ds: xr.Dataset, name: str) -> xr.DataArray:
    """Variable ``name`` as float with runs of non-zero status set to NaN."""
    da = ds[name].astype(float)
    ok = ok_mask(ds)
    return da.where(ok) if ok is not None else da


def index_of(ds: xr.Dataset, dim: str, value) -> int:
    """Position of ``value`` on ``dim``: exact for names and integers, the nearest value within
    5% for floats (:func:`~immunosim.plotting._select.match_index`); PlotError listing the
    available values otherwise."""
    return match_index(ds, dim, value)


def subgroup_note(ds: xr.Dataset) -> str:
    """The patient subgroup a result was restricted to (``select_subgroup``), or ``""``."""
    return str(ds.attrs.get("subgroup", ""))


@dataclass(frozen=True)
class Series:
    """One compared line/panel: a label and the integer indexers that pick it out."""

    label: str
    isel: dict[str, int]
    title: str = ""  # self-explanatory label for panel titles ("MSC amount = 1e6 cells/kg")


@dataclass(frozen=True)
class SeriesSet:
    """What a figure compares and what it holds fixed (for the caption)."""

    series: list[Series]
    title: str  # legend title (what varies)
    fixed: list[str] = field(default_factory=list)  # "first_day = 0 d", ...
    pooled: bool = False  # random design pooled over its points
    subgroup: str = ""  # "subgroup activation_rate > 0.083 1/d (q75): 8 of 30 patients"

    @property
    def note(self) -> str:
        parts = [self.subgroup] if self.subgroup else []
        if self.fixed:
            parts.append("held at " + ", ".join(self.fixed))
        if self.pooled:
            parts.append("pooled over all points of the random sweep design")
        return "; ".join(parts)


def choose_series(ds: xr.Dataset, select: dict | None = None, vary: str | None = None,
                  max_series: int = MAX_SERIES) -> SeriesSet:
    """The series a figure compares.

    Parameters
    ----------
    select : dict, optional
        ``{dim: value}`` to hold dimensions (scenario or sweep axes) at given values; the others
        are held at their first value.
    vary : str, optional
        The dimension that makes the series; default ``scenario`` when there are several,
        otherwise the first sweep axis with more than one value (not in ``select``).
    """
    select = dict(select or {})
    axes = sweep_axes(ds)
    dims = (["scenario"] if "scenario" in ds.dims else []) + axes
    for d in select:
        if d not in dims:
            raise PlotError(f"select: '{d}' is not a scenario or sweep axis of the result; "
                            f"valid: {', '.join(dims)}")
    fixed_idx = {d: index_of(ds, d, v) for d, v in select.items()}
    if vary is None:
        multi = [d for d in dims if d not in fixed_idx and ds.sizes[d] > 1]
        vary = multi[0] if multi else None
    elif vary not in dims:
        raise PlotError(f"vary: '{vary}' is not a dimension of the result; valid: "
                        f"{', '.join(dims)}")
    for d in dims:
        if d != vary and d not in fixed_idx:
            fixed_idx[d] = 0
    fixed = [fmt_with_unit(ds, d, ds[d].values[i]) for d, i in fixed_idx.items()
             if d != vary and (ds.sizes[d] > 1 or d in select)]
    if vary is None:
        label = str(ds.scenario.values[0]) if "scenario" in ds.dims else "all"
        series = [Series(label, fixed_idx, label)]
        title = "scenario"
    else:
        n = ds.sizes[vary]
        picks = np.unique(np.linspace(0, n - 1, min(n, max_series)).round().astype(int))
        if picks.size < n:
            fixed.append(f"{picks.size} of {n} {vary} values shown")
        vals = ds[vary].values
        series = [Series(fmt_value(vals[i]), {**fixed_idx, vary: int(i)},
                         str(vals[i]) if vary == "scenario" else fmt_with_unit(ds, vary, vals[i]))
                  for i in picks]
        name, units = axis_info(ds, vary)
        title = name + (f" ({units})" if units else "")
    return SeriesSet(series, title, fixed, pooled="point" in ds.dims, subgroup=subgroup_note(ds))


def samples(da: xr.DataArray, isel: dict[str, int], keep: tuple[str, ...] = ()) -> np.ndarray:
    """Values of one series as a 2-D array ``(n_runs, *keep)``: every remaining dimension other
    than ``keep`` (patients, and points of a random design) is flattened into runs."""
    sub = da.isel({k: v for k, v in isel.items() if k in da.dims})
    other = [d for d in sub.dims if d not in keep]
    sub = sub.transpose(*other, *keep)
    arr = np.asarray(sub.values)
    return arr.reshape((-1,) + arr.shape[len(other):])


def dose_times(ds: xr.Dataset, isel: dict[str, int]) -> np.ndarray:
    """Dosing times (d) of one series, or an empty array when unknown or varying over points."""
    if "dose_time" not in ds:
        return np.array([])
    sub = ds.dose_time.isel({k: v for k, v in isel.items() if k in ds.dose_time.dims})
    if set(sub.dims) - {"dose"}:
        return np.array([])
    t = np.asarray(sub.values, dtype=float)
    return np.unique(t[np.isfinite(t)])


@dataclass
class FigureSpec:
    """A drawn figure with the file stem it is written under and a one-line caption."""

    stem: str
    figure: object  # matplotlib.figure.Figure
    caption: str
