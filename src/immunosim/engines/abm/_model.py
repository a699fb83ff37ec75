"""Model dispatch for the agent-based engine: per-cell transition rates and the continuous RHS.

As in the ODE engine (``engines/ode/_rhs.py``), Numba caches a kernel only when the functions
it calls are module globals, so models are registered here by integer id. A model brings to
this engine what it declares once for both engines (``model/sle_msc.py``):

* ``LINEAGE_SOURCES``: the continuous state that founds clones, then the discrete compartments;
* ``TRANSITIONS``: per-cell transitions (source, change in every compartment, founds a clone);
* ``lineage_rates_at(y, p, l, s)``: the per-cell rates of those transitions at state ``y``;
* ``rhs_at(t, y, p, dydt, l, s)``: the full ODE right-hand side; the agent-based engine uses its
  rows of the continuous states only (the lineage rows come from the agents).

The test model ``test:birth_death`` (one compartment, per-cell birth rate ``p[0]`` and death
rate ``p[1]``, no immigration, nothing continuous) is the linear birth-death process whose
mean, variance and extinction probability are known in closed form.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..._numba_config import JIT
from ...model import sle_msc

MODEL_IDS: dict[str, int] = {"sle_msc": 0, "test:birth_death": 100}


@dataclass(frozen=True)
class LineageTables:
    """A model's lineage declaration as arrays for the kernels.

    Attributes
    ----------
    sources : ndarray of int64, shape (C + 1,)
        State index of the clone-founding continuous source (-1: none), then of the ``C``
        discrete compartments.
    t_source : ndarray of int64, shape (K,)
        Index into ``sources`` of each transition's source (0: founds clones from the
        continuous source).
    t_change : ndarray of int64, shape (K, C + 1)
        Cells gained or lost in each source by one firing.
    n_states : int
    legacy : ndarray of bool, shape (C,)
        Compartments whose equilibrium cells start in one pooled legacy clone (see
        ``sle_msc.LINEAGE_LEGACY``); every other initial cell is a clone of its own.
    nonneg : ndarray of bool, shape (n_states,)
        States that must stay non-negative (``State.nonnegative``).
    """

    sources: np.ndarray
    t_source: np.ndarray
    t_change: np.ndarray
    n_states: int
    legacy: np.ndarray
    nonneg: np.ndarray

    @property
    def reseed(self) -> np.ndarray:
        """Compartments whose cells can divide or re-enter, shape (C,): a clone holding them can
        re-seed the lineage (a transition from them adds cells somewhere)."""
        C = self.n_compartments
        out = np.zeros(C, dtype=bool)
        for k, c in enumerate(self.t_source):
            if c > 0 and (self.t_change[k, 1:] > 0).any():
                out[c - 1] = True
        return out

    @property
    def n_compartments(self) -> int:
        return self.sources.size - 1


def tables(model: str) -> LineageTables:
    """Lineage tables of a registered model (built from its declaration)."""
    if model == "sle_msc":
        src = np.asarray(sle_msc.LINEAGE_SOURCES, dtype=np.int64)
        t_source = np.asarray(sle_msc.TRANSITION_SOURCE, dtype=np.int64)
        t_change = np.asarray(sle_msc.TRANSITION_CHANGE, dtype=np.int64)
        legacy = np.isin(src[1:], sle_msc.LINEAGE_LEGACY)
        nonneg = np.array([st.nonnegative for st in sle_msc.STATES])
        return LineageTables(src, t_source, t_change, sle_msc.N_STATES, legacy, nonneg)
    if model == "test:birth_death":
        return LineageTables(np.array([-1, 0]), np.array([1, 1]),
                             np.array([[0, 1], [0, -1]]), 1, np.zeros(1, dtype=bool),
                             np.ones(1, dtype=bool))
    raise ValueError(f"model: unknown model {model!r}; expected one of {', '.join(MODEL_IDS)}")


@JIT
def rates(model_id, y, p, r):
    """Per-cell rates (1/d) of the model's transitions at state ``y``, written into ``r (K,)``."""
    if model_id == 0:
        q = sle_msc.lineage_rates_at(y, p, 0, 1)
        r[0], r[1], r[2], r[3], r[4] = q[0], q[1], q[2], q[3], q[4]
        r[5], r[6], r[7], r[8], r[9] = q[5], q[6], q[7], q[8], q[9]
    else:
        r[0] = p[0]
        r[1] = p[1]
    return 0


@JIT
def rhs(model_id, t, y, p, dydt):
    """Full right-hand side ``dydt = f(t, y; p)`` (the kernel uses the continuous rows)."""
    if model_id == 0:
        sle_msc.rhs_at(t, y, p, dydt, 0, 1)
    else:
        for i in range(dydt.size):
            dydt[i] = 0.0
    return 0
