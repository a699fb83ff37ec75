"""simulate_patients: the same outcomes as a sweep of the same patients, chunk-independent."""

import numpy as np
import pytest

from immunosim.experiments.config import ConfigError, parse_config
from immunosim.experiments.patients import simulate_patients, steady_states
from immunosim.experiments.sweep import sweep

CONFIG = {
    "name": "patients", "seed": 11, "horizon": 400,
    "scenarios": {"msc": {"msc": {"amount": 1e6, "time": 0},
                          "therapy": [{"drug": "glucocorticoid", "oral_mg": 7.5}]},
                  "hsct": {"hsct": {"time": 0}}},
    "cohort": {"size": 12, "parameters": {
        "activation_rate": {"distribution": "lognormal", "median": 0.12, "cv": 0.5},
        "msc_response": {"distribution": "lognormal", "median": 1.0, "cv": 1.0}}},
    "outcomes": {"landmarks": [91, 365], "assessment_every": 7},
}


@pytest.fixture(scope="module")
def reference():
    cfg = parse_config(CONFIG)
    return cfg, sweep(cfg, progress=False)


def test_matches_sweep(reference):
    cfg, ds = reference
    params = ds.patient_parameters.values
    for sc in ("msc", "hsct"):
        u = np.ones(params.shape[0])  # nobody dies here; the sweep's deaths are compared below
        r = simulate_patients(cfg, sc, params, death_u=u, chunk=5)
        d = ds.sel(scenario=sc)
        alive = ~d.death.values
        for k in ("remission", "time_to_remission", "response", "flare", "baseline_activity"):
            np.testing.assert_array_equal(r[k][alive], d[k].values[alive], err_msg=f"{sc} {k}")
        np.testing.assert_array_equal(r["activity_at"][alive], d.activity_at.values[alive])
        assert r["ok"].all() and not r["death"].any()


def test_chunk_and_threads_do_not_matter(reference):
    cfg, ds = reference
    params = ds.patient_parameters.values
    a = simulate_patients(cfg, "msc", params, chunk=12, threads=1)
    b = simulate_patients(cfg, "msc", params, chunk=5, threads=2)
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)


def test_rows_without_diseased_state_are_skipped(reference):
    cfg, ds = reference
    params = ds.patient_parameters.values[:3].copy()
    params[1, list(ds.parameter.values).index("activation_rate")] = 0.011  # healthy only
    y0, ok = steady_states(params)
    assert ok.tolist() == [True, False, True]
    seen = []
    r = simulate_patients(cfg, "msc", params, features=lambda t, y, p, ok, o: seen.append(
        len(ok)) or {"n": np.full(len(ok), 1.0)})
    assert r["ok"].tolist() == [True, False, True] and seen == [2]
    assert np.isnan(r["n"][1]) and not r["remission"][1] and r["status"][1] == -1


def test_unknown_scenario(reference):
    cfg, ds = reference
    with pytest.raises(ConfigError, match="'nope' is not a scenario"):
        simulate_patients(cfg, "nope", ds.patient_parameters.values)
