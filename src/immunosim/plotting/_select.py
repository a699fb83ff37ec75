"""Choosing what a figure shows: held axis values (``--select``) and patient subgroups
(``--subgroup``).

* :func:`parse_select` turns ``["amount=1e6", "first_day=91"]`` into ``{"amount": "1e6", ...}``;
  :func:`match_index` finds a value on a result dimension: exact for names and integers, the
  nearest value within :data:`FLOAT_RTOL` for floats (so the rounded values printed on figures,
  ``3.2e6`` for 3.162e6, select what they show).
* :func:`parse_condition` turns ``"activation_rate>q75"`` into a :class:`Condition`;
  :func:`select_subgroup` keeps the patients that meet every condition. A condition names a
  patient parameter (``patient_parameters``) or a covariate (any variable or coordinate along
  ``patient`` alone), an operator (``>``, ``>=``, ``<``, ``<=``, ``==``) and a number or a cohort
  quantile ``qNN`` (``q75``: the 75th percentile over all patients of the result).

Every problem is a one-line :class:`~immunosim.plotting._data.PlotError` naming the key, the bad
value and what is expected (the available values or names).
"""

from __future__ import annotations

import operator
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import xarray as xr

from ._errors import PlotError
from ._style import fmt_value

#: Relative tolerance of nearest-value matching on float coordinates: values rounded to two
#: significant figures (as figures print them) are within 5% of the exact value.
FLOAT_RTOL = 0.05
#: Dimensions that are never sweep axes or scenarios (they cannot be held by ``select``).
_NOT_SELECTABLE = ("patient", "landmark", "time", "dose", "parameter", "replicate")

OPERATORS: dict[str, object] = {">=": operator.ge, "<=": operator.le, "==": operator.eq,
                                ">": operator.gt, "<": operator.lt}
_CONDITION = re.compile(r"^\s*([A-Za-z_][\w.]*)\s*(>=|<=|==|>|<)\s*(\S+)\s*$")
_QUANTILE = re.compile(r"^[qQ](\d+(?:\.\d*)?)$")


# --- held values --------------------------------------------------------------------------------


def parse_select(items: Iterable[str] | Mapping[str, object] | None) -> dict[str, object]:
    """``["dim=value", ...]`` (the CLI's ``--select``) as ``{dim: value}``; a mapping is
    returned as a dict. Values stay strings: :func:`match_index` reads them against the
    coordinate's type.

    Raises
    ------
    PlotError
        An item without ``=``, with an empty name or value, or a dimension given twice.
    """
    if items is None:
        return {}
    if isinstance(items, Mapping):
        return dict(items)
    out: dict[str, object] = {}
    for item in items:
        dim, eq, value = str(item).partition("=")
        dim, value = dim.strip(), value.strip()
        if not eq or not dim or not value:
            raise PlotError(f"select: {item!r} is not DIM=VALUE (e.g. amount=1e6)")
        if dim in out:
            raise PlotError(f"select: {dim} given twice ({out[dim]} and {value})")
        out[dim] = value
    return out


def _available(vals: np.ndarray) -> str:
    return ", ".join(fmt_value(v) for v in vals)


def match_index(ds: xr.Dataset, dim: str, value) -> int:
    """Position of ``value`` on dimension ``dim`` of ``ds``.

    Names (string coordinates) and integer coordinates match exactly; float coordinates match
    the nearest value if it lies within ``FLOAT_RTOL`` (relative) of ``value`` (exactly, for 0).
    ``value`` may be a string (from the command line) or a number.

    Raises
    ------
    PlotError
        ``dim`` is not a dimension, or no value matches; the message lists the valid ones.
    """
    if dim not in ds.dims or dim in _NOT_SELECTABLE:
        valid = [d for d in ds.dims if d not in _NOT_SELECTABLE and d != "point"]
        raise PlotError(f"select: '{dim}' is not a scenario or sweep axis of the result; valid: "
                        f"{', '.join(map(str, valid)) or 'none'}")
    vals = ds[dim].values if dim in ds.coords else np.arange(ds.sizes[dim])
    kind = vals.dtype.kind
    if kind in "USO":
        hits = np.nonzero(vals.astype(str) == str(value))[0]
        if hits.size:
            return int(hits[0])
        raise PlotError(f"select: {dim} = {value!r} is not in the result; available: "
                        f"{_available(vals)}")
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise PlotError(f"select: {dim} = {value!r} is not a number; available: "
                        f"{_available(vals)}") from None
    x = vals.astype(float)
    if kind in "iub":
        hits = np.nonzero(x == v)[0]
        if hits.size:
            return int(hits[0])
        raise PlotError(f"select: {dim} = {value} is not in the result (integers match "
                        f"exactly); available: {_available(vals)}")
    i = int(np.argmin(np.abs(x - v)))
    if np.isfinite(v) and abs(x[i] - v) <= FLOAT_RTOL * abs(v):
        return i
    raise PlotError(f"select: {dim} = {value} is not in the result (nearest {fmt_value(x[i])}, "
                    f"tolerance {100 * FLOAT_RTOL:g}%); available: {_available(vals)}")


def resolve_select(ds: xr.Dataset, select: Mapping[str, object] | None) -> dict[str, object]:
    """``select`` with every value replaced by the coordinate value it matches (checked once,
    so that each figure then selects exactly). Raises :class:`PlotError` as
    :func:`match_index`."""
    out = {}
    for dim, value in (select or {}).items():
        i = match_index(ds, dim, value)
        out[dim] = ds[dim].values[i].item() if dim in ds.coords else i
    return out


# --- subgroups ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Condition:
    """A patient condition ``name op value``; ``quantile`` (in [0, 1]) when the value is a
    cohort quantile (``q75`` -> 0.75), else ``value`` is the number or name compared with."""

    name: str
    op: str
    value: float | str | None = None
    quantile: float | None = None

    @property
    def text(self) -> str:
        rhs = f"q{100 * self.quantile:g}" if self.quantile is not None else str(self.value)
        return f"{self.name} {self.op} {rhs}"


def parse_condition(text: str) -> Condition:
    """``"activation_rate>q75"`` -> ``Condition("activation_rate", ">", quantile=0.75)``.

    The right-hand side is a number, a cohort quantile ``qNN`` (0 <= NN <= 100) or, with
    ``==`` only, a name (for text covariates).

    Raises
    ------
    PlotError
        Not of the form ``NAME OP VALUE``, or a quantile outside [0, 100].
    """
    m = _CONDITION.match(str(text))
    if m is None:
        raise PlotError(f"subgroup: {text!r} is not NAME OP VALUE (OP one of "
                        f"{' '.join(sorted(OPERATORS, key=len))}; VALUE a number or a cohort "
                        "quantile qNN; e.g. activation_rate>q75)")
    name, op, rhs = m.groups()
    q = _QUANTILE.match(rhs)
    if q is not None:
        pct = float(q.group(1))
        if not 0.0 <= pct <= 100.0:
            raise PlotError(f"subgroup: {text!r}: quantile q{q.group(1)} is outside q0-q100")
        return Condition(name, op, quantile=pct / 100.0)
    try:
        return Condition(name, op, value=float(rhs))
    except ValueError:
        if op != "==":
            raise PlotError(f"subgroup: {text!r}: {rhs!r} is not a number or a quantile qNN "
                            "(names compare with == only)") from None
        return Condition(name, op, value=rhs)


def patient_values(ds: xr.Dataset, name: str) -> tuple[np.ndarray, str]:
    """Per-patient values of a patient parameter or covariate, shape (n_patients,), and units.

    Raises
    ------
    PlotError
        ``name`` is neither; the message lists the names available.
    """
    if "patient_parameters" in ds and "parameter" in ds.coords:
        params = [str(p) for p in ds.parameter.values]
        if name in params:
            da = ds.patient_parameters.isel(parameter=params.index(name))
            return np.asarray(da.values), _parameter_unit(name)
    else:
        params = []
    covs = covariate_names(ds)
    if name in covs:
        return np.asarray(ds[name].values), str(ds[name].attrs.get("units", ""))
    valid = covs + params
    raise PlotError(f"subgroup: {name!r} is not a patient parameter or covariate of the result; "
                    f"available: {', '.join(valid) if valid else 'none (no patient_parameters)'}")


def covariate_names(ds: xr.Dataset) -> list[str]:
    """Variables and coordinates along ``patient`` alone (covariates of a population table,
    posterior ``draw``/``subject``, ...), the ``patient`` index itself excluded."""
    names = [str(n) for n, v in ds.variables.items() if v.dims == ("patient",)]
    return [n for n in names if n not in ("patient", "cohort_redraws")]


def _parameter_unit(name: str) -> str:
    from ..model import sle_msc as m

    return m.PARAMETERS[name].unit if name in m.PARAMETERS.index else ""


def condition_mask(ds: xr.Dataset, cond: Condition) -> tuple[np.ndarray, str]:
    """Patients meeting ``cond`` (bool, shape (n_patients,)) and a readable description, e.g.
    ``activation_rate > 0.083 1/d (q75)``. Quantiles are over all patients of ``ds``."""
    vals, units = patient_values(ds, cond.name)
    numeric = vals.dtype.kind in "iufb"
    if not numeric and (cond.op != "==" or cond.quantile is not None
                        or not isinstance(cond.value, str)):
        raise PlotError(f"subgroup: {cond.text!r}: {cond.name} holds names "
                        f"({_examples(vals)}); compare it with == and a name")
    if numeric and isinstance(cond.value, str):
        raise PlotError(f"subgroup: {cond.text!r}: {cond.name} is numeric; compare it with a "
                        "number or a quantile qNN")
    if cond.quantile is not None:
        x = vals.astype(float)
        if not np.isfinite(x).any():
            raise PlotError(f"subgroup: {cond.text!r}: {cond.name} has no finite value")
        ref = float(np.nanquantile(x, cond.quantile))
        rhs = f"{_fmt(ref)}{' ' + units if units else ''} (q{100 * cond.quantile:g})"
    else:
        ref = cond.value
        rhs = f"{_fmt(ref) if numeric else ref}{' ' + units if units and numeric else ''}"
    if numeric:
        with np.errstate(invalid="ignore"):
            mask = np.asarray(OPERATORS[cond.op](vals.astype(float), float(ref)), dtype=bool)
    else:
        mask = vals.astype(str) == str(ref)
    return mask, f"{cond.name} {cond.op} {rhs}"


def _fmt(x) -> str:
    return f"{float(x):.3g}"


def _examples(vals: np.ndarray, k: int = 6) -> str:
    u = [str(v) for v in dict.fromkeys(vals.astype(str).tolist())]
    return ", ".join(u[:k]) + (", ..." if len(u) > k else "")


def select_subgroup(ds: xr.Dataset, conditions: str | Sequence[str | Condition] | None
                    ) -> xr.Dataset:
    """The patients of ``ds`` meeting every condition (``"activation_rate>q75"``, ...).

    Parameters
    ----------
    ds : Dataset
        A sweep result with a ``patient`` dimension (and ``patient_parameters`` for parameter
        conditions).
    conditions : str or list of str or Condition
        Combined with AND; quantiles ``qNN`` are over all patients of ``ds``.

    Returns
    -------
    Dataset
        ``ds`` restricted to those patients, with the attribute ``subgroup`` (``"subgroup
        activation_rate > 0.083 1/d (q75): 8 of 30 patients"``) that every figure writes into
        its title and caption. ``ds`` unchanged when ``conditions`` is empty.

    Raises
    ------
    PlotError
        A malformed condition, an unknown name, or a subgroup without a patient.
    """
    if not conditions:
        return ds
    if isinstance(conditions, (str, Condition)):
        conditions = [conditions]
    if "patient" not in ds.dims:
        raise PlotError("subgroup: the result has no patient dimension")
    conds = [c if isinstance(c, Condition) else parse_condition(c) for c in conditions]
    n = ds.sizes["patient"]
    keep = np.ones(n, dtype=bool)
    texts = []
    for c in conds:
        mask, text = condition_mask(ds, c)
        keep &= mask
        texts.append(text)
    k = int(keep.sum())
    what = " and ".join(texts)
    if k == 0:
        raise PlotError(f"subgroup: no patient has {what} (of {n} patients)")
    out = ds.isel(patient=np.nonzero(keep)[0])
    out.attrs = {**ds.attrs, "subgroup": f"subgroup {what}: {k} of {n} patients"}
    return out
