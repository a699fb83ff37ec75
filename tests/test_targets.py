"""Targets as data: the package's set loads, intervals are right, outcome maps read features."""

import numpy as np
import pytest
from scipy import stats

from immunosim.experiments.targets import (
    OUTCOME_MAPS,
    Target,
    TargetColumns,
    TargetError,
    data_interval,
    load_targets,
)


def test_package_targets_load_with_sources_and_arms():
    ts = load_targets()
    ids = {t.id for t in ts}
    for needed in ("wang2013_complete_remission_1y", "wang2013_relapse_year4",
                   "liang2010_sledai_12m", "liang2010_proteinuria_baseline", "sun2010_no_relapse",
                   "jayne2004_remission_6m", "jayne2004_relapse_among_responders",
                   "jayne2004_treatment_related_mortality", "burt2006_treatment_related_mortality"):
        assert needed in ids
    assert all(t.source and t.definition and t.arm in ("msc", "hsct") for t in ts)
    wang = [t for t in ts if t.id.startswith("wang2013") and t.fit]
    assert all(t.nested == "wang2013" for t in wang)
    assert sum(t.k for t in wang if "relapse" in t.id) == 20  # adds up to the 20/87 overall
    assert [t.n for t in wang if "relapse" in t.id] == [83, 39, 12, 6]
    unfit = [t for t in ts if not t.fit]
    assert unfit and all(t.why_not_fitted for t in unfit)


def test_clopper_pearson_and_t_intervals():
    t = Target(id="a", source="s", arm="msc", outcome="flare_by", time=251, kind="proportion",
               k=0, n=16)
    lo, hi = data_interval(t)
    assert lo == 0.0 and hi == pytest.approx(1 - 0.025 ** (1 / 16))  # exact for k = 0
    t = Target(id="b", source="s", arm="msc", outcome="flare_by", time=1, kind="proportion",
               k=23, n=83)
    lo, hi = data_interval(t)
    # the defining property: the binomial tails at the bounds are 2.5% each
    assert stats.binom.sf(22, 83, lo) == pytest.approx(0.025, rel=1e-6)
    assert stats.binom.cdf(23, 83, hi) == pytest.approx(0.025, rel=1e-6)
    t = Target(id="c", source="s", arm="msc", outcome="sledai_at", time=0, kind="mean",
               mean=12.2, sd=3.3, n=15)
    lo, hi = data_interval(t)
    assert (hi - lo) / 2 == pytest.approx(2.1448 * 3.3 / np.sqrt(15), rel=1e-4)


@pytest.mark.parametrize("entry, match", [
    ({"outcome": "nope"}, "outcome: 'nope' is unknown"),
    ({"k": 20, "n": 10}, "0 <= k <= n"),
    ({"kind": "mean"}, "needs mean, sd and n"),
    ({"outcome": "sledai_at"}, "is a mean"),
])
def test_bad_target_entries(tmp_path, entry, match):
    base = {"id": "x", "source": "s", "arm": "msc", "outcome": "flare_by", "time": 10,
            "kind": "proportion", "k": 1, "n": 10}
    base.update(entry)
    lines = ["[[target]]"] + [f"{k} = {v!r}".replace("'", '"') for k, v in base.items()]
    p = tmp_path / "t.toml"
    p.write_text("\n".join(lines))
    with pytest.raises(TargetError, match=match) as e:
        load_targets(p)
    assert str(p) in str(e.value) and "target x" in str(e.value)


def test_missing_file_and_duplicates(tmp_path):
    with pytest.raises(TargetError, match="cannot read"):
        load_targets(tmp_path / "none.toml")
    p = tmp_path / "d.toml"
    one = ('[[target]]\nid = "x"\nsource = "s"\narm = "msc"\noutcome = "flare_by"\ntime = 1\n'
           'kind = "proportion"\nk = 1\nn = 2\n')
    p.write_text(one + one)
    with pytest.raises(TargetError, match="duplicate target id 'x'"):
        load_targets(p)


def _features():
    """Six constructed patients with known events."""
    inf = np.inf
    return {
        "ok": np.array([True] * 6),
        "landmarks": np.array([183.0, 365.0]),
        "major_at": np.array([[1, 1], [0, 1], [0, 0], [1, 0], [0, 0], [0, 0]], dtype=bool),
        "flare": np.array([False, True, True, False, True, False]),
        "time_to_flare": np.array([900, 100, 400, 900, 1000, np.nan]),
        "time_to_response": np.array([30, 50, 60, inf, 20, inf]),
        "time_to_partial_response": np.array([30, 40, 60, 300, 20, inf]),
        "time_to_low": np.array([50, 100, inf, 200, 150, inf]),
        "baseline_activity": np.array([12, 10, 14, 8, 16, 12.0]),
        "activity_at": np.array([[2, 2], [4, 0], [8, 8], [2, 6], [4, 4], [12, 12.0]]),
        "proteinuria_at": np.ones((6, 2)), "proteinuria_baseline": np.full(6, 2.0),
    }


def _t(outcome, time, **kw):
    kind = OUTCOME_MAPS[outcome].kind
    extra = {"mean": 1.0, "sd": 1.0} if kind == "mean" else {"k": 1}
    return Target(id=outcome, source="s", arm="a", outcome=outcome, time=time, kind=kind, n=10,
                  **extra, **kw)


def test_outcome_maps_on_constructed_patients():
    f = _features()
    ts = [_t("complete_remission_at", 365), _t("relapse_in_year", 730),
          _t("flare_by", 365), _t("sustained_response_at", 365), _t("sledai_below_3_by", 183),
          _t("relapse_among_responders", 1095), _t("relapse_by_among_relapsers", 183),
          _t("sledai_at", 0), _t("sledai_at", 365), _t("proteinuria_at", 0),
          _t("treatment_related_death", 365), _t("disease_free_at", 365)]
    cols = TargetColumns({"a": f}, {"a": True}, ts)
    v, sd = cols.predict(cols.F.sum(axis=0), trm=0.1)
    # patient by patient (see _features):
    expect = [2 / 6,  # major at 365: patients 0, 1
              1 / 6,  # first flare in (365, 730]: patient 2 (day 400)
              1 / 6,  # flare by 365: patient 1
              4 / 6,  # responded by 365 (0-4) and no flare by then (1 flared): 0, 2, 3, 4
              0.9 * 3 / 6]  # score <= 2 by 183: 0, 1, 4 (3 reaches it on day 200); alive
    assert v[:5] == pytest.approx(expect)
    # responders by 183: 0, 1, 4; flared by 1095 among them: 1 (100), 4 (1000) -> 2/3
    assert v[5] == pytest.approx(2 / 3)
    # relapsers (responders flaring by the 1095-d window): 1, 4; by 183: only 1 -> 1/2
    assert v[6] == pytest.approx(1 / 2)
    assert v[7] == pytest.approx(12.0) and sd[7] == pytest.approx(np.std([12, 10, 14, 8, 16, 12]))
    assert v[8] == pytest.approx(np.mean([2, 0, 8, 6, 4, 12]))
    assert v[9] == pytest.approx(2000.0)  # g/24h -> mg/24h
    assert v[10] == pytest.approx(0.1)
    # disease-free at 365 (alive x responded and no flare): 0, 2, 3, 4 -> 4/6 x 0.9
    assert v[11] == pytest.approx(0.9 * 4 / 6)


def test_failed_runs_count_nowhere():
    f = _features()
    f["ok"] = np.array([True, True, True, True, True, False])
    cols = TargetColumns({"a": f}, {"a": False}, [_t("flare_by", 365), _t("sledai_at", 0)])
    v, _ = cols.predict(cols.F.sum(axis=0), trm=0.5)
    assert v[0] == pytest.approx(1 / 5)
    assert v[1] == pytest.approx(np.mean([12, 10, 14, 8, 16]))
