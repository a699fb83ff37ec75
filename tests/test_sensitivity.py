"""Sobol' sensitivity: the analysis against functions with known indices, a small real run
(seeded, independent of threads and chunks), the CLI's one-line errors and the figure."""

import numpy as np
import pytest
from scipy import stats

from immunosim.cli import main
from immunosim.experiments.config import ConfigError, parse_config
from immunosim.experiments.sensitivity import (
    Marginal,
    cohort_marginal,
    default_scenario,
    sensitivity_table,
    sobol_design,
    sobol_indices,
    sobol_sensitivity,
    write_sensitivity,
)

# --- the analysis on functions with known indices ----------------------------------------------

#: Ishigami (a = 7, b = 0.1) on U(-pi, pi)^3: exact indices (Saltelli et al. 2008, sec. 4.1).
ISHIGAMI_S1 = np.array([0.3139, 0.4424, 0.0])
ISHIGAMI_ST = np.array([0.5576, 0.4424, 0.2437])


def ishigami(x):
    return {"y": np.sin(x[:, 0]) + 7 * np.sin(x[:, 1]) ** 2
            + 0.1 * x[:, 2] ** 4 * np.sin(x[:, 0])}


def within(est, conf, exact, slack=0.02):
    """Estimates within their 95% interval of the exact values (plus a small slack)."""
    return np.all(np.abs(est - exact) <= conf + slack)


def test_ishigami_indices_within_ci():
    u = Marginal(stats.uniform(-np.pi, 2 * np.pi), "uniform")
    ds = sobol_indices({"x1": u, "x2": u, "x3": u}, ishigami, samples=1024, seed=3)
    r = ds.sel(outcome="y")
    assert within(r.S1.values, r.S1_conf.values, ISHIGAMI_S1), r.S1.values
    assert within(r.ST.values, r.ST_conf.values, ISHIGAMI_ST), r.ST.values
    assert np.all(r.ST_conf.values < 0.1) and np.all(r.ST_conf.values > 0)
    assert float(ds["mean"].sel(outcome="y")) == pytest.approx(3.5, abs=0.1)  # E = a/2
    assert ds.attrs["runs"] == 1024 * 5


def test_linear_additive_through_cohort_marginals():
    """y = sum a_i x_i with the cohort's marginals: S1 = ST = a_i^2 var_i / sum_j a_j^2 var_j,
    which checks that each column went through its own quantile function."""
    cfg = parse_config({"scenarios": {"s": {}}, "cohort": {"parameters": {
        "activation_rate": {"distribution": "lognormal", "median": 0.1, "cv": 0.3},
        "msc_response": {"distribution": "uniform", "low": 0.5, "high": 2.0},
        "secretion_pb": {"distribution": "normal", "mean": 60.0, "sd": 5.0}}}})
    margs = {n: cohort_marginal(n, d) for n, d in cfg.cohort.parameters.items()}
    a = np.array([30.0, 1.0, 0.1])
    var = np.array([mg.dist.var() for mg in margs.values()])
    exact = a**2 * var / np.sum(a**2 * var)
    ds = sobol_indices(margs, lambda x: {"y": x @ a, "y2": 2 * (x @ a)}, samples=512, seed=1)
    for o in ("y", "y2"):
        r = ds.sel(outcome=o)
        assert within(r.S1.values, r.S1_conf.values, exact), (r.S1.values, exact)
        assert within(r.ST.values, r.ST_conf.values, exact), (r.ST.values, exact)
    assert float(ds.variance.sel(outcome="y")) == pytest.approx(np.sum(a**2 * var), rel=0.1)


def test_design_is_seeded_and_follows_the_marginals():
    margs = {"a": Marginal(stats.lognorm(s=0.5, scale=2.0), "ln"),  # b: truncated at 0
             "b": Marginal(stats.norm(0.05, 0.1), "n", nonnegative=True)}
    x = sobol_design(margs, 256, seed=5)
    assert x.shape == (256 * 4, 2)
    np.testing.assert_array_equal(x, sobol_design(margs, 256, seed=5))
    assert not np.array_equal(x, sobol_design(margs, 256, seed=6))
    assert stats.kstest(x[:, 0], margs["a"].dist.cdf).pvalue > 0.01
    assert x[:, 1].min() >= 0.0
    trunc = stats.truncnorm(-0.5, np.inf, loc=0.05, scale=0.1)
    assert stats.kstest(x[:, 1], trunc.cdf).pvalue > 0.01


def test_constant_outcome_has_undefined_indices():
    u = Marginal(stats.uniform(0, 1), "u")
    ds = sobol_indices({"a": u, "b": u}, lambda x: {"c": np.ones(len(x))}, samples=16, seed=0)
    assert np.isnan(ds.ST.values).all() and ds.variance.item() == 0.0


def test_samples_must_be_a_power_of_two():
    u = Marginal(stats.uniform(0, 1), "u")
    with pytest.raises(ConfigError, match="samples: 24; expected a power of 2"):
        sobol_indices({"a": u}, lambda x: {"y": x[:, 0]}, samples=24)


# --- a small real run ---------------------------------------------------------------------------

CONFIG = {
    "name": "sens", "seed": 5, "horizon": 730,
    "scenarios": {"maintenance": {"therapy": [{"drug": "glucocorticoid", "oral_mg": 7.5}]},
                  "msc": {"msc": {"amount": 1e6, "time": 0}}},
    "cohort": {"size": 10, "parameters": {
        "msc_response": {"distribution": "lognormal", "median": 1.0, "cv": 1.0},
        "renal_susceptibility": {"distribution": "lognormal", "median": 0.75, "cv": 0.3}},
        "correlations": [["msc_response", "renal_susceptibility", 0.5]]},
    "outcomes": {"landmarks": [365, 730], "assessment_every": 7},
}


CONFIG_TOML = """
name = "sens"
seed = 5
horizon = 730
[scenarios.msc]
msc = { amount = 1e6, time = 0 }
[cohort.parameters.msc_response]
distribution = "lognormal"
median = 1.0
cv = 1.0
[cohort.parameters.renal_susceptibility]
distribution = "lognormal"
median = 0.75
cv = 0.3
[outcomes]
landmarks = [365, 730]
assessment_every = 7
"""


@pytest.fixture(scope="module")
def small():
    cfg = parse_config(CONFIG)
    ds = sobol_sensitivity(cfg, parameters=["activation_rate"], samples=16, threads=1)
    return cfg, ds


def test_real_run_dims_and_values(small):
    cfg, ds = small
    assert dict(ds.sizes) == {"outcome": 3, "parameter": 3}
    assert list(ds.parameter.values) == ["msc_response", "renal_susceptibility",
                                         "activation_rate"]
    assert ds.distribution.values[2] == "log-uniform[0.01, 0.5]"
    assert ds.attrs["scenario"] == "msc" == default_scenario(cfg)
    assert ds.attrs["runs"] == 16 * 5 and ds.attrs["seed"] == 5
    assert "correlations are ignored" in ds.attrs["independence"]
    # activation_rate down to 0.01 includes patients who are healthy untreated
    assert 0 < ds.attrs["healthy_fraction"] < 0.5
    for v in ("S1", "S1_conf", "ST", "ST_conf", "mean", "variance"):
        assert np.isfinite(ds[v].values).all(), v
    assert np.all(ds.ST + ds.ST_conf >= ds.S1 - ds.S1_conf)
    assert np.all(ds.ST.values >= -0.05)
    m = ds["mean"]
    assert 0 <= float(m.sel(outcome="remission_12m")) <= 1
    assert 0 <= float(m.sel(outcome="time_to_remission")) <= 730
    assert "msc_response" in sensitivity_table(ds)


def test_real_run_seeded_and_independent_of_threads_and_chunks(small):
    cfg, ds = small
    again = sobol_sensitivity(cfg, parameters=["activation_rate"], samples=16, threads=2,
                              chunk=7)
    for v in ("S1", "S1_conf", "ST", "ST_conf", "mean", "variance"):
        np.testing.assert_array_equal(again[v].values, ds[v].values, err_msg=v)
    other = sobol_sensitivity(cfg, parameters=["activation_rate"], samples=16, seed=6,
                              outcomes=["remission_12m"])
    assert not np.array_equal(other.ST.values[0], ds.ST.values[0])


@pytest.mark.parametrize("kwargs, match", [
    ({"parameters": ["activation_rat"]}, "unknown parameter 'activation_rat'; did you mean "
                                         "'activation_rate'"),
    ({"scenario": "nope"}, "scenario: 'nope' is not a scenario"),
    ({"outcomes": ["remission"]}, "outcomes: .remission. is not an outcome"),
])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        sobol_sensitivity(parse_config(CONFIG), **kwargs)


def test_short_horizon_names_horizon():
    cfg = parse_config({**CONFIG, "horizon": 500, "outcomes": {"assessment_every": 7,
                                                               "landmarks": [365]}})
    with pytest.raises(ConfigError, match=r"^horizon: 500 d .* need 730 d"):
        sobol_sensitivity(cfg)
    sobol_sensitivity(cfg, outcomes=["remission_12m"], samples=2)  # 365 d are enough


def test_scenario_override_cannot_vary():
    cfg = parse_config({**CONFIG, "scenarios": {"s": {"parameters": {"activation_rate": 0.1}}}})
    with pytest.raises(ConfigError, match="'activation_rate' is set by scenarios.s.parameters"):
        sobol_sensitivity(cfg, parameters=["activation_rate"])


def test_population_table_is_refused():
    import pandas as pd

    table = pd.DataFrame({"ID": ["a", "b"], "activation_rate": [0.06, 0.08]})
    cfg = parse_config({**CONFIG, "cohort": {"table": table}})
    with pytest.raises(ConfigError, match=r"^cohort.table: 'DataFrame' fixes each patient"):
        sobol_sensitivity(cfg, parameters=["msc_response"])


# --- CLI and figure -----------------------------------------------------------------------------


@pytest.fixture()
def config_file(tmp_path):
    p = tmp_path / "sens.toml"
    p.write_text(CONFIG_TOML)
    return p


@pytest.mark.parametrize("extra, message", [
    (["--parameters", "nope"], "immunosim: error: parameters: unknown parameter 'nope'"),
    (["--scenario", "nope"], "immunosim: error: scenario: 'nope' is not a scenario"),
    (["--samples", "12"], "immunosim: error: samples: 12; expected a power of 2"),
])
def test_cli_errors_are_one_line(config_file, capsys, extra, message):
    assert main(["sensitivity", str(config_file), "--quiet", *extra]) == 2
    err = capsys.readouterr().err
    assert err.startswith(message) and err.count("\n") == 1, err


def test_cli_writes_result_and_figure(config_file, tmp_path, capsys):
    import xarray as xr

    out, fig = tmp_path / "s.nc", tmp_path / "s.png"
    assert main(["sensitivity", str(config_file), "--samples", "4", "--quiet", "-o", str(out),
                 "--figure", str(fig), "--workers", "1"]) == 0
    text = capsys.readouterr().out
    assert "Total Sobol' index ST" in text and "renal_susceptibility" in text
    with xr.open_dataset(out) as ds:
        assert ds.ST.dims == ("outcome", "parameter") and ds.attrs["samples"] == 4
    assert fig.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("suffix", [".nc", ".zarr"])
def test_write_round_trip(small, tmp_path, suffix):
    import xarray as xr

    _, ds = small
    write_sensitivity(ds, str(tmp_path / f"s{suffix}"))
    kw = {"engine": "zarr", "consolidated": False} if suffix == ".zarr" else {}
    with xr.open_dataset(tmp_path / f"s{suffix}", **kw) as back:
        xr.testing.assert_identical(back.load(), ds)


def test_figure_renders(small, tmp_path):
    from immunosim.plotting.sensitivity import draw_sensitivity

    _, ds = small
    fig = draw_sensitivity(ds)
    assert len([ax for ax in fig.axes if ax.axison]) == 3
    labels = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    order = np.argsort(ds.ST.sel(outcome="remission_12m").values)  # largest ST on top
    assert labels == list(ds.parameter.values[order])
    fig.savefig(tmp_path / "f.png")
    assert (tmp_path / "f.png").stat().st_size > 10_000
