"""Sobol' indices of clinical outcomes: horizontal bars of S1 and ST with their 95% intervals,
one panel per outcome, parameters sorted by ST (the result of
:func:`~immunosim.experiments.sensitivity.sobol_sensitivity`)."""

from __future__ import annotations

import numpy as np
import xarray as xr
from matplotlib.figure import Figure

from ._data import PlotError
from ._style import FONT_SIZE, OKABE_ITO, new_figure, suptitle

#: Bar colours: first-order (what the parameter does alone) and total (with interactions).
INDEX_COLORS: dict[str, str] = {"S1": OKABE_ITO["sky_blue"], "ST": OKABE_ITO["blue"]}
_BAR = 0.38  # bar thickness (a parameter's row is 1)


def draw_sensitivity(ds: xr.Dataset, *, title: str | None = None) -> Figure:
    """Bars of ``S1`` and ``ST`` (± ``S1_conf``, ``ST_conf``) per parameter, one panel per outcome.

    Parameters
    ----------
    ds : xarray.Dataset
        With ``S1``, ``S1_conf``, ``ST``, ``ST_conf`` of dims ``(outcome, parameter)``.
    title : str, optional
        Default: the config, scenario and sample size from the attributes.
    """
    need = [v for v in ("S1", "S1_conf", "ST", "ST_conf") if v not in ds]
    if need:
        raise PlotError(f"sensitivity: the result has no {', '.join(need)}; expected the output "
                        "of `immunosim sensitivity`")
    outs = [str(o) for o in ds.outcome.values]
    n_par = ds.sizes["parameter"]
    ncols = min(len(outs), 3)
    nrows = int(np.ceil(len(outs) / ncols))
    fig = new_figure(3.6 * ncols + 0.6, (0.36 * n_par + 1.1) * nrows + 0.7)
    axs = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for ax, o in zip(axs, outs):
        d = ds.sel(outcome=o)
        st = d.ST.values
        order = np.argsort(np.nan_to_num(st, nan=-1.0), kind="stable")  # largest ST on top
        y = np.arange(n_par)
        names = [str(p) for p in d.parameter.values[order]]
        for var, off in (("ST", _BAR / 2), ("S1", -_BAR / 2)):
            v = np.nan_to_num(d[var].values[order], nan=0.0)
            c = np.nan_to_num(d[f"{var}_conf"].values[order], nan=0.0)
            ax.barh(y + off, v, height=_BAR, color=INDEX_COLORS[var], xerr=c,
                    error_kw={"elinewidth": 0.8, "capsize": 2, "ecolor": "0.25"},
                    label={"ST": "total (ST)", "S1": "first order (S1)"}[var])
        ax.set_yticks(y, names, fontsize=FONT_SIZE - 1)
        ax.axvline(0.0, color="0.2", lw=0.8)
        hi = float(np.nanmax(np.r_[(d.ST + d.ST_conf).values, (d.S1 + d.S1_conf).values, 1.0]))
        ax.set_xlim(min(0.0, float(np.nanmin(np.r_[(d.S1 - d.S1_conf).values, 0.0]))) - 0.02,
                    hi + 0.02)
        ax.set_ylim(-0.6, n_par - 0.4)
        units = ds.attrs.get(f"units_{o}", "")
        mean = float(ds["mean"].sel(outcome=o)) if "mean" in ds else np.nan
        sub = (f"mean {mean:.0f} d" if units == "d" else f"mean {mean:.2f}") if mean == mean \
            else ""
        constant = bool(np.all(np.isnan(st)))
        ax.set_title(f"{o}" + (f" ({sub})" if sub else "") + (", constant" if constant else ""),
                     fontsize=FONT_SIZE)
        ax.set_xlabel("Sobol' index (share of variance)", fontsize=FONT_SIZE - 1)
        ax.tick_params(axis="x", labelsize=FONT_SIZE - 1)
        ax.grid(axis="x", alpha=0.25, lw=0.5)
    for ax in axs[len(outs):]:
        ax.axis("off")
    handles, labels = axs[0].get_legend_handles_labels()
    fig.legend(handles[::-1], labels[::-1], loc="outside lower center", ncols=2,
               fontsize=FONT_SIZE, frameon=False,
               title="bars: index; whiskers: 95% bootstrap interval",
               title_fontsize=FONT_SIZE - 1)
    if title is None:
        a = ds.attrs
        title = (f"Sobol' sensitivity of outcomes to patient parameters: "
                 f"{a.get('config', '?')}, scenario {a.get('scenario', '?')}, "
                 f"N = {a.get('samples', '?')} ({a.get('runs', '?')} virtual patients); "
                 "inputs independent")
    if title:
        suptitle(fig, title)
    return fig
