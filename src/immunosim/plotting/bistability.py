"""Bistability: the steady states against the B-cell activation rate (stable and unstable), and
patients' trajectories after treatment against their own threshold.

Without MSCs the model has a healthy and a diseased stable state separated by an unstable one
(:mod:`immunosim.model.steady_states`). Treatment can only cure if it pushes a patient across
the separatrix through that unstable state before the MSC effect fades. The figure shows this in
one coordinate (renal damage by default, anti-dsDNA otherwise): each patient's trajectory divided
by the value of the patient's own unstable state, so 1 is the patient's threshold. This is a
projection of a 13-dimensional separatrix onto one axis, a guide rather than an exact criterion.

Thresholds are computed for the parameters a patient runs with in the long run (untreated
parameters, scenario overrides, sweep-axis parameters and background standard therapy, rebuilt
from the config stored with the result), with the MSC pool at zero.

The trajectories are summarised, not drawn one by one: per outcome category, the median and the
10-90% band over patients of the ratio at each time (:func:`crossing_bands`), so the figure stays
readable (and small) for any cohort size.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass

import numpy as np
import xarray as xr
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import NullLocator

from ..model import sle_msc as m
from ..model.steady_states import diseased_states, steady_states, steady_states_batch
from ._data import FigureSpec, PlotError, choose_series, dose_times, masked, require, samples
from ._style import (
    FONT_SIZE,
    OKABE_ITO,
    OUTCOME_COLORS,
    mark_doses,
    new_figure,
    suptitle,
    unit_suffix,
)
from .timecourse import SHORT_NAMES
from .waterfall import CATEGORIES, outcome_category

#: Trajectory variables usable as the threshold coordinate, in order of preference.
COORDINATES: tuple[str, ...] = ("damage", "anti_dsdna")
HEALTHY_ANTIGEN = 1.5  # antigen level below which a stable state counts as healthy (as in model)
N_RATES = 120  # activation rates in the bifurcation diagram
MAX_PANELS = 6
MISMATCH_SAMPLE = 20  # patients checked against the installed model
MISMATCH_TOLERANCE = 0.01  # relative; patients start exactly in their diseased state
BAND = (0.1, 0.5, 0.9)  # quantiles over the patients of an outcome category (band and median)


def bifurcation(p: np.ndarray, coord: str = "damage", rates: np.ndarray | None = None
                ) -> xr.Dataset:
    """Steady states of parameter vector ``p`` over a range of ``activation_rate``.

    Returns
    -------
    Dataset with dims ``rate``: ``healthy``, ``unstable``, ``diseased`` (the value of ``coord``
    at each kind of equilibrium, NaN where it does not exist).
    """
    if rates is None:
        spec = m.PARAMETERS["activation_rate"]
        rates = np.logspace(np.log10(spec.low), np.log10(spec.high), N_RATES)
    k = m.STATE_INDEX[coord]
    j = m.PARAMETERS.index["activation_rate"]
    out = {n: np.full(rates.size, np.nan) for n in ("healthy", "unstable", "diseased")}
    q = np.tile(np.asarray(p, dtype=float), (rates.size, 1))
    q[:, j] = rates
    for i, states in enumerate(steady_states_batch(q)):  # one vectorised pass over all rates
        for s in states:
            out[state_kind(s)][i] = s.y[k]
    unit = m.STATES[k].unit
    return xr.Dataset({n: ("rate", v, {"units": unit}) for n, v in out.items()},
                      coords={"rate": ("rate", rates, {"units": "1/d"})})


def state_kind(s) -> str:
    """``healthy``, ``unstable`` or ``diseased``: the branch of a steady state."""
    if not s.stable:
        return "unstable"
    return "healthy" if s.antigen < HEALTHY_ANTIGEN else "diseased"


def thresholds(params: np.ndarray, coord: str = "damage", *,
               cache: dict[bytes, float] | None = None) -> np.ndarray:
    """Value of ``coord`` at each parameter row's unstable (threshold) equilibrium, shape (n,);
    NaN where the row has a single steady state (nothing to cross). Rows with the same
    parameters are solved once (``cache`` shares the solutions between calls for one ``coord``)."""
    params = np.ascontiguousarray(np.atleast_2d(params), dtype=float)
    k = m.STATE_INDEX[coord]
    cache = {} if cache is None else cache
    keys = [p.tobytes() for p in params]
    new: dict[bytes, int] = {}  # one row per distinct parameter set not yet solved
    for i, key in enumerate(keys):
        if key not in cache:
            new.setdefault(key, i)
    rows = list(new.values())
    for i, states in zip(rows, steady_states_batch(params[rows]) if rows else []):
        un = [s for s in states if not s.stable]
        cache[keys[i]] = float(un[-1].y[k]) if un else np.nan  # highest: next to the disease
    return np.array([cache[key] for key in keys], dtype=float)


def _config_context(ds: xr.Dataset):
    """(scenarios by name, design) rebuilt from the config stored in the result, or None."""
    from ..experiments.config import parse_config
    from ..experiments.design import expand

    try:
        with warnings.catch_warnings():  # shown when the sweep ran; not news when plotting
            warnings.simplefilter("ignore")
            cfg = parse_config(json.loads(ds.attrs["config_json"]))
    except Exception:  # no or foreign config
        return None
    return {s.name: s for s in cfg.build_scenarios()}, expand(cfg)


def series_parameters(ds: xr.Dataset, isel: dict[str, int], context: object = False
                      ) -> tuple[np.ndarray, np.ndarray, str]:
    """Parameters of each patient of one series, rebuilt from the config stored in the result.

    ``context`` is the result of :func:`_config_context` when the caller already has it (it is
    parsed once for all series).

    Returns
    -------
    initial : ndarray, shape (n_patients, n_params)
        Untreated parameters with scenario overrides and sweep-axis parameters (the run started
        from this parameter set's diseased state).
    long_run : ndarray, shape (n_patients, n_params)
        ``initial`` with background standard therapy applied: what the patient runs with once
        the MSCs are gone.
    note : str
        Non-empty when the config could not be used (then both are the untreated parameters).
    """
    from ..experiments.design import apply_point
    from ..model.interventions import apply_parameters

    pp = np.asarray(ds.patient_parameters.values, dtype=float)
    context = _config_context(ds) if context is False else context
    if context is None:  # no or foreign config: thresholds of the untreated patients
        return pp, pp, "thresholds of the untreated parameters (no readable config in the result)"
    scen, design = context
    sc = scen.get(str(ds.scenario.values[isel.get("scenario", 0)]))
    if sc is None:
        return pp, pp, "thresholds of the untreated parameters (scenario not in the config)"
    point = (int(np.ravel_multi_index([isel.get(d, 0) for d in design.dims], design.shape))
             if design.dims else 0)
    initial, long_run = np.empty_like(pp), np.empty_like(pp)
    for i, p in enumerate(pp):
        q = p.copy()
        for pname, v in sc.parameters.items():
            q[m.PARAMETERS.index[pname]] = v
        ivs, initial[i] = apply_point(design, point, sc, q)
        long_run[i] = apply_parameters(ivs, initial[i])
    return initial, long_run, ""


def model_mismatch(day0: np.ndarray, initial: np.ndarray, coord: str,
                   n: int = MISMATCH_SAMPLE) -> float:
    """Median relative difference between the result's day-0 values of ``coord`` and the
    installed model's diseased steady states for the same parameters (first ``n`` patients).

    Patients start in their diseased state, so a difference means the result was computed with
    another version of the model and thresholds recomputed now would not belong to it.
    """
    k = m.STATE_INDEX[coord]
    y0, ok = diseased_states(np.asarray(initial[:n], dtype=float))
    x, ref = np.asarray(day0[:n], dtype=float), y0[:, k]
    use = ok & np.isfinite(x) & (ref != 0.0)
    dev = np.abs(x[use] - ref[use]) / np.abs(ref[use])
    return float(np.median(dev)) if dev.size else 0.0


@dataclass(frozen=True)
class Crossing:
    """Trajectories of one series relative to each patient's threshold.

    ``ratio`` (n, T): trajectory / threshold (patients with a threshold only); ``outcome`` (n,);
    ``threshold`` (n,); ``n_single``: patients without a threshold (single steady state);
    ``dose_time``: dosing days.
    """

    time: np.ndarray
    ratio: np.ndarray
    outcome: np.ndarray
    threshold: np.ndarray
    n_single: int
    dose_time: np.ndarray


def pick_coordinate(ds: xr.Dataset, coord: str | None = None) -> str:
    if coord is not None:
        if coord not in COORDINATES:
            raise PlotError(f"bistability: coordinate {coord!r} is not one of "
                            f"{', '.join(COORDINATES)}")
        require(ds, "bistability", [f"traj_{coord}"])
        return coord
    for c in COORDINATES:
        if f"traj_{c}" in ds:
            return c
    require(ds, "bistability", [f"traj_{COORDINATES[0]}"])
    return COORDINATES[0]


def crossing_data(ds: xr.Dataset, coord: str | None = None, *, select: dict | None = None,
                  vary: str | None = None) -> tuple[dict[str, Crossing], str]:
    """Per treated series (those with dosing times; all if none has), trajectories divided by
    each patient's threshold; and a note for the caption."""
    require(ds, "bistability", ["patient_parameters", "remission", "relapse", "response"])
    coord = pick_coordinate(ds, coord)
    notes = []
    if "point" in ds.dims:
        ds = ds.isel(point=0)
        notes.append("design point 0 of the random sweep")
    ss = choose_series(ds, select, vary, max_series=MAX_PANELS)
    treated = [s for s in ss.series if dose_times(ds, s.isel).size]
    traj = masked(ds, f"traj_{coord}")
    out = {}
    cache: dict[bytes, float] = {}  # series often share parameters (axes of MSC dosing only)
    context = _config_context(ds)
    checked = False
    for s in treated or ss.series:
        initial, params, pnote = series_parameters(ds, s.isel, context)
        if pnote and pnote not in notes:
            notes.append(pnote)
        thr = thresholds(params, coord, cache=cache)
        x = samples(traj, s.isel, keep=("time",))
        if not pnote and not checked:  # once: every series comes from the same model
            checked = True
            dev = model_mismatch(x[:, 0], initial, coord)
            if dev > MISMATCH_TOLERANCE:
                notes.append(f"WARNING: day-0 {coord} differs from the installed model's "
                             f"diseased state by {100 * dev:.0f}% (median): the result comes "
                             "from another model version, so the thresholds may not apply")
        cat = outcome_category(*(samples(ds[v], s.isel) for v in ("remission", "relapse",
                                                                    "response")))
        has = np.isfinite(thr) & np.all(np.isfinite(x), axis=1)
        single = int((~np.isfinite(thr) & np.all(np.isfinite(x), axis=1)).sum())
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = x[has] / thr[has, None]
        out[s.label] = Crossing(ds.time.values, ratio, cat[has], thr[has], single,
                                dose_times(ds, s.isel))
    if ss.note:
        notes.insert(0, ss.note)
    return out, "; ".join(notes)


def crossing_bands(c: Crossing, quantiles: tuple[float, ...] = BAND) -> xr.Dataset:
    """What a panel of the figure shows: per outcome category, quantiles over its patients of
    the ratio trajectory / threshold at each time.

    Returns
    -------
    Dataset with ``ratio (category, quantile, time)`` (dimensionless; NaN for a category
    without patients) and ``n (category)``, the patients in each category; categories in the
    order of :data:`~immunosim.plotting.waterfall.CATEGORIES`.
    """
    out = np.full((len(CATEGORIES), len(quantiles), c.time.size), np.nan)
    n = np.zeros(len(CATEGORIES), dtype=int)
    for i, cat in enumerate(CATEGORIES):
        r = c.ratio[c.outcome == cat]
        n[i] = r.shape[0]
        if n[i]:
            out[i] = np.nanquantile(r, quantiles, axis=0)
    return xr.Dataset({"ratio": (("category", "quantile", "time"), out,
                                 {"long_name": "trajectory / patient's threshold", "units": "1"}),
                       "n": ("category", n)},
                      coords={"category": list(CATEGORIES), "quantile": list(quantiles),
                              "time": ("time", c.time, {"units": "d"})})


#: Short names of the outcome categories (panel counts).
_SHORT = {"remission": "rem.", "relapse": "relapse", "response only": "resp.", "none": "none"}
#: Legend names of the outcome categories.
CATEGORY_NAMES = {"remission": "remission, no relapse", "relapse": "remission, then relapse",
                  "response only": "response only", "none": "no response"}


def draw_bistability(bif: xr.Dataset, crossings: dict[str, Crossing], *, coord: str,
                     titles: dict[str, str] | None = None,
                     cohort: tuple[np.ndarray, np.ndarray] | None = None,
                     marked: tuple[float, list] | None = None, title: str = ""):
    """Left: bifurcation diagram; right: one panel per series, the median and 10-90% band of
    trajectory / threshold per outcome category (:func:`crossing_bands`).

    ``marked`` is ``(activation_rate, steady states)`` of the patient the diagram is drawn for;
    its equilibria are marked on the diagram. ``cohort`` is ``(activation_rate, day-0 value)``
    per patient."""
    titles = titles or {}
    n = len(crossings)
    ncols = min(n, 3)
    nrows = int(np.ceil(n / ncols))
    panel = 2.35  # inches per small panel
    fig = new_figure(3.5 + panel * ncols + 0.3, max(panel * nrows + 1.5, 4.0))
    gs = fig.add_gridspec(nrows, 1 + ncols, width_ratios=[3.5 / panel] + [1.0] * ncols)
    ax = fig.add_subplot(gs[:, 0])
    _draw_diagram(ax, bif, coord, cohort, marked)
    bands = {label: crossing_bands(c) for label, c in crossings.items()}
    finite = [b.ratio.values[np.isfinite(b.ratio.values)] for b in bands.values()]
    lo = min([float(v.min()) for v in finite if v.size] + [0.5])
    hi = max([float(v.max()) for v in finite if v.size] + [2.0])
    first = None
    for k, (label, c) in enumerate(crossings.items()):
        row, col = divmod(k, ncols)
        a = fig.add_subplot(gs[row, 1 + col], sharex=first, sharey=first)
        first = first or a
        b = bands[label]
        for i in range(len(CATEGORIES))[::-1]:  # remission drawn last, on top
            if b.n.values[i]:
                color = OUTCOME_COLORS[CATEGORIES[i]]
                q = b.ratio.values[i]
                a.fill_between(c.time, q[0], q[-1], color=color, alpha=0.22, lw=0)
                a.plot(c.time, q[len(BAND) // 2], color=color, lw=1.6)
        a.axhline(1.0, color="0.1", ls="--", lw=1.2)
        mark_doses(a, c.dose_time, "0.4")
        counts = " \u00b7 ".join(f"{_SHORT[CATEGORIES[i]]} {b.n.values[i]}"
                                 for i in range(len(CATEGORIES)) if b.n.values[i])
        a.set_title(f"{titles.get(label, label)}\n{counts}", fontsize=FONT_SIZE - 2)
        if row == nrows - 1 or k + ncols >= n:  # lowest panel of its column
            a.set_xlabel("Time (d)", fontsize=FONT_SIZE)
        else:
            a.tick_params(labelbottom=False)
        if col == 0:
            a.set_ylabel(f"{coord} / patient's threshold", fontsize=FONT_SIZE)
        else:
            a.tick_params(labelleft=False)
        a.tick_params(labelsize=FONT_SIZE - 1)
    first.set_yscale("log")
    first.yaxis.set_minor_locator(NullLocator())  # decades suffice; minor ticks cost time
    first.set_ylim(lo / 1.3, hi * 1.3)
    first.set_xlim(c.time.min(), c.time.max())
    handles = [(Patch(color=OUTCOME_COLORS[c], alpha=0.22, lw=0),
                Line2D([], [], color=OUTCOME_COLORS[c], lw=1.6)) for c in CATEGORIES]
    labels = [f"{CATEGORY_NAMES[c]} ({_SHORT[c]})" for c in CATEGORIES]
    handles += [Line2D([], [], color="0.1", ls="--"), Line2D([], [], color="0.4", ls=":")]
    labels += ["patient's threshold", "dosing time"]
    fig.legend(handles, labels, loc="outside lower center", ncols=3, fontsize=FONT_SIZE - 1,
               frameon=False, title=f"median and {100 * BAND[0]:.0f}-{100 * BAND[-1]:.0f}% "
                                    "band of each outcome's patients",
               title_fontsize=FONT_SIZE - 1)
    if title:
        suptitle(fig, title)
    return fig


def _draw_diagram(ax, bif: xr.Dataset, coord: str, cohort, marked) -> None:
    """Steady-state branches against activation_rate, the marked patient's equilibria and the
    cohort's day-0 values."""
    st = m.STATES[m.STATE_INDEX[coord]]
    r = bif.rate.values
    ax.plot(r, bif.diseased, color=OKABE_ITO["vermillion"], lw=2, label="diseased (stable)")
    ax.plot(r, bif.healthy, color=OKABE_ITO["bluish_green"], lw=2, label="healthy (stable)")
    ax.plot(r, bif.unstable, color="0.2", lw=1.5, ls="--", label="threshold (unstable)")
    if cohort is not None:
        ax.plot(cohort[0], cohort[1], ls="none", marker="o", ms=2.5, alpha=0.35,
                color=OKABE_ITO["blue"], label="patients at day 0")
    if marked is not None:
        rate, states = marked
        k = m.STATE_INDEX[coord]
        ys = [s.y[k] for s in states]
        ax.plot(np.full(len(ys), rate), ys, ls="none", marker="D", ms=6, mfc="white",
                mec="black", mew=1.2, zorder=5,
                label=f"its equilibria (rate {rate:.2g} 1/d)", gid="marked_states")
        ax.axvline(rate, color="0.5", ls=":", lw=0.8)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("B-cell activation rate, activation_rate (1/d)", fontsize=FONT_SIZE)
    ax.set_ylabel(f"{SHORT_NAMES.get(coord, st.long_name)}{unit_suffix(st.unit)} at steady "
                  "state", fontsize=FONT_SIZE)
    ax.set_title("Steady states without treatment\n(median patient)", fontsize=FONT_SIZE)
    ax.legend(fontsize=FONT_SIZE - 1, loc="lower right", frameon=True, framealpha=0.9)
    ax.tick_params(labelsize=FONT_SIZE - 1)
    ax.grid(alpha=0.25, lw=0.5, which="major")


def check(ds: xr.Dataset) -> None:
    require(ds, "bistability", ["patient_parameters", "remission", "relapse", "response"])
    pick_coordinate(ds)


def figures(ds: xr.Dataset, *, coord: str | None = None, select: dict | None = None,
            vary: str | None = None) -> list[FigureSpec]:
    coord = pick_coordinate(ds, coord)
    crossings, note = crossing_data(ds, coord, select=select, vary=vary)
    if not any(c.ratio.size for c in crossings.values()):
        raise PlotError("bistability: no patient with a threshold and solver status 0 to draw")
    pp = np.asarray(ds.patient_parameters.values, dtype=float)
    median = np.median(pp, axis=0)
    bif = bifurcation(median, coord)
    rate_index = m.PARAMETERS.index["activation_rate"]
    base = ds.isel(point=0) if "point" in ds.dims else ds
    ss = choose_series(base, select, vary, max_series=MAX_PANELS)
    x0 = samples(masked(base, f"traj_{coord}").isel(time=0), ss.series[0].isel)
    rate = pp[:, rate_index]
    cohort = (rate, x0) if x0.size == rate.size else None
    singles = sorted({c.n_single for c in crossings.values()})
    if singles != [0]:
        k = str(singles[0]) if len(singles) == 1 else ", ".join(
            str(c.n_single) for c in crossings.values())
        note = "; ".join(x for x in (note, f"not shown: patients with a single steady state "
                                           f"(no threshold): {k}" + (" per panel" if len(
                                               crossings) > 1 else "")) if x)
    title = (f"Bistability: who crosses the threshold ({coord}) after treatment"
             + (f"\n{note}" if note else ""))
    fig = draw_bistability(bif, crossings, coord=coord, cohort=cohort,
                           marked=(float(median[rate_index]), steady_states(median)),
                           titles={s.label: s.title for s in ss.series},
                           title=title)
    caption = (f"Left: steady states of {coord} against activation_rate for the untreated "
               "median patient (parameter-wise median of the patients drawn; stable: solid; "
               "unstable threshold: dashed; diamonds: its equilibria at its own rate), with "
               "each patient's day-0 value. Right: each "
               f"patient's {coord} trajectory divided by the value at the patient's own "
               "unstable steady state under the long-run parameters of the scenario "
               "(background therapy included, MSCs gone; 1 = threshold, a one-coordinate "
               "projection of the separatrix), summarised per outcome category by the median "
               f"(line) and the {100 * BAND[0]:.0f}-{100 * BAND[-1]:.0f}% band over its patients, "
               f"per treated {ss.title}" + (f"; {note}" if note else "") + ".")
    return [FigureSpec("bistability", fig, caption)]
