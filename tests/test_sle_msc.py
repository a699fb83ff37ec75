"""The sle_msc model: parameter metadata, equation structure, steady states, bistability."""

import numpy as np

from immunosim.engines.ode.solver import solve
from immunosim.model import sle_msc as m
from immunosim.model.activity import activity
from immunosim.model.steady_states import diseased_state, healthy_state, steady_states

# Which derivatives each parameter enters (indices into STATE_NAMES). This pins the positional
# unpacking in rhs() to the parameter table: a swapped index changes the pattern.
S = m.STATE_INDEX
Z_TARGETS = {S[k] for k in ("tfh", "b_naive", "b_gc", "b_mem", "plasmablast", "llpc",
                            "anti_dsdna", "damage")}
B_CELLS = {S["b_naive"], S["b_gc"], S["b_mem"]}
HELPED = {S["tfh"]} | B_CELLS
EXPECTED = {
    "msc_half_life": {S["msc"]}, "msc_ec50": Z_TARGETS | {S["reg"]}, "potency_bm": set(),
    "potency_uc": set(), "msc_response": Z_TARGETS, "msc_signal_k50": Z_TARGETS,
    "reg_induction": {S["reg"]}, "reg_max": {S["reg"]}, "reg_half_life": {S["reg"]},
    "emax_prolif": {S["b_gc"]}, "emax_activation": B_CELLS,
    "emax_differentiation": {S["plasmablast"], S["llpc"]}, "emax_secretion": {S["anti_dsdna"]},
    "emax_tfh": {S["tfh"]}, "emax_repair": {S["damage"]},
    "cd4_recovery_half_life": {S["cd4"]},
    "tfh_turnover": {S["tfh"]}, "tfh_expansion": {S["tfh"]}, "tfh_help_k50": B_CELLS,
    "naive_turnover": B_CELLS,  # production, and the rituximab kill is a multiple of it
    "activation_rate": {S["b_naive"], S["b_gc"]},
    "antigen_k50": HELPED, "antigen_hill": HELPED,
    "gc_renewal": {S["b_gc"]}, "gc_death": {S["b_gc"]},
    "gc_to_pc": {S["b_gc"], S["plasmablast"], S["llpc"]}, "gc_to_memory": {S["b_gc"], S["b_mem"]},
    "gc_capacity": {S["b_gc"]}, "memory_turnover": {S["b_mem"]},
    "memory_reactivation": {S["b_gc"], S["b_mem"]}, "plasmablast_lifespan": {S["plasmablast"]},
    "llpc_fraction": {S["plasmablast"], S["llpc"]}, "llpc_half_life": {S["llpc"]},
    "llpc_capacity": {S["llpc"]}, "secretion_pb": {S["anti_dsdna"]},
    "secretion_llpc": {S["anti_dsdna"]}, "igg_half_life": {S["anti_dsdna"]},
    "ic_formation": {S["anti_dsdna"], S["antigen"], S["immune_complex"]},
    "antigen_clearance": {S["antigen"]}, "damage_antigen_release": {S["antigen"]},
    "inflammation_antigen_release": {S["antigen"]},
    "antigen_consumption": {S["antigen"]}, "ic_clearance": {S["immune_complex"]},
    "ic_clearance_c3_independent": {S["immune_complex"]},
    "c3_normal": {S["immune_complex"], S["c3"]}, "c3_turnover": {S["c3"]},
    "c3_consumption": {S["c3"]}, "damage_rate": {S["damage"]},
    "ic_k50": {S["damage"], S["inflammation"]}, "repair_rate": {S["damage"]},
    "inflammation_rate": {S["inflammation"]}, "std_therapy": B_CELLS,
    "proteinuria_base": set(), "proteinuria_max": set(),
    "renal_susceptibility": {S["damage"]}, "extrarenal_susceptibility": set(),
    "gc_effect_half_life": {S["gc"]},
    "gc_ec50": HELPED | {S["damage"], S["inflammation"]},
    "gc_emax_inflammation": {S["inflammation"]}, "gc_emax_renal": {S["damage"]},
    "gc_emax_lymphocyte": HELPED,
    "cyc_effect_half_life": {S["cyc"]},
    "cyc_ec50": {S["tfh"], S["b_gc"], S["plasmablast"]},
    "cyc_kmax": {S["tfh"], S["b_gc"], S["plasmablast"]},
    "mmf_effect_half_life": {S["mmf"]}, "mmf_ec50": HELPED, "mmf_emax": HELPED,
    "hcq_half_life": {S["hcq"]}, "hcq_ec50": HELPED, "hcq_emax": HELPED,
    "rtx_half_life": {S["rtx"]}, "rtx_kill_fold": B_CELLS, "rtx_ec50": B_CELLS,
    "car_expansion": {S["cart"]}, "car_contraction": {S["cart"]}, "car_target_k50": {S["cart"]},
    "car_kill": B_CELLS | {S["plasmablast"]}, "car_kill_k50": B_CELLS | {S["plasmablast"]},
}


def test_every_parameter_is_documented():
    assert set(EXPECTED) == set(m.PARAMETER_NAMES)
    for p in m.PARAMETERS:
        assert p.unit and p.source and p.description, p.name
        assert p.assumed or any(ch.isdigit() for ch in p.source) or "standard" in p.source, p.name


def test_rhs_matches_its_name_based_twin():
    """The compiled, positional RHS equals tests/naive_sle_msc.py (written with names) at random
    states, drug exposures included, and random parameter points."""
    from tests.conftest import random_parameter_points
    from tests.naive_sle_msc import rhs_by_name

    rng = np.random.default_rng(3)
    for p in random_parameter_points(40, seed=4):
        y = rng.uniform(0.0, 3.0, m.N_STATES) * np.where(rng.random(m.N_STATES) < 0.2, 0, 1)
        y[[m.ANTI_DSDNA, m.C3]] *= 50
        y[[m.GC_DOSE, m.GC]] *= 30
        np.testing.assert_allclose(m.rhs_py(0.0, y, p), rhs_by_name(y, p), rtol=1e-12,
                                   atol=1e-12)


def test_rhs_structure_matches_parameter_table():
    p0 = m.PARAMETERS.vector({"antigen_consumption": 0.1, "std_therapy": 0.1})
    y = np.linspace(0.3, 1.5, m.N_STATES)
    y[m.REG] = 0.4  # reg's own decay must not mask its effect
    f0 = m.rhs_py(0.0, y, p0)
    for j, name in enumerate(m.PARAMETER_NAMES):
        p = p0.copy()
        p[j] = 1.1 * p[j] + 0.01  # also moves parameters whose default is 0
        changed = set(np.nonzero(np.abs(m.rhs_py(0.0, y, p) - f0) > 1e-12)[0])
        assert changed == EXPECTED[name], (name, sorted(changed), sorted(EXPECTED[name]))


def test_default_patient_is_bistable_and_starts_diseased(default_params):
    ss = steady_states(default_params)
    assert [s.stable for s in ss] == [True, False, True]
    y_d = diseased_state(default_params)
    y_h = healthy_state(default_params)
    # proteinuria 4 + hematuria 4 + anti-dsDNA 2 + low C3 2 + rash 2 (Liang 2010: 12.2 +- 3.3)
    assert activity(y_d, default_params) == 14
    assert activity(y_h, default_params) == 0
    assert y_d[m.C3] < 90 < y_h[m.C3]
    assert y_d[m.ANTI_DSDNA] > 100 > 30 > y_h[m.ANTI_DSDNA]


def test_equilibria_are_zeros_of_rhs(default_params):
    for s in steady_states(default_params):
        f = m.rhs_py(0.0, s.y, default_params)
        assert np.max(np.abs(f) / (1e-9 + np.abs(s.y))) < 1e-8


def test_bistability_same_parameters_two_fates(default_params):
    """From near each stable state the engine settles back to it (not the other one), and the
    end points agree with the independent 1-D reduction."""
    y_d = diseased_state(default_params)
    y_h = healthy_state(default_params)
    starts = np.stack([y_d * 0.8, y_h * 1.5])
    sol = solve(starts, default_params, [0.0, 15 * 365.0], rtol=1e-9, atol=1e-11)
    np.testing.assert_allclose(sol.y[0, -1], y_d, rtol=1e-4, atol=1e-8)
    np.testing.assert_allclose(sol.y[1, -1], y_h, rtol=1e-4, atol=1e-8)


def test_hysteresis_in_activation_rate():
    """The S-shaped curve of Arazi & Neumann 2010: weak B-cell activation, healthy only; strong,
    diseased only; in between both stable states coexist (and an unstable one separates them)."""
    fates = {}
    for v in (0.005, 0.05, 0.6):
        ss = steady_states(m.PARAMETERS.vector({"activation_rate": v}))
        fates[v] = [(s.antigen > 1.5, s.stable) for s in ss]
    assert fates[0.005] == [(False, True)]
    assert fates[0.05] == [(False, True), (True, False), (True, True)]
    assert fates[0.6] == [(True, True)]


def test_msc_pool_is_superposition_of_exponentials(default_params, diseased_y0):
    from immunosim.engines.ode.solver import EventTable
    from immunosim.model.interventions import MSCInfusion, schedule

    inf = MSCInfusion(2e6, time=3.25, interval=7.5, count=3)
    ev = EventTable.from_lists([schedule([inf], default_params)])
    t = np.sort(np.concatenate([np.linspace(0, 40, 161), inf.dose_times()]))
    sol = solve(diseased_y0, default_params, t, events=ev, rtol=1e-9, atol=1e-12)
    k = np.log(2) / default_params[m.PARAMETERS.index["msc_half_life"]]
    exact = sum(2.0 * np.exp(-k * (t - td)) * (t >= td) for td in inf.dose_times())
    np.testing.assert_allclose(sol.y[0, :, m.MSC], exact, rtol=1e-7, atol=1e-12)


def independent_jacobian(y, p, rel=1e-6):
    """Central differences on ``rhs_py`` (steady_states uses its own forward differences)."""
    n = y.size
    J = np.empty((n, n))
    for j in range(n):
        d = rel * max(abs(y[j]), 1e-6)
        yp, ym = y.copy(), y.copy()
        yp[j] += d
        ym[j] -= d
        J[:, j] = (m.rhs_py(0.0, yp, p) - m.rhs_py(0.0, ym, p)) / (2 * d)
    return J


DISEASE = np.array([i for i in range(m.N_STATES) if i not in m.DRUG_STATES])


def scaled_rhs(x, scale, p, y_full):
    y = y_full.copy()
    y[DISEASE] = x * scale
    return m.rhs_py(0.0, y, p)[DISEASE]


def test_steady_states_against_independent_root_finder():
    """At random parameter points, every reported equilibrium is confirmed by scipy's root
    finder on the full RHS (started 1% off, it converges back to the same state), and its
    stability flag agrees with the eigenvalues of an independent Jacobian. Also the batch
    version agrees with these confirmed states.

    Catches: a wrong closed form in state_given_antigen (the reported state is not a zero of
    rhs, and root() walks away from it), a flipped stability sign, and a batch/one-by-one
    mix-up of rows."""
    from scipy.optimize import root

    from immunosim.model.steady_states import steady_states_batch
    from tests.conftest import random_parameter_points

    params = random_parameter_points(12, seed=12)
    batch = steady_states_batch(params)
    assert sum(len(b) == 3 for b in batch) >= 1  # some bistable rows among them
    rng = np.random.default_rng(5)
    for p, states in zip(params, batch):
        assert len(states) in (1, 3)
        for s in states:
            # Drug states are zero and inert here: solve and judge stability on the others.
            scale = np.maximum(np.abs(s.y[DISEASE]), 1e-6)
            start = s.y[DISEASE] * (1 + 0.01 * rng.uniform(-1, 1, DISEASE.size))
            sol = root(scaled_rhs, start / scale, args=(scale, p, s.y), method="hybr", tol=1e-13)
            assert sol.success, sol.message
            np.testing.assert_allclose(sol.x * scale, s.y[DISEASE], rtol=1e-6, atol=1e-9)
            assert np.all(s.y[list(m.DRUG_STATES)] == 0) and s.y[m.CD4] == 1
            jac = independent_jacobian(s.y, p)[np.ix_(DISEASE, DISEASE)]
            lead = np.max(np.linalg.eigvals(jac).real)
            assert (lead < 0) == s.stable, (lead, s.stable)
        # the batch rows are the rows' own states, not a neighbour's
        single = steady_states(p)
        assert [round(a.antigen, 9) for a in single] == [round(b.antigen, 9) for b in states]


def test_treatment_parameters_leave_the_untreated_steady_state_alone():
    """Sweeps reuse a patient's starting state when only treatment-flagged parameters change:
    moving every one of them (to the other end of its range) must not move the equilibria, and
    moving any other parameter that the equilibria read must."""
    from immunosim.model.steady_states import state_given_antigen

    p = m.PARAMETERS.defaults()
    b = m.PARAMETERS.bounds()
    q = p.copy()
    idx = m.PARAMETERS.treatment_indices()
    q[idx] = np.where(q[idx] == b[idx, 1], b[idx, 0], b[idx, 1])
    q[m.PARAMETERS.index["std_therapy"]] = 0.0  # the untreated patient has none
    ag = np.linspace(0.5, 10.0, 40)
    ya, ga = state_given_antigen(ag, p)
    yb, gb = state_given_antigen(ag, q)
    np.testing.assert_array_equal(ya, yb)
    np.testing.assert_array_equal(ga, gb)
    assert [s.stable for s in steady_states(q)] == [s.stable for s in steady_states(p)]
    for name in ("activation_rate", "renal_susceptibility", "inflammation_antigen_release"):
        r = m.PARAMETERS.vector({name: 1.2 * p[m.PARAMETERS.index[name]]})
        assert not np.array_equal(state_given_antigen(ag, r)[1], ga), name
