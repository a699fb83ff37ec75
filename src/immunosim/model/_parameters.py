"""Parameter and state metadata: every number a model uses carries a unit, a range and a source."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

#: A hard domain ``(lo, hi, lo_open, hi_open)``: the values that keep the model meaningful.
Domain = tuple[float, float, bool, bool]

POSITIVE: Domain = (0.0, math.inf, True, True)  # > 0: half-lives, EC50s, capacities
NONNEGATIVE: Domain = (0.0, math.inf, False, True)  # >= 0: rates, strengths, outputs
FRACTION: Domain = (0.0, 1.0, False, False)  # [0, 1]: maximal suppressions, shares


def default_domain(name: str, unit: str) -> Domain:
    """The hard domain a parameter gets from its name and unit, unless it declares one.

    Half-lives and lifespans, half-maximal levels (``*_ec50``, ``*_k50``) and capacities divide
    the equations: > 0. Maximal suppressions (``emax_*`` and ``*_emax*`` of unit 1) and
    fractions multiply a ``1 - x``: [0, 1]. Everything else is a rate, strength or output: >= 0.
    """
    if ("half_life" in name or "lifespan" in name or name.endswith(("ec50", "k50"))
            or "capacity" in name):
        return POSITIVE
    if unit == "1" and ("emax" in name or "fraction" in name):
        return FRACTION
    return NONNEGATIVE


def domain_text(d: Domain) -> str:
    """``> 0``, ``>= 0``, ``[0, 1]``, ``[0, 1)``, ``>= 1``: the domain as people write it."""
    lo, hi, lo_open, hi_open = d
    if math.isinf(hi):
        return f"{'>' if lo_open else '>='} {lo:g}"
    return f"{'(' if lo_open else '['}{lo:g}, {hi:g}{')' if hi_open else ']'}"


def in_domain(d: Domain, x) -> np.ndarray:
    """Elementwise: ``x`` finite and inside the domain ``d``."""
    lo, hi, lo_open, hi_open = d
    x = np.asarray(x, dtype=float)
    with np.errstate(invalid="ignore"):
        above = x > lo if lo_open else x >= lo
        below = x < hi if hi_open else x <= hi
    return np.isfinite(x) & above & below


@dataclass(frozen=True)
class Parameter:
    """One model parameter.

    Attributes
    ----------
    name : str
        Identifier used in configs and Datasets.
    default : float
        Value for the reference patient.
    unit : str
        Physical unit ("1" for dimensionless).
    low, high : float
        Plausible range; cohorts and random sweep designs draw from it.
    source : str
        Citation (see ``docs/model.md``), or ``"assumed: <reason>"``.
    description : str
        What the parameter means, in one line.
    treatment : bool
        True when the parameter acts only under treatment (MSCs, drugs, recovery after
        depletion), so that it cannot change the untreated steady state a patient starts from.
    domain : (lo, hi, lo_open, hi_open), optional
        Hard domain: values outside it make the model meaningless (a zero half-life, a
        suppression above 100%) and are refused by config validation. Default from the name
        and unit (:func:`default_domain`); ``low``/``high`` must lie inside it.
    """

    name: str
    default: float
    unit: str
    low: float
    high: float
    source: str
    description: str
    treatment: bool = False
    domain: Domain | None = None

    def __post_init__(self) -> None:
        if not (self.low <= self.default <= self.high):
            raise ValueError(
                f"parameter {self.name}: default {self.default} outside its range "
                f"[{self.low}, {self.high}]"
            )
        if self.domain is None:
            object.__setattr__(self, "domain", default_domain(self.name, self.unit))
        if not np.all(in_domain(self.domain, [self.low, self.high])):
            raise ValueError(f"parameter {self.name}: range [{self.low}, {self.high}] outside "
                             f"its domain {domain_text(self.domain)}")

    @property
    def domain_text(self) -> str:
        """The hard domain as text, e.g. ``> 0`` or ``[0, 1]``."""
        return domain_text(self.domain)

    def in_domain(self, x) -> np.ndarray:
        """Elementwise: ``x`` is finite and inside the hard domain."""
        return in_domain(self.domain, x)

    def plausible(self, x) -> np.ndarray:
        """Elementwise: ``x`` is inside the plausible range ``[low, high]``."""
        x = np.asarray(x, dtype=float)
        return (x >= self.low) & (x <= self.high)

    @property
    def assumed(self) -> bool:
        """True when the value is not taken from a published measurement."""
        return self.source.startswith("assumed")


@dataclass(frozen=True)
class State:
    """One state variable: name, unit, long name and whether it must stay non-negative."""

    name: str
    unit: str
    long_name: str
    nonnegative: bool = True


class ParameterTable:
    """An ordered, immutable table of :class:`Parameter` with vector conversion.

    The order is the order of the parameter vector ``p`` passed to the compiled kernels.
    """

    def __init__(self, parameters: tuple[Parameter, ...]):
        names = [p.name for p in parameters]
        if len(set(names)) != len(names):
            raise ValueError("duplicate parameter names")
        self._params = parameters
        self.index: dict[str, int] = {n: i for i, n in enumerate(names)}

    def __iter__(self):
        return iter(self._params)

    def __len__(self) -> int:
        return len(self._params)

    def __getitem__(self, name: str) -> Parameter:
        try:
            return self._params[self.index[name]]
        except KeyError:
            raise KeyError(self.unknown_message(name)) from None

    def __contains__(self, name: object) -> bool:
        return name in self.index

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self._params)

    def unknown_message(self, name: str) -> str:
        import difflib

        close = difflib.get_close_matches(name, self.names, n=1)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        return f"unknown parameter '{name}'{hint}"

    def defaults(self) -> np.ndarray:
        """The default parameter vector, shape ``(n_params,)``."""
        return np.array([p.default for p in self._params], dtype=np.float64)

    def treatment_indices(self) -> np.ndarray:
        """Positions of the parameters flagged ``treatment``, shape ``(k,)``."""
        return np.array([i for i, p in enumerate(self._params) if p.treatment], dtype=np.int64)

    def domains(self) -> np.ndarray:
        """Hard domains as ``(lo, hi, lo_open, hi_open)`` rows, shape ``(n_params, 4)``."""
        return np.array([p.domain for p in self._params], dtype=np.float64)

    def in_domain(self, params: np.ndarray) -> np.ndarray:
        """Rows of ``params (..., n_params)`` whose every value is in its hard domain."""
        params = np.asarray(params, dtype=float)
        ok = np.ones(params.shape[:-1], dtype=bool)
        for i, p in enumerate(self._params):
            ok &= p.in_domain(params[..., i])
        return ok

    def bounds(self) -> np.ndarray:
        """Plausible ranges, shape ``(n_params, 2)``."""
        return np.array([[p.low, p.high] for p in self._params], dtype=np.float64)

    def vector(self, overrides: Mapping[str, float] | None = None) -> np.ndarray:
        """Default vector with ``overrides`` applied; unknown names raise ``KeyError``."""
        p = self.defaults()
        for name, value in (overrides or {}).items():
            if name not in self.index:
                raise KeyError(self.unknown_message(name))
            p[self.index[name]] = float(value)
        return p
