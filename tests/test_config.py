"""Config validation: examples validate, broken configs fail with one precise line."""

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from immunosim.experiments.config import (
    ConfigError,
    load_config,
    loads_config,
    parse_config,
    tomllib,
)
from tests.conftest import CALIBRATED_COHORT, ROOT, SMALL_CONFIG

#: Experiment configs (the calibration config and the included cohort file are checked in
#: tests/test_calibrate.py and tests/test_cli.py).
EXAMPLES = sorted(p for p in (ROOT / "configs").rglob("*.toml")
                  if p.name not in ("calibrate.toml", "cohort_calibrated.toml"))


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
     "sweep.axes.n_infusions: puts a dose at day 250 in scenario 'msc', after the horizon (240 d)"),
    (with_("outcomes.landmarks", [91, 400]), "outcomes.landmarks: 400 is after the horizon"),
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


# --- cohort include and posterior draws ----------------------------------------------------


def _including(tmp_path, cohort_lines: str, included: str = CALIBRATED_COHORT):
    (tmp_path / "cal").mkdir(exist_ok=True)
    (tmp_path / "cal" / "cohort.toml").write_text(included)
    p = tmp_path / "exp.toml"
    p.write_text('[scenarios.a]\n[cohort]\ninclude = "cal/cohort.toml"\n' + cohort_lines)
    return p


def test_include_takes_the_cohort_and_local_keys_override(tmp_path):
    p = _including(tmp_path, "size = 4\nposterior_draws = 2\n"
                   "[cohort.parameters.reg_induction]\ndistribution = 'uniform'\n"
                   "low = 0.5\nhigh = 0.7\n"
                   "[cohort.posterior]\nparameters = ['activation_rate']\n"
                   "median = [[0.05], [0.07]]\ncv = [[0.5], [0.4]]\n"
                   "correlation = [[0.1], [0.2]]\n")
    c = load_config(p).cohort
    assert c.size == 4 and c.posterior_draws == 2 and c.max_redraws == 50
    assert c.parameters["reg_induction"].distribution == "uniform"  # replaced whole
    assert c.parameters["reg_induction"].median is None
    assert c.parameters["activation_rate"].median == 0.06  # kept from the included file
    assert c.correlations == [("activation_rate", "reg_induction", -0.3)]
    assert c.posterior.median == [[0.05], [0.07]]  # the local posterior replaces the included
    cfg = load_config(p)
    assert cfg.included.name == "cal/cohort.toml" and cfg.included.text == CALIBRATED_COHORT
    plain = load_config(_including(tmp_path, ""))
    assert plain.cohort.size == 200 and plain.cohort.posterior.n_draws == 3
    assert plain.cohort.posterior_draws == 0


def test_include_through_parse_config_needs_a_base_dir(tmp_path):
    (tmp_path / "c.toml").write_text(CALIBRATED_COHORT)
    data = {"scenarios": {"a": {}}, "cohort": {"include": "c.toml", "size": 2}}
    assert parse_config(data, base_dir=tmp_path).cohort.size == 2
    assert data["cohort"]["include"] == "c.toml"  # the caller's dict is not modified
    with pytest.raises(ConfigError) as e:
        parse_config(data)
    assert str(e.value) == ("cohort.include: 'c.toml' needs a base directory for the file; use "
                            "load_config(path) or parse_config(data, base_dir=...)")


@pytest.mark.parametrize("included, local, message", [
    (None, "", "cohort.include: cannot read 'cal/cohort.toml' ("),
    ("[cohort]\nsize = = 3\n", "",
     "cohort.include: 'cal/cohort.toml' is not valid TOML (Invalid value (at line 2, column 8))"),
    ("[model]\n", "", "cohort.include: 'cal/cohort.toml' has no [cohort] table"),
    ("[cohort]\ninclude = 'x.toml'\n", "",
     "cohort.include: 'cal/cohort.toml' has its own cohort.include; includes do not nest"),
    (CALIBRATED_COHORT.replace("cv = 0.5", "cv = -0.5", 1), "",
     "cohort.parameters.activation_rate.cv: -0.5 is invalid: input should be greater than 0 "
     "(cohort.include = 'cal/cohort.toml')"),
    (CALIBRATED_COHORT, "posterior_draws = 4\n",
     "cohort.posterior_draws: 4 is more than the 3 draws of cohort.posterior"),
    (CALIBRATED_COHORT, "[cohort.parameters.activation_rate]\ndistribution = 'normal'\n"
     "mean = 0.1\nsd = 0.01\n", "cohort.posterior.parameters[0]: 'activation_rate' is normal "
     "in cohort.parameters; posterior draws need a lognormal entry"),
    (CALIBRATED_COHORT, "correlations = []\n",
     "cohort.posterior.correlation[0]: 1 values; expected 0 (one per cohort correlation)"),
], ids=["missing", "bad_toml", "no_cohort", "nested", "bad_value", "too_many_draws",
        "not_lognormal", "correlation_shape"])
def test_include_errors_are_one_line_naming_key_and_file(tmp_path, included, local, message):
    p = _including(tmp_path, local, included or "")
    if included is None:
        (tmp_path / "cal" / "cohort.toml").unlink()
    with pytest.raises(ConfigError) as e:
        load_config(p)
    assert "\n" not in str(e.value)
    assert str(e.value).startswith(message), str(e.value)


def test_include_must_be_a_string(tmp_path):
    p = tmp_path / "exp.toml"
    p.write_text("[scenarios.a]\n[cohort]\ninclude = 5\n")
    with pytest.raises(ConfigError, match=r"^cohort.include: 5 is invalid: expected a file name"):
        load_config(p)


POSTERIOR = {"parameters": ["activation_rate", "reg_induction"],
             "median": [[0.06, 0.6], [0.07, 0.5]], "cv": [[0.5, 0.5], [0.4, 0.4]]}


def with_posterior(draws: int | None = None, **changes):
    d = with_("cohort.posterior", {**POSTERIOR, **changes})
    if draws is not None:
        d["cohort"]["posterior_draws"] = draws
    return d


@pytest.mark.parametrize("data, message", [
    (with_posterior(median=[[0.06, 0.6], [0.07, -0.5]]),
     "cohort.posterior.median[1][1]: -0.5 is invalid: expected a value > 0"),
    (with_posterior(median=[[0.06, 0.6], [0.07, "x"]]),
     "cohort.posterior.median[1][1]: 'x' is invalid: expected a number"),
    (with_posterior(cv=[[0.5, 0.5], [0.4]]),
     "cohort.posterior.cv[1]: 1 values; expected 2 (one per posterior parameter)"),
    (with_posterior(cv=[[0.5, 0.5]]), "cohort.posterior.cv: 1 draws; expected 2"),
    (with_posterior(median=[]), "cohort.posterior.median: no draws"),
    (with_posterior(parameters=["activation_rate", "activation_rate"]),
     "cohort.posterior.parameters: ['activation_rate', 'activation_rate'] names a parameter "
     "twice"),
    (with_posterior(parameters=["activation_rate", "secretion_pb"]),
     "cohort.posterior.parameters[1]: 'secretion_pb' has no distribution in cohort.parameters"),
    (with_posterior(correlation=[[0.1], [0.2]]),
     "cohort.posterior.correlation[0]: 1 values; expected 0"),
    (with_posterior(source=3), "cohort.posterior.source: 3 is invalid: expected a string"),
    (with_posterior(draws=3), "cohort.posterior_draws: 3 is more than the 2 draws"),
    (with_posterior(draws=-1), "cohort.posterior_draws: -1 is invalid"),
    (with_("cohort.posterior_draws", 2), "cohort.posterior_draws: 2 needs a [cohort.posterior] "
     "table"),
], ids=lambda v: v[:40] if isinstance(v, str) else "")
def test_posterior_validation(data, message):
    with pytest.raises(ConfigError) as e:
        parse_config(data)
    assert str(e.value).startswith(message), str(e.value)


def test_posterior_correlations_must_be_inside_minus_one_one():
    d = with_("cohort.correlations", [["activation_rate", "reg_induction", 0.2]])
    d["cohort"]["posterior"] = {**POSTERIOR, "correlation": [[0.3], [1.0]]}
    with pytest.raises(ConfigError, match=r"^cohort.posterior.correlation\[1\]\[0\]: 1.0 is "
                       "invalid: expected -1 < r < 1$"):
        parse_config(d)
    d["cohort"]["posterior"] = POSTERIOR
    with pytest.raises(ConfigError, match=r"^cohort.posterior.correlation: missing; expected one "
                       "row of 1 values per draw"):
        parse_config(d)
    d["cohort"]["posterior"] = {**POSTERIOR, "correlation": [[0.3], [-0.2]]}
    d["cohort"]["posterior_draws"] = 2
    assert parse_config(d).cohort.n_draws == 2


# --- hypothesis: any config-shaped input either validates or raises ConfigError --------------

keys = st.sampled_from(["horizon", "seed", "amount", "time", "count", "interval", "size",
                        "values", "target", "distribution", "median", "cv", "method", "rtol",
                        "msc", "scenarios", "sweep", "axes", "cohort", "parameters", "xyz",
                        "include", "posterior", "posterior_draws", "correlation"])
leaves = st.one_of(st.none(), st.booleans(), st.integers(-5, 2000),
                   st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=8),
                   st.sampled_from(["msc.amount", "msc.count", "parameters.repair_rate",
                                    "lognormal", "dopri5", "uniform"]))
tomlish = st.recursive(leaves, lambda c: st.one_of(st.lists(c, max_size=4),
                                                   st.dictionaries(keys, c, max_size=4)),
                       max_leaves=20)


@pytest.mark.filterwarnings("ignore::immunosim.experiments.config.ConfigWarning")
@settings(suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(keys, tomlish, max_size=6))
def test_random_configs_only_raise_config_errors(data):
    try:
        parse_config(data)
    except ConfigError as e:
        assert "\n" not in str(e)


@pytest.mark.filterwarnings("ignore::immunosim.experiments.config.ConfigWarning")
@settings(suppress_health_check=[HealthCheck.too_slow])
@given(path=st.sampled_from(["horizon", "seed", "scenarios.msc.msc.amount",
                             "scenarios.msc.msc.count", "scenarios.msc.msc.interval",
                             "sweep.axes.amount.values", "sweep.axes.n_infusions.values",
                             "cohort.size", "cohort.parameters.activation_rate.cv",
                             "outcomes.landmarks", "output.chunk_size", "solver.atol"]),
       value=leaves | st.lists(leaves, max_size=3))
def test_mutated_small_config(path, value):
    """One key of a valid config set to anything: it validates, or the one-line error starts
    with that key (or a table above or an item below it), or with a key it is checked against.

    Catches: a message that loses the key's location (``"invalid config: ..."``, or the bare
    pydantic text), or that names another key (a wrong ``loc`` join, a message written for
    the wrong field). The old check, ``str(e).split(":")[0]``, was true for almost any text."""
    try:
        parse_config(with_(path, value))
    except ConfigError as e:
        text = str(e)
        assert "\n" not in text
        where = text.split(":")[0]
        related = (where == path or where.startswith(path + ".") or path.startswith(where + ".")
                   or where in CHECKED_AGAINST.get(path, ()))
        assert related, (path, value, text)


#: Keys whose value is checked against another key's: the error names the other key.
CHECKED_AGAINST = {
    "horizon": ("outcomes.landmarks", "sweep.axes.n_infusions", "scenarios.msc"),
    "scenarios.msc.msc.interval": ("sweep.axes.n_infusions",),
}


def test_huge_count_is_refused_by_its_key():
    with pytest.raises(ConfigError, match=r"^scenarios\.msc\.msc\.count: "):
        parse_config(with_("scenarios.msc.msc.count", 5.361992047607801e16))
    with pytest.raises(ConfigError, match=r"^scenarios\.msc\.msc\.count: 1001 is invalid: "
                       "input should be less than or equal to 1000"):
        parse_config(with_("scenarios.msc.msc.count", 1001))
    with pytest.raises(ConfigError, match=r"^sweep\.axes\.n_infusions: value 5000 for msc\.count"):
        parse_config(with_("sweep.axes.n_infusions.values", [1, 5000]))


# --- therapy records ----------------------------------------------------------------------------

INDUCTION = [{"drug": "glucocorticoid", "pulse_mg": 500, "pulse_days": 3, "oral_mg": 40,
              "taper_to": 5, "taper_weeks": 3},
             {"drug": "mycophenolate", "dose": 2.0, "start": 3}]

THERAPY_TOML = """
horizon = 365
[[scenarios.soc.therapy]]      # array-of-tables form
drug = "glucocorticoid"
pulse_mg = 500
pulse_days = 3
oral_mg = 40
taper_to = 5
taper_weeks = 3
[[scenarios.soc.therapy]]
drug = "mycophenolate"
dose = 2.0
start = 3
[[scenarios.soc.therapy]]
drug = "hydroxychloroquine"
dose = 400
[scenarios.cyc]                # inline-table form
therapy = [{ drug = "cyclophosphamide", regimen = "nih", time = 14 },
           { drug = "cyclophosphamide", dose = 10, time = 200, interval = 14, count = 2 },
           { drug = "rituximab" }, { drug = "car_t", time = 30 }]
hsct = { time = 300, t_cell_depletion = 0.9, trm = 0.1, trm_window = 50 }
"""


def test_therapy_records_parse_and_build():
    from immunosim.model import regimens as rg
    from immunosim.model.interventions import HSCT

    cfg = parse_config(tomllib.loads(THERAPY_TOML))
    soc, cyc = cfg.build_scenarios()
    assert [type(iv) for iv in soc.interventions] == [rg.Glucocorticoid, rg.Mycophenolate,
                                                      rg.Hydroxychloroquine]
    assert soc.interventions[0] == rg.Glucocorticoid(0, 500, 3, 40, 5, 3)
    assert soc.interventions[1] == rg.Mycophenolate(2.0, 3.0)
    hsct, nih, explicit, rtx, cart = cyc.interventions
    assert hsct == HSCT(300, t_cell_depletion=0.9, trm=0.1, trm_window=50)
    assert nih == rg.Cyclophosphamide.nih(14.0)
    assert explicit == rg.Cyclophosphamide(10.0, 200.0, 14.0, 2)
    assert rtx == rg.Rituximab() and cart == rg.CART(30.0)
    cyc = next(sc for sc in cfg.build_scenarios() if sc.name == "cyc")
    assert max(t for iv in cyc.interventions for t in iv.dose_times()) == 303  # conditioning


def test_hsct_defaults_are_the_models():
    from immunosim.model.interventions import HSCT

    cfg = parse_config({"scenarios": {"h": {"hsct": {"time": 5}}}})
    assert cfg.build_scenarios()[0].interventions == (HSCT(5.0),)


THERAPY_BROKEN = [
    ([{"drug": "prednisone", "oral_mg": 40}],
     "scenarios.msc.therapy.0.drug: unknown drug 'prednisone'; expected one of glucocorticoid, "
     "cyclophosphamide, mycophenolate, hydroxychloroquine, rituximab, car_t; prednisone is "
     "drug = 'glucocorticoid'"),
    ([{"drug": "mycophenolat", "dose": 2}], "scenarios.msc.therapy.0.drug: unknown drug "),
    ([{"dose": 2}], "scenarios.msc.therapy.0.drug: missing; expected one of glucocorticoid"),
    (["mmf"], "scenarios.msc.therapy.0: expected a table"),
    ({"drug": "mycophenolate", "dose": 2},
     "scenarios.msc.therapy: expected a list of drug records"),
    (INDUCTION[:1] + [{"drug": "mycophenolate", "dose": -2}],
     "scenarios.msc.therapy.1.dose: -2 is invalid: input should be greater than or equal to 0"),
    ([{"drug": "mycophenolate", "dose": 2000}],
     "scenarios.msc.therapy.0.dose: 2000 is in g/d, not mg/d"),
    ([{"drug": "mycophenolate", "dose": 5}], "scenarios.msc.therapy.0.dose: 5.0 is not a number"),
    ([{"drug": "mycophenolate", "dos": 2}],
     "scenarios.msc.therapy.0.dos: unknown key 'dos'; did you mean 'dose'?"),
    ([{"drug": "glucocorticoid", "oral_mg": 20, "taper_to": 40}],
     "scenarios.msc.therapy.0.taper_to: 40.0 is not a number in [0, 20]"),
    ([{"drug": "glucocorticoid", "oral_mg": True}],
     "scenarios.msc.therapy.0.oral_mg: true is invalid"),
    ([{"drug": "cyclophosphamide"}], "scenarios.msc.therapy.0.dose: missing; give dose"),
    ([{"drug": "cyclophosphamide", "dose": 750}],
     "scenarios.msc.therapy.0.dose: 750 is above 60 mg/kg per pulse; dose is mg/kg, not mg"),
    ([{"drug": "cyclophosphamide", "regimen": "euro_lupus", "count": 3}],
     "scenarios.msc.therapy.0.count: only with regimen = 'nih'"),
    ([{"drug": "cyclophosphamide", "regimen": "nih", "dose": 10}],
     "scenarios.msc.therapy.0.dose: not with regimen = 'nih'"),
    ([{"drug": "cyclophosphamide", "regimen": "nih"}],  # 6 monthly pulses: last on day 150
     None),
    ([{"drug": "cyclophosphamide", "regimen": "nih", "time": 100}],
     "scenarios.msc.therapy.0: cyclophosphamide dose at day 250 is after the horizon (240 d)"),
    ([{"drug": "rituximab", "count": 2, "interval": 0}],
     "scenarios.msc.therapy.0.interval: 0.0 must be > 0 days"),
]


@pytest.mark.parametrize("therapy, message", THERAPY_BROKEN,
                         ids=[str(m)[:40] for _, m in THERAPY_BROKEN])
def test_therapy_record_errors(therapy, message):
    data = with_("scenarios.msc.therapy", therapy)
    if message is None:
        parse_config(data)
        return
    with pytest.raises(ConfigError) as e:
        parse_config(data)
    assert "\n" not in str(e.value)
    assert str(e.value).startswith(message), str(e.value)


def test_hsct_conditioning_within_horizon():
    with pytest.raises(ConfigError, match=r"^scenarios.msc.hsct: conditioning ends on day 241"):
        parse_config(with_("scenarios.msc.hsct", {"time": 238}))


@pytest.mark.parametrize("path, value, key", [
    ("scenarios.msc.therapy", [{"drug": "glucocorticoid", "oral_mg": 150}],
     "scenarios.msc.therapy.0.oral_mg: 150 mg/d"),
    ("scenarios.msc.therapy", INDUCTION[:1] + [{"drug": "mycophenolate", "dose": 3.5}],
     "scenarios.msc.therapy.1.dose: 3.5 g/d"),
    ("scenarios.msc.therapy", [{"drug": "rituximab", "dose": 1}],
     "scenarios.msc.therapy.0.dose: 1 mg rituximab"),
    ("scenarios.msc.therapy", [{"drug": "car_t", "cells": 1}],
     "scenarios.msc.therapy.0.cells: 1 CAR-T"),
    ("scenarios.msc.msc.amount", 1, "scenarios.msc.msc.amount: 1 cells/kg"),
])
def test_suspicious_values_warn_with_the_key(path, value, key):
    from immunosim.experiments.config import ConfigWarning

    with pytest.warns(ConfigWarning, match="^" + key.replace(".", r"\.")):
        parse_config(with_(path, value))


def test_plausible_therapy_does_not_warn(recwarn):
    parse_config(with_("scenarios.msc.therapy", INDUCTION))
    assert not [w for w in recwarn if "scenarios" in str(w.message)]


# --- sweep axes on therapy records --------------------------------------------------------------


def _axes_config(axes, design="grid", **sweep):
    d = base()
    d["scenarios"]["msc"]["therapy"] = INDUCTION
    d["scenarios"]["soc"] = {"therapy": INDUCTION}
    d["sweep"] = {"design": design, "axes": axes, **sweep}
    return d


def test_axis_on_drug_applies_to_every_record_of_that_drug():
    from immunosim.experiments.design import apply_point, expand
    from immunosim.model import sle_msc as m
    from immunosim.model.regimens import Glucocorticoid, Mycophenolate

    cfg = parse_config(_axes_config({
        "mmf": {"target": "mycophenolate.dose", "values": [1.0, 3.0]},
        "pred": {"target": "glucocorticoid.oral_mg", "values": [20.0, 60.0]},
        "trm": {"target": "parameters.reg_half_life", "values": [100.0]}}))
    assert cfg.axis_scenarios(cfg.sweep.axes["mmf"]) == ["msc", "soc"]
    design = expand(cfg)
    scen = {s.name: s for s in cfg.build_scenarios()}
    p = m.PARAMETERS.defaults()
    ivs, _ = apply_point(design, design.n_points - 1, scen["soc"], p)
    assert ivs[0] == Glucocorticoid(0, 500, 3, 60.0, 5, 3) and ivs[1] == Mycophenolate(3.0, 3)
    assert apply_point(design, 0, scen["untreated"], p)[0] == ()


def test_axis_on_hsct_trm():
    from immunosim.experiments.design import apply_point, expand
    from immunosim.model import sle_msc as m

    d = base()
    d["scenarios"] = {"hsct": {"hsct": {"time": 0}}}
    d["sweep"] = {"axes": {"trm": {"target": "hsct.trm", "values": [0.02, 0.12]},
                           "tcd": {"target": "hsct.t_cell_depletion", "values": [0.5]}}}
    cfg = parse_config(d)
    (h,), _ = apply_point(expand(cfg), 1, cfg.build_scenarios()[0], m.PARAMETERS.defaults())
    assert (h.trm, h.t_cell_depletion) == (0.12, 0.5)


@pytest.mark.parametrize("axes, message", [
    ({"a": {"target": "mycophenolat.dose", "values": [1]}},
     "sweep.axes.a.target: unknown target 'mycophenolat.dose'; expected one of"),
    ({"a": {"target": "mycophenolate.dos", "values": [1]}},
     "sweep.axes.a.target: unknown target 'mycophenolate.dos'; did you mean "
     "'mycophenolate.dose'?"),
    ({"a": {"target": "rituximab.dose", "values": [1000]}},
     "sweep.axes.a: no scenario has 'rituximab' to sweep"),
    ({"a": {"target": "mycophenolate.dose", "values": [1, 6]}},
     "sweep.axes.a: value 6 for mycophenolate.dose: dose: 6.0 is not a number in [0, 4] g/d"),
    ({"a": {"target": "glucocorticoid.pulse_days", "values": [1.5]}},
     "sweep.axes.a: value 1.5 for glucocorticoid.pulse_days is not an integer"),
    ({"a": {"target": "glucocorticoid.oral_mg", "values": [10, 60]},
      "b": {"target": "glucocorticoid.taper_to", "values": [5, 20]}},
     "sweep.axes.a: glucocorticoid.oral_mg = 10, glucocorticoid.taper_to = 20 in scenario "
     "'msc': taper_to"),
    ({"a": {"target": "glucocorticoid.taper_weeks", "values": [4, 40]}},
     "sweep.axes.a: glucocorticoid.taper_weeks = 40 puts a glucocorticoid dose at day 283"),
])
def test_therapy_axis_errors(axes, message):
    with pytest.raises(ConfigError) as e:
        parse_config(_axes_config(axes))
    assert str(e.value).startswith(message), str(e.value)


def test_docs_therapy_example_validates():
    import re
    import warnings

    text = (ROOT / "docs" / "configs.md").read_text()
    section = text[text.index("## Therapy regimens"):]
    block = re.search(r"```toml\n(.*?)```", section, re.S).group(1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the documented example is not suspicious
        cfg = parse_config(tomllib.loads(block))
    arms = {s.name: [type(iv).__name__ for iv in s.interventions] for s in cfg.build_scenarios()}
    assert arms == {"induction": ["Glucocorticoid", "Mycophenolate"],
                    "induction_msc": ["MSCInfusion", "Glucocorticoid", "Mycophenolate"]}


# --- every way of building a Config: one-line errors ---------------------------------------------


def test_toml_text_dict_and_replace_are_validated_like_a_file():
    """``loads_config`` (TOML text), ``Config.model_validate`` (a dict: raw pydantic errors
    before) and ``Config.replace`` (``model_copy`` skips validation: a cohort of -5 then ended in
    ``ValueError: negative dimensions``) all raise the one-line ConfigError of a file."""
    from immunosim.experiments.config import Config, loads_config

    cfg = loads_config(SMALL_CONFIG)
    assert cfg == load_config_text(SMALL_CONFIG) and cfg.source_text == SMALL_CONFIG
    with pytest.raises(ConfigError, match=r"^config: not valid TOML"):
        loads_config("horizon = = 3")
    with pytest.raises(ConfigError, match=r"^cohort\.size: -5 is invalid: input should be "
                       r"greater than or equal to 1$"):
        Config.model_validate({**base(), "cohort": {"size": -5}})
    assert Config.model_validate(base()).model_dump() == cfg.model_dump()

    smaller = cfg.replace({"cohort.size": 2, "scenarios.msc.msc.amount": 5e5}, seed=9)
    assert (smaller.cohort.size, smaller.seed) == (2, 9)
    assert smaller.scenarios["msc"].msc.amount == 5e5 and cfg.cohort.size == 6
    assert "# Config.replace: {'cohort.size': 2" in smaller.source_text
    with pytest.raises(ConfigError, match=r"^cohort\.size: -5 is invalid") as e:
        cfg.replace({"cohort.size": -5})
    assert "\n" not in str(e.value)
    with pytest.raises(ConfigError, match=r"^sweep\.axes\.n_infusions: puts a dose at day 250"):
        cfg.replace({"scenarios.msc.msc.interval": 250})
    with pytest.raises(ConfigError, match=r"^scenarios\.msc\.msc\.amout: unknown key 'amout'; "
                       "did you mean 'amount'"):
        cfg.replace({"scenarios.msc.msc.amout": 1e6})
    with pytest.raises(ConfigError, match=r"^horizon\.x: 240\.0 is not a table"):
        cfg.replace({"horizon.x.y": 1})


def load_config_text(text):
    import tempfile
    from pathlib import Path

    from immunosim.experiments.config import load_config

    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "c.toml"
        p.write_text(text)
        return load_config(p)


# --- guard rails: unit slips, strict, cohort parameters under an axis ----------------------------


def test_msc_amount_outside_the_plausible_window_hints_at_the_unit():
    from immunosim.experiments.config import ConfigWarning

    with pytest.warns(ConfigWarning, match=r"^scenarios\.msc\.msc\.amount: 2 cells/kg is below "
                      r"the plausible floor of 10000 cells/kg \(typical 1e5-1e7\); amount is "
                      r"cells per kg, not millions of cells; did you mean 2e\+06\?$"):
        parse_config(with_("scenarios.msc.msc.amount", 2))
    with pytest.warns(ConfigWarning, match=r"^scenarios\.msc\.msc\.amount: 7e\+08 cells/kg is "
                      r"above .* not the total: did you mean 1e\+07"):
        parse_config(with_("scenarios.msc.msc.amount", 7e8))
    with pytest.warns(ConfigWarning, match=r"^sweep\.axes\.amount: value 100 cells/kg is below"):
        parse_config(with_("sweep.axes.amount.values", [100, 1e6]))


def test_plausible_msc_amounts_and_a_sham_do_not_warn(recwarn):
    parse_config(with_("sweep.axes.amount.values", [0, 1e5, 1e7]))
    assert not recwarn.list


@pytest.mark.parametrize("path, value, key", [
    ("scenarios.msc.msc.amount", 100, "scenarios.msc.msc.amount: 100 cells/kg is below"),
    ("model.parameters", {"reg_half_life": 5000}, "model.parameters.reg_half_life: 5000 is "
     "outside the plausible range"),
    ("scenarios.msc.therapy", [{"drug": "mycophenolate", "dose": 3.5}],
     "scenarios.msc.therapy.0.dose: 3.5 g/d"),
])
def test_strict_turns_config_warnings_into_errors(path, value, key, recwarn):
    from immunosim.experiments.config import ConfigWarning

    data = with_(path, value)
    with pytest.warns(ConfigWarning):
        parse_config(data)
    with pytest.raises(ConfigError) as e:
        parse_config({**data, "strict": True})
    assert str(e.value).startswith(key) and str(e.value).endswith(
        "(an error because strict = true)"), str(e.value)


def test_an_axis_on_a_cohort_parameter_needs_override_cohort():
    """It used to replace every patient's draw silently."""
    axis = {"target": "parameters.activation_rate", "values": [0.05, 0.1]}
    with pytest.raises(ConfigError, match=r"^sweep\.axes\.act: parameters\.activation_rate is "
                       r"drawn per patient by cohort\.parameters\.activation_rate; .*"
                       "override_cohort = true"):
        parse_config(with_("sweep.axes.act", axis))
    cfg = parse_config(with_("sweep.axes.act", {**axis, "override_cohort": True}))
    assert cfg.sweep.axes["act"].override_cohort
    parse_config(with_("sweep.axes.act", {**axis, "target": "parameters.reg_half_life",
                                          "values": [100.0]}))  # not drawn: no flag needed
    with pytest.raises(ConfigError, match=r"^sweep\.axes\.n_infusions\.override_cohort: only for "
                       "parameters"):
        parse_config(with_("sweep.axes.n_infusions.override_cohort", True))


def test_an_axis_on_a_population_table_column_needs_override_cohort(tmp_path):
    (tmp_path / "patients.csv").write_text("ID,msc_response\nP1,1.2\nP2,0.4\n")
    text = ('[scenarios.msc]\nmsc = { amount = 1e6 }\n[cohort]\ntable = "patients.csv"\n'
            '[sweep.axes.resp]\ntarget = "parameters.msc_response"\nvalues = [1.0]\n')
    with pytest.raises(ConfigError, match=r"^sweep\.axes\.resp: parameters\.msc_response is "
                       r"given per patient by cohort\.table 'patients\.csv'"):
        loads_config(text, base_dir=tmp_path)
    cfg = loads_config(text + "override_cohort = true\n", base_dir=tmp_path)
    assert cfg.cohort.size == 2
    assert cfg.replace({"seed": 4}).cohort.table.ids == ["P1", "P2"]  # a resolved table


# --- categorical and zipped axes, same-day repeats ---------------------------------------------


def test_msc_source_is_a_categorical_axis():
    from immunosim.experiments.design import apply_point, expand
    from immunosim.model import sle_msc as m

    cfg = parse_config(with_("sweep.axes.src", {"target": "msc.source", "values": ["uc", "bm"]}))
    design = expand(cfg)
    assert design.dims == ("amount", "n_infusions", "src")
    assert design.coords["src"][1].dtype.kind == "U"
    msc = next(s for s in cfg.build_scenarios() if s.name == "msc")
    (iv,), _ = apply_point(design, 0, msc, m.PARAMETERS.defaults())
    assert iv.source == "uc" and type(iv.source) is str


@pytest.mark.parametrize("change, message", [
    (("sweep.axes.src", {"target": "msc.source", "values": [1, 2]}),
     "sweep.axes.src: msc.source is categorical: give values = [...] of 'bm', 'uc'"),
    (("sweep.axes.amount.values", ["1e6"]),
     "sweep.axes.amount.values: ['1e6'] are strings; msc.amount takes numbers"),
    (("sweep.axes.src", {"target": "msc.source", "values": ["bm", 1]}),
     "sweep.axes.src.values: ['bm', 1] mixes strings and numbers"),
    (("sweep", {"design": "lhs", "samples": 4, "axes": {
        "src": {"target": "msc.source", "values": ["bm"]}}}),
     "sweep.axes.src: msc.source is categorical; it is an axis of grid designs only"),
    (("sweep.zip", {"regimen": ["amount", "n_infusions"], "other": ["n_infusions", "amount"]}),
     "sweep.zip.other: axis 'n_infusions' is zipped in 'regimen' already"),
    (("sweep.zip", {"amount": ["amount", "n_infusions"]}),
     "sweep.zip.amount: 'amount' is an axis; name the zipped dimension something else"),
    (("sweep.zip", {"regimen": ["amount"]}),
     "sweep.zip.regimen: ['amount'] zips 1 axis; list at least two axes"),
    (("sweep", {"design": "sobol", "samples": 4, "zip": {"r": ["a", "b"]}, "axes": {
        "a": {"target": "msc.amount", "range": [1e5, 1e6]},
        "b": {"target": "msc.time", "range": [0, 10]}}}),
     "sweep.zip: only for design = 'grid'"),
])
def test_categorical_and_zip_errors(change, message):
    with pytest.raises(ConfigError) as e:
        parse_config(with_(*change))
    assert str(e.value).startswith(message), str(e.value)


def test_same_day_double_dose_validates():
    """``interval = 0`` with a count axis was refused ("count up to 2 needs msc.interval > 0")."""
    cfg = parse_config(with_("scenarios.msc.msc.interval", 0))
    from immunosim.experiments.design import apply_point, expand
    from immunosim.model import sle_msc as m

    design = expand(cfg)
    msc = next(s for s in cfg.build_scenarios() if s.name == "msc")
    (iv,), _ = apply_point(design, design.n_points - 1, msc, m.PARAMETERS.defaults())
    assert (iv.count, iv.interval) == (2, 0.0) and list(iv.dose_times()) == [0.0, 0.0]


def test_docs_zip_example_validates():
    import re

    from immunosim.experiments.design import expand

    text = (ROOT / "docs" / "configs.md").read_text()
    section = text[text.index("**Same-day repeats"):]
    block = re.search(r"```toml\n(.*?)```", section, re.S).group(1)
    cfg = parse_config(tomllib.loads("\n".join(line.removeprefix("  ")
                                               for line in block.splitlines())))
    design = expand(cfg)
    assert design.dims == ("regimen", "source") and design.shape == (2, 2)
    assert design.coords["amount"][0] == ("regimen",)


# --- axis names: they become result dimensions ---------------------------------------------------


def test_axis_name_that_shadows_a_dataset_method_warns_with_a_suggestion():
    """``ds.count`` is Dataset.count, not the axis: a ConfigWarning naming the key and a better
    name (the examples' axis was called ``count``)."""
    import warnings

    from immunosim.experiments.config import ConfigWarning

    d = base()
    d["sweep"]["axes"] = {"count": d["sweep"]["axes"]["n_infusions"]}
    with pytest.warns(ConfigWarning) as w:
        parse_config(d)
    assert [str(x.message) for x in w] == [
        "sweep.axes.count: the name 'count' is an attribute of xarray Datasets (ds.count is "
        "that, not this axis; ds.sel(count=...) still works); rename the axis, e.g. "
        "'n_infusions'"]
    d["sweep"]["axes"] = {"mean": {"target": "parameters.reg_half_life", "values": [60.0]}}
    with pytest.warns(ConfigWarning, match=r"^sweep\.axes\.mean: .* e\.g\. 'reg_half_life'$"):
        parse_config(d)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        parse_config(base())  # n_infusions, amount: no warning


def test_xarray_attribute_list_is_current():
    """The list is written out (reading a config does not import xarray): it must hold every
    public attribute of the installed xarray; regenerate it as experiments/names.py says."""
    import xarray as xr

    from immunosim.experiments.names import XARRAY_ATTRIBUTES

    public = {n for c in (xr.Dataset, xr.DataArray) for n in dir(c) if not n.startswith("_")}
    assert public <= XARRAY_ATTRIBUTES, sorted(public - XARRAY_ATTRIBUTES)


def test_reading_a_config_with_axes_does_not_import_xarray():
    import subprocess
    import sys

    code = ("import sys; from immunosim.experiments.config import load_config; "
            f"load_config({str(ROOT / 'configs' / 'dose_timing.toml')!r}); "
            "assert 'xarray' not in sys.modules, 'xarray imported'")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


@pytest.mark.parametrize("name", ["patient", "dose", "landmark", "remission", "status",
                                  "traj_activity", "parameter_units"])
def test_axis_name_of_another_result_dimension_or_variable_is_refused(name):
    d = base()
    d["sweep"]["axes"][name] = d["sweep"]["axes"].pop("amount")
    with pytest.raises(ConfigError, match=rf"^sweep\.axes\.{name}: '{name}' is already a "
                                          "dimension or variable of the result"):
        parse_config(d)


def test_a_huge_cohort_cv_is_refused_before_sampling():
    """cv = 1e200 passed validation (its lognormal's domain share is 0) and crashed at sweep
    time with an OverflowError from cv**2 in the sampler."""
    from immunosim.experiments.config import ConfigError, parse_config

    with pytest.raises(ConfigError, match=r"^cohort\.parameters\.activation_rate\.cv: 1e\+200 is"):
        parse_config({"cohort": {"size": 3, "parameters": {"activation_rate": {
            "distribution": "lognormal", "median": 0.1, "cv": 1e200}}}})


def test_correlations_that_cannot_hold_together_are_refused_by_validate():
    """Three pairs each in (-1, 1) but no correlation matrix: refused when the config is read
    (it used to pass validate and fail only when the cohort was sampled)."""
    from immunosim.experiments.config import ConfigError, parse_config

    d = {"distribution": "lognormal", "median": 0.1, "cv": 0.3}
    cohort = {"size": 3, "parameters": {"activation_rate": d, "msc_response": d,
                                        "reg_half_life": {**d, "median": 150}},
              "correlations": [["activation_rate", "msc_response", 0.9],
                               ["activation_rate", "reg_half_life", 0.9],
                               ["msc_response", "reg_half_life", -0.9]]}
    with pytest.raises(ConfigError, match=r"^cohort\.correlations: .*not positive definite"):
        parse_config({"cohort": cohort})
    cohort["correlations"][2][2] = 0.8  # consistent
    parse_config({"cohort": cohort})
