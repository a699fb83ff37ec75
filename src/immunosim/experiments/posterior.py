"""Posterior draws in sweep results: per-draw summaries and credible intervals.

A sweep of a cohort with ``posterior_draws = K`` keeps one ``patient`` dimension of length
``K * size`` with the non-dimension coordinates ``draw`` and ``subject`` (patient
``j = draw * size + subject``). Outcome shares computed per draw (pooled over subjects and sweep
points) give the posterior distribution of that share; its 2.5 and 97.5% quantiles are a 95%
credible interval that carries the calibration's parameter uncertainty (not the finite-cohort
noise, which common random numbers hold fixed across draws)::

    ci = credible_interval(ds, "remission")
    ci.interval.sel(scenario="msc", quantile=[0.025, 0.975])
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import xarray as xr

#: Quantiles of the per-draw values reported by :func:`credible_interval`.
QUANTILES = (0.025, 0.5, 0.975)


def has_draws(ds: xr.Dataset | xr.DataArray) -> bool:
    """Whether a result carries posterior draws (a ``draw`` coordinate along ``patient``)."""
    return "draw" in ds.coords and ds["draw"].dims == ("patient",)


def split_draws(da: xr.DataArray) -> xr.DataArray:
    """``da`` with its ``patient`` dimension split into ``(draw, subject)``.

    Raises
    ------
    ValueError
        Without draws, or when patients are not ordered ``draw * size + subject``.
    """
    if not has_draws(da):
        raise ValueError(f"{da.name or 'array'}: no posterior draws (no 'draw' coordinate "
                         "along 'patient'); run a cohort with posterior_draws = K > 0")
    draw = np.asarray(da["draw"].values)
    k = int(draw.max()) + 1
    n = da.sizes["patient"] // k
    if not np.array_equal(draw, np.repeat(np.arange(k), n)):
        raise ValueError("patients are not ordered draw * size + subject (was the result "
                         "subset along 'patient'?)")
    i = da.dims.index("patient")
    data = da.data.reshape(da.shape[:i] + (k, n) + da.shape[i + 1:])
    coords = {c: v for c, v in da.coords.items() if "patient" not in v.dims}
    return xr.DataArray(data, dims=da.dims[:i] + ("draw", "subject") + da.dims[i + 1:],
                        coords={**coords, "draw": np.arange(k), "subject": np.arange(n)},
                        name=da.name, attrs=da.attrs)


def by_draw(da: xr.DataArray, reduce: str = "mean") -> xr.DataArray:
    """``da`` reduced over the subjects of each draw: ``patient`` becomes ``draw``.

    Parameters
    ----------
    da : DataArray with a ``patient`` dimension and ``draw`` coordinate
    reduce : str
        A DataArray reduction (``"mean"``, ``"median"``, ``"sum"``, ...); NaN skipped.
    """
    return getattr(split_draws(da), reduce)("subject")


def proportion_by_draw(ds: xr.Dataset, variable: str, *, among: str | None = None,
                       keep: Sequence[str] = ("scenario",)) -> xr.DataArray:
    """Share of runs with ``variable`` true, per draw, over every dimension not in ``keep``.

    Runs with non-zero ``status`` are left out; with ``among``, only runs where that variable
    is true count (e.g. ``flare`` among ``response``). NaN where a draw has no such run.

    Returns
    -------
    DataArray, dims ``(*keep, draw)``, values in [0, 1]
    """
    num, den = _counts(ds, variable, among)
    num, den = split_draws(num), split_draws(den)
    other = [d for d in num.dims if d not in (*keep, "draw")]
    share = num.sum(other) / den.sum(other).where(lambda n: n > 0)
    share.attrs = _share_attrs(variable, among, "per posterior draw")
    return share.transpose(*keep, "draw").rename(f"p_{variable}")


def _share_attrs(variable: str, among: str | None, what: str) -> dict[str, str]:
    """Attributes of a share: dimensionless, named (never the source variable's attributes)."""
    given = f" | {among}" if among else ""
    return {"units": "1", "long_name": f"P({variable}{given}), {what}"}


def credible_interval(ds: xr.Dataset, variable: str, *, among: str | None = None,
                      keep: Sequence[str] = ("scenario",),
                      quantiles: Sequence[float] = QUANTILES) -> xr.Dataset:
    """Pooled share of ``variable`` and its interval across posterior draws.

    Parameters
    ----------
    ds : sweep result with posterior draws
    variable, among, keep
        As :func:`proportion_by_draw`.
    quantiles : sequence of float
        Quantiles of the per-draw shares (default 2.5, 50, 97.5%: a 95% interval and median).

    Returns
    -------
    Dataset with ``per_draw`` (``(*keep, draw)``), ``interval`` (``(*keep, quantile)``) and
    ``pooled`` (``keep``: the share over all draws' runs together), all in [0, 1].
    """
    per = proportion_by_draw(ds, variable, among=among, keep=keep)
    num, den = _counts(ds, variable, among)
    other = [d for d in num.dims if d not in keep]
    pooled = num.sum(other) / den.sum(other).where(lambda n: n > 0)
    pooled.attrs = _share_attrs(variable, among, "all draws pooled")
    interval = per.quantile(list(quantiles), dim="draw", skipna=True).transpose(*keep,
                                                                             "quantile")
    interval.attrs = _share_attrs(variable, among, "quantiles across posterior draws")
    interval["quantile"].attrs = {"units": "1", "long_name": "Quantile across draws"}
    out = {"per_draw": per, "interval": interval, "pooled": pooled.transpose(*keep)}
    # a held sweep axis named like an output (dose_timing's ``interval``) is a scalar coordinate
    # of each share: drop it, or it collides with that output
    out = {k: v.drop_vars([c for c in out if c in v.coords and c not in v.dims])
           for k, v in out.items()}
    return xr.Dataset(out,
                      attrs={"variable": variable, "among": among or "",
                             "n_draws": per.sizes["draw"]})


def _counts(ds: xr.Dataset, variable: str, among: str | None
            ) -> tuple[xr.DataArray, xr.DataArray]:
    """Event and denominator indicators (0/1) per run."""
    den = ds.status == 0 if "status" in ds else xr.ones_like(ds[variable], dtype=bool)
    if among is not None:
        den = den & ds[among].astype(bool)
    num = den & ds[variable].astype(bool)
    return num.astype(int), den.astype(int)
