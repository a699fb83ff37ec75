"""Waterfall: each patient's change in activity from baseline at a landmark day, sorted, coloured
by outcome over the whole follow-up (remission, relapse, response only, none)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import xarray as xr
from matplotlib.patches import Patch

from ._data import FigureSpec, PlotError, choose_series, masked, require, samples
from ._style import FONT_SIZE, OUTCOME_COLORS, new_figure, suptitle

DEFAULT_LANDMARK = 365.0  # days
#: Outcome categories, in legend order (remission = remission without relapse).
CATEGORIES: tuple[str, ...] = tuple(OUTCOME_COLORS)
_CAT_SORTER = np.argsort(CATEGORIES)
_VARS = ["activity_at", "baseline_activity", "remission", "relapse", "response"]


@dataclass(frozen=True)
class WaterfallSeries:
    """Bars of one series, sorted from the largest rise to the largest fall of activity.

    Attributes
    ----------
    change : ndarray, shape (n,)
        ``activity_at(landmark) - baseline_activity`` (points), sorted descending.
    outcome : ndarray of str, shape (n,)
        One of :data:`CATEGORIES` per bar.
    run : ndarray of int, shape (n,)
        Patient index of each bar (run index for a random design pooled over points).
    """

    change: np.ndarray
    outcome: np.ndarray
    run: np.ndarray


def outcome_category(remission, relapse, response) -> np.ndarray:
    """``relapse`` (remission then relapse), ``remission`` (without relapse), ``response only``
    (response without remission) or ``none``, elementwise."""
    rem = np.asarray(remission, dtype=bool)
    rel = np.asarray(relapse, dtype=bool)
    resp = np.asarray(response, dtype=bool)
    return np.where(rem & rel, "relapse", np.where(rem, "remission",
                                                   np.where(resp, "response only", "none")))


def choose_landmark(ds: xr.Dataset, landmark: float | None) -> tuple[float, str]:
    """The landmark day to use and a note when it differs from the default."""
    require(ds, "waterfall", _VARS)
    marks = np.asarray(ds.landmark.values, dtype=float)
    if landmark is not None:
        if not np.any(np.isclose(marks, landmark)):
            raise PlotError(f"waterfall: landmark {landmark:g} d is not in the result; valid: "
                            f"{', '.join(f'{x:g}' for x in marks)} (outcomes.landmarks)")
        return float(marks[np.isclose(marks, landmark)][0]), ""
    if np.any(np.isclose(marks, DEFAULT_LANDMARK)):
        return DEFAULT_LANDMARK, ""
    near = float(marks[np.argmin(np.abs(marks - DEFAULT_LANDMARK))])
    return near, f"day {near:g} is the landmark closest to {DEFAULT_LANDMARK:g}"


def waterfall_data(ds: xr.Dataset, landmark: float | None = None, *, select: dict | None = None,
                   vary: str | None = None) -> dict[str, WaterfallSeries]:
    """Per series, sorted changes from baseline at ``landmark`` (default 365 d) with outcomes.

    Runs with non-zero solver status are excluded.
    """
    day, _ = choose_landmark(ds, landmark)
    ss = choose_series(ds, select, vary)
    at = masked(ds, "activity_at").sel(landmark=day, method="nearest")
    change = at - ds.baseline_activity
    run = xr.broadcast(ds.patient, ds.baseline_activity)[0]
    out = {}
    for s in ss.series:
        d = samples(change, s.isel)
        keep = np.isfinite(d)
        cat = outcome_category(*(samples(ds[v], s.isel) for v in ("remission", "relapse",
                                                                    "response")))
        r = samples(run, s.isel)
        rank = np.searchsorted(np.array(CATEGORIES), cat[keep], sorter=_CAT_SORTER)
        order = np.lexsort((rank, -d[keep]))  # by change, ties grouped by outcome
        out[s.label] = WaterfallSeries(d[keep][order], cat[keep][order], r[keep][order])
    return out


def draw_waterfall(bars: dict[str, WaterfallSeries], *, landmark: float,
                   titles: dict[str, str] | None = None, title: str = ""):
    """Sorted bars per series (one panel each), coloured by outcome; legend in a spare cell."""
    titles = titles or {}
    n = len(bars)
    ncols = min(n + 1, 3)
    nrows = int(np.ceil((n + 1) / ncols))
    fig = new_figure(3.8 * ncols, 2.6 * nrows + 0.5)
    axs = fig.subplots(nrows, ncols, squeeze=False, sharey=True).ravel()
    lo = min([float(b.change.min()) for b in bars.values() if b.change.size] + [-1.0])
    hi = max([float(b.change.max()) for b in bars.values() if b.change.size] + [1.0])
    for k, (ax, (label, b)) in enumerate(zip(axs, bars.items())):
        edges = np.arange(b.change.size + 1) - 0.5
        for cat in CATEGORIES:  # one filled step patch per outcome: small SVG, same picture
            if (b.outcome == cat).any():
                ax.stairs(np.where(b.outcome == cat, b.change, 0.0), edges, fill=True,
                          color=OUTCOME_COLORS[cat], lw=0)
        ax.axhline(0.0, color="0.2", lw=0.8)
        same = int((b.change == 0).sum())
        if same:  # zero-height bars are invisible: say how many there are
            ax.text(0.02, 0.97, f"{same} unchanged", transform=ax.transAxes, va="top",
                    fontsize=FONT_SIZE - 1, color="0.3")
        ax.set_xlim(-0.5, max(b.change.size, 1) - 0.5)
        ax.set_ylim(lo - 0.5, hi + 0.5)
        ax.set_title(f"{titles.get(label, label)} (n = {b.change.size})", fontsize=FONT_SIZE)
        ax.set_xticks([])
        ax.set_xlabel("patients, sorted", fontsize=FONT_SIZE - 1)
        if k % ncols == 0:
            ax.set_ylabel(f"Change in activity at\nday {landmark:g} (points)", fontsize=FONT_SIZE)
        ax.tick_params(labelsize=FONT_SIZE - 1)
        ax.grid(axis="y", alpha=0.25, lw=0.5)
        ax.tick_params(labelleft=True)
    for ax in axs[n:]:
        ax.axis("off")
    handles = [Patch(color=OUTCOME_COLORS[c]) for c in CATEGORIES]
    labels = ["remission, no relapse", "remission, then relapse", "response only",
              "no response"]
    axs[n].legend(handles, labels, title="Outcome over follow-up", loc="center",
                  fontsize=FONT_SIZE, title_fontsize=FONT_SIZE, frameon=False)
    if title:
        suptitle(fig, title)
    return fig


def check(ds: xr.Dataset) -> None:
    require(ds, "waterfall", _VARS)


def figures(ds: xr.Dataset, *, landmark: float | None = None, select: dict | None = None,
            vary: str | None = None) -> list[FigureSpec]:
    day, lnote = choose_landmark(ds, landmark)
    ss = choose_series(ds, select, vary)
    bars = waterfall_data(ds, day, select=select, vary=vary)
    if not any(b.change.size for b in bars.values()):
        raise PlotError("waterfall: no run with solver status 0 to draw")
    note = "; ".join(x for x in (ss.note, lnote) if x)
    title = f"Change in activity from baseline at day {day:g}, per patient" + (
        f"\n{note}" if note else "")
    fig = draw_waterfall(bars, landmark=day, titles={s.label: s.title for s in ss.series},
                         title=title)
    caption = (f"Per-patient change in activity (activity_at day {day:g} minus "
               f"baseline_activity), sorted, one panel per {ss.title}; colour: outcome over the "
               "whole follow-up (remission without relapse, remission then relapse, response "
               "only, none)" + (f"; {note}" if note else "")
               + "; runs with non-zero solver status excluded.")
    return [FigureSpec(f"waterfall__day{day:g}", fig, caption)]
