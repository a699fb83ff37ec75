"""Figures of agent-based results (a ``replicate`` dimension): outcome probabilities over the
dose-timing plane with 95% intervals, and the distributions of relapse times and of the day the
pre-treatment clones died out."""

from __future__ import annotations

import numpy as np
import xarray as xr

from ..experiments.stochastic import outcome_probabilities
from ._data import FigureSpec, PlotError, horizon, index_of, require, subgroup_note
from ._style import FONT_SIZE, axis_info, fmt_with_unit, new_figure, series_color, suptitle
from .maps import _crosses, _reduce_rest, draw_map, map_axes

#: Map panels: probability variable -> readable name.
MAPS = {"p_durable": "P(durable remission: no relapse by the end of follow-up)",
        "p_relapse": "P(relapse after remission)"}
_NEEDED = ["status", "remission", "relapse", "time_to_relapse", "extinction_time"]


def check(ds: xr.Dataset) -> None:
    if "replicate" not in ds.dims:
        raise PlotError("abm: needs an agent-based result (a 'replicate' dimension: run the "
                        "sweep with [engine] kind = \"abm\")")
    require(ds, "abm", _NEEDED)


def probability_grid(ds: xr.Dataset, name: str, *, x: str | None = None, y: str | None = None,
                     facet: str | None = None, select: dict | None = None) -> xr.DataArray:
    """``name`` (a variable of :func:`outcome_probabilities`) over two sweep axes, with its 95%
    interval as the coordinates ``ci_low`` / ``ci_high`` (the layout of ``maps.draw_map``)."""
    pr = outcome_probabilities(ds)
    x, y, facet = map_axes(ds, x=x, y=y, facet=facet, select=select)
    order = ([facet] if facet else []) + [y, x]
    est, notes = _reduce_rest(ds, pr[name], order, select, None)
    lo, _ = _reduce_rest(ds, pr[f"{name}_low"], order, select, None)
    hi, _ = _reduce_rest(ds, pr[f"{name}_high"], order, select, None)
    est = est.transpose(*order)
    grid = est.assign_coords(ci_low=(order, lo.transpose(*order).values),
                             ci_high=(order, hi.transpose(*order).values))
    grid.attrs = {"note": "; ".join(notes), "interval": pr.attrs["interval"],
                  "long_name": MAPS.get(name, name)}
    return grid


def _groups(ds: xr.Dataset, by: str | None, select: dict | None) -> list[tuple[str, dict]]:
    """(label, isel) for each value of ``by``, the other dims held at ``select`` or first."""
    dims = [d for d in ds.status.dims if d not in ("patient", "replicate")]
    base = {d: index_of(ds, d, select[d]) if select and d in select else 0 for d in dims}
    if by is None:
        return [("all runs", base)]
    return [(fmt_with_unit(ds, by, v), {**base, by: i}) for i, v in enumerate(ds[by].values)]


def times_figure(ds: xr.Dataset, by: str | None, select: dict | None):
    """Cumulative share of runs relapsed (left) and of runs whose pre-treatment clones died out
    (right) against the day, one line per value of ``by``."""
    fig = new_figure(8.6, 3.6)
    axs = fig.subplots(1, 2)
    h = horizon(ds)
    t = np.linspace(0.0, h, 200)
    for k, (label, isel) in enumerate(_groups(ds, by, select)):
        d = ds.isel(isel)
        ok = (d.status == 0).values.ravel()
        n = max(int(ok.sum()), 1)
        rel = (d.relapse.values.ravel() & ok)
        tr = d.time_to_relapse.values.ravel()[rel]
        ext = d.extinction_time.values.ravel()[ok]
        kw = dict(color=series_color(k), lw=1.8, label=label)
        axs[0].step(t, [(tr <= s).sum() / n for s in t], where="post", **kw)
        axs[1].step(t, [(ext <= s).sum() / n for s in t], where="post", **kw)
    axs[0].set_ylabel("Runs relapsed (cumulative share)", fontsize=FONT_SIZE)
    axs[1].set_ylabel("Pre-treatment clones extinct (share)", fontsize=FONT_SIZE)
    for ax in axs:
        ax.set_xlabel("Day after the origin", fontsize=FONT_SIZE)
        ax.set_xlim(0, h)
        ax.set_ylim(0, None)
        ax.tick_params(labelsize=FONT_SIZE - 1)
        ax.grid(alpha=0.3)
    axs[0].legend(fontsize=FONT_SIZE - 2, frameon=False,
                  title=axis_info(ds, by)[0] if by else None, title_fontsize=FONT_SIZE - 2)
    return fig


def figures(ds: xr.Dataset, *, select: dict | None = None, x: str | None = None,
            y: str | None = None, facet: str | None = None, by: str | None = None
            ) -> list[FigureSpec]:
    out = []
    n_pat, n_rep = ds.sizes["patient"], ds.sizes["replicate"]
    try:
        mx, my, _ = map_axes(ds, x=x, y=y, facet=facet, select=select)
    except PlotError:
        mx = my = None
    if mx is not None:
        for name, long in MAPS.items():
            grid = probability_grid(ds, name, x=x, y=y, facet=facet, select=select)
            note = grid.attrs["note"]
            title = (f"{long}\n{n_pat} patients x {n_rep} replicates; below: 95% interval "
                     f"({grid.attrs['interval']})" + (f"; {note}" if note else ""))
            fig = draw_map(grid, ds, title, unit="Runs")
            caption = (f"{long} over {axis_info(ds, grid.dims[-2])[0]} x "
                       f"{axis_info(ds, grid.dims[-1])[0]}: the mean over {n_pat} patients of "
                       f"each patient's share of {n_rep} stochastic replicates, with its 95% "
                       f"interval ({grid.attrs['interval']}) in small type; dashed line: 50% "
                       "contour" + ("" if _crosses(grid) else " (not reached)")
                       + (f"; {note}" if note else "") + "; failed runs excluded.")
            out.append(FigureSpec(f"abm__{name}_map", fig, caption))
    axes = [d for d in ds.status.dims if d not in ("patient", "replicate", "scenario")]
    by = by if by is not None else (my if my is not None else (axes[0] if axes else None))
    if by is not None and by not in ds.dims:
        raise PlotError(f"abm: by = {by!r} is not a dimension of the result")
    fig = times_figure(ds, by, select)
    held = [fmt_with_unit(ds, d, ds[d].values[i]) for d, i in _groups(ds, None, select)[0][1]
            .items() if d != by and ds.sizes[d] > 1]
    sub = "; ".join(([subgroup_note(ds)] if subgroup_note(ds) else [])
                    + (["held at " + ", ".join(held)] if held else []))
    suptitle(fig, "Relapse and clone extinction over time" + (f"\n{sub}" if sub else ""))
    out.append(FigureSpec("abm__relapse_times", fig,
                          "Left: cumulative share of all successful runs (patients x replicates) "
                          "that relapsed after remission, by day after the origin. Right: share "
                          "of runs in which every clone founded before day 0 has lost its GC and "
                          "memory cells (the pre-treatment autoreactive lineage died out), by "
                          "day. One line per "
                          + (axis_info(ds, by)[0] if by else "result")
                          + (f"; {sub}" if sub else "") + "."))
    return out
