"""SBML export: the exported model, simulated in libRoadRunner, matches immunosim's engine to
1e-5 relative on a daily grid (dosing included); libsbml finds no consistency error; the CLI
writes the file; a missing extra is one line naming it. The round trip needs the optional extra
``immunosim[sbml]`` and is skipped without it."""

import subprocess
import sys

import numpy as np
import pytest

from immunosim.experiments import sbml
from immunosim.experiments.config import load_config
from immunosim.experiments.simulate import SolverOptions, run_batch
from immunosim.model import sle_msc as m
from tests.conftest import ROOT

HORIZON = 365
CONFIG = f"""
name = "sbml_roundtrip"
seed = 11
horizon = {HORIZON}

[scenarios.msc_day0]                 # one MSC dose at day 0 (folded into the initial state)
msc = {{ amount = 1e6, time = 0 }}
[scenarios.msc_day0_day60]           # doses at days 0 and 60 (the second one an event)
msc = {{ amount = 1e6, time = 0, interval = 60, count = 2 }}
[scenarios.gc_taper_uc_msc]          # pulses + weekly taper (OP_SET events), a UC-MSC dose on day 3
msc = {{ amount = 2e6, time = 3, source = "uc" }}
[[scenarios.gc_taper_uc_msc.therapy]]
drug = "glucocorticoid"
pulse_mg = 500
oral_mg = 40
taper_to = 7.5
taper_weeks = 12

[scenarios.hsct_drugs]               # every op and drug state: HSCT on day 30 (scales, a set,
hsct = {{ time = 30 }}                 # cyclophosphamide), background suppression (a parameter),
standard_therapy = {{ suppression = 0.2 }}   # oral drugs from day 0, rituximab, CAR-T
therapy = [{{ drug = "mycophenolate", dose = 2, stop = 200 }},
           {{ drug = "hydroxychloroquine", dose = 400 }},
           {{ drug = "rituximab", time = 150 }},
           {{ drug = "car_t", time = 250 }}]

[cohort]
size = 20
include = "{(ROOT / "configs" / "cohort_calibrated.toml").as_posix()}"
"""
TOL = 1e-5
#: Values below this fraction of a state's largest value are compared absolutely: an exponential
#: decay (the MSC pool halves daily) far below the solvers' absolute tolerances has no relative
#: accuracy in either solver.
FLOOR = 1e-6
#: Absolute tolerances: at 1e-11 (engine) and 1e-12 (roadrunner) each solver alone is off by about
#: 5e-6 relative where msc ~ 1e-6 (its error is ~atol there), so the floor above would fail for
#: tolerance, not encoding, reasons; two orders tighter leaves a wide margin (docs/sbml.md).
ATOL_ENGINE, ATOL_RR = 1e-13, 1e-14


@pytest.fixture(scope="module")
def config_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("sbml") / "roundtrip.toml"
    path.write_text(CONFIG)
    return path


@pytest.fixture(scope="module")
def roadrunner():
    pytest.importorskip("antimony")
    pytest.importorskip("libsbml")
    return pytest.importorskip("roadrunner")


def patients():
    """The reference patient and two random cohort patients."""
    return [None, *np.random.default_rng(2024).choice(20, 2, replace=False).tolist()]


def relative_error(y_rr, y, t, event_times):
    keep = ~np.isin(t, event_times)
    floor = FLOOR * np.abs(y).max(axis=0)
    denom = np.maximum(np.maximum(np.abs(y), floor), 1e-300)
    return (np.abs(y_rr - y) / denom)[keep].max(axis=0)


def test_roundtrip_matches_engine(roadrunner, config_path):
    cfg = load_config(config_path)
    t = np.arange(HORIZON + 1.0)
    runs = [(sc, pt) for pt in patients() for sc in cfg.scenarios]
    params, ivs, exports = [], [], []
    for sc, pt in runs:
        p, iv, title = sbml.config_patient(cfg, sc, pt)
        params.append(p)
        ivs.append(iv)
        exports.append(sbml.export_model(sbml.patient_model(p, iv, title)))
    sol, _ = run_batch(np.stack(params), ivs, t,
                       solver=SolverOptions(method="rodas4", rtol=1e-9, atol=ATOL_ENGINE,
                                            max_steps=1_000_000))
    assert (sol.status == 0).all()
    worst = np.zeros(m.N_STATES)
    for k, ex in enumerate(exports):
        r = roadrunner.RoadRunner(ex.sbml)
        integ = r.getIntegrator()
        integ.relative_tolerance = 1e-10
        integ.absolute_tolerance = ATOL_RR
        r.timeCourseSelections = ["time", *m.STATE_NAMES]
        res = np.asarray(r.simulate(0, HORIZON, HORIZON + 1))
        np.testing.assert_allclose(res[:, 0], t, rtol=0, atol=1e-9)
        event_times = [e[0] for e in ex.model.events if e[0] > 0]
        err = relative_error(res[:, 1:], sol.y[k], t, event_times)
        worst = np.maximum(worst, err)
        bad = {n: f"{e:.2e}" for n, e in zip(m.STATE_NAMES, err) if not e <= TOL}
        assert not bad, f"{ex.model.title}: {bad}"
    print("\nmax relative error per state: "
          + ", ".join(f"{n} {e:.1e}" for n, e in zip(m.STATE_NAMES, worst)))
    # The dosing was exercised: a second MSC dose and the glucocorticoid taper are events.
    assert any("msc = msc + " in ex.antimony for ex in exports)
    assert any("gc_dose = 7.5" in ex.antimony for ex in exports)


def test_sbml_is_consistent_with_explicit_event_attributes(roadrunner, config_path):
    import antimony
    import libsbml

    cfg = load_config(config_path)
    ex = sbml.export_config(cfg, "gc_taper_uc_msc", patient=3)
    doc = libsbml.readSBMLFromString(ex.sbml)
    assert (doc.getLevel(), doc.getVersion()) == (3, 2)
    doc.checkConsistency()
    errors = [doc.getError(i) for i in range(doc.getNumErrors())
              if doc.getError(i).getSeverity() >= libsbml.LIBSBML_SEV_ERROR]
    assert errors == []
    model = doc.getModel()
    assert model.getNumSpecies() == 0 and model.getNumRules() >= m.N_STATES
    for s in m.STATES:  # states: non-constant parameters with a rate rule and a unit
        par = model.getParameter(s.name)
        assert not par.getConstant() and par.isSetUnits()
        assert model.getRateRuleByVariable(s.name) is not None
    for p in m.PARAMETERS:
        assert model.getParameter(p.name).getConstant()
    days = sorted({e[0] for e in ex.model.events if e[0] > 0})
    assert model.getNumEvents() == len(days) > 10
    priorities = []
    for i in range(model.getNumEvents()):
        ev = model.getEvent(i)
        assert ev.getUseValuesFromTriggerTime()
        assert ev.getTrigger().getPersistent() and ev.getTrigger().getInitialValue()
        assert libsbml.formulaToL3String(ev.getTrigger().getMath()).startswith("time >= ")
        priorities.append(float(libsbml.formulaToL3String(ev.getPriority().getMath())))
    assert priorities == sorted(priorities, reverse=True) and len(set(priorities)) == len(days)
    # The MSC dose on day 3 falls on a pulse day: one event assigns both states.
    assert "dose_1: at time >= 3.0" in ex.antimony and "msc = msc + 2.0" in ex.antimony
    # Readable round trip back to Antimony.
    antimony.clearPreviousLoads()
    assert antimony.loadSBMLString(ex.sbml) >= 0
    assert "b_gc' = " in antimony.getAntimonyString(None)


def test_lineage_rows_come_from_the_transitions_table():
    rows = sbml.lineage_rows()
    assert rows["llpc"] == "r_gc_to_llpc * b_gc - r_llpc_death * llpc"
    assert rows["b_naive"].startswith("naive_turnover - ") and "- r_activation * b_naive" in \
        rows["b_naive"]
    assert set(rows) == {m.STATE_NAMES[i] for i in m.LINEAGE_SOURCES}


def cli(*args, pre=""):
    code = (f"import sys; {pre}from immunosim.cli import main; "
            f"sys.exit(main({[str(a) for a in args]!r}))")
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300)


def test_cli_writes_sbml_and_antimony(roadrunner, config_path, tmp_path):
    import libsbml

    out, ant = tmp_path / "model.xml", tmp_path / "model.ant"
    r = cli("export-sbml", config_path, "-o", out, "--scenario", "msc_day0_day60",
            "--patient", 1, "--antimony", ant)
    assert r.returncode == 0, r.stderr
    assert f"wrote {out}" in r.stdout and out.exists() and ant.exists()
    doc = libsbml.readSBMLFromFile(str(out))
    assert doc.getNumErrors() == 0 and doc.getModel().getNumEvents() == 1
    assert "cohort patient 1" in ant.read_text()
    bad = cli("export-sbml", config_path, "-o", out, "--scenario", "nope")
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    errors = [ln for ln in bad.stderr.splitlines() if not ln.startswith("immunosim: warning:")]
    assert len(errors) == 1, bad.stderr  # one line (config warnings aside)
    assert "--scenario: unknown scenario 'nope'; expected one of msc_day0" in bad.stderr


def test_missing_extra_is_one_line_naming_it(config_path, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "antimony", None)
    with pytest.raises(sbml.SBMLExportError, match=r"immunosim\[sbml\]"):
        sbml.export_config(load_config(config_path))
    r = cli("export-sbml", config_path, "-o", tmp_path / "m.xml",
            pre="sys.modules['antimony'] = None; ")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    errors = [ln for ln in r.stderr.splitlines() if not ln.startswith("immunosim: warning:")]
    assert len(errors) == 1 and errors[0].startswith(
        "immunosim: error: SBML export needs the optional extra 'sbml'"), r.stderr
    assert not (tmp_path / "m.xml").exists()
