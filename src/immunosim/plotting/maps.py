"""Dose-timing maps: probability of remission by 12 months and of relapse by 24 months over two
sweep axes (heatmap with a 50% contour), one panel per value of a third axis.

Relapse is drawn twice, with two denominators: **all patients** (a population-level share: a
dose at which nobody remits shows 0% relapse) and **patients in remission** by the same day
(relapse among remitters; cells with fewer than ``min_remitters`` remitters are hatched and show
their number instead of a percentage).
"""

from __future__ import annotations

import numpy as np
import xarray as xr
from matplotlib.lines import Line2D
from matplotlib.patches import Patch, Rectangle
from matplotlib.ticker import PercentFormatter

from ..experiments.posterior import has_draws
from ._data import (
    FigureSpec,
    PlotError,
    horizon,
    index_of,
    ok_mask,
    require,
    subgroup_note,
    sweep_axes,
)
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
#: The relapse map conditional on remission (denominator: patients in remission by the day).
AMONG_REMITTERS = "relapse_among_remitters"
MAP_OUTCOMES = (*OUTCOMES, AMONG_REMITTERS)
MIN_REMITTERS = 10  # cells of the relapse-among-remitters map with fewer remitters are hatched
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
             select: dict | None = None, average: list[str] | None = None,
             min_remitters: int = MIN_REMITTERS) -> xr.DataArray:
    """Probability of ``outcome`` by ``day`` over two sweep axes.

    Parameters
    ----------
    outcome : {"remission", "relapse", "relapse_among_remitters"}
        Remission by ``day`` (default 365) or relapse by ``day`` (default 730), as a share of all
        patients with solver status 0; or relapse by ``day`` (default 730) as a share of the
        patients in remission by that day (status 0).
    x, y, facet : str, optional
        Sweep axes (facet may be ``scenario``); defaults from :func:`map_axes`.
    select : dict, optional
        ``{dim: value}`` for the dimensions not mapped; the others are held at their first value.
    average : list of str, optional
        Dimensions averaged over instead of held fixed (pooled: the remitters of every value
        count in the denominator).
    min_remitters : int
        ``relapse_among_remitters`` only: cells with fewer remitters are NaN.

    Returns
    -------
    DataArray, dims ``(facet, y, x)`` (no facet dim without a facet), values in [0, 1]; attrs
    ``day``, ``outcome``, ``note`` (what is held or averaged), ``denominator`` (``"all
    patients"`` or ``"remitters"``). ``relapse_among_remitters`` also has the coordinate ``n``
    (remitters per cell, same dims) and the attr ``min_remitters``. With posterior draws, also
    the coordinates ``ci_low`` and ``ci_high`` (same dims: the 2.5 and 97.5% quantiles across
    draws of the per-draw probability) and the attr ``n_draws``.
    """
    among = outcome == AMONG_REMITTERS
    ind, day = outcome_indicator(ds, "relapse" if among else outcome, day)
    x, y, facet = map_axes(ds, x=x, y=y, facet=facet, select=select, average=average)
    order = ([facet] if facet else []) + [y, x]
    if among:
        rem, _ = outcome_indicator(ds, "remission", day)
        num, notes = _reduce_rest(ds, ind.sum("patient"), order, select, average, how="sum")
        den, _ = _reduce_rest(ds, rem.sum("patient"), order, select, average, how="sum")
        num, den = num.transpose(*order).load(), den.transpose(*order).load()
        with np.errstate(invalid="ignore", divide="ignore"):
            prob = (num / den).where(den >= max(min_remitters, 1))
        prob = prob.assign_coords(n=den.astype(int))
    else:
        prob, notes = _reduce_rest(ds, ind.mean("patient", skipna=True), order, select, average)
        prob = prob.transpose(*order).load()
    prob.name = f"p_{outcome}"
    name = "Relapse among remitters" if among else OUTCOMES[outcome][3]
    prob.attrs = {"day": day, "outcome": outcome, "note": "; ".join(notes),
                  "long_name": f"{name} by day {day:g}",
                  "denominator": "remitters" if among else "all patients"}
    if among:
        prob.attrs["min_remitters"] = int(min_remitters)
    if has_draws(ind):
        if among:
            per_num, _ = _reduce_rest(ds, _per_draw(ind, "sum"), order, select, average,
                                      how="sum")
            per_den, _ = _reduce_rest(ds, _per_draw(rem, "sum"), order, select, average,
                                      how="sum")
            with np.errstate(invalid="ignore", divide="ignore"):
                per = (per_num / per_den).where(per_den > 0)
        else:
            per, _ = _reduce_rest(ds, _per_draw(ind, "mean"), order, select, average)
        q = per.quantile(list(INTERVAL), dim="draw", skipna=True).transpose("quantile", *order)
        lo, hi = q.values[0], q.values[1]
        if among:  # no interval where the pooled share itself is masked
            lo, hi = np.where(np.isfinite(prob.values), lo, np.nan), np.where(
                np.isfinite(prob.values), hi, np.nan)
        prob = prob.assign_coords(ci_low=(order, lo), ci_high=(order, hi))
        prob.attrs["n_draws"] = per.sizes["draw"]
    return prob


def _per_draw(ind: xr.DataArray, how: str) -> xr.DataArray:
    """``ind`` reduced over the patients of each posterior draw (``patient`` -> ``draw``).

    Grouped by the ``draw`` coordinate, so it also works on a patient subgroup (where the draws
    no longer have equal sizes)."""
    g = ind.groupby("draw")
    out = g.sum("patient", skipna=True) if how == "sum" else g.mean("patient", skipna=True)
    return out.drop_vars("subject", errors="ignore")


def _reduce_rest(ds: xr.Dataset, prob: xr.DataArray, mapped: list[str], select: dict | None,
                 average: list[str] | None, how: str = "mean") -> tuple[xr.DataArray, list[str]]:
    """Average (``how="sum"``: add) over the dimensions in ``average``, hold the other unmapped
    ones at their selected (or first) value; return the result and notes saying which (the
    patient subgroup, if any, first)."""
    average = list(average or [])
    notes = [subgroup_note(ds)] if subgroup_note(ds) else []
    rest = [d for d in prob.dims if d not in (*mapped, "draw")]
    for d in average:
        if d not in rest:
            raise PlotError(f"dose_timing_map: cannot average over {d!r}; it is mapped or not "
                            f"a dimension (free: {', '.join(rest) or 'none'})")
    held = []
    for d in rest:
        if d in average:
            prob = prob.sum(d) if how == "sum" else prob.mean(d, skipna=True)
            notes.append(f"averaged over {axis_info(ds, d)[0]}")
        else:
            i = index_of(ds, d, (select or {})[d]) if d in (select or {}) else 0
            prob = prob.isel({d: i})
            if ds.sizes[d] > 1 or d in (select or {}):
                held.append(fmt_with_unit(ds, d, ds[d].values[i]))
            prob = prob.drop_vars(d, errors="ignore")
    if held:
        notes.append("held at " + ", ".join(held))
    return prob, notes


def draw_map(grid: xr.DataArray, ds: xr.Dataset, title: str = "", unit: str = "Patients"):
    """Heatmap panels of :func:`map_grid` with cell percentages and the 50% contour.

    With an ``n`` coordinate (relapse among remitters) each cell also shows its denominator,
    and cells masked for too few remitters are hatched and show ``n`` only."""
    facet = grid.dims[0] if grid.ndim == 3 else None
    y, x = grid.dims[-2:]
    panels = list(grid.transpose(facet, y, x)) if facet else [grid]
    nx, ny = grid.sizes[x], grid.sizes[y]
    w = 1.4 + len(panels) * (0.9 + 0.55 * max(nx, 3)) + 1.0
    fig = new_figure(w, 1.5 + 0.45 * max(ny, 4))
    axs = fig.subplots(1, len(panels), squeeze=False, sharey=True).ravel()
    mesh = None
    contour_drawn = hatched = False
    for k, (ax, panel) in enumerate(zip(axs, panels)):
        z = np.asarray(panel.values, dtype=float)
        mesh = ax.pcolormesh(np.arange(nx + 1) - 0.5, np.arange(ny + 1) - 0.5, z,
                             cmap=SEQUENTIAL_CMAP, vmin=0.0, vmax=1.0)
        hatched |= _hatch_masked(ax, panel, z)
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
    handles = [Line2D([], [], color=OKABE_ITO["vermillion"], ls="--", lw=2)]
    labels = [f"{100 * CONTOUR_LEVEL:.0f}% contour" + ("" if contour_drawn else " (not reached)")]
    if hatched:
        handles.append(Patch(facecolor="white", edgecolor=_HATCH_COLOR, hatch=_HATCH))
        labels.append(f"fewer than {grid.attrs.get('min_remitters', MIN_REMITTERS)} remitters "
                      "(n shown)")
    fig.legend(handles, labels, loc="outside lower right", ncols=len(handles),
               fontsize=FONT_SIZE - 1, frameon=False)
    if title:
        suptitle(fig, title)
    return fig


_HATCH = "////"
_HATCH_COLOR = "0.55"


def _hatch_masked(ax, panel: xr.DataArray, z: np.ndarray) -> bool:
    """Hatch the cells with a denominator (``n``) but no value: too few remitters."""
    if "n" not in panel.coords:
        return False
    any_ = False
    for (i, j), v in np.ndenumerate(z):
        if not np.isfinite(v):
            ax.add_patch(Rectangle((j - 0.5, i - 0.5), 1.0, 1.0, facecolor="white",
                                   edgecolor=_HATCH_COLOR, hatch=_HATCH, lw=0.0))
            any_ = True
    return any_


def _annotate(ax, panel: xr.DataArray, z: np.ndarray) -> None:
    """Each cell's percentage; below it in small type its 95% interval across posterior draws
    and, for a conditional map, its denominator ``n`` (alone in masked cells)."""
    ci = "ci_low" in panel.coords
    lo = np.asarray(panel.ci_low.values) if ci else None
    hi = np.asarray(panel.ci_high.values) if ci else None
    n = np.asarray(panel.n.values) if "n" in panel.coords else None
    for (i, j), v in np.ndenumerate(z):
        if not np.isfinite(v):
            if n is not None:
                ax.text(j, i, f"n={n[i, j]}", ha="center", va="center", fontsize=FONT_SIZE - 1,
                        color="black", bbox=dict(facecolor="white", edgecolor="none", pad=1.0))
            continue
        color = "white" if v < 0.55 else "black"
        small = ([f"{100 * lo[i, j]:.0f}\u2013{100 * hi[i, j]:.0f}"]
                 if ci and np.isfinite(lo[i, j]) else []) + (
                     [f"n={n[i, j]}"] if n is not None else [])
        lines = [(f"{100 * v:.0f}", FONT_SIZE - 1)] + [(t, FONT_SIZE - 2) for t in small]
        for k, (text, size) in enumerate(lines):  # stacked from the top, centred in the cell
            ax.text(j, i + 0.3 * ((len(lines) - 1) / 2 - k), text, ha="center", va="center",
                    fontsize=size, color=color)


def _crosses(grid: xr.DataArray) -> bool:
    z = np.asarray(grid.values, dtype=float)
    z = z[np.isfinite(z)]
    return bool(z.size) and z.min() < CONTOUR_LEVEL < z.max()


def check(ds: xr.Dataset) -> None:
    for event, time, _, _ in OUTCOMES.values():
        require(ds, "dose_timing_map", [event, time, "status"])
    map_axes(ds)


def _title_and_caption(grid: xr.DataArray, ds: xr.Dataset) -> tuple[str, str]:
    outcome, d, note = grid.attrs["outcome"], grid.attrs["day"], grid.attrs["note"]
    among = outcome == AMONG_REMITTERS
    capped = " (the horizon)" if d < OUTCOMES["relapse" if among else outcome][2] else ""
    k = grid.attrs.get("n_draws")
    m = grid.attrs.get("min_remitters")
    if among:
        head = (f"Relapse by day {d:g}{capped} among remitters (patients in remission by "
                f"then), % of remitters; hatched: fewer than {m} remitters")
    elif outcome == "relapse":
        head = (f"Relapse by day {d:g}{capped}, % of ALL patients (population level: "
                "non-remitters count as no relapse)")
    else:
        head = f"{grid.attrs['long_name']}{capped}, % of all patients"
    sub = "; ".join(([note] if note else [])
                    + ([f"below: 95% interval across {k} posterior draws"] if k else []))
    fac = grid.dims[0] if grid.ndim == 3 else None
    if among:
        what = (f"Share of the patients with remission and time_to_remission <= {d:g} d who "
                f"also have relapse and time_to_relapse <= {d:g} d{capped} (a crude "
                "proportion: late remitters had less time to relapse; the relapse-free curves "
                "count time from remission onset)")
    else:
        ev, tv = OUTCOMES[outcome][:2]
        what = (f"Share of all patients with {ev} and {tv} <= {d:g} d{capped}"
                + (" (patients who never remitted count as not relapsed; see the relapse among "
                   "remitters map)" if outcome == "relapse" else ""))
    caption = (f"{what} over {axis_info(ds, grid.dims[-2])[0]} x "
               f"{axis_info(ds, grid.dims[-1])[0]}"
               + (f", one panel per {axis_info(ds, fac)[0]}" if fac else "")
               + f"; dashed line: {100 * CONTOUR_LEVEL:.0f}% contour"
               + ("" if _crosses(grid) else " (not reached: no cell crosses it)")
               + (f"; {note}" if note else "")
               + (f"; small numbers: 95% interval across {k} posterior draws of the "
                  "per-draw share" if k else "")
               + (f"; n: remitters in the cell (hatched cells, with fewer than {m}, show n "
                  "only)" if among else "")
               + "; runs with non-zero solver status excluded.")
    return head + (f"\n{sub}" if sub else ""), caption


def figures(ds: xr.Dataset, *, select: dict | None = None, average: list[str] | None = None,
            x: str | None = None, y: str | None = None, facet: str | None = None,
            remission_day: float | None = None, relapse_day: float | None = None,
            min_remitters: int = MIN_REMITTERS) -> list[FigureSpec]:
    out = []
    for outcome, day in (("remission", remission_day), ("relapse", relapse_day),
                         (AMONG_REMITTERS, relapse_day)):
        grid = map_grid(ds, outcome, day=day, x=x, y=y, facet=facet, select=select,
                        average=average, min_remitters=min_remitters)
        title, caption = _title_and_caption(grid, ds)
        unit = "Remitters" if outcome == AMONG_REMITTERS else "Patients"
        fig = draw_map(grid, ds, title, unit=unit)
        out.append(FigureSpec(f"dose_timing__{outcome}_map", fig, caption))
    return out
