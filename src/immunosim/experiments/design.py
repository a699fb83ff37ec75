"""Sweep designs: the config's axes expanded into points.

* ``grid``: full factorial; each axis is a dimension of the result, named after the axis.
* ``lhs`` / ``sobol``: ``samples`` points from ``scipy.stats.qmc`` over the axis ranges (linear or
  log scale); the result has one ``point`` dimension with each axis as a coordinate on it.

Applying a point to a scenario sets intervention fields (every MSC record of the scenario for
``msc.*``; every record of a drug for ``<drug>.*``, e.g. ``mycophenolate.dose``) or model
parameters (``parameters.<name>``). Records are rebuilt with :func:`dataclasses.replace`, so
their own checks run again.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from scipy.stats import qmc

from ..model import sle_msc as m
from ..model.interventions import HSCT, MSCInfusion, StandardTherapy
from .cohort import DESIGN_STREAM
from .config import Config
from .simulate import Scenario
from .therapy_config import INT_FIELDS, KINDS

_KIND = {"msc": MSCInfusion, "hsct": HSCT, "standard_therapy": StandardTherapy, **KINDS}


@dataclass(frozen=True)
class Design:
    """Expanded sweep points.

    Attributes
    ----------
    dims : tuple of str
        Result dimensions for the points (axis names for a grid, ``("point",)`` otherwise).
    shape : tuple of int
    coords : dict of str -> (dims, values)
        Coordinates of the axes.
    values : ndarray, shape (n_points, n_axes)
        Axis values per point, in C order over ``dims``.
    axis_names, targets, axis_scenarios
    """

    dims: tuple[str, ...]
    shape: tuple[int, ...]
    coords: dict
    values: np.ndarray
    axis_names: tuple[str, ...]
    targets: tuple[str, ...]
    axis_scenarios: tuple[tuple[str, ...], ...]

    @property
    def n_points(self) -> int:
        return int(np.prod(self.shape)) if self.shape else 1


def expand(cfg: Config) -> Design:
    axes = cfg.sweep.axes
    names = tuple(axes)
    targets = tuple(ax.target for ax in axes.values())
    scen = [tuple(cfg.axis_scenarios(ax)) for ax in axes.values()]
    if not names:
        return Design((), (), {}, np.zeros((1, 0)), (), (), ())
    if cfg.sweep.design == "grid":
        grids = [ax.grid_values() for ax in axes.values()]
        mesh = np.meshgrid(*grids, indexing="ij")
        values = np.stack([g.ravel() for g in mesh], axis=1)
        coords = {n: ((n,), g) for n, g in zip(names, grids)}
        return Design(names, tuple(g.size for g in grids), coords, values, names, targets,
                      tuple(scen))
    rng = np.random.default_rng(np.random.SeedSequence(cfg.seed, spawn_key=(DESIGN_STREAM,)))
    d = len(names)
    if cfg.sweep.design == "lhs":
        u = qmc.LatinHypercube(d=d, seed=rng).random(cfg.sweep.samples)
    else:
        u = qmc.Sobol(d=d, scramble=True, seed=rng).random(cfg.sweep.samples)
    values = np.empty_like(u)
    for k, ax in enumerate(axes.values()):
        lo, hi = ax.range
        if ax.scale == "log":
            values[:, k] = np.exp(np.log(lo) + u[:, k] * (np.log(hi) - np.log(lo)))
        else:
            values[:, k] = lo + u[:, k] * (hi - lo)
        if ax.target.partition(".")[2] in INT_FIELDS:
            values[:, k] = np.floor(values[:, k])
    coords = {n: (("point",), values[:, k]) for k, n in enumerate(names)}
    return Design(("point",), (values.shape[0],), coords, values, names, targets, tuple(scen))


def apply_point(design: Design, point: int, scenario: Scenario,
                params: np.ndarray) -> tuple[tuple, np.ndarray]:
    """Interventions and parameter vector of ``scenario`` at sweep point ``point``."""
    ivs = list(scenario.interventions)
    p = params.copy()
    for k, target in enumerate(design.targets):
        if scenario.name not in design.axis_scenarios[k]:
            continue
        v = float(design.values[point, k])
        head, _, field = target.partition(".")
        if head == "parameters":
            p[m.PARAMETERS.index[field]] = v
            continue
        kind = _KIND[head]
        ivs = [replace(iv, **{field: int(v) if field in INT_FIELDS else v})
               if isinstance(iv, kind) else iv for iv in ivs]
    return tuple(ivs), p
