"""The agent-based engine against independent references: branching-process formulas, the ODE
(its fluid limit), and a slow per-cell twin (``tests/naive_abm.py``)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from immunosim.engines.abm import solver as S
from immunosim.engines.events import EventTable
from immunosim.engines.ode.solver import solve
from immunosim.model import sle_msc as m
from immunosim.model import steady_states as ss
from immunosim.model.interventions import OP_ADD, OP_SCALE

from .naive_abm import simulate_one

EXACT = 10**9  # n_crit: every clone simulated exactly
BD = dict(model="test:birth_death", init=np.array([[[3]]]))


def _bd_moments(lam, mu, n0, t):
    """Mean, variance and extinction probability by t of a linear birth-death process from n0
    (Kendall 1948): p0(t) = mu (e^{(l-m)t} - 1) / (l e^{(l-m)t} - mu) per ancestor."""
    e = np.exp((lam - mu) * t)
    mean = n0 * e
    var = n0 * (lam + mu) / (lam - mu) * e * (e - 1.0)
    p0 = (mu * (e - 1.0) / (lam * e - mu)) ** n0
    return mean, var, p0


def _bd(n0, lam, mu, T, R, n_crit, p_max=0.1, seed=1):
    sol = S.simulate(np.zeros(1), np.array([lam, mu]), np.array([0.0, T]), replicates=R,
                     seed=seed, model="test:birth_death", init=np.array([[[n0]]]),
                     options=S.ABMOptions(system_size=1, burn_in=0, n_crit=n_crit, p_max=p_max))
    assert (sol.status == 0).all()
    return sol, sol.y[0, :, -1, 0]


@pytest.mark.parametrize("n_crit, p_max", [(EXACT, 0.1), (1, 0.02)], ids=["exact", "binomial"])
def test_birth_death_against_kendall(n_crit, p_max):
    # Mutations caught: a division that adds 2 cells (mean e^{0.7 t}), a death rate applied per
    # clone instead of per cell, a threshold not carried over between steps (time-step-dependent
    # rates), binomial fates with a wrong conditional probability. lambda = 0.5, mu = 0.3,
    # n0 = 3, T = 10: the design notes' own SSA gave P(extinct) = 0.17985 +- 0.0027.
    lam, mu, n0, T, R = 0.5, 0.3, 3, 10.0, 20_000
    _, x = _bd(n0, lam, mu, T, R, n_crit, p_max)
    mean, var, p0 = _bd_moments(lam, mu, n0, T)
    se_mean = np.sqrt(var / R)
    assert abs(x.mean() - mean) < 4 * se_mean, (x.mean(), mean)
    # SE of the sample variance: sqrt((mu4 - var^2) / R), mu4 from the sample.
    se_var = np.sqrt((np.mean((x - x.mean()) ** 4) - x.var() ** 2) / R)
    assert abs(x.var() - var) < 4 * se_var, (x.var(), var)
    se_p = np.sqrt(p0 * (1 - p0) / R)
    assert abs((x == 0).mean() - p0) < 4 * se_p, ((x == 0).mean(), p0)


def test_birth_death_dsmts_00001():
    # DSMTS 00001 (SBML stochastic test suite): X -> 2X at 0.1 X, X -> 0 at 0.11 X, X0 = 100.
    # 100 cells: the binomial path (default n_crit 20) does the work.
    lam, mu, n0, T, R = 0.1, 0.11, 100, 50.0, 4000
    _, x = _bd(n0, lam, mu, T, R, 20)
    mean, var, _ = _bd_moments(lam, mu, n0, T)
    assert abs(x.mean() - mean) < 4 * np.sqrt(var / R)
    se_var = np.sqrt((np.mean((x - x.mean()) ** 4) - x.var() ** 2) / R)
    assert abs(x.var() - var) < 4 * se_var


def test_same_seed_same_result_any_threads_and_chunking(default_params, diseased_y0):
    # Mutation caught: one generator shared across lanes (results then depend on the thread
    # schedule), stream keys taken from the position in the batch instead of the patient key.
    t = np.array([0.0, 30.0, 60.0])
    P = np.stack([default_params, default_params * np.where(
        np.arange(default_params.size) == m.PARAMETERS.index["activation_rate"], 1.2, 1.0)])
    Y = np.stack([diseased_y0, ss.diseased_state(P[1])])
    opts = S.ABMOptions(system_size=300, burn_in=20)
    a = S.simulate(Y, P, t, replicates=6, seed=5, options=opts, threads=1)
    b = S.simulate(Y, P, t, replicates=6, seed=5, options=opts, threads=2)
    c1 = S.simulate(Y[1:], P[1:], t, replicates=6, seed=5, keys=np.array([1]), options=opts,
                    threads=2)
    assert np.array_equal(a.y, b.y, equal_nan=True) and np.array_equal(a.clones, b.clones)
    assert np.array_equal(a.y[1], c1.y[0]) and np.array_equal(a.stats[1], c1.stats[0])
    d = S.simulate(Y, P, t, replicates=6, seed=6, options=opts, threads=2)
    assert not np.array_equal(a.y, d.y)
    # replicates differ from each other
    assert len({a.y[0, r, -1, m.B_GC] for r in range(6)}) > 1


def test_drift_identity_of_the_kernel(default_params, diseased_y0):
    # The expected change per unit time of the agent engine equals the ODE right-hand side of
    # the lineage states: one clone holding omega * y of every compartment, one short step with
    # rates frozen at the ODE state (burn-in), many replicates. Mutation caught: any wrong
    # stoichiometry or rate in the kernel's use of the table (e.g. GC exits sent to memory
    # twice, a division adding no cell), the founders' rate without the naive pool.
    omega, h, R = 2e4, 0.01, 4000
    y = diseased_y0
    tab = S.tables("sle_msc")
    comp = tab.sources[1:]
    init = np.round(omega * y[comp]).astype(np.int64)[None, None, :]
    yq = y.copy()
    yq[comp] = init[0, 0] / omega  # the ODE drift at exactly the integer state
    sol = S.simulate(yq, default_params, np.array([0.0]), replicates=R, seed=3, init=init,
                     options=S.ABMOptions(system_size=omega, burn_in=h, dt=h))
    delta = (sol.y[0, :, 0][:, comp] - yq[comp]) / h  # (R, C) per day, model units
    f = m.rhs_py(0.0, yq, default_params)[comp]
    se = delta.std(axis=0) / np.sqrt(R)
    assert np.all(np.abs(delta.mean(axis=0) - f) < 4 * se + 1e-3 * np.abs(f)), (
        delta.mean(axis=0), f, se)


def test_drift_identity_of_the_declaration():
    # sum_k change[k] r_k(y) n_source(k) equals the ODE rows of every lineage source, at random
    # states and parameters (the table, not the kernel: catches a transition missing from the
    # table or a rate that differs from the ODE's). Independent of rhs_at: the ODE rows come
    # from the name-based twin of the equations.
    from .conftest import random_parameter_points
    from .naive_sle_msc import rhs_by_name

    rng = np.random.default_rng(4)
    P = random_parameter_points(50, seed=9)
    src = np.asarray(m.LINEAGE_SOURCES)
    change = np.asarray(m.TRANSITION_CHANGE)
    tsrc = np.asarray(m.TRANSITION_SOURCE)
    for p in P:
        y = rng.uniform(0.0, 2.0, m.N_STATES)
        y[m.LLPC] = rng.uniform(0, p[m.PARAMETERS.index["llpc_capacity"]])
        r = np.array(m.lineage_rates_at(y, p, 0, 1))
        drift = change.T @ (r * y[src[tsrc]])
        f = rhs_by_name(y, p)
        q = dict(zip(m.PARAMETER_NAMES, p))
        sig = m.signals_at(y, p, 0, 1)
        naive_turnover = q["naive_turnover"] * (1 - y[m.B_NAIVE]) - (sig[5] + sig[6]) * y[
            m.B_NAIVE]
        np.testing.assert_allclose(drift[1:], f[list(m.LINEAGE_STATES)], rtol=1e-11, atol=1e-13)
        np.testing.assert_allclose(drift[0] + naive_turnover, f[m.B_NAIVE], rtol=1e-11,
                                   atol=1e-13)


def _transient(params, y0, t, omega, R, dt):
    ev = EventTable.from_lists([[(0.0, m.MSC, OP_ADD, 3.0)]])
    sol = S.simulate(y0, params, t, replicates=R, seed=11, events=ev,
                     options=S.ABMOptions(system_size=omega, burn_in=30, dt=dt))
    assert (sol.status == 0).all()
    return sol.y[0].mean(axis=0)


def test_replicate_mean_converges_to_the_ode(default_params):
    # Monostable setting: strong activation, so that only the diseased state exists; an MSC
    # dose at day 0 drives a transient that the ODE follows. The replicate mean's error
    # against the ODE must fall at least like size^-1/2 (Kurtz). Mutations caught: a
    # mean-field term using one clone's size instead of the totals (the drift then depends on
    # how cells are split into clones), a missing founder flux.
    p = default_params.copy()
    p[m.PARAMETERS.index["activation_rate"]] = 0.2
    states = ss.steady_states(p)
    assert len(states) == 1 and states[0].stable  # monostable: the diseased state only
    y0 = ss.diseased_state(p)
    t = np.arange(0.0, 61.0, 5.0)
    ode = solve(y0, p, t, events=EventTable.from_lists([[(0.0, m.MSC, OP_ADD, 3.0)]]),
                rtol=1e-9, atol=1e-11).y[0]
    watch = [m.B_GC, m.B_MEM, m.PLASMABLAST, m.ANTI_DSDNA]
    errs = []
    sizes = [1e3, 1e4, 1e5]
    for omega in sizes:  # the same replicates at every size: the noise falls like size^-1/2
        mean = _transient(p, y0, t, omega, 64, dt=0.5)
        rel = (mean[:, watch] - ode[:, watch]) / np.abs(ode[:, watch]).max(axis=0)
        errs.append(np.sqrt(np.mean(rel**2)))
    slope = np.polyfit(np.log(sizes), np.log(errs), 1)[0]
    print("RMS relative error at sizes", sizes, ":", errs, "log-log slope", slope)
    # Expected: -1/2 (replicate noise) to -1 (the O(1/size) bias); the estimate itself is
    # noisy (+-0.1 from 64 replicates), hence -0.4. A bias that does not vanish with size
    # (a wrong rate) flattens the slope towards 0.
    assert slope <= -0.4, (errs, slope)
    assert errs[-1] < 0.005, errs


def test_kernel_matches_per_cell_reference(default_params, diseased_y0):
    # The same rules simulated cell by cell in plain Python (tests/naive_abm.py): the
    # distributions of GC and memory counts, live clones and extinction days agree (two-sample
    # KS, fixed seeds). Mutations caught: a firing that moves the wrong compartment, founders
    # that start at the beginning of the step, a threshold reset every step, thinning by
    # scale events that keeps 1 - v instead of v.
    omega, burn, T, R = 40.0, 5.0, 20.0, 300
    t = np.array([0.0, 10.0, T])
    y0 = diseased_y0
    init = np.zeros((1, 1, 4), dtype=np.int64)
    init[0, 0, :] = np.round(omega * y0[[m.B_GC, m.B_MEM, m.PLASMABLAST, m.LLPC]])
    ev = [(10.0, m.B_GC, OP_SCALE, 0.5)]
    table = EventTable.from_lists([[(10.0, m.B_GC, OP_SCALE, 0.5)]])
    opts = S.ABMOptions(system_size=omega, burn_in=burn, dt=0.5, substeps=2, n_crit=EXACT)
    fast = S.simulate(y0, default_params, t, replicates=R, seed=2, init=init, events=table,
                      options=opts)
    rng = np.random.default_rng(8)
    ref = [simulate_one(y0, default_params, t, omega=omega, burn_in=burn, dt=0.5, n_sub=2,
                        rng=rng, events=ev, init=init[0, 0]) for _ in range(R)]
    ref_y = np.stack([r[0] for r in ref])
    for state in (m.B_GC, m.B_MEM, m.PLASMABLAST):
        for k in (1, 2):
            a, b = fast.y[0, :, k, state], ref_y[:, k, state]
            assert stats.ks_2samp(a, b).pvalue > 1e-3, (state, k, a.mean(), b.mean())
    ext_f = np.nan_to_num(fast.extinction[0], nan=1e3)
    ext_r = np.nan_to_num(np.array([r[2] for r in ref]), nan=1e3)
    assert stats.ks_2samp(ext_f, ext_r).pvalue > 1e-3
    assert stats.ks_2samp(fast.clones[0, :, -1, 0], [r[1] for r in ref]).pvalue > 1e-3


def test_bad_input_is_refused(default_params, diseased_y0):
    t = np.array([0.0, 1.0])
    with pytest.raises(ValueError, match="replicates"):
        S.simulate(diseased_y0, default_params, t, replicates=0)
    with pytest.raises(ValueError, match="t_eval"):
        S.simulate(diseased_y0, default_params, np.array([1.0, 0.5]))
    with pytest.raises(ValueError, match="system_size"):
        S.ABMOptions(system_size=0)
    with pytest.raises(ValueError, match="model"):
        S.simulate(diseased_y0, default_params, t, model="nope")
    ev = EventTable.from_lists([[(0.5, m.B_GC, OP_ADD, 1.0)]])
    sol = S.simulate(diseased_y0, default_params, t, events=ev,
                     options=S.ABMOptions(system_size=50, burn_in=1))
    assert sol.status[0, 0] != 0 and "discrete" in sol.messages()[0]
    assert np.isnan(sol.y[0, 0, -1]).all()


def test_docs_list_every_transition():
    # docs/abm.md's table of transitions must follow the model's declaration.
    from .conftest import ROOT

    text = (ROOT / "docs" / "abm.md").read_text()
    for t in m.TRANSITIONS:
        assert f"`{t.name}`" in text, t.name
