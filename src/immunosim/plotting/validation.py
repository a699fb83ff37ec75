"""Figures of the validation report: the calibrated cohort against the published figures.

Every model curve is the posterior median with a 95% band across posterior draws (fresh
patients per draw, :mod:`immunosim.experiments.posterior_check`); every published figure is a
point with its 95% interval (Clopper-Pearson or t).
"""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter
from scipy import stats

from ..experiments.posterior_check import CalibratedCohort, PosteriorCheck
from ..experiments.targets import Target, data_interval
from ..model import sle_msc as m
from ._style import OKABE_ITO, new_figure

MODEL = OKABE_ITO["blue"]
DATA = OKABE_ITO["vermillion"]


def _band(ax, t, curves, label, scale=1.0):
    c = np.asarray(curves, dtype=float) * scale
    lo, med, hi = np.nanpercentile(c, [2.5, 50, 97.5], axis=0)
    ax.fill_between(t / 365.25, lo, hi, color=MODEL, alpha=0.25, lw=0)
    ax.plot(t / 365.25, med, color=MODEL, lw=1.6, label=label)


def _data(ax, targets: list[Target], ids: list[str], scale=1.0, label="published (95% CI)",
          offset=0.0):
    first = True
    for tid in ids:
        t = next((t for t in targets if t.id == tid), None)
        if t is None:
            continue
        lo, hi = data_interval(t)
        xx = (t.time + offset) / 365.25
        v = t.observed * scale
        ax.errorbar([xx], [v], yerr=[[v - lo * scale], [hi * scale - v]], fmt="o", ms=4,
                    color=DATA, capsize=3, lw=1.2, label=label if first else None)
        first = False


def _finish(ax, title, ylabel, pct=False):
    ax.set_title(title, fontsize=9, loc="left")
    ax.set_xlabel("years after the infusion / transplant")
    ax.set_ylabel(ylabel)
    if pct:
        ax.set_ylim(0, 100)
    ax.grid(alpha=0.3, lw=0.5)
    ax.legend(fontsize=7, frameon=False, loc="best")


def msc_figure(check: PosteriorCheck, targets: list[Target], arm: str = "msc") -> Figure:
    """Nanjing MSC cohorts: complete remission, yearly relapse, SLEDAI and proteinuria."""
    fig = new_figure(9.5, 6.6)
    ax = fig.subplots(2, 2)
    k = f"{arm}:"
    _band(ax[0, 0], check.times[k + "complete_remission"], check.curves[k + "complete_remission"],
          "model: SLEDAI <= 3, no major organ", 100)
    _data(ax[0, 0], targets, [f"wang2013_complete_remission_{y}y" for y in (1, 2, 3, 4)], 100,
          "Wang 2013")
    _finish(ax[0, 0], "a  Complete remission at the visit", "% of patients", pct=True)

    yr = check.curves[k + "yearly_relapse"] * 100
    lo, med, hi = np.nanpercentile(yr, [2.5, 50, 97.5], axis=0)
    years = np.arange(1, 5)
    ax[0, 1].bar(years - 0.15, med, width=0.3, color=MODEL, alpha=0.6, label="model (95% CrI)")
    ax[0, 1].errorbar(years - 0.15, med, yerr=[med - lo, hi - med], fmt="none", color=MODEL,
                      capsize=3)
    _data(ax[0, 1], targets, [f"wang2013_relapse_year{y}" for y in (1, 2, 3, 4)], 100,
          "Wang 2013", offset=0.15 * 365.25)  # next to the model's bar of the same year
    ax[0, 1].set_xticks(years)
    _finish(ax[0, 1], "b  First relapse during each year", "% of patients followed")
    ax[0, 1].set_xlabel("year after the infusion")

    _band(ax[1, 0], check.times[k + "sledai_mean"], check.curves[k + "sledai_mean"],
          "model mean")
    _data(ax[1, 0], targets, ["liang2010_sledai_baseline", "liang2010_sledai_12m"],
          label="Liang 2010 (mean, 95% t)")
    _finish(ax[1, 0], "c  SLEDAI-2K", "points")
    _band(ax[1, 1], check.times[k + "proteinuria_mean"], check.curves[k + "proteinuria_mean"],
          "model mean")
    _data(ax[1, 1], targets, ["liang2010_proteinuria_baseline", "liang2010_proteinuria_12m"],
          label="Liang 2010 (mean, 95% t)")
    _finish(ax[1, 1], "d  24-h proteinuria", "mg/24 h")
    for a in ax.ravel():
        a.set_xlim(left=-0.15)  # the baseline points sit at 0
    ax[0, 1].set_xlim(0.4, 4.6)
    return fig


def hsct_figure(check: PosteriorCheck, targets: list[Target], arm: str = "hsct") -> Figure:
    """Autologous HSCT: remission by 6 months, relapse among responders, disease-free."""
    fig = new_figure(11, 3.6)
    ax = fig.subplots(1, 3)
    k = f"{arm}:"
    _band(ax[0], check.times[k + "sledai_below_3_by"], check.curves[k + "sledai_below_3_by"],
          "model (alive, SLEDAI <= 2)", 100)
    _data(ax[0], targets, ["jayne2004_remission_6m"], 100, "Jayne 2004")
    _finish(ax[0], "a  Remission (SLEDAI < 3) reached", "% of patients", pct=True)
    _band(ax[1], check.times[k + "relapse_among_responders"],
          check.curves[k + "relapse_among_responders"], "model", 100)
    _data(ax[1], targets, ["jayne2004_relapse_among_responders"], 100, "Jayne 2004")
    _finish(ax[1], "b  Relapse among responders (cumulative)", "% of responders", pct=True)
    _band(ax[2], check.times[k + "disease_free"], check.curves[k + "disease_free"], "model",
          100)
    _data(ax[2], targets, ["burt2006_disease_free_survival_5y"], 100, "Burt 2006")
    _finish(ax[2], "c  Disease-free survival", "% of patients", pct=True)
    for a in ax:
        a.set_xlim(left=-0.15)
    return fig


def distributions_figure(cc: CalibratedCohort, prior_centre: dict[str, float]) -> Figure:
    """The fitted lognormal of every calibrated parameter: best fit and 95% posterior band."""
    n = len(cc.names)
    cols = min(4, n)
    rows = int(np.ceil(n / cols))
    fig = new_figure(2.6 * cols, 2.2 * rows)
    axes = np.atleast_1d(fig.subplots(rows, cols)).ravel()
    for i, name in enumerate(cc.names):
        ax = axes[i]
        sig = np.sqrt(np.log1p(cc.cv[:, i] ** 2))
        lo_x = np.exp(np.min(np.log(cc.median[:, i]) - 3 * sig))
        hi_x = np.exp(np.max(np.log(cc.median[:, i]) + 3 * sig))
        x = np.geomspace(lo_x, hi_x, 200)
        # density of log10(x), so areas read on the log axis
        dens = np.array([stats.norm.pdf(np.log(x), np.log(mu), s) for mu, s in
                         zip(cc.median[:, i], sig)]) * np.log(10)
        lo, hi = np.percentile(dens, [2.5, 97.5], axis=0)
        ax.fill_between(x, lo, hi, color=MODEL, alpha=0.25, lw=0, label="posterior 95%")
        best = stats.norm.pdf(np.log(x), np.log(cc.best_median[i]),
                              np.sqrt(np.log1p(cc.best_cv[i] ** 2))) * np.log(10)
        ax.plot(x, best, color=MODEL, lw=1.5, label="best fit")
        if name in prior_centre:
            ax.axvline(prior_centre[name], color=OKABE_ITO["black"], ls=":", lw=1,
                       label="prior centre")
        ax.set_xscale("log")
        ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0), numticks=8))
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.tick_params(axis="x", labelsize=7)
        unit = m.PARAMETERS[name].unit
        ax.set_title(name + ("" if unit in ("1", "") else f" ({unit})"), fontsize=8, loc="left")
        ax.set_yticks([])
        if i == 0:
            ax.legend(fontsize=6, frameon=False)
    for ax in axes[n:]:
        ax.set_visible(False)
    return fig
