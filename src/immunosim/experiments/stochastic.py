"""Outcome probabilities of agent-based sweeps, with confidence intervals.

A run of the agent-based engine has a ``replicate`` dimension: the same patient and schedule,
independent stochastic histories. For each scenario and sweep point this module estimates

* ``p_remission``: sustained remission reached within follow-up;
* ``p_durable``: remission reached and no relapse by the end of follow-up (durable remission);
* ``p_relapse``: remission reached, then relapse (among all runs);
* ``p_relapse_given_remission``: relapse among the runs that reached remission;

as the mean over patients of each patient's share of replicates (so every patient weighs the
same whatever the number of failed runs). The 95% interval depends on the design:

* one patient: Clopper-Pearson over the replicates (exact binomial);
* several patients: the cluster-robust normal interval, ``mean +- 1.96 sd(patient shares) /
  sqrt(n_patients)`` clipped to [0, 1] (replicates of a patient share its parameters, so they
  are not independent draws from the cohort); where every patient has the same share (all 0 or
  all 1: the interval would have no width), Clopper-Pearson over all runs pooled.
"""

from __future__ import annotations

import numpy as np
import xarray as xr
from scipy import stats

#: The probabilities :func:`outcome_probabilities` estimates (each with ``_low`` / ``_high``).
PROBABILITIES = ("p_remission", "p_durable", "p_relapse", "p_relapse_given_remission")
_LONG = {"p_remission": "P(sustained remission)",
         "p_durable": "P(durable remission: remission and no relapse by the end of follow-up)",
         "p_relapse": "P(relapse after remission)",
         "p_relapse_given_remission": "P(relapse | remission)"}


def _events(ds: xr.Dataset) -> dict[str, tuple[xr.DataArray, xr.DataArray]]:
    ok = ds.status == 0
    rem = ds.remission & ok
    rel = ds.relapse & rem
    return {"p_remission": (rem, ok), "p_durable": (rem & ~rel, ok), "p_relapse": (rel, ok),
            "p_relapse_given_remission": (rel, rem)}


def clopper_pearson(k: np.ndarray, n: np.ndarray, level: float = 0.95
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Exact binomial interval for ``k`` events in ``n`` trials (NaN where ``n == 0``)."""
    k = np.asarray(k, float)
    n = np.asarray(n, float)
    a = (1.0 - level) / 2.0
    with np.errstate(invalid="ignore", divide="ignore"):
        lo = np.where(k > 0, stats.beta.ppf(a, k, n - k + 1), 0.0)
        hi = np.where(k < n, stats.beta.ppf(1 - a, k + 1, n - k), 1.0)
    bad = n <= 0
    return np.where(bad, np.nan, lo), np.where(bad, np.nan, hi)


def _only_attrs(da: xr.DataArray, long_name: str) -> xr.DataArray:
    """``da`` with exactly ``units = "1"`` and ``long_name``: nothing inherited from the
    variables it was computed from (``status`` flags, the units of a time)."""
    out = da.copy(deep=False)
    out.attrs = {"units": "1", "long_name": long_name}
    return out


def outcome_probabilities(ds: xr.Dataset, level: float = 0.95) -> xr.Dataset:
    """Probabilities of remission, durable remission and relapse per scenario and sweep point.

    Parameters
    ----------
    ds : Dataset
        A sweep result with ``patient`` and ``replicate`` dimensions and the variables
        ``status``, ``remission``, ``relapse``.
    level : float
        Confidence level of the intervals.

    Returns
    -------
    Dataset
        For each name in :data:`PROBABILITIES`: the estimate and ``<name>_low`` /
        ``<name>_high``, over the dimensions of ``ds`` other than patient and replicate; and
        ``n_runs`` (successful runs).
    """
    if "replicate" not in ds.dims:
        raise ValueError("outcome_probabilities: the result has no 'replicate' dimension (run "
                         "the sweep with [engine] kind = \"abm\")")
    ds = ds[["status", "remission", "relapse"]].load()
    n_pat = ds.sizes["patient"]
    z = stats.norm.ppf(0.5 + level / 2.0)
    out = {}
    for name, (event, among) in _events(ds).items():
        k = event.sum("replicate")
        n = among.sum("replicate")
        share = (k / n.where(n > 0))
        est = share.mean("patient", skipna=True)
        if n_pat == 1:
            lo, hi = clopper_pearson(k.squeeze("patient").values, n.squeeze("patient").values,
                                     level)
            lo = xr.DataArray(lo, dims=est.dims, coords=est.coords)
            hi = xr.DataArray(hi, dims=est.dims, coords=est.coords)
        else:
            m = share.count("patient")
            se = share.std("patient", ddof=1, skipna=True) / np.sqrt(m)
            lo = (est - z * se).clip(0.0, 1.0)
            hi = (est + z * se).clip(0.0, 1.0)
            # where the patients' shares do not vary (all 0 or all 1) the cluster interval has
            # no width: use Clopper-Pearson over all runs pooled instead
            flat = se == 0
            cp_lo, cp_hi = clopper_pearson(k.sum("patient").values, n.sum("patient").values,
                                           level)
            lo = lo.where(~flat, cp_lo)
            hi = hi.where(~flat, cp_hi)
        out[name] = _only_attrs(est, _LONG[name])
        out[f"{name}_low"] = _only_attrs(lo, f"{_LONG[name]}: lower {level:.0%} limit")
        out[f"{name}_high"] = _only_attrs(hi, f"{_LONG[name]}: upper {level:.0%} limit")
    out["n_runs"] = _only_attrs((ds.status == 0).sum(("patient", "replicate")),
                                "Successful runs (patients x replicates)")
    res = xr.Dataset(out)
    res.attrs["interval"] = ("Clopper-Pearson over replicates" if n_pat == 1 else
                             "cluster-robust normal over patients; Clopper-Pearson over all "
                             "runs where every patient's share is the same")
    return res


def probability_table(ds: xr.Dataset, max_rows: int = 60) -> str:
    """One line per scenario and sweep point: P(remission), P(durable remission), P(relapse),
    each with its 95% interval, and the median surviving pre-treatment clones."""
    pr = outcome_probabilities(ds)
    lead = [d for d in pr.p_remission.dims]
    flat = pr.stack(row=lead) if lead else pr.expand_dims(row=[0])
    surv = ds.surviving_clones.where(ds.status == 0).median(("patient", "replicate"))
    surv = surv.stack(row=lead) if lead else surv.expand_dims(row=[0])

    def fmt(name, i):
        v = float(flat[name][i])
        lo, hi = float(flat[f"{name}_low"][i]), float(flat[f"{name}_high"][i])
        if v != v:
            return "-"
        return f"{100 * v:.0f}% [{100 * lo:.0f}-{100 * hi:.0f}]"

    head = [*lead, "runs", "P(remission)", "P(durable)", "P(relapse)", "P(rel|rem)",
            "surv. clones"]
    rows = [tuple(head)]
    n = flat.sizes["row"]
    for i in range(min(n, max_rows)):
        key = flat.row.values[i]
        key = key if isinstance(key, tuple) else (key,)
        cells = [f"{v:g}" if isinstance(v, (float, np.floating)) else str(v) for v in key]
        rows.append(tuple(cells[: len(lead)] + [
            f"{int(flat.n_runs[i])}", fmt("p_remission", i), fmt("p_durable", i),
            fmt("p_relapse", i), fmt("p_relapse_given_remission", i),
            f"{float(surv[i]):g}"]))
    widths = [max(len(r[j]) for r in rows) for j in range(len(head))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)) for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    if n > max_rows:
        lines.append(f"... {n - max_rows} more rows (outcome_probabilities(ds) has them all)")
    lines.append(f"x% [lo-hi]: estimate and 95% interval ({pr.attrs['interval']}); durable = "
                 "remission without relapse by the end of follow-up; surv. clones: median clones "
                 "founded before day 0 that can still re-seed at the horizon")
    return "\n".join(lines)
