"""Parameter and state metadata: every number a model uses carries a unit, a range and a source."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np


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
    """

    name: str
    default: float
    unit: str
    low: float
    high: float
    source: str
    description: str
    treatment: bool = False

    def __post_init__(self) -> None:
        if not (self.low <= self.default <= self.high):
            raise ValueError(
                f"parameter {self.name}: default {self.default} outside its range "
                f"[{self.low}, {self.high}]"
            )

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
