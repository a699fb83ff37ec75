"""The light description of a run: a named scenario, solver options, and the error of a patient
without a diseased state. Kept apart from :mod:`.simulate` so that reading and validating a config
does not import xarray (``immunosim validate`` starts fast)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from ..engines.ode.solver import DEFAULT_METHOD
from ..errors import ImmunosimError


@dataclass(frozen=True)
class Scenario:
    """A named treatment scenario: interventions plus parameter overrides."""

    name: str
    interventions: tuple = ()
    parameters: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class SolverOptions:
    """Numerical settings passed to :func:`immunosim.engines.ode.solver.solve`."""

    method: str = DEFAULT_METHOD
    rtol: float = 1e-6
    atol: float = 1e-8
    max_steps: int = 100_000


class NoDiseasedState(ImmunosimError, ValueError):
    """A parameter set has no diseased steady state to start from."""
