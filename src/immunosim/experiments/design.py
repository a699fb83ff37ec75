"""Sweep designs: the config's axes expanded into points.

* ``grid``: full factorial; each axis is a dimension of the result, named after the axis, except
  the axes of a ``[sweep] zip`` group, which share one dimension named after the group (row
  ``i`` takes value ``i`` of each), with each axis a coordinate along it. A categorical axis
  (``msc.source``) has a string coordinate.
* ``lhs`` / ``sobol``: ``samples`` points from ``scipy.stats.qmc`` over the axis ranges (linear or
  log scale); the result has one ``point`` dimension with each axis as a coordinate on it.

Applying a point to a scenario sets intervention fields (every MSC record of the scenario for
``msc.*``; every record of a drug for ``<drug>.*``, e.g. ``mycophenolate.dose``) or model
parameters (``parameters.<name>``). Records are rebuilt with :func:`dataclasses.replace`, so
their own checks run again.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

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
        Result dimensions for the points (axis or zipped-group names for a grid,
        ``("point",)`` otherwise).
    shape : tuple of int
    coords : dict of str -> (dims, values)
        Coordinates of the axes (and an integer row coordinate of each zipped group).
    values : ndarray, shape (n_points, n_axes)
        Axis values per point, in C order over ``dims``: floats, or objects (strings in the
        columns of categorical axes) when the design has one.
    axis_names, targets, axis_scenarios
        One entry per axis (column of ``values``).
    coord_attrs : dict of str -> dict
        Attributes of each coordinate (``long_name``; ``units`` of a zipped group's rows).
    """

    dims: tuple[str, ...]
    shape: tuple[int, ...]
    coords: dict
    values: np.ndarray
    axis_names: tuple[str, ...]
    targets: tuple[str, ...]
    axis_scenarios: tuple[tuple[str, ...], ...]
    coord_attrs: dict = field(default_factory=dict)

    @property
    def n_points(self) -> int:
        return int(np.prod(self.shape)) if self.shape else 1


def expand(cfg: Config) -> Design:
    axes = cfg.sweep.axes
    names = tuple(axes)
    targets = tuple(ax.target for ax in axes.values())
    scen = [tuple(cfg.axis_scenarios(ax)) for ax in axes.values()]
    attrs = {n: {"long_name": f"Sweep axis: {t}"} for n, t in zip(names, targets)}
    if not names:
        return Design((), (), {}, np.zeros((1, 0)), (), (), ())
    if cfg.sweep.design == "grid":
        return _grid(cfg, names, targets, tuple(scen), attrs)
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
    return Design(("point",), (values.shape[0],), coords, values, names, targets, tuple(scen),
                  attrs)


def _grid(cfg: Config, names: tuple[str, ...], targets: tuple[str, ...],
          scen: tuple[tuple[str, ...], ...], attrs: dict) -> Design:
    """The full factorial over the grid's dimensions (an axis, or a zipped group of axes)."""
    axes = cfg.sweep.axes
    grids = {n: ax.grid_values() for n, ax in axes.items()}
    dims = cfg.sweep.dimensions()  # dimension -> its axes
    shape = tuple(grids[members[0]].size for members in dims.values())
    rows = np.indices(shape).reshape(len(shape), -1)  # (n_dims, n_points): C order
    dim_of = {a: d for d, members in enumerate(dims.values()) for a in members}
    categorical = any(ax.categorical for ax in axes.values())
    values = np.empty((rows.shape[1], len(names)), dtype=object if categorical else float)
    for k, n in enumerate(names):
        values[:, k] = grids[n][rows[dim_of[n]]]
    coords = {}
    for d, members in dims.items():
        for a in members:
            coords[a] = ((d,), grids[a])
        if members != [d]:  # a zipped group: its rows
            coords[d] = ((d,), np.arange(grids[members[0]].size))
            attrs[d] = {"units": "1", "long_name": f"Row of the zipped sweep axes "
                                                   f"{', '.join(members)}"}
    return Design(tuple(dims), shape, coords, values, names, targets, scen, attrs)


def apply_point(design: Design, point: int, scenario: Scenario,
                params: np.ndarray) -> tuple[tuple, np.ndarray]:
    """Interventions and parameters of ``scenario`` at sweep point ``point``.

    ``params`` has shape ``(n_params,)`` (one patient) or ``(n, n_params)`` (a block of patients:
    the interventions are the same for all of them, the axis values set one column each).
    """
    ivs = list(scenario.interventions)
    p = params.copy()
    for k, target in enumerate(design.targets):
        if scenario.name not in design.axis_scenarios[k]:
            continue
        v = design.values[point, k]
        head, _, name = target.partition(".")
        if head == "parameters":
            p[..., m.PARAMETERS.index[name]] = float(v)
            continue
        v = str(v) if isinstance(v, str) else int(v) if name in INT_FIELDS else float(v)
        kind = _KIND[head]
        ivs = [replace(iv, **{name: v}) if isinstance(iv, kind) else iv for iv in ivs]
    return tuple(ivs), p
