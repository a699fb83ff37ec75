"""Remission and relapse-free curves: Kaplan-Meier estimates with censoring, 95% confidence bands
and numbers at risk, per scenario (or per value of a sweep axis).

The estimator is :func:`scipy.stats.ecdf` on :class:`scipy.stats.CensoredData` (Kaplan & Meier,
J Am Stat Assoc 1958;53:457); the bands are its pointwise log-log intervals (Kalbfleisch &
Prentice 2002, sec. 1.4). Nothing here re-implements the estimator.

* **Remission**: cumulative incidence ``1 - S(t)`` of ``time_to_remission``; runs without a
  confirmed remission are censored at their time (the horizon).
* **Relapse-free survival among remitters**: ``S(t)`` of the time to relapse, the event is
  ``relapse``; patients never in remission are not at risk and are left out. By default time
  counts from each patient's **remission onset** (``time_to_relapse - time_to_remission``), so
  that the time before remission, when no relapse is possible, is not counted as relapse-free
  (immortal-time bias); ``origin="time_origin"`` counts it from the result's time origin (day 0
  or the first dose, ``time_origin`` of ``[outcomes]``) instead. Remitters without a relapse are
  censored at the end of their follow-up (the horizon, or death: ``clinical.classify`` sets
  ``time_to_relapse`` to the follow-up for them).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import xarray as xr
from matplotlib.lines import Line2D
from matplotlib.ticker import PercentFormatter
from scipy import stats

from ._data import FigureSpec, PlotError, choose_series, horizon, masked, require, samples
from ._style import FONT_SIZE, day_ticks, new_figure, series_color, wrap

CONFIDENCE = 0.95
KINDS = ("remission", "relapse_free")
#: Time origins of the curves: the result's own (``[outcomes] time_origin``), or, for
#: relapse-free survival, each patient's remission onset (the default for it).
ORIGINS = ("remission_onset", "time_origin")
DEFAULT_ORIGIN = {"remission": "time_origin", "relapse_free": "remission_onset"}


@dataclass(frozen=True)
class KMCurve:
    """A Kaplan-Meier survival step function and the data it came from.

    Attributes
    ----------
    time : ndarray, shape (K + 1,)
        0 followed by the distinct observed times (events and censorings), days.
    survival : ndarray, shape (K + 1,)
        ``S(t)`` from each time on (right-continuous steps); 1 at time 0.
    low, high : ndarray, shape (K + 1,)
        Pointwise 95% log-log confidence limits (NaN where undefined, e.g. once ``S = 0``).
    observed : ndarray, shape (n,)
        Each subject's event or censoring time.
    event : ndarray of bool, shape (n,)
    """

    time: np.ndarray
    survival: np.ndarray
    low: np.ndarray
    high: np.ndarray
    observed: np.ndarray
    event: np.ndarray

    @property
    def n(self) -> int:
        return int(self.observed.size)

    @property
    def censored_times(self) -> np.ndarray:
        return np.unique(self.observed[~self.event])

    def at(self, t) -> np.ndarray:
        """``S(t)`` at arbitrary times (the step value in force at each)."""
        idx = np.searchsorted(self.time, np.asarray(t, dtype=float), side="right") - 1
        return self.survival[np.clip(idx, 0, None)]

    def at_risk(self, t) -> np.ndarray:
        return number_at_risk(self.observed, t)


def number_at_risk(observed: np.ndarray, at) -> np.ndarray:
    """Subjects still under observation (event or censoring time ``>= t``) at each ``t``."""
    observed = np.asarray(observed, dtype=float)
    at = np.atleast_1d(np.asarray(at, dtype=float))
    return (observed[:, None] >= at[None, :]).sum(axis=0)


def km_curve(time, event, confidence: float = CONFIDENCE) -> KMCurve:
    """Kaplan-Meier estimate of ``S(t)`` from right-censored data via :func:`scipy.stats.ecdf`.

    Parameters
    ----------
    time : array_like, shape (n,)
        Event or censoring times (d); must be finite.
    event : array_like of bool, shape (n,)
        True where the event was observed, False where censored.
    """
    time = np.asarray(time, dtype=float)
    event = np.asarray(event, dtype=bool)
    if time.shape != event.shape or time.ndim != 1:
        raise ValueError(f"time and event: shapes {time.shape} and {event.shape} differ")
    if time.size == 0:
        raise ValueError("time: no subjects")
    if not np.all(np.isfinite(time)):
        raise ValueError("time: non-finite values")
    res = stats.ecdf(stats.CensoredData(uncensored=time[event], right=time[~event]))
    sf = res.sf
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # undefined where S = 0 or 1: NaN
        ci = sf.confidence_interval(confidence, method="log-log")
    q = np.asarray(sf.quantiles, dtype=float)
    n0 = 0 if q.size and q[0] == 0.0 else 1  # start the steps at (0, 1) unless t = 0 is observed
    t, s, lo, hi = (np.concatenate([np.full(n0, v), np.asarray(a, dtype=float)]) for a, v in
                    ((q, 0.0), (sf.probabilities, 1.0), (ci.low.probabilities, 1.0),
                     (ci.high.probabilities, 1.0)))
    return KMCurve(time=t, survival=s, low=lo, high=hi, observed=time, event=event)


def _required(kind: str) -> list[str]:
    if kind == "remission":
        return ["remission", "time_to_remission"]
    if kind == "relapse_free":
        return ["remission", "relapse", "time_to_relapse"]
    raise PlotError(f"survival: kind {kind!r} is not one of {', '.join(KINDS)}")


def check_origin(kind: str, origin: str | None) -> str:
    """The time origin of a ``kind`` curve: ``origin``, or its default; PlotError if invalid."""
    _required(kind)
    if origin is None:
        return DEFAULT_ORIGIN[kind]
    if origin not in ORIGINS:
        raise PlotError(f"survival: origin {origin!r} is not one of {', '.join(ORIGINS)}")
    if kind == "remission" and origin != "time_origin":
        raise PlotError("survival: remission curves count from the result's time origin only "
                        f"(origin = 'time_origin'), not {origin!r}")
    return origin


def origin_label(ds: xr.Dataset, origin: str) -> str:
    """Readable time origin for axis labels: ``remission onset``, ``day 0 of the run`` or
    ``the first dose`` (from the result's ``time_origin`` attribute)."""
    if origin == "remission_onset":
        return "remission onset"
    return {"first_dose": "the first dose"}.get(str(ds.attrs.get("time_origin", "start")),
                                                "day 0 of the run")


def km_curves(ds: xr.Dataset, kind: str = "remission", *, select: dict | None = None,
              vary: str | None = None, origin: str | None = None) -> dict[str, KMCurve]:
    """Kaplan-Meier curves per series (scenario or sweep-axis value).

    Parameters
    ----------
    kind : {"remission", "relapse_free"}
        ``remission``: time to remission, event = remission. ``relapse_free``: time to relapse
        among remitters, event = relapse (series without a remitter are left out).
    select, vary : see :func:`immunosim.plotting._data.choose_series`
    origin : {"remission_onset", "time_origin"}, optional
        Where each patient's time starts (d): default ``remission_onset`` for ``relapse_free``
        (``time_to_relapse - time_to_remission``), ``time_origin`` (the result's times as they
        are) for ``remission``.

    Returns
    -------
    dict of series label -> KMCurve; runs with non-zero solver status are excluded.
    """
    require(ds, "survival", _required(kind))
    origin = check_origin(kind, origin)
    ss = choose_series(ds, select, vary)
    ok = masked(ds, "remission")  # NaN where excluded
    out = {}
    for s in ss.series:
        rem = samples(ok, s.isel)
        keep = np.isfinite(rem)
        if kind == "remission":
            t = samples(ds.time_to_remission, s.isel)
            ev = rem == 1.0
        else:
            keep &= rem == 1.0
            t = samples(ds.time_to_relapse, s.isel)
            if origin == "remission_onset":
                t = t - samples(ds.time_to_remission, s.isel)
            ev = samples(ds.relapse, s.isel).astype(bool)
        keep &= np.isfinite(t)
        if keep.any():
            out[s.label] = km_curve(t[keep], ev[keep])
    return out


def draw_km(curves: dict[str, KMCurve], *, kind: str, horizon_days: float, legend_title: str,
            colors: dict[str, str], title: str = "", origin: str = "day 0 of the run"):
    """Step curves with bands, censoring ticks and a numbers-at-risk table under the axis.

    Each curve ends at its last observed time (event or censoring); ``origin`` names where
    time starts in the x label."""
    n = max(len(curves), 1)
    fig = new_figure(8.0, 3.6 + 0.2 * n + 0.5)
    gs = fig.add_gridspec(2, 1, height_ratios=[3.6, 0.2 * n + 0.45])
    ax = fig.add_subplot(gs[0])
    tab = fig.add_subplot(gs[1], sharex=ax)
    ticks = day_ticks(horizon_days)
    flip = kind == "remission"
    for label, c in curves.items():
        col = colors[label]
        t = np.append(c.time, max(c.observed.max(), c.time[-1]))
        s = np.append(c.survival, c.survival[-1])
        lo = np.append(c.low, c.low[-1])
        hi = np.append(c.high, c.high[-1])
        if flip:
            s, lo, hi = 1.0 - s, 1.0 - hi, 1.0 - lo
        ax.fill_between(t, lo, hi, step="post", color=col, alpha=0.15, lw=0)
        ax.step(t, s, where="post", color=col, lw=1.6)
        cens = c.censored_times
        ys = c.at(cens)
        ax.plot(cens, 1.0 - ys if flip else ys, ls="none", marker="|", ms=7, mew=1.2, color=col)
    ax.set_xlim(0.0, horizon_days * 1.02)  # room for censoring ticks at the horizon
    ax.set_ylim(-0.02, 1.02)
    ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    ax.set_ylabel("Cumulative remission (%)" if flip else "Relapse-free among\nremitters (%)",
                  fontsize=FONT_SIZE)
    ax.set_xticks(ticks)
    ax.tick_params(labelsize=FONT_SIZE - 1, labelbottom=False)
    ax.grid(alpha=0.25, lw=0.5)
    labels = list(curves)
    for row, label in enumerate(labels):
        for tk, k in zip(ticks, curves[label].at_risk(ticks)):
            tab.text(tk, row, f"{k}", ha="center", va="center", fontsize=FONT_SIZE - 1,
                     color=colors[label])
    tab.set_ylim(len(labels) - 0.5, -0.5)
    tab.set_yticks(np.arange(len(labels)), labels)
    for tl, label in zip(tab.get_yticklabels(), labels):
        tl.set_color(colors[label])
    tab.tick_params(labelsize=FONT_SIZE - 1, length=0)
    tab.tick_params(axis="y", pad=16)  # clear of the counts centred on day 0
    for sp in tab.spines.values():
        sp.set_visible(False)
    tab.set_xlabel(f"Time from {origin} (d)", fontsize=FONT_SIZE)
    tab.set_title("Number at risk", fontsize=FONT_SIZE - 1, loc="left")
    handles = [Line2D([], [], color=colors[k], lw=1.6) for k in labels]
    leg = [f"{k} (n = {curves[k].n})" for k in labels]
    handles += [Line2D([], [], color="0.3", lw=6, alpha=0.15),
                Line2D([], [], color="0.3", ls="none", marker="|", ms=7)]
    leg += [f"{100 * CONFIDENCE:.0f}% confidence band", "censored"]
    ax.legend(handles, leg, title=legend_title, loc="upper left", bbox_to_anchor=(1.01, 1.0),
              fontsize=FONT_SIZE - 1, title_fontsize=FONT_SIZE - 1, frameon=False)
    if title:
        ax.set_title(wrap(title, 6.0, FONT_SIZE + 1), fontsize=FONT_SIZE + 1)
    return fig


def check(ds: xr.Dataset) -> None:
    require(ds, "survival", _required("remission") + _required("relapse_free"))


def figures(ds: xr.Dataset, *, select: dict | None = None, vary: str | None = None,
            relapse_origin: str | None = None) -> list[FigureSpec]:
    ss = choose_series(ds, select, vary)
    colors = {s.label: series_color(i) for i, s in enumerate(ss.series)}
    note = ss.note
    h = horizon(ds)
    out = []
    for kind in KINDS:
        origin = check_origin(kind, relapse_origin if kind == "relapse_free" else None)
        start = origin_label(ds, origin)
        curves = km_curves(ds, kind, select=select, vary=vary, origin=origin)
        missing = [s.label for s in ss.series if s.label not in curves]
        if not curves:
            if kind == "remission":
                raise PlotError("survival: no run with solver status 0 to draw")
            out[0].caption += (" No relapse-free curve (survival__relapse_free): no patient "
                               "reached remission, so no one was at risk of relapse.")
            continue
        if kind == "remission":
            title = "Time to remission (Kaplan-Meier, 1 - S)"
            what = ("cumulative incidence 1 - S(t) of time_to_remission, in days from "
                    f"{start} (event: remission; censored at the end of follow-up otherwise)")
        else:
            title = f"Relapse-free survival among remitters, from {start} (Kaplan-Meier)"
            span = ("time_to_relapse - time_to_remission" if origin == "remission_onset"
                    else "time_to_relapse")
            what = (f"S(t) among patients in remission of {span}, in days from {start} "
                    "(event: relapse; censored at the end of follow-up: the horizon or death)")
            if origin != "remission_onset":
                what += ("; WARNING: time before remission, when no relapse can happen, counts "
                         "as relapse-free (immortal time)")
        if note:
            title += f"\n{note}"
        fig = draw_km(curves, kind=kind, horizon_days=h, legend_title=ss.title, colors=colors,
                      title=title, origin=start)
        caption = (f"Kaplan-Meier {what} per {ss.title}, with {100 * CONFIDENCE:.0f}% log-log "
                   "bands and numbers at risk" + (f"; {note}" if note else "")
                   + (f"; no remitters (not drawn): {', '.join(missing)}" if missing else "")
                   + "; runs with non-zero solver status excluded.")
        out.append(FigureSpec(f"survival__{kind}", fig, caption))
    return out
