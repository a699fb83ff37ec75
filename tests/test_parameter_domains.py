"""Hard parameter domains (refused at validation) and plausible ranges (a warning); hostile
values inside a domain end as a per-run status, never a traceback (issue 17)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from immunosim.experiments.config import ConfigError, ConfigWarning, parse_config
from immunosim.model import sle_msc as m

SMALL = {"horizon": 30, "seed": 3, "cohort": {"size": 4}, "outcomes": {"landmarks": [10, 30]},
         "scenarios": {"untreated": {}, "msc": {"msc": {"amount": 1e6, "time": 5}}}}


def cfg(**over):
    d = {k: (dict(v) if isinstance(v, dict) else v) for k, v in SMALL.items()}
    d.update(over)
    return d


def test_every_parameter_has_a_domain_holding_its_range():
    for p in m.PARAMETERS:
        lo, hi, lo_open, hi_open = p.domain
        assert p.in_domain([p.low, p.default, p.high]).all(), p.name
        assert not p.in_domain([np.nan, np.inf]).any()
    assert m.PARAMETERS["msc_half_life"].domain_text == "> 0"
    assert m.PARAMETERS["std_therapy"].domain_text == "[0, 1)"
    assert m.PARAMETERS["gc_renewal"].domain_text == "[0, 1]"
    assert m.PARAMETERS["emax_prolif"].domain_text == "[0, 1]"
    assert m.PARAMETERS["emax_repair"].domain_text == ">= 0"
    assert m.PARAMETERS["llpc_capacity"].domain_text == "> 0"
    assert m.PARAMETERS["rtx_kill_fold"].domain_text == ">= 1"


@pytest.mark.parametrize("where, data, key", [
    ("model", {"model": {"parameters": {"msc_half_life": 0}}}, "model.parameters.msc_half_life"),
    ("model", {"model": {"parameters": {"std_therapy": 1.5}}}, "model.parameters.std_therapy"),
    ("model", {"model": {"parameters": {"std_therapy": 1.0}}}, "model.parameters.std_therapy"),
    ("model", {"model": {"parameters": {"gc_renewal": 5}}}, "model.parameters.gc_renewal"),
    ("model", {"model": {"parameters": {"llpc_capacity": 0}}}, "model.parameters.llpc_capacity"),
    ("model", {"model": {"parameters": {"emax_tfh": -0.1}}}, "model.parameters.emax_tfh"),
    ("scenario", {"scenarios": {"a": {"parameters": {"gc_renewal": 1.2}}}},
     "scenarios.a.parameters.gc_renewal"),
    ("axis", {"sweep": {"axes": {"x": {"target": "parameters.std_therapy",
                                       "values": [0.0, 0.5, 1.0]}}}}, "sweep.axes.x"),
    ("axis", {"sweep": {"design": "lhs", "samples": 4, "axes": {
        "x": {"target": "parameters.gc_renewal", "range": [0.5, 1.2]}}}}, "sweep.axes.x"),
    ("axis", {"sweep": {"axes": {"x": {"target": "parameters.igg_half_life",
                                       "linspace": {"start": 0, "stop": 20, "num": 3}}}}},
     "sweep.axes.x"),
    ("cohort", {"cohort": {"size": 4, "parameters": {"secretion_pb": {
        "distribution": "normal", "mean": 20, "sd": 20}}}}, "cohort.parameters.secretion_pb"),
    ("cohort", {"cohort": {"size": 4, "parameters": {"gc_emax_renal": {
        "distribution": "uniform", "low": 0.5, "high": 1.5}}}}, "cohort.parameters.gc_emax_renal"),
    ("cohort", {"cohort": {"size": 4, "parameters": {"reg_half_life": {
        "distribution": "truncnormal", "mean": 100, "sd": 50, "low": 0, "high": 200}}}},
     "cohort.parameters.reg_half_life"),
    ("cohort", {"cohort": {"size": 4, "parameters": {"emax_prolif": {
        "distribution": "lognormal", "median": 0.9, "cv": 1.0}}}}, "cohort.parameters.emax_prolif"),
])
def test_outside_the_hard_domain_is_refused_with_the_key(where, data, key):
    with pytest.raises(ConfigError) as e:
        parse_config(cfg(**data))
    msg = str(e.value)
    assert msg.startswith(key + ":"), msg
    assert "hard domain" in msg and "\n" not in msg


def test_inside_the_domain_but_implausible_warns_with_the_key():
    with pytest.warns(ConfigWarning, match=r"^model\.parameters\.activation_rate: 1e\+06 is "
                      "outside the plausible range"):
        parse_config(cfg(model={"parameters": {"activation_rate": 1e6}}))
    with pytest.warns(ConfigWarning, match=r"^sweep\.axes\.x: 1e-300 is outside"):
        parse_config(cfg(sweep={"axes": {"x": {"target": "parameters.gc_capacity",
                                               "values": [100.0, 1e-300]}}}))


def test_plausible_values_do_not_warn():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        parse_config(cfg(model={"parameters": {p.name: p.high for p in m.PARAMETERS}}))
        parse_config(cfg(cohort={"size": 4, "parameters": {"activation_rate": {
            "distribution": "lognormal", "median": 0.1, "cv": 2.0}}}))


def test_cohort_draws_outside_the_domain_are_redrawn():
    from immunosim.experiments.cohort import sample_cohort

    data = cfg(cohort={"size": 40, "parameters": {"gc_emax_renal": {
        "distribution": "lognormal", "median": 0.9, "cv": 0.05}}})
    with pytest.warns(ConfigWarning, match=r"^cohort\.parameters\.gc_emax_renal: 1\.7% of the "
                      "draws fall outside the hard domain"):
        c = parse_config(data)
    cohort = sample_cohort(c.cohort, m.PARAMETERS.defaults(), seed=0)
    col = cohort.params[:, m.PARAMETERS.index["gc_emax_renal"]]
    assert (col <= 1).all() and (col > 0.8).all()


def test_truncate_silences_the_redraw_warning_but_not_the_limit():
    dist = {"distribution": "lognormal", "median": 0.9, "cv": 0.05, "truncate": True}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        parse_config(cfg(cohort={"size": 4, "parameters": {"gc_emax_renal": dist}}))
    with pytest.raises(ConfigError, match=r"cohort\.parameters\.gc_emax_renal.*fall outside"):
        parse_config(cfg(cohort={"size": 4, "parameters": {"gc_emax_renal": {
            **dist, "median": 0.95, "cv": 0.1}}}))
    with pytest.raises(ConfigError, match="truncate = true applies to lognormal and normal"):
        parse_config(cfg(cohort={"size": 4, "parameters": {"gc_emax_renal": {
            "distribution": "uniform", "low": 0.2, "high": 0.9, "truncate": True}}}))


def test_example_configs_load_without_warnings():
    """The calibrated cohort they include is fitted truncated to the hard domains and says so."""
    from pathlib import Path

    from immunosim.experiments.config import load_config

    root = Path(__file__).resolve().parents[1] / "configs"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        c = load_config(root / "dose_timing.toml")
    assert c.cohort.parameters["gc_emax_renal"].truncate


# --- hostile values inside the domain: a status, never a traceback ------------------------------

EDGES = (5e-324, 1e-300, 1e300, 1e308)


def test_steady_state_search_never_raises_on_edge_values():
    from immunosim.model.steady_states import diseased_states

    base = m.PARAMETERS.defaults()
    rows = []
    for p in m.PARAMETERS:
        for v in EDGES:
            if p.in_domain(v):
                q = base.copy()
                q[m.PARAMETERS.index[p.name]] = v
                rows.append(q)
    y, ok = diseased_states(np.array(rows))  # used to raise LinAlgError (inf in a Jacobian)
    assert y.shape == (len(rows), m.N_STATES)
    assert np.isfinite(y[ok]).all()


def test_hostile_axis_value_is_a_status_not_a_traceback():
    from immunosim.experiments.sweep import NOT_DISEASED, sweep

    with pytest.warns(ConfigWarning, match="plausible range of gc_capacity"):
        c = parse_config(cfg(sweep={"axes": {"x": {"target": "parameters.gc_capacity",
                                                   "values": [100.0, 5e-324]}}}))
    ds = sweep(c, progress=False)  # used to end in numpy.linalg.LinAlgError
    bad = ds.sel(x=5e-324)
    assert (bad.status == NOT_DISEASED).all()
    assert not bad.remission.any() and not bad.response.any()
    assert bad.time_to_response.isnull().all() and bad.activity_at.isnull().all()
    assert (ds.sel(x=100.0).status == 0).all()


def test_failed_runs_carry_no_outcomes(monkeypatch):
    """An engine status != 0 masks the run's outcomes even where its states stayed finite (a
    failure flagged at the last step, an agent-based lane over its clone budget)."""
    from immunosim.engines.ode.status import MAX_STEPS
    from immunosim.experiments import sweep as sw

    real = sw.run_batch

    def flagged(*a, **k):
        sol, treated = real(*a, **k)
        sol.status[0] = MAX_STEPS  # states left finite
        return sol, treated

    c = parse_config(cfg(seed=1, cohort={"size": 4, "parameters": {"activation_rate": {
        "distribution": "lognormal", "median": 0.05, "cv": 0.3}}}))
    ref = sw.sweep(c, progress=False)
    assert ref.sel(scenario="msc").response.isel(patient=0)  # something to mask
    monkeypatch.setattr(sw, "run_batch", flagged)
    ds = sw.sweep(c, progress=False, chunk_size=4)  # one batch per scenario
    run = ds.sel(scenario="msc").isel(patient=0)  # first run of its batch
    assert int(run.status) == MAX_STEPS
    for name in ("baseline_activity", "time_to_response", "follow_up", "activity_at"):
        assert run[name].isnull().all(), name
    for name in ("response", "remission", "flare", "sri4_at"):
        assert not run[name].any(), name
    other = ds.sel(scenario="msc").isel(patient=slice(1, None))
    ref_other = ref.sel(scenario="msc").isel(patient=slice(1, None))
    np.testing.assert_array_equal(other.response.values, ref_other.response.values)


def test_step_budget_failure_is_masked():
    from immunosim.engines.ode.status import MAX_STEPS
    from immunosim.experiments.sweep import sweep

    ds = sweep(parse_config(cfg(solver={"max_steps": 30})), progress=False)
    bad = ds.status == MAX_STEPS
    assert bad.any()
    assert not (ds.response & bad).any() and ds.time_to_response.where(bad).count() == 0


def test_each_posterior_draw_is_checked_over_its_support():
    import tomllib

    from tests.conftest import ROOT

    d = tomllib.loads((ROOT / "configs" / "cohort_calibrated.toml").read_text())
    data = {"cohort": d["cohort"], "scenarios": {"a": {}}}
    j = data["cohort"]["posterior"]["parameters"].index("gc_emax_renal")
    data["cohort"]["posterior"]["cv"][3][j] = 2.0
    # The share of a lognormal (median of draw 3, cv 2) above the domain's upper bound 1.
    from scipy import stats

    median = data["cohort"]["posterior"]["median"][3][j]
    outside = stats.lognorm(s=np.sqrt(np.log(1 + 2.0**2)), scale=median).sf(1.0)
    with pytest.raises(ConfigError, match=rf"^cohort\.posterior\.median\[3\]\[{j}\]: "
                       rf"gc_emax_renal under draw 3: {100 * outside:.1f}% of the draws"):
        parse_config(data)
