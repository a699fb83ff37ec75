"""Dose-timing maps: probability of remission by 12 months and of relapse by 24 months over two
sweep axes (heatmap with a 50% contour), one panel per value of a third axis."""

from __future__ import annotations

import numpy as np
import xarray as xr
from matplotlib.lines import Line2D
from matplotlib.ticker import PercentFormatter

from ..experiments.posterior import by_draw, has_draws
from ._data import FigureSpec, PlotError, horizon, index_of, ok_mask, require, sweep_axes
from ._style import (
    FONT_SIZE,
    OKABE_ITO,
    SEQUENTIAL_CMAP,
    axis_info,
    axis_label,
    fmt_value,
    fmt_with_unit,
    new_figure,
    suptitle,
)

#: outcome -> (event variable, time variable, default day, readable name)
OUTCOMES: dict[str, tuple[str, str, float, str]] = {
    "remission": ("remission", "time_to_remission", 365.0, "Remission"),
    "relapse": ("relapse", "time_to_relapse", 730.0, "Relapse"),
}
CONTOUR_LEVEL = 0.5
INTERVAL = (0.025, 0.975)  # quantiles across posterior draws written under each cell
_ANNOTATE_MAX_CELLS = 150  # write the percentage in each cell up to this many cells per panel


def outcome_indicator(ds: xr.Dataset, outcome: str, day: float | None = None
                      ) -> tuple[xr.DataArray, float]:
    """1.0 where the event happened by ``day`` (capped at the horizon), 0.0 where not, NaN for
    runs with non-zero solver status; and the day used."""
    if outcome not in OUTCOMES:
        raise PlotError(f"outcome: {outcome!r} is not one of {', '.join(OUTCOMES)}")
    event, time, default, _ = OUTCOMES[outcome]
    require(ds, "dose_timing_map", [event, time, "status"])
    day = min(float(day if day is not None else default), horizon(ds))
    hit = ds[event].astype(bool) & (ds[time] <= day)  # NaN times compare False
    return hit.astype(float).where(ok_mask(ds)), day


def map_axes(ds: xr.Dataset, *, x: str | None = None, y: str | None = None,
             facet: str | None = None, select: dict | None = None,
             average: list[str] | None = None) -> tuple[str, str, str | None]:
    """Default (x, y, facet) of a map: the first two grid axes with several values (y first,
    then x), faceted by the third, or by scenario when there are several."""
    axes = sweep_axes(ds)
    if "point" in ds.dims:
        raise PlotError("dose_timing_map: needs a grid sweep; this result has a random design "
                        "(dimension 'point')")
    taken = set(select or {}) | set(average or [])
    for name, v in (("x", x), ("y", y), ("facet", facet)):
        valid = axes + (["scenario"] if name == "facet" else [])
        if v is not None and v not in valid:
            raise PlotError(f"dose_timing_map: {name} = {v!r} is not a sweep axis of the result; "
                            f"valid: {', '.join(valid) or 'none'}")
    free = [d for d in axes if ds.sizes[d] > 1 and d not in taken and d not in (x, y, facet)]
    if y is None:
        y = free.pop(0) if free else None
    if x is None:
        x = free.pop(0) if free else None
    if x is None or y is None:
        raise PlotError("dose_timing_map: needs a grid sweep with at least two axes of two or "
                        f"more values (result axes: {', '.join(axes) or 'none'})")
    if facet is None:
        if free:
            facet = free[0]
        elif ds.sizes.get("scenario", 1) > 1 and "scenario" not in taken:
            facet = "scenario"
    return x, y, facet


def map_grid(ds: xr.Dataset, outcome: str = "remission", *, day: float | None = None,
             x: str | None = None, y: str | None = None, facet: str | None = None,
             select: dict | None = None, average: list[str] | None = None) -> xr.DataArray:
    """Probability of ``outcome`` by ``day`` over two sweep axes.

    Parameters
    ----------
    outcome : {"remission", "relapse"}
        Remission by ``day`` (default 365) or relapse by ``day`` (default 730), as a share of all
        patients with solver status 0.
    x, y, facet : str, optional
        Sweep axes (facet may be ``scenario``); defaults from :func:`map_axes`.
    select : dict, optional
        ``{dim: value}`` for the dimensions not mapped; the others are held at their first value.
    average : list of str, optional
        Dimensions averaged over instead of held fixed.

    Returns
    -------
    DataArray, dims ``(facet, y, x)`` (no facet dim without a facet), values in [0, 1]; attrs
    ``day``, ``outcome``, ``note`` (what is held or averaged). With posterior draws, also the
    coordinates ``ci_low`` and ``ci_high`` (same dims: the 2.5 and 97.5% quantiles across draws
    of the per-draw probability) and the attr ``n_draws``.
    """
    ind, day = outcome_indicator(ds, outcome, day)
    x, y, facet = map_axes(ds, x=x, y=y, facet=facet, select=select, average=average)
    order = ([facet] if facet else []) + [y, x]
    prob, notes = _reduce_rest(ds, ind.mean("patient", skipna=True), order, select, average)
    prob = prob.transpose(*order).load()
    prob.name = f"p_{outcome}"
    prob.attrs = {"day": day, "outcome": outcome, "note": "; ".join(notes),
                  "long_name": f"{OUTCOMES[outcome][3]} by day {day:g}"}
    if has_draws(ind):
        per, _ = _reduce_rest(ds, by_draw(ind), order, select, average)
        q = per.quantile(list(INTERVAL), dim="draw", skipna=True).transpose("quantile", *order)
        prob = prob.assign_coords(ci_low=(order, q.values[0]), ci_high=(order, q.values[1]))
        prob.attrs["n_draws"] = per.sizes["draw"]
    return prob


def _reduce_rest(ds: xr.Dataset, prob: xr.DataArray, mapped: list[str], select: dict | None,
                 average: list[str] | None) -> tuple[xr.DataArray, list[str]]:
    """Average over the dimensions in ``average``, hold the other unmapped ones at their
    selected (or first) value; return the result and notes saying which."""
    average = list(average or [])
    notes = []
    rest = [d for d in prob.dims if d not in (*mapped, "draw")]
    for d in average:
        if d not in rest:
            raise PlotError(f"dose_timing_map: cannot average over {d!r}; it is mapped or not "
                            f"a dimension (free: {', '.join(rest) or 'none'})")
    for d in rest:
        if d in average:
            prob = prob.mean(d, skipna=True)
            notes.append(f"averaged over {axis_info(ds, d)[0]}")
        else:
            i = index_of(ds, d, (select or {})[d]) if d in (select or {}) else 0
            prob = prob.isel({d: i})
            if ds.sizes[d] > 1 or d in (select or {}):
                notes.append(fmt_with_unit(ds, d, ds[d].values[i]))
            prob = prob.drop_vars(d, errors="ignore")
    return prob, notes


def draw_map(grid: xr.DataArray, ds: xr.Dataset, title: str = "", unit: str = "Patients"):
    """Heatmap panels of :func:`map_grid` with cell percentages and the 50% contour."""
    facet = grid.dims[0] if grid.ndim == 3 else None
    y, x = grid.dims[-2:]
    panels = list(grid.transpose(facet, y, x)) if facet else [grid]
    nx, ny = grid.sizes[x], grid.sizes[y]
    w = 1.4 + len(panels) * (0.9 + 0.55 * max(nx, 3)) + 1.0
    fig = new_figure(w, 1.5 + 0.45 * max(ny, 4))
    axs = fig.subplots(1, len(panels), squeeze=False, sharey=True).ravel()
    mesh = None
    contour_drawn = False
    for k, (ax, panel) in enumerate(zip(axs, panels)):
        z = np.asarray(panel.values, dtype=float)
        mesh = ax.pcolormesh(np.arange(nx + 1) - 0.5, np.arange(ny + 1) - 0.5, z,
                             cmap=SEQUENTIAL_CMAP, vmin=0.0, vmax=1.0)
        if nx * ny <= _ANNOTATE_MAX_CELLS:
            _annotate(ax, panel, z)
        finite = z[np.isfinite(z)]
        if (nx >= 2 and ny >= 2 and finite.size and finite.min() < CONTOUR_LEVEL
                < finite.max()):
            ax.contour(np.arange(nx), np.arange(ny), z, levels=[CONTOUR_LEVEL],
                       colors=OKABE_ITO["vermillion"], linewidths=2.0, linestyles="--")
            contour_drawn = True
        ax.set_xticks(np.arange(nx), [fmt_value(v) for v in grid[x].values])
        ax.set_yticks(np.arange(ny), [fmt_value(v) for v in grid[y].values])
        ax.set_xlabel(axis_label(ds, x), fontsize=FONT_SIZE)
        if k == 0:
            ax.set_ylabel(axis_label(ds, y), fontsize=FONT_SIZE)
        ax.tick_params(labelsize=FONT_SIZE - 1, length=0)
        if facet:
            ax.set_title(fmt_with_unit(ds, facet, grid[facet].values[k]), fontsize=FONT_SIZE)
    cb = fig.colorbar(mesh, ax=list(axs), shrink=0.9, format=PercentFormatter(1.0))
    cb.set_label(f"{unit} (%)", fontsize=FONT_SIZE)
    cb.ax.tick_params(labelsize=FONT_SIZE - 1)
    fig.legend([Line2D([], [], color=OKABE_ITO["vermillion"], ls="--", lw=2)],
               [f"{100 * CONTOUR_LEVEL:.0f}% contour" + ("" if contour_drawn else
                                                          " (not reached)")],
               loc="outside lower right", fontsize=FONT_SIZE - 1, frameon=False)
    if title:
        suptitle(fig, title)
    return fig


def _annotate(ax, panel: xr.DataArray, z: np.ndarray) -> None:
    """Each cell's percentage; with posterior draws, its 95% interval in small type below."""
    ci = "ci_low" in panel.coords
    lo = np.asarray(panel.ci_low.values) if ci else None
    hi = np.asarray(panel.ci_high.values) if ci else None
    for (i, j), v in np.ndenumerate(z):
        if not np.isfinite(v):
            continue
        color = "white" if v < 0.55 else "black"
        ax.text(j, i + (0.14 if ci else 0.0), f"{100 * v:.0f}", ha="center", va="center",
                fontsize=FONT_SIZE - 1, color=color)
        if ci and np.isfinite(lo[i, j]):
            ax.text(j, i - 0.2, f"{100 * lo[i, j]:.0f}\u2013{100 * hi[i, j]:.0f}", ha="center",
                    va="center", fontsize=FONT_SIZE - 2, color=color)


def _crosses(grid: xr.DataArray) -> bool:
    z = np.asarray(grid.values, dtype=float)
    z = z[np.isfinite(z)]
    return bool(z.size) and z.min() < CONTOUR_LEVEL < z.max()


def check(ds: xr.Dataset) -> None:
    for event, time, _, _ in OUTCOMES.values():
        require(ds, "dose_timing_map", [event, time, "status"])
    map_axes(ds)


def figures(ds: xr.Dataset, *, select: dict | None = None, average: list[str] | None = None,
            x: str | None = None, y: str | None = None, facet: str | None = None,
            remission_day: float | None = None, relapse_day: float | None = None
            ) -> list[FigureSpec]:
    out = []
    for outcome, day in (("remission", remission_day), ("relapse", relapse_day)):
        grid = map_grid(ds, outcome, day=day, x=x, y=y, facet=facet, select=select,
                        average=average)
        d = grid.attrs["day"]
        capped = " (the horizon)" if d < OUTCOMES[outcome][2] else ""
        note = grid.attrs["note"]
        k = grid.attrs.get("n_draws")
        sub = "; ".join(([note] if note else [])
                        + ([f"below: 95% interval across {k} posterior draws"] if k else []))
        title = f"{grid.attrs['long_name']}{capped}, % of all patients" + (
            f"\n{sub}" if sub else "")
        fig = draw_map(grid, ds, title)
        fac = grid.dims[0] if grid.ndim == 3 else None
        ev, tv = OUTCOMES[outcome][:2]
        caption = (f"Share of patients with {ev} and {tv} <= {d:g} d{capped} over "
                   f"{axis_info(ds, grid.dims[-2])[0]} x {axis_info(ds, grid.dims[-1])[0]}"
                   + (f", one panel per {axis_info(ds, fac)[0]}" if fac else "")
                   + f"; dashed line: {100 * CONTOUR_LEVEL:.0f}% contour"
                   + ("" if _crosses(grid) else " (not reached: no cell crosses it)")
                   + (f"; {note}" if note else "")
                   + (f"; small numbers: 95% interval across {k} posterior draws of the "
                      "per-draw share" if k else "")
                   + "; runs with non-zero solver status excluded.")
        out.append(FigureSpec(f"dose_timing__{outcome}_map", fig, caption))
    return out
