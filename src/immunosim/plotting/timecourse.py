"""Time courses: cohort median and 5-95% range of activity, anti-dsDNA, C3, damage and the MSC
pool per scenario (or per value of a sweep axis), with dosing times marked."""

from __future__ import annotations

import warnings

import numpy as np
import xarray as xr
from matplotlib.lines import Line2D

from ._data import (
    FigureSpec,
    PlotError,
    choose_series,
    dose_times,
    masked,
    require,
    samples,
    subgroup_note,
)
from ._style import (
    FONT_SIZE,
    MAX_DOSE_LINES,
    day_ticks,
    mark_doses,
    new_figure,
    series_color,
    suptitle,
    unit_suffix,
    var_label,
)

#: Variables drawn by default, in panel order (each only if the result saved it).
VARIABLES: tuple[str, ...] = ("activity", "anti_dsdna", "c3", "damage", "msc", "reg")
#: Short panel labels (units are added from the attributes).
SHORT_NAMES: dict[str, str] = {
    "activity": "Activity (SLEDAI-like)",
    "anti_dsdna": "Anti-dsDNA",
    "c3": "C3",
    "damage": "Renal damage (fraction)",
    "msc": "MSC pool",
    "reg": "MSC-induced regulation",
}

QUANTILES: tuple[float, ...] = (0.05, 0.5, 0.95)
MSC_RESOLVED_EVERY = 2.0  # days: coarser trajectories miss the MSC pool (half-life ~1 d)


def timecourse_bands(ds: xr.Dataset, variables: list[str] | None = None, *,
                     select: dict | None = None, vary: str | None = None) -> xr.Dataset:
    """Median and 5-95% percentiles over patients of saved trajectories.

    Parameters
    ----------
    ds : Dataset
        A sweep result saved with trajectories (``traj_<var>``), or an :func:`immunosim.simulate`
        result (one patient per scenario).
    variables : list of str, optional
        Trajectory variables without the ``traj_`` prefix; default: those of :data:`VARIABLES`
        the result holds, without the MSC pool when trajectories are saved more than
        :data:`MSC_RESOLVED_EVERY` days apart (it clears within days, so such a row shows only
        the samples that fall on a dosing day).
    select, vary : see :func:`immunosim.plotting._data.choose_series`

    Returns
    -------
    Dataset
        One variable per trajectory variable, dims ``(series, quantile, time)`` (units and
        long_name kept); ``dose_time (series, dose)`` NaN padded; ``n_runs (series)`` the runs
        with status 0; attrs ``note`` (what is held fixed) and ``legend_title``.
    """
    require(ds, "timecourse", ["traj_activity"])
    if variables is None:
        variables = [v for v in VARIABLES if f"traj_{v}" in ds]
        if "msc" in variables and _save_every(ds) > MSC_RESOLVED_EVERY:
            variables.remove("msc")
    else:
        require(ds, "timecourse", [f"traj_{v}" for v in variables])
    ss = choose_series(ds, select, vary)
    labels = [s.label for s in ss.series]
    out = {}
    n_runs = np.zeros(len(ss.series), dtype=int)
    for v in variables:
        da = masked(ds, f"traj_{v}")
        arr = np.empty((len(ss.series), len(QUANTILES), ds.sizes["time"]))
        for i, s in enumerate(ss.series):
            x = samples(da, s.isel, keep=("time",))
            n_runs[i] = int(np.all(np.isfinite(x), axis=1).sum())
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns stay NaN
                arr[i] = np.nanpercentile(x, [100 * q for q in QUANTILES], axis=0)
        out[v] = (("series", "quantile", "time"), arr, dict(ds[f"traj_{v}"].attrs))
    doses = [dose_times(ds, s.isel) for s in ss.series]
    width = max([d.size for d in doses] + [1])
    dose_arr = np.full((len(doses), width), np.nan)
    for i, d in enumerate(doses):
        dose_arr[i, : d.size] = d
    out["dose_time"] = (("series", "dose"), dose_arr, {"units": "d"})
    out["n_runs"] = ("series", n_runs)
    titles = ("series", [s.title for s in ss.series])
    return xr.Dataset(out, coords={"series": labels, "series_title": titles,
                                   "quantile": list(QUANTILES),
                                   "time": ("time", ds.time.values, dict(ds.time.attrs))},
                      attrs={"note": ss.note, "legend_title": ss.title})


def _save_every(ds: xr.Dataset) -> float:
    """Median spacing of the saved trajectory times (d); 0 with a single time."""
    t = np.asarray(ds.time.values, dtype=float) if "time" in ds.coords else np.zeros(1)
    return float(np.median(np.diff(t))) if t.size > 1 else 0.0


def _short_label(bands: xr.Dataset, v: str) -> str:
    name = SHORT_NAMES.get(v) or bands[v].attrs.get("long_name") or v
    return name + unit_suffix(bands[v].attrs.get("units"))


def fit_label(text: str, length_in: float, size: float = FONT_SIZE) -> str:
    """``text`` broken into lines of at most about ``length_in`` inches at font ``size``
    (points), at spaces only; the units in a trailing ``(...)`` go on their own line first.
    Used for y labels, which must not run past their row into the next one."""
    import textwrap

    chars = max(8, int(length_in * 72 / (0.6 * size)))
    if len(text) <= chars:
        return text
    head, sep, unit = text.rpartition(" (")
    lines = ([head, sep.strip() + unit] if sep and unit.endswith(")") else [text])
    out = []
    for line in lines:
        out += textwrap.wrap(line, chars, break_on_hyphens=False) or [line]
    return "\n".join(out)


def _style_axis(ax, bands: xr.Dataset, v: str, ticks: np.ndarray | None, t: np.ndarray) -> None:
    """Ticks, limits and grid of one panel; ``ticks=None`` for panels whose x axis is shared
    with one already styled (setting ticks on every shared axis costs time and changes
    nothing)."""
    if ticks is not None:
        ax.set_xticks(ticks)
        ax.set_xlim(t.min(), t.max())
        if v == "activity":
            ax.set_ylim(-0.5, 12.5)
            ax.set_yticks(np.arange(0, 13, 4))
    ax.tick_params(labelsize=FONT_SIZE - 1)
    ax.grid(alpha=0.25, lw=0.5)


def _band(bands: xr.Dataset, v: str, s) -> np.ndarray:
    return bands[v].sel(series=s).values


def draw_timecourse(bands: xr.Dataset, title: str = ""):
    """Figure of :func:`timecourse_bands`.

    One series: one panel per variable. Several: small multiples, one row per variable and one
    column per series (bands of several series on one axis hide each other), with the other
    series' medians in grey for comparison.
    """
    names = [v for v in bands.data_vars if "quantile" in bands[v].dims]
    series = list(bands.series.values)
    t = bands.time.values
    ticks = day_ticks(float(t.max()))
    xlabel = var_label(bands.time, "time")
    counts = dict(zip(series, bands.n_runs.values))
    if len(series) == 1:
        ncols = min(len(names), 3)
        nrows = int(np.ceil(len(names) / ncols))
        fig = new_figure(3.6 * ncols, 2.6 * nrows + 0.8)
        axs = fig.subplots(nrows, ncols, squeeze=False).ravel()
        s, c = series[0], series_color(0)
        for ax, v in zip(axs, names):
            q = _band(bands, v, s)
            ax.fill_between(t, q[0], q[2], color=c, alpha=0.2, lw=0)
            ax.plot(t, q[1], color=c, lw=1.6)
            mark_doses(ax, bands.dose_time.sel(series=s).values, c)
            ax.set_title(_short_label(bands, v), fontsize=FONT_SIZE)
            ax.set_xlabel(xlabel, fontsize=FONT_SIZE)
            _style_axis(ax, bands, v, ticks, t)
        for ax in axs[len(names):]:
            ax.axis("off")
        one = bool(counts[s] <= 1)
        handles = [Line2D([], [], color=c, lw=1.6),
                   Line2D([], [], color=c, ls=":", marker="v", ms=5)]
        labels = [s if one else f"median ({s}, n = {counts[s]})", "dosing time"]
        if not one:
            handles.insert(1, Line2D([], [], color=c, lw=6, alpha=0.2))
            labels.insert(1, "5-95% of patients")
        fig.legend(handles, labels, loc="outside lower center", ncols=len(labels),
                   fontsize=FONT_SIZE, frameon=False)
    else:
        ncols, nrows = len(series), len(names)
        row_in = 1.75
        fig = new_figure(1.4 + 2.25 * ncols, 0.9 + row_in * nrows)
        axs = fig.subplots(nrows, ncols, squeeze=False, sharex=True, sharey="row")
        for r, v in enumerate(names):
            for k, s in enumerate(series):
                ax, c = axs[r, k], series_color(k)
                for other in series:
                    if other != s:
                        ax.plot(t, _band(bands, v, other)[1], color="0.6", lw=0.7, alpha=0.8)
                q = _band(bands, v, s)
                ax.fill_between(t, q[0], q[2], color=c, alpha=0.25, lw=0)
                ax.plot(t, q[1], color=c, lw=1.6)
                mark_doses(ax, bands.dose_time.sel(series=s).values, c, triangles=r == 0)
                first = (r == 0 and k == 0) or (k == 0 and v == "activity")
                _style_axis(ax, bands, v, ticks if first else None, t)
                if r == 0:
                    head = str(bands.series_title.values[k]) if "series_title" in bands else s
                    ax.set_title(f"{head}\n(n = {counts[s]})", fontsize=FONT_SIZE, color=c)
                if r == nrows - 1:
                    ax.set_xlabel(xlabel, fontsize=FONT_SIZE)
                    ax.tick_params(axis="x", labelrotation=45)
            # at most ~75% of the row: labels of neighbouring rows must not run into each other
            axs[r, 0].set_ylabel(fit_label(_short_label(bands, v), 0.75 * row_in),
                                 fontsize=FONT_SIZE)
        handles = [Line2D([], [], color="0.2", lw=1.6), Line2D([], [], color="0.2", lw=6,
                                                                alpha=0.25),
                   Line2D([], [], color="0.6", lw=0.7),
                   Line2D([], [], color="0.2", ls=":", marker="v", ms=5)]
        labels = ["median", "5-95% of patients", "medians of the other columns", "dosing time"]
        fig.legend(handles, labels, title=f"columns: {bands.attrs['legend_title']}",
                   loc="outside lower center", ncols=4, fontsize=FONT_SIZE,
                   title_fontsize=FONT_SIZE, frameon=False)
    if title:
        suptitle(fig, title)
    return fig


def check(ds: xr.Dataset) -> None:
    require(ds, "timecourse", ["traj_activity"])


def figures(ds: xr.Dataset, *, select: dict | None = None, vary: str | None = None,
            variables: list[str] | None = None) -> list[FigureSpec]:
    bands = timecourse_bands(ds, variables, select=select, vary=vary)
    n = ds.sizes.get("patient", 1)
    note = bands.attrs["note"]
    if n == 1:
        what = "one patient"
        title = "Time courses"
    else:
        what = (f"the {n} patients of the subgroup" if subgroup_note(ds)
                else f"the cohort of {n} patients")
        title = "Time courses: median and 5-95% range over " + what
    if note:
        title += f"\n({note})"
    if int(bands.n_runs.sum()) == 0:
        raise PlotError("timecourse: no run with solver status 0 to draw")
    fig = draw_timecourse(bands, title)
    names = ", ".join(v for v in bands.data_vars if "quantile" in bands[v].dims)
    head = (f"Trajectories of one patient: {names}" if n == 1
            else f"Median (line) and 5-95% range (band) of {names} over {what}")
    caption = (f"{head}, per {bands.attrs['legend_title']}; dotted lines and triangles mark "
               f"dosing times (triangles only for series with more than {MAX_DOSE_LINES})"
               + (f"; {note}" if note else "") + "; runs with non-zero solver status excluded.")
    dt = _save_every(ds)
    if "msc" in bands and dt > MSC_RESOLVED_EVERY:
        caption += (f" The MSC pool clears within days, so trajectories saved every {dt:g} d "
                    "show it only where a sample falls on a dosing day (MSC-induced regulation, "
                    "'reg', shows the lasting effect).")
    elif variables is None and "traj_msc" in ds and "msc" not in bands:
        caption += (f" The MSC pool is not drawn: it clears within days, and trajectories "
                    f"saved every {dt:g} d miss it (variables=[..., 'msc'] draws it; "
                    "MSC-induced regulation, 'reg', shows the lasting effect).")
    return [FigureSpec("timecourse", fig, caption)]
