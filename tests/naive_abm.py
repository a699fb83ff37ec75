"""A slow, obviously correct per-cell twin of the agent-based engine (tests only).

Every B-lineage cell is a Python list ``[clone, compartment]``. The coupling steps are those of
the engine (``dt``, stops at saves and doses, rates frozen over a step, the continuous states
advanced by RK4 with the lineage rows frozen, clamped at ``y0`` during the burn-in). Within a
step every cell lives on its own exponential clock: it draws its waiting time from its
compartment's total rate, fires one transition chosen in proportion to the rates, and a daughter
(or a cell that changes compartment) continues from the instant of the event. Founders arrive
as a Poisson number at uniform instants. Nothing is grouped by clone and nothing is binomial:
this is the process that the kernels' clone counts, exact simulation and binomial fates stand
for. It uses numpy's ``Generator`` (not the engine's streams), so agreement is in distribution.
"""

from __future__ import annotations

import numpy as np

from immunosim.engines.abm._model import tables
from immunosim.model import sle_msc as m
from immunosim.model.interventions import OP_ADD, OP_SCALE


def _rates(y, p):
    return np.array(m.lineage_rates_at(y, p, 0, 1))


def _rk4(y, p, h, n_sub, frozen):
    hs = h / n_sub
    for _ in range(n_sub):
        k1 = m.rhs_py(0, y, p)
        k2 = m.rhs_py(0, y + 0.5 * hs * k1, p)
        k3 = m.rhs_py(0, y + 0.5 * hs * k2, p)
        k4 = m.rhs_py(0, y + hs * k3, p)
        y = y + np.where(frozen, 0.0, hs / 6.0 * (k1 + 2 * k2 + 2 * k3 + k4))
    return y


def simulate_one(y0, p, t_save, *, omega, burn_in, dt, n_sub, rng, events=(), init=None,
                 split=False):
    """One lane; ``events``: ``(time, state, op, value)`` as in the engines.

    Returns the states at ``t_save`` (n_save, n_states), the live clones at the end and the
    extinction day of the clones founded before day 0 (NaN if never). ``init``: cells per
    compartment at ``-burn_in``, in one clone, or with ``split`` as the engine's default draws
    them (long-lived plasma cells in one clone, every other cell a clone of its own)."""
    tab = tables("sle_msc")
    comp = [int(s) for s in tab.sources[1:]]  # state index of each compartment
    frozen = np.isin(np.arange(m.N_STATES), comp)
    change = tab.t_change[:, 1:]
    src = tab.t_source
    cells = []  # [clone, compartment]
    founded = {}
    next_clone = 0
    if init is not None:  # cells per compartment: in one clone, or (split) as the engine
        # draws its own: legacy compartments pooled in one clone, every other cell alone
        legacy = tab.legacy if split else np.ones(len(comp), dtype=bool)
        for c, n in enumerate(init):
            cells += [[0 if legacy[c] else None, c] for _ in range(int(n))]
        founded[0] = -burn_in - 1.0
        next_clone = 1
        for cell in cells:
            if cell[0] is None:
                cell[0] = next_clone
                founded[next_clone] = -burn_in - 1.0
                next_clone += 1
    y = np.array(y0, float)
    t = -burn_in
    out = np.full((len(t_save), m.N_STATES), np.nan)
    i_save, i_ev = 0, 0
    events = sorted(events)
    extinction = np.nan

    def totals():
        tot = np.zeros(len(comp))
        for _, c in cells:
            tot[c] += 1
        return tot

    def pre_reseeding():
        return any(founded[cl] < 0 and c in (0, 1) for cl, c in cells)

    if burn_in <= 0:
        y[comp] = totals() / omega
    while True:
        if t >= 0:
            while i_ev < len(events) and events[i_ev][0] <= t:
                _, state, op, value = events[i_ev]
                if state in comp:  # scale a compartment: each cell kept with probability v
                    assert op == OP_SCALE
                    c = comp.index(state)
                    cells = [cl for cl in cells if cl[1] != c or rng.random() < value]
                    y[state] = totals()[c] / omega
                elif op == OP_ADD:
                    y[state] += value
                elif op == OP_SCALE:
                    y[state] *= value
                else:
                    y[state] = value
                i_ev += 1
            if np.isnan(extinction) and not pre_reseeding():
                extinction = t
            while i_save < len(t_save) and t_save[i_save] <= t:
                out[i_save] = y
                i_save += 1
        if i_save == len(t_save):
            break
        stop = min(t + dt, 0.0) if t < 0 else min(t + dt, t_save[i_save],
                                                   events[i_ev][0] if i_ev < len(events)
                                                   else np.inf)
        h = stop - t
        burning = t < 0
        r = np.maximum(_rates(y0 if burning else y, p), 0.0)
        level = (y0 if burning else y)[m.B_NAIVE]
        if not burning:
            y = _rk4(y, p, h, n_sub, frozen)
        # founders, each starting its clone at a uniform instant of the step
        queue = [(c, 0.0) for c in range(len(cells))]
        k_found = [k for k in range(len(r)) if src[k] == 0]
        for k in k_found:
            for _ in range(rng.poisson(r[k] * level * omega * h)):
                for c, n in enumerate(change[k]):
                    for _ in range(n):
                        cells.append([next_clone, c])
                        queue.append((len(cells) - 1, rng.random() * h))
                founded[next_clone] = t + queue[-1][1]
                next_clone += 1
        # every cell on its own clock; daughters and movers continue from the event
        dead = set()
        while queue:
            idx, s = queue.pop()
            c = cells[idx][1]
            ks = [k for k in range(len(r)) if src[k] == c + 1 and r[k] > 0]
            total = sum(r[k] for k in ks)
            if total <= 0:
                continue
            s += rng.exponential(1.0 / total)
            if s >= h:
                continue
            k = ks[rng.choice(len(ks), p=[r[k] / total for k in ks])]
            gained = [cc for cc, n in enumerate(change[k]) for _ in range(max(n, 0))]
            lost = [cc for cc, n in enumerate(change[k]) for _ in range(max(-n, 0))]
            # the cell leaves its compartment (lost) and/or cells appear (gained)
            if c in lost:
                lost.remove(c)
                if gained:  # it moves (or divides into the same compartment)
                    cells[idx][1] = gained.pop(0)
                    queue.append((idx, s))
                else:
                    dead.add(idx)
            else:
                queue.append((idx, s))
            assert not lost, "a transition removes a cell other than the acting one"
            for g in gained:  # daughters
                cells.append([cells[idx][0], g])
                queue.append((len(cells) - 1, s))
        cells = [cl for i, cl in enumerate(cells) if i not in dead]
        t = stop
        if t >= 0:
            y[comp] = totals() / omega
            if np.isnan(extinction) and not pre_reseeding():
                extinction = t
    return out, len({cl for cl, _ in cells}), extinction
