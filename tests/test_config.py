"""Config validation: examples validate, broken configs fail with one precise line."""

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from immunosim.experiments.config import ConfigError, load_config, parse_config, tomllib
from tests.conftest import ROOT, SMALL_CONFIG

EXAMPLES = sorted((ROOT / "configs").glob("*.toml"))


def test_examples_exist():
    assert {p.name for p in EXAMPLES} >= {"baseline.toml", "dose_timing.toml",
                                          "msc_vs_hsct.toml"}


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_every_example_validates(path):
    cfg = load_config(path)
    assert cfg.scenarios and cfg.cohort.size >= 1
    assert path.read_text().lstrip().startswith("#")  # documented at its top


def base():
    return tomllib.loads(SMALL_CONFIG)


def with_(path: str, value):
    d = base()
    node = d
    keys = path.split(".")
    for k in keys[:-1]:
        node = node.setdefault(k, {})
    if value is DELETE:
        node.pop(keys[-1])
    else:
        node[keys[-1]] = value
    return d


DELETE = object()

BROKEN = [
    # wrong types
    (with_("horizon", "long"), "horizon: 'long' is invalid: expected a number"),
    (with_("cohort.size", 2.5), "cohort.size: 2.5 is invalid"),
    (with_("scenarios.msc.msc", 5), "scenarios.msc.msc: "),
    # unknown keys, with suggestions
    (with_("scenarios.msc.msc.dose_per_kg", 1e6),
     "scenarios.msc.msc.dose_per_kg: unknown key 'dose_per_kg'"),
    (with_("solvr", {}), "solvr: unknown key 'solvr'; did you mean 'solver'?"),
    (with_("model.parameters", {"reg_halflife": 3}),
     "model.parameters: unknown parameter 'reg_halflife'; did you mean 'reg_half_life'?"),
    (with_("sweep.axes.amount.target", "msc.amout"),
     "sweep.axes.amount.target: unknown target 'msc.amout'; did you mean 'msc.amount'?"),
    # negative amounts and other out-of-range values
    (with_("scenarios.msc.msc.amount", -1e6),
     "scenarios.msc.msc.amount: -1000000.0 is invalid: input should be greater than or equal"),
    (with_("sweep.axes.amount.values", [1e6, -1]),
     "sweep.axes.amount: value -1 for msc.amount: input should be greater than or equal to 0"),
    (with_("solver.rtol", 2.0), "solver.rtol: 2.0 is invalid: input should be less than 1"),
    # empty axes
    (with_("sweep.axes.amount.values", []), "sweep.axes.amount.values: empty axis"),
    (with_("scenarios", {}), "scenarios: no scenario"),
    # doses after the horizon
    (with_("scenarios.msc.msc.time", 300),
     "scenarios.msc: dose at day 300 is after the horizon (240 d)"),
    (with_("scenarios.msc.msc.interval", 250),
     "sweep.axes.count: puts a dose at day 250 in scenario 'msc', after the horizon (240 d)"),
    (with_("outcomes.landmarks", [91, 400]), "outcomes.landmarks: 400 is after the horizon"),
    # repeated doses without an interval
    (with_("scenarios.msc.msc.interval", 0),
     "sweep.axes.count: count up to 2 needs msc.interval > 0 in scenario 'msc'"),
    # bad distributions
    (with_("cohort.parameters.activation_rate", {"distribution": "gamma", "median": 1}),
     "cohort.parameters.activation_rate.distribution: 'gamma' is invalid"),
    (with_("cohort.parameters.activation_rate", {"distribution": "lognormal", "median": 1}),
     "cohort.parameters.activation_rate: distribution 'lognormal' needs cv"),
    (with_("cohort.parameters.activation_rate",
           {"distribution": "normal", "mean": 1, "sd": 1, "median": 2}),
     "cohort.parameters.activation_rate: distribution 'normal' does not take median"),
    (with_("cohort.parameters.activation_rate",
           {"distribution": "uniform", "low": 2, "high": 1}),
     "cohort.parameters.activation_rate: low = 2 must be below high = 1"),
    (with_("cohort.parameters.activation_rate", {"distribution": "lognormal", "median": -1,
                                                  "cv": 1}),
     "cohort.parameters.activation_rate.median: -1 is invalid: input should be greater than 0"),
    (with_("cohort.parameters.not_a_param", {"distribution": "uniform", "low": 0, "high": 1}),
     "cohort.parameters: unknown parameter 'not_a_param'"),
    (with_("cohort.correlations", [["activation_rate", "reg_induction", 1.5]]),
     "cohort.correlations: ['activation_rate', 'reg_induction', 1.5] needs"),
    # solver
    (with_("solver.method", "rk4"), "solver.method: unknown method 'rk4'; expected one of"),
]


@pytest.mark.parametrize("data, message", BROKEN, ids=[m[:40] for _, m in BROKEN])
def test_broken_config_message(data, message):
    with pytest.raises(ConfigError) as e:
        parse_config(data)
    text = str(e.value)
    assert "\n" not in text
    assert text.startswith(message), text


def test_missing_file_and_bad_toml(tmp_path):
    with pytest.raises(ConfigError, match="cannot read config"):
        load_config(tmp_path / "nope.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("horizon = = 3")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(bad)


# --- hypothesis: any config-shaped input either validates or raises ConfigError --------------

keys = st.sampled_from(["horizon", "seed", "amount", "time", "count", "interval", "size",
                        "values", "target", "distribution", "median", "cv", "method", "rtol",
                        "msc", "scenarios", "sweep", "axes", "cohort", "parameters", "xyz"])
leaves = st.one_of(st.none(), st.booleans(), st.integers(-5, 2000),
                   st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=8),
                   st.sampled_from(["msc.amount", "msc.count", "parameters.repair_rate",
                                    "lognormal", "dopri5", "uniform"]))
tomlish = st.recursive(leaves, lambda c: st.one_of(st.lists(c, max_size=4),
                                                   st.dictionaries(keys, c, max_size=4)),
                       max_leaves=20)


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(keys, tomlish, max_size=6))
def test_random_configs_only_raise_config_errors(data):
    try:
        parse_config(data)
    except ConfigError as e:
        assert "\n" not in str(e)


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(path=st.sampled_from(["horizon", "seed", "scenarios.msc.msc.amount",
                             "scenarios.msc.msc.count", "scenarios.msc.msc.interval",
                             "sweep.axes.amount.values", "sweep.axes.count.values",
                             "cohort.size", "cohort.parameters.activation_rate.cv",
                             "outcomes.landmarks", "output.chunk_size", "solver.atol"]),
       value=leaves | st.lists(leaves, max_size=3))
def test_mutated_small_config(path, value):
    try:
        parse_config(with_(path, value))
    except ConfigError as e:
        assert "\n" not in str(e) and str(e).split(":")[0]
