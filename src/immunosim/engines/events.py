"""Dosing events shared by both engines: ``(time, state index, op, value)`` jumps in a padded
table, one row per trajectory (``op``: ``model.interventions.OP_ADD`` / ``OP_SCALE`` / ``OP_SET``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .._numba_config import JIT
from ..model.interventions import OP_ADD, OP_SCALE

Event = tuple[float, int, int, float]  # (time, state index, op, value)


@JIT
def apply_jump(y, state, op, value):
    """One event on a continuous state, in place: ``y += v`` (OP_ADD), ``y *= v`` (OP_SCALE),
    anything else ``y = v`` (OP_SET). Both engines apply dosing events through it."""
    if op == OP_ADD:
        y[state] += value
    elif op == OP_SCALE:
        y[state] *= value
    else:
        y[state] = value


@dataclass(frozen=True)
class EventTable:
    """Dosing events of a batch as padded arrays (``P`` trajectories, at most ``E`` events each).

    ``time (P, E)`` sorted per row, ``state (P, E)``, ``op (P, E)`` (``OP_ADD``, ``OP_SCALE``,
    ``OP_SET``), ``value (P, E)``, ``count (P,)``: events in use per row.
    """

    time: np.ndarray
    state: np.ndarray
    op: np.ndarray
    value: np.ndarray
    count: np.ndarray

    @classmethod
    def empty(cls, n_traj: int) -> EventTable:
        return cls.from_lists([[] for _ in range(n_traj)])

    @classmethod
    def from_lists(cls, rows: Sequence[Sequence[Event]]) -> EventTable:
        """Build from one list of ``(time, state, op, value)`` per trajectory (stable-sorted)."""
        n = len(rows)
        width = max([len(r) for r in rows] + [1])
        time = np.full((n, width), np.inf)
        state = np.zeros((n, width), dtype=np.int64)
        op = np.zeros((n, width), dtype=np.int64)
        value = np.zeros((n, width))
        count = np.zeros(n, dtype=np.int64)
        for i, row in enumerate(rows):
            row = sorted(row, key=lambda e: e[0])
            count[i] = len(row)
            for j, (t, s, o, v) in enumerate(row):
                time[i, j], state[i, j], op[i, j], value[i, j] = t, s, o, v
        return cls(time, state, op, value, count)
