"""Figures comparing scenarios, drawn from sweep results (and :func:`immunosim.simulate` output).

Each figure family is a pure data function (what is plotted, tested on its own) and a draw
function returning a :class:`matplotlib.figure.Figure` built without ``pyplot``:

========================== =================================== =================================
family (``figures=``)      data                                draw
========================== =================================== =================================
``timecourse``             :func:`timecourse_bands`            :func:`draw_timecourse`
``dose_timing_map``        :func:`map_grid`                    :func:`draw_map`
``survival``               :func:`km_curves`, :func:`km_curve` :func:`draw_km`
``waterfall``              :func:`waterfall_data`              :func:`draw_waterfall`
``bistability``            :func:`crossing_data`,              :func:`draw_bistability`
                           :func:`bifurcation`
========================== =================================== =================================

:func:`plot_result` draws a result file into a directory (the ``immunosim plot`` command);
its ``select`` holds axes at chosen values and its ``subgroup`` keeps the patients meeting a
condition (:func:`select_subgroup`, :func:`parse_condition`, :func:`match_index`).
"""

from __future__ import annotations

from ._data import PlotError, open_result
from ._select import Condition, match_index, parse_condition, parse_select, select_subgroup
from .api import FIGURES, draw_figures, plot_result
from .bistability import bifurcation, crossing_data, draw_bistability, thresholds
from .maps import draw_map, map_grid
from .sensitivity import draw_sensitivity
from .survival import KMCurve, draw_km, km_curve, km_curves, number_at_risk
from .timecourse import draw_timecourse, timecourse_bands
from .waterfall import draw_waterfall, waterfall_data

__all__ = [
    "FIGURES",
    "Condition",
    "KMCurve",
    "PlotError",
    "bifurcation",
    "crossing_data",
    "draw_bistability",
    "draw_figures",
    "draw_km",
    "draw_map",
    "draw_sensitivity",
    "draw_timecourse",
    "draw_waterfall",
    "km_curve",
    "km_curves",
    "map_grid",
    "match_index",
    "number_at_risk",
    "open_result",
    "parse_condition",
    "parse_select",
    "plot_result",
    "select_subgroup",
    "thresholds",
    "timecourse_bands",
    "waterfall_data",
]
