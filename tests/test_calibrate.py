"""Calibration: importance reweighting is exact on a known problem; a small calibration recovers
the parameters of a synthetic cohort from targets it generated; settings are checked."""

import numpy as np
import pytest
from scipy import stats

from immunosim.experiments.calibrate import (
    CalibrationSettings,
    Layout,
    Likelihood,
    Problem,
    calibrate,
    cohort_parameters,
    cohort_toml,
    load_problem,
)
from immunosim.experiments.cloud import Cloud, visit_features
from immunosim.experiments.config import ConfigError, parse_config
from immunosim.experiments.patients import simulate_patients
from immunosim.experiments.posterior_check import read_calibrated_cohort
from immunosim.experiments.targets import Target, TargetColumns
from immunosim.model import sle_msc as m


def _layout(d=1, fixed=None):
    fixed = np.full(d, np.nan) if fixed is None else np.asarray(fixed, float)
    free = int(np.isnan(fixed).sum())
    return Layout([f"p{i}" for i in range(d)], [], False, np.zeros(d), np.ones(d), np.ones(d),
                  fixed, np.r_[np.full(d, -5.0), np.full(free, 0.02)],
                  np.r_[np.full(d, 5.0), np.full(free, 2.5)])


def _gaussian_cloud(n=2**14, q_sd=1.5, seed=0):
    """A 1-D cloud from q = N(0, q_sd^2) whose patients 'remit' when x > 0.3."""
    from scipy.stats import qmc

    x = qmc.MultivariateNormalQMC([0.0], [[q_sd**2]], seed=seed).random(n)
    log_q = stats.norm.logpdf(x[:, 0], 0, q_sd)
    f = {"ok": np.ones(n, bool), "flare": x[:, 0] > 0.3, "time_to_flare": np.zeros(n),
         "landmarks": np.array([1.0])}
    return Cloud(["p0"], x, log_q, {"a": f}, {"a": False}, n, {"a": 0})


def test_importance_reweighting_matches_the_analytic_proportion():
    cloud = _gaussian_cloud()
    t = Target(id="t", source="s", arm="a", outcome="flare_by", time=1, kind="proportion", k=1,
               n=10)
    like = Likelihood(_layout(), cloud, [t], 0.0, 10)
    for mu, sd in [(0.0, 1.0), (0.8, 0.5), (-0.5, 0.7)]:
        theta = np.array([mu, sd])
        p = like.predict(theta)[0]
        exact = stats.norm.sf(0.3, mu, sd)
        w, ess = like.weights(theta)
        assert p == pytest.approx(exact, abs=4 / np.sqrt(ess))
        assert ess > 1000


def test_weights_are_uniform_when_the_cohort_is_the_proposal():
    cloud = _gaussian_cloud(q_sd=0.7)
    t = Target(id="t", source="s", arm="a", outcome="flare_by", time=1, kind="proportion", k=1,
               n=10)
    like = Likelihood(_layout(), cloud, [t], 0.0, 10)
    w, ess = like.weights(np.array([0.0, 0.7]))
    np.testing.assert_allclose(w, 1 / cloud.size, rtol=1e-9)
    assert ess == pytest.approx(cloud.size)


def test_fixed_spread_layout_unpacks():
    lay = _layout(2, fixed=[np.nan, 0.15])
    assert lay.size == 3 and lay.labels() == ["log_median:p0", "log_median:p1", "log_sd:p0"]
    mu, sig, rho, trm = lay.unpack(np.array([0.1, 0.2, 0.5]))
    assert mu.tolist() == [0.1, 0.2] and sig.tolist() == [0.5, 0.15] and np.isnan(trm)


def test_cloud_drops_patients_outside_a_hard_domain():
    """As the cohort sampler redraws them: the fit is to the truncated distribution."""
    from immunosim.experiments.cloud import simulate_cloud

    cfg = parse_config({**BASE, "horizon": 30, "outcomes": {"landmarks": [30]}})
    cloud = simulate_cloud(cfg, ["msc"], ["gc_emax_renal"], np.array([np.log(0.9)]),
                           np.array([[0.3**2]]), 256, seed=0)
    assert cloud.drawn == 256
    assert 0.5 * 256 < cloud.size < 0.8 * 256  # P(x < log 1) = 0.64 under the proposal
    assert np.all(np.exp(cloud.x) <= 1.0)


# --- recovery of a synthetic cohort ------------------------------------------------------------

TRUTH = {"activation_rate": (0.12, 0.35), "msc_response": (1.6, 0.6)}  # median, log-SD
BASE = {
    "name": "synthetic", "seed": 3, "horizon": 400,
    "scenarios": {"msc": {"msc": {"amount": 1e6, "time": 0},
                          "therapy": [{"drug": "glucocorticoid", "oral_mg": 7.5}]}},
    "cohort": {"size": 1, "parameters": {
        "activation_rate": {"distribution": "lognormal", "median": 0.17, "cv": 0.5},
        "msc_response": {"distribution": "lognormal", "median": 1.0, "cv": 0.8}}},
    "outcomes": {"assessment_every": 7, "landmarks": [183, 365]},
}
PLAN = [("complete_remission_at", 183), ("complete_remission_at", 365), ("flare_by", 365),
        ("sustained_response_at", 365), ("sledai_at", 0), ("sledai_at", 365)]


def _synthetic_targets(cfg, n_patients=3000, n_reported=3000):
    rng = np.random.default_rng(1)
    base = m.PARAMETERS.vector({})
    params = np.repeat(base[None], n_patients, axis=0)
    for name, (med, sd) in TRUTH.items():
        params[:, m.PARAMETERS.index[name]] = med * np.exp(sd * rng.standard_normal(n_patients))
    r = simulate_patients(cfg, "msc", params, features=visit_features(np.array([183., 365.])))
    r["landmarks"] = np.array([183.0, 365.0])
    r = {k: v[r["ok"]] if k != "landmarks" else v for k, v in r.items()}
    proto = [Target(id=f"{o}_{t}", source="synthetic", arm="msc", outcome=o, time=t,
                    kind="mean" if o == "sledai_at" else "proportion", n=10,
                    **({"mean": 1.0, "sd": 1.0} if o == "sledai_at" else {"k": 1}))
             for o, t in PLAN]
    cols = TargetColumns({"msc": r}, {"msc": False}, proto)
    v, sd = cols.predict(cols.F.mean(axis=0), 0.0)
    out = []
    for t, x, s in zip(proto, v, sd):
        if t.kind == "proportion":
            out.append(t.model_copy(update={"k": int(round(x * n_reported)), "n": n_reported}))
        else:
            out.append(t.model_copy(update={"mean": float(x), "sd": float(s),
                                            "n": n_reported}))
    return out


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    cfg = parse_config(BASE)
    targets = _synthetic_targets(cfg)
    settings = CalibrationSettings(
        fit={"activation_rate": {"spread": 0.8}, "msc_response": {"spread": 1.0}},
        fit_trm=False, cloud_sizes=[4096, 8192], refresh=1, starts=2, walkers=16, steps=80,
        burn=30, posterior_draws=40, min_ess=500)
    res = calibrate(Problem(cfg, settings, targets))
    return res, targets


@pytest.mark.slow
def test_recovers_the_synthetic_cohort(synthetic):
    res, targets = synthetic
    fit = cohort_parameters(res.layout, res.theta)
    for name, (med, sd) in TRUTH.items():
        assert fit[name][0] == pytest.approx(med, rel=0.15), name
        cv = np.sqrt(np.expm1(sd**2))
        assert fit[name][1] == pytest.approx(cv, rel=0.4, abs=0.1), name
    # the posterior's spread of the medians covers the truth
    for j, (name, (med, _)) in enumerate(TRUTH.items()):
        q = np.percentile(np.exp(res.draws[:, j]), [0.5, 99.5])
        assert q[0] * 0.9 <= med <= q[1] * 1.1, (name, q)
    assert res.ess_best > 500 and np.all(np.isfinite(res.predictions))


def test_cohort_file_round_trips(synthetic, tmp_path):
    res, _ = synthetic
    p = tmp_path / "c.toml"
    p.write_text(cohort_toml(res, "test"))
    cc = read_calibrated_cohort(p)
    assert cc.names == list(TRUTH) and cc.n_draws == len(res.draws)
    fit = cohort_parameters(res.layout, res.theta)
    assert cc.best_median[0] == pytest.approx(fit["activation_rate"][0], rel=1e-5)
    # it is a valid [cohort] table of a sweep config
    data = {**BASE, "cohort": {k: v for k, v in __import__("tomllib").loads(
        p.read_text())["cohort"].items() if k != "posterior"}}
    assert parse_config(data).cohort.size == 200


@pytest.mark.slow
def test_same_seed_same_result(synthetic):
    res, targets = synthetic
    again = calibrate(res.problem)
    np.testing.assert_array_equal(again.theta, res.theta)
    np.testing.assert_array_equal(again.draws, res.draws)


def test_settings_errors(tmp_path):
    good = (tmp_path / "c.toml")
    text = ('name = "c"\nseed = 1\nhorizon = 400\n[scenarios.msc]\nmsc = {amount = 1e6}\n'
            '[outcomes]\nlandmarks = [365]\n[calibration]\ncloud_sizes = [1000]\n'
            '[calibration.fit.activation_rate]\nspread = 1.0\n')
    good.write_text(text)
    with pytest.raises(ConfigError, match=r"calibration.cloud_sizes\[0\]: 1000 is not a power"):
        load_problem(good)
    good.write_text(text.replace("[1000]", "[1024]").replace("activation_rate", "nope"))
    with pytest.raises(ConfigError, match="calibration.fit.nope"):
        load_problem(good)
    visit = text.replace("[1000]", "[1024]").replace("[scenarios.msc]",
                                                    "[scenarios.hsct]\nhsct = {time = 0}\n"
                                                    "[scenarios.msc]")
    good.write_text(visit)
    with pytest.raises(ConfigError, match=r"outcomes.landmarks: \[365.0\] lacks day 730"):
        load_problem(good)
    good.write_text(text.replace("cloud_sizes = [1000]", "clouds = 3"))
    with pytest.raises(ConfigError, match="calibration.clouds"):
        load_problem(good)
    good.write_text(text.replace("[calibration]\ncloud_sizes = [1000]\n", ""))
    good.write_text(good.read_text().replace("[calibration.fit.activation_rate]\nspread = 1.0\n",
                                             ""))
    with pytest.raises(ConfigError, match=r"no \[calibration\] table"):
        load_problem(good)


def _targets_toml(targets) -> str:
    out = []
    for t in targets:
        out.append("[[target]]")
        for k, v in t.model_dump(exclude_defaults=True).items():
            out.append(f"{k} = {v!r}".replace("'", '"') if isinstance(v, str) else f"{k} = {v}")
    return "\n".join(out) + "\n"


def test_validation_report_is_written(synthetic, tmp_path):
    from immunosim.reporting.validation import write_validation_report

    res, targets = synthetic
    (tmp_path / "targets.toml").write_text(_targets_toml(targets))
    (tmp_path / "cohort.toml").write_text(cohort_toml(res, "test"))
    cfg_text = (
        'name = "synthetic"\nseed = 3\nhorizon = 400\n[scenarios.msc]\n'
        'msc = { amount = 1e6, time = 0 }\n'
        'therapy = [{ drug = "glucocorticoid", oral_mg = 7.5 }]\n'
        '[outcomes]\nassessment_every = 7\nlandmarks = [183, 365]\n'
        '[calibration]\ntargets = "targets.toml"\nfit_trm = false\noutput = "cohort.toml"\n'
        '[calibration.fit.activation_rate]\nspread = 0.8\n'
        '[calibration.fit.msc_response]\nspread = 1.0\n')
    (tmp_path / "cal.toml").write_text(cfg_text)
    out = write_validation_report(tmp_path / "cal.toml", out=tmp_path / "validation.md",
                                  draws=3, patients=60)
    text = out.read_text()
    assert "## Fitted targets" in text and "What the model still gets wrong" in text
    for t in targets:
        assert f"`{t.id}`" in text
    # every fitted row says inside or not, with the data's interval
    rows = [ln for ln in text.splitlines() if ln.startswith("| `complete_remission_at_365`")]
    assert len(rows) == 1 and ("| yes |" in rows[0] or "| **no** |" in rows[0])
    for png in ("validation_distributions.png", "validation_msc.png"):
        assert (tmp_path / "figures" / png).stat().st_size > 10_000


def test_shipped_calibration_config_and_cohort_validate():
    from pathlib import Path

    from immunosim.experiments.calibrate import check_cohort_file

    root = Path(__file__).resolve().parents[1] / "configs"
    p = load_problem(root / "calibrate.toml")
    assert set(p.arms) == {"msc", "hsct"} and len(p.fitted) >= 20
    assert "posterior draws" in check_cohort_file(root / "cohort_calibrated.toml")
    cc = read_calibrated_cohort(root / "cohort_calibrated.toml")
    assert cc.n_draws >= 50 and set(cc.names) == set(p.settings.fit)
    # fitted truncated to its hard domain [0, 1], and says so (no ConfigWarning when loaded)
    text = (root / "cohort_calibrated.toml").read_text()
    assert "[cohort.parameters.gc_emax_renal]" in text
    assert text.split("[cohort.parameters.gc_emax_renal]")[1].split("[")[0].count(
        "truncate = true") == 1


def test_calibration_on_a_dask_cluster_equals_local(synthetic):
    pytest.importorskip("distributed")
    from distributed import Client

    from immunosim.experiments.distributed import local_cluster

    _, targets = synthetic
    settings = CalibrationSettings(
        fit={"activation_rate": {"spread": 0.8}}, fit_trm=False, cloud_sizes=[1024], refresh=0,
        starts=1, walkers=6, steps=10, burn=2, posterior_draws=5, min_ess=10)
    problem = Problem(parse_config(BASE), settings, targets[:3])
    local = calibrate(problem)
    with local_cluster(2) as cluster, Client(cluster) as client:
        remote = calibrate(problem, client=client)
    np.testing.assert_array_equal(remote.theta, local.theta)
    np.testing.assert_array_equal(remote.draws, local.draws)
    np.testing.assert_array_equal(remote.predictions, local.predictions)
