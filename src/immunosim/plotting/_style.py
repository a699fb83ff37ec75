"""Shared look of immunosim figures: Okabe-Ito colours, figure factory, labels from attributes.

Figures are built as :class:`matplotlib.figure.Figure` objects attached to an Agg canvas, never
through ``pyplot``: nothing is registered globally, so figures do not leak between calls and the
plotting code works the same in a script, a test or a server. No ``rcParams`` are changed.
"""

from __future__ import annotations

import math

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

#: Okabe & Ito (2008), "Color Universal Design": distinguishable with all common colour-vision
#: deficiencies. Ordered for series: the strongest contrasts first, yellow (weak on white) last.
OKABE_ITO: dict[str, str] = {
    "blue": "#0072B2",
    "vermillion": "#D55E00",
    "bluish_green": "#009E73",
    "orange": "#E69F00",
    "reddish_purple": "#CC79A7",
    "sky_blue": "#56B4E9",
    "black": "#000000",
    "yellow": "#F0E442",
}
SERIES_COLORS: tuple[str, ...] = tuple(OKABE_ITO.values())
MAX_SERIES = len(SERIES_COLORS)

#: Patient outcome categories (waterfall, bistability) and their colours.
OUTCOME_COLORS: dict[str, str] = {
    "remission": OKABE_ITO["bluish_green"],
    "relapse": OKABE_ITO["vermillion"],
    "response only": OKABE_ITO["orange"],
    "none": "#8C8C8C",  # neutral grey: reads as "no effect" under every colour-vision type
}

#: Sequential colour map for probabilities (designed to be readable with colour-vision
#: deficiencies and in greyscale).
SEQUENTIAL_CMAP = "cividis"

FONT_SIZE = 9  # points, for all text drawn here (the rcParams default of 10 crowds facets)
DPI = 110  # default raster resolution of written figures
MAX_DOSE_LINES = 8  # more dosing times than this (daily drug doses) are marked by triangles only

#: Readable names and units of sweep-axis targets (the axis coordinate only records the target).
_TARGET_LABELS: dict[str, tuple[str, str]] = {
    "msc.amount": ("MSC amount", "cells/kg"),
    "msc.time": ("first infusion", "d"),
    "msc.interval": ("interval between infusions", "d"),
    "msc.count": ("number of infusions", ""),
    "msc.source": ("MSC source", ""),
    "hsct.time": ("HSCT day", "d"),
    "hsct.depletion": ("HSCT lymphoid depletion", ""),
    "hsct.llpc_depletion": ("HSCT plasma-cell depletion", ""),
    "standard_therapy.suppression": ("standard-therapy suppression", ""),
}


def new_figure(width: float, height: float) -> Figure:
    """A blank figure with an Agg canvas and constrained layout (labels are never clipped)."""
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def series_color(i: int) -> str:
    return SERIES_COLORS[i % len(SERIES_COLORS)]


def unit_suffix(units: str | None) -> str:
    """`` (units)`` for a label, nothing for dimensionless (``"1"``) or missing units."""
    return f" ({units})" if units and units != "1" else ""


def var_label(da, fallback: str | None = None) -> str:
    """``long_name (units)`` of a DataArray from its attributes."""
    name = da.attrs.get("long_name") or fallback or str(da.name)
    return name + unit_suffix(da.attrs.get("units"))


def axis_info(ds, dim: str) -> tuple[str, str]:
    """(readable name, units) of a sweep axis or other dimension of a result."""
    if dim == "scenario":
        return "scenario", ""
    attrs = ds[dim].attrs if dim in ds.variables else {}
    long_name = attrs.get("long_name", "")
    target = attrs.get("sweep_target") or (  # results before sweep_target: in the long name
        long_name.removeprefix("Sweep axis: ") if long_name.startswith("Sweep axis") else "")
    if target in _TARGET_LABELS:
        return _TARGET_LABELS[target]
    if target.startswith("parameters."):
        from ..model import sle_msc as m

        pname = target.removeprefix("parameters.")
        if pname in m.PARAMETERS.index:
            unit = m.PARAMETERS[pname].unit
            return pname, ("" if unit == "1" else unit)
        return pname, ""
    units = attrs.get("units", "")
    if long_name.startswith("Sweep axis"):  # results before units on coordinates
        long_name = ""
    return (long_name or target or dim), ("" if units == "1" else units)


def axis_label(ds, dim: str) -> str:
    name, units = axis_info(ds, dim)
    return name[:1].upper() + name[1:] + unit_suffix(units)


def fmt_value(v) -> str:
    """Compact value for ticks and legends: ``1e5``, ``3.2e6``, ``91``, ``0.15``, names as-is."""
    if isinstance(v, (str, np.str_)):
        return str(v)
    v = float(v)
    if not math.isfinite(v):
        return str(v)
    if v == int(v) and abs(v) < 1e4:
        return f"{int(v)}"
    if abs(v) >= 1e4 or abs(v) < 1e-3:
        mant, exp = f"{v:.2g}".split("e") if "e" in f"{v:.2g}" else (f"{v:.2g}", "0")
        return f"{mant}e{int(exp)}"
    return f"{v:.3g}"


def fmt_with_unit(ds, dim: str, v) -> str:
    name, units = axis_info(ds, dim)
    s = fmt_value(v)
    return f"{name} = {s}" + (f" {units}" if units else "")


def day_ticks(horizon: float) -> np.ndarray:
    """Readable day ticks from 0 to ``horizon``: steps of 30, 60, 90, 180 or 365 days."""
    for step in (30.0, 60.0, 90.0, 180.0, 365.0, 730.0):
        if horizon / step <= 8:
            break
    return np.arange(0.0, horizon + 1e-9, step)


def mark_doses(ax, doses: np.ndarray, color: str, triangles: bool = True) -> None:
    """Dotted lines at the dosing times (triangles on top); more than :data:`MAX_DOSE_LINES`
    doses (daily drug doses) are only triangles, so that they do not hide the data."""
    doses = doses[np.isfinite(doses)]
    if doses.size <= MAX_DOSE_LINES:
        for d in doses:
            ax.axvline(d, color=color, ls=":", lw=0.9, alpha=0.7)
    if triangles and doses.size:
        ax.plot(doses, np.ones(doses.size), ls="none", marker="v", ms=5, color=color,
                clip_on=False, transform=ax.get_xaxis_transform())


def suptitle(fig: Figure, text: str) -> None:
    """Figure title, each line wrapped to the figure's width (long notes are never clipped)."""
    fig.suptitle(wrap(text, fig.get_figwidth(), FONT_SIZE + 1), fontsize=FONT_SIZE + 1)


def wrap(text: str, width_in: float, size: float) -> str:
    """``text`` with each line wrapped to about ``width_in`` inches at font ``size`` (points)."""
    import textwrap

    chars = max(20, int(width_in * 72 / (0.55 * size)))
    return "\n".join(textwrap.fill(line, chars) for line in text.split("\n"))
