"""Dosing-record and population tables (experiments/tables.py) in configs and sweeps."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from immunosim.experiments.config import ConfigError, ConfigWarning, load_config, parse_config
from immunosim.experiments.tables import dose_records, read_doses, read_population
from immunosim.model import sle_msc as m

# Every kind of record once, on different states or days (so no two jumps on one state share a
# day and the sum order of the engine cannot differ between the two scenarios).
TOML_RECORDS = """
msc = [{ amount = 1e6, time = 0, interval = 30, count = 2, source = "uc" }]
therapy = [
  { drug = "glucocorticoid", start = 0, pulse_mg = 500, pulse_days = 3 },
  { drug = "glucocorticoid", start = 3, oral_mg = 40, stop = 50 },
  { drug = "glucocorticoid", start = 50, oral_mg = 10 },
  { drug = "mycophenolate", dose = 2.0, start = 3, stop = 60 },
  { drug = "hydroxychloroquine", dose = 400, start = 1 },
  { drug = "cyclophosphamide", dose = 10, time = 5, interval = 30, count = 2 },
  { drug = "rituximab", dose = 1000, time = 10, interval = 14, count = 2 },
]
"""
DOSES = """ID,TIME,AMT,II,ADDL,EVID,KIND,SOURCE
.,0,500,1,2,1,methylprednisolone,
.,3,40,1,46,1,glucocorticoid,
.,50,10,1,999,1,glucocorticoid,
.,3,1,0.5,113,1,mycophenolate,
.,1,400,1,999,1,hydroxychloroquine,
.,5,10,30,1,1,cyclophosphamide,
.,10,1000,14,1,1,rituximab,
.,0,1e6,30,1,1,msc,uc
"""
PATIENTS = """ID,activation_rate,msc_response,age,sex
P1,0.06,1.2,34,F
P2,0.09,0.4,27,M
P3,0.05,2.0,45,F
"""
HEAD = """
seed = 3
horizon = 120
[outcomes]
landmarks = [60, 120]
"""
COHORT = """
[cohort]
size = 3
[cohort.parameters.activation_rate]
distribution = "lognormal"
median = 0.06
cv = 0.5
"""


def write(tmp_path, config: str, doses: str | None = DOSES, patients: str | None = None):
    if doses is not None:
        (tmp_path / "doses.csv").write_text(doses)
    if patients is not None:
        (tmp_path / "patients.csv").write_text(patients)
    path = tmp_path / "c.toml"
    path.write_text(config)
    return path


def one_line_error(path) -> str:
    with pytest.raises(ConfigError) as e, warnings.catch_warnings():
        warnings.simplefilter("ignore", ConfigWarning)
        load_config(path)
    msg = str(e.value)
    assert "\n" not in msg
    return msg


# --- dosing tables: the same result as the TOML records ----------------------------------------


def test_dose_table_gives_the_records_of_the_toml_scenario(tmp_path):
    cfg = load_config(write(tmp_path, HEAD + "[scenarios.toml]\n" + TOML_RECORDS
                           + '[scenarios.table]\ndoses = "doses.csv"\n' + COHORT))
    toml, table = cfg.scenarios["toml"], cfg.scenarios["table"]
    key = lambda r: (r.drug, r.model_dump_json())  # noqa: E731
    assert sorted(table.therapy, key=key) == sorted(toml.therapy, key=key)
    assert table.msc_list() == toml.msc_list()
    assert table.doses.file == "doses.csv" and table.doses.records == 8


def test_dose_table_sweep_equals_toml_sweep(tmp_path):
    """A tiny sweep, with an axis on the MSC amount that reaches the table's MSC record too."""
    from immunosim.experiments.sweep import sweep

    axis = '[sweep.axes.amount]\ntarget = "msc.amount"\nvalues = [3e5, 3e6]\n'
    cfg = load_config(write(tmp_path, HEAD + "[scenarios.toml]\n" + TOML_RECORDS
                           + '[scenarios.table]\ndoses = "doses.csv"\n' + axis + COHORT))
    ds = sweep(cfg, progress=False)
    a, b = ds.sel(scenario="toml", drop=True), ds.sel(scenario="table", drop=True)
    xr.testing.assert_identical(a, b)
    assert float(a.remission.sum() + a.response.sum()) > 0  # the runs did something


def test_dataframe_in_place_of_the_file(tmp_path):
    from io import StringIO

    df = pd.read_csv(StringIO(DOSES))
    data = {"horizon": 120, "scenarios": {"t": {"doses": df}}}
    from_df = parse_config(data)
    from_file = load_config(write(tmp_path, 'horizon = 120\n[scenarios.t]\ndoses = "doses.csv"'))
    assert from_df.scenarios["t"].therapy == from_file.scenarios["t"].therapy
    assert from_df.scenarios["t"].doses.file == "DataFrame"


def test_dataframe_missing_values_are_blank():
    df = pd.DataFrame({"TIME": [0, 30], "AMT": [1e6, 2e6], "II": pd.array([None, 7], "Int64"),
                       "KIND": ["msc", "msc"]})
    assert read_doses(df)["II"].tolist() == [0.0, 7.0]  # pd.NA is a blank cell


def test_read_doses_and_records():
    from io import StringIO

    df = read_doses(pd.read_csv(StringIO(DOSES)))
    assert list(df.columns) == ["TIME", "AMT", "II", "ADDL", "KIND", "SOURCE"]
    assert df.loc[8, "SOURCE"] == "uc" and df.loc[8, "ADDL"] == 1
    recs = dose_records(df, horizon=120)
    assert recs["msc"] == [{"amount": 1e6, "time": 0.0, "interval": 30.0, "count": 2,
                            "source": "uc"}]
    mmf = [r for r in recs["therapy"] if r["drug"] == "mycophenolate"]
    assert mmf == [{"drug": "mycophenolate", "start": 3.0, "dose": 2.0, "stop": 60.0}]
    hcq = [r for r in recs["therapy"] if r["drug"] == "hydroxychloroquine"]
    assert hcq[0]["stop"] is None  # past the horizon: kept to the end of the run
    assert dose_records(df)["therapy"][-1]["stop"] is not None  # no horizon: as written


def test_observation_rows_are_skipped_with_a_warning(tmp_path):
    text = "TIME,AMT,EVID,KIND,DV\n0,1e6,1,msc,.\n30,.,0,.,12\n"
    with pytest.warns(ConfigWarning, match=r"doses.csv: 1 observation row \(EVID 0\) skipped"):
        cfg = load_config(write(tmp_path, '[scenarios.t]\ndoses = "doses.csv"', text))
    assert [r.amount for r in cfg.scenarios["t"].msc_list()] == [1e6]


def test_hsct_and_car_t_rows(tmp_path):
    text = "TIME,AMT,KIND\n0,.,hsct\n200,1e6,car_t\n"
    sc = load_config(write(tmp_path, '[scenarios.t]\ndoses = "doses.csv"', text)).scenarios["t"]
    assert sc.hsct.time == 0 and sc.hsct.trm == 0.05  # the model's defaults
    assert sc.therapy[0].drug == "car_t" and sc.therapy[0].cells == 1e6


def test_unit_slip_warning_names_the_row(tmp_path):
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        load_config(write(tmp_path, '[scenarios.t]\ndoses = "doses.csv"',
                          "TIME,AMT,II,ADDL,KIND\n0,3.5,1,9,mycophenolate\n"))
    msgs = [str(x.message) for x in w if issubclass(x.category, ConfigWarning)]
    assert msgs == ["doses.csv, row 1 (line 2), column AMT: 3.5 g/d mycophenolate is above the "
                    "usual 3 g/d maximum (ALMS: 2-3 g/d)"]


BAD_DOSES = [
    ("AMT,KIND\n1e6,msc\n", "doses.csv, header (line 1): missing required column TIME"),
    ("TIME,AMT\n0,1e6\n", "doses.csv, header (line 1): missing required column KIND (or CMT)"),
    ("TIME,AMT,KIND\n0,1e6,msc\n3,lots,msc\n",
     "doses.csv, row 2 (line 3), column AMT: 'lots' is invalid: expected an amount >= 0"),
    ("TIME,AMT,KIND\n0,-5,msc\n",
     "doses.csv, row 1 (line 2), column AMT: -5 is invalid: expected an amount >= 0 (msc: "
     "cells/kg per infusion)"),
    ("TIME,AMT,KIND\n-1,1e6,msc\n", "doses.csv, row 1 (line 2), column TIME: -1 is invalid"),
    ("TIME,AMT,ADL,KIND\n0,1e6,1,msc\n",
     "doses.csv, header (line 1): unknown column 'ADL'; did you mean 'ADDL'?"),
    ("TIME,AMT,AMT,KIND\n0,1,1,msc\n",
     "doses.csv, header (line 1): column 'AMT' appears twice (columns 2 and 3)"),
    ("TIME,AMT,KIND\n0,40,prednisone\n",
     "doses.csv, row 1 (line 2), column KIND: 'prednisone' is not an intervention; expected "
     "one of msc, hsct"),
    ("TIME,AMT,CMT\n0,1e6,1\n", "CMT names the intervention here, not a compartment number"),
    ("TIME,AMT,KIND\n0,1e6,\n", "doses.csv, row 1 (line 2), column KIND: blank; expected"),
    ("ID,TIME,AMT,KIND\n.,0,1e6,msc\n3,0,1e6,msc\n",
     "doses.csv, row 2 (line 3), column ID: '3' keys a per-patient schedule, which is not "
     "supported"),
    ("TIME,AMT,EVID,KIND\n0,1e6,4,msc\n",
     "doses.csv, row 1 (line 2), column EVID: '4' is not supported: expected 1 (a dose) or 0"),
    ("TIME,AMT,RATE,KIND\n0,1e6,10,msc\n",
     "doses.csv, row 1 (line 2), column RATE: '10' is not supported (doses are instantaneous"),
    ("", "doses.csv: empty table"),
    ("TIME,AMT,KIND\n", "doses.csv: no dosing records"),
    ("TIME,AMT,II,ADDL,KIND\n0,1e6,0,2,msc\n",
     "doses.csv, row 1 (line 2), column II: 0 is invalid: ADDL = 2 additional doses need II > 0"),
    ("TIME,AMT,II,ADDL,KIND\n0,1e6,30,1.5,msc\n",
     "doses.csv, row 1 (line 2), column ADDL: 1.5 is invalid: expected a whole number"),
    ("TIME,AMT,II,ADDL,KIND\n0,1e6,30,1,msc\n300,1e6,30,3,msc\n",
     "doses.csv, row 2 (line 3), column ADDL: puts a msc dose at day 390, after the horizon "
     "(365 d)"),
    ("TIME,AMT,KIND\n400,1e6,msc\n", "row 1 (line 2), column TIME: puts a msc dose at day 400"),
    ("TIME,AMT,II,ADDL,KIND\n0,2,1,9,mycophenolate\n10,50,1,9,mycophenolate\n",
     "doses.csv, row 2 (line 3), column AMT: 50 is invalid for mycophenolate (dose: 50.0 is not "
     "a number in [0, 4] g/d)"),
    ("TIME,AMT,II,ADDL,KIND\n0,2,1,99,mycophenolate\n50,3,1,9,mycophenolate\n",
     "doses.csv, row 2 (line 3), column TIME: 50 is invalid: this mycophenolate course starts "
     "before the course of doses.csv, row 1 (line 2) ends (day 100)"),
    ("TIME,AMT,KIND\n0,2,mycophenolate\n",
     "doses.csv, row 1 (line 2), column II: 0 is invalid for mycophenolate: expected the dosing "
     "interval > 0 days"),
    ("TIME,AMT,II,ADDL,KIND\n0,500,2,2,methylprednisolone\n",
     "column II: 2 is invalid for methylprednisolone: pulses are on consecutive days"),
    ("TIME,AMT,KIND,SOURCE\n0,2,rituximab,uc\n",
     "doses.csv, row 1 (line 2), column SOURCE: 'uc' is invalid for rituximab"),
    ("TIME,AMT,KIND,SOURCE\n0,1e6,msc,adipose\n",
     "doses.csv, row 1 (line 2), column SOURCE: 'adipose' is invalid: expected 'bm'"),
    ("TIME,AMT,KIND\n0,200,hsct\n",
     "doses.csv, row 1 (line 2), column AMT: 200 is invalid for hsct: expected blank or '.'"),
    ("TIME,AMT,KIND\n0,.,hsct\n10,.,hsct\n", "doses.csv: 2 hsct rows; expected at most one"),
    ("TIME,AMT,KIND\n# a comment line\n\n0,1e6,msc\n3,x,msc\n",
     "doses.csv, row 2 (line 5), column AMT: 'x' is invalid"),  # comments and blanks: no rows
    ("TIME,AMT,KIND\n0,1e6,msc,9\n", "doses.csv, line 2: 4 cells; expected at most 3"),
    ("TIME,AMT,EVID,KIND\n0,1e6,0,.\n0,2e6,1,msc\n0,-1,1,msc\n",  # after a skipped row
     "doses.csv, row 3 (line 4), column AMT: -1 is invalid"),
    ("TIME,AMT,EVID,KIND,II,ADDL\n0,1e6,0,.,,\n0,1,1,mycophenolate,1,9\n5,1,1,mycophenolate,1,9\n",
     "doses.csv, row 3 (line 4), column TIME: 5 is invalid: this mycophenolate course starts "
     "before the course of doses.csv, row 2 (line 3) ends"),
]


@pytest.mark.parametrize("text,expected", BAD_DOSES, ids=[e[:40] for _, e in BAD_DOSES])
def test_bad_dose_tables_name_file_row_and_column(tmp_path, text, expected):
    path = write(tmp_path, 'horizon = 365\n[scenarios.t]\ndoses = "doses.csv"', text)
    assert expected in one_line_error(path)


def test_unreadable_dose_tables(tmp_path):
    path = write(tmp_path, '[scenarios.t]\ndoses = "missing.csv"', None)
    assert one_line_error(path).startswith("missing.csv: cannot read the table (")
    (tmp_path / "doses.csv").write_bytes(b"TIME,AMT,KIND\n0,\xff,msc\n")
    path.write_text('[scenarios.t]\ndoses = "doses.csv"')
    assert one_line_error(path).startswith("doses.csv: not UTF-8 text (byte 0xff")


def test_configs_without_tables_do_not_import_pandas(tmp_path):
    """Config loading stays light (no pandas) unless the config names a table."""
    import subprocess
    import sys

    write(tmp_path, "[scenarios.t]\nmsc = { amount = 1e6 }\n", None)
    code = ("import sys; from immunosim.experiments.config import load_config; "
            f"load_config({str(tmp_path / 'c.toml')!r}); print('pandas' in sys.modules)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.stdout.strip() == "False", r.stderr


def test_table_name_without_a_directory_is_refused():
    with pytest.raises(ConfigError, match="scenarios.t.doses: 'd.csv' needs a base directory"):
        parse_config({"scenarios": {"t": {"doses": "d.csv"}}})
    from immunosim.experiments.config import Config

    # never silently without it; Config.model_validate of a dict is parse_config (one line)
    with pytest.raises(ConfigError, match="scenarios.t.doses: 'd.csv' needs a base directory"):
        Config.model_validate({"scenarios": {"t": {"doses": "d.csv"}}})
    with pytest.raises(ConfigError, match="is a table to read"):  # pydantic's own path
        Config.model_validate({"scenarios": {"t": {"doses": "d.csv"}}}, strict=False)


def test_hsct_in_both_the_table_and_the_scenario(tmp_path):
    path = write(tmp_path, '[scenarios.t]\ndoses = "doses.csv"\nhsct = { time = 0 }',
                 "TIME,AMT,KIND\n0,.,hsct\n")
    assert "has an hsct row and the scenario has its own hsct" in one_line_error(path)


# --- population tables ---------------------------------------------------------------------------

POP_CONFIG = """
seed = 3
horizon = 120
[scenarios.msc]
msc = { amount = 1e6 }
[cohort]
table = "patients.csv"
[outcomes]
landmarks = [60, 120]
"""


def test_population_table_is_the_cohort(tmp_path):
    """Table values exactly in the sweep's parameters; the rest drawn; covariates as coords."""
    from immunosim.experiments.sweep import sweep

    text = POP_CONFIG + ('[cohort.parameters.reg_induction]\ndistribution = "lognormal"\n'
                         'median = 0.6\ncv = 0.5\n')
    cfg = load_config(write(tmp_path, text, None, PATIENTS))
    assert cfg.cohort.size == 3
    ds = sweep(cfg, progress=False)
    pp = ds.patient_parameters
    np.testing.assert_array_equal(pp.sel(parameter="activation_rate"), [0.06, 0.09, 0.05])
    np.testing.assert_array_equal(pp.sel(parameter="msc_response"), [1.2, 0.4, 2.0])
    reg = pp.sel(parameter="reg_induction").values
    assert len(set(reg)) == 3 and not np.any(reg == m.PARAMETERS["reg_induction"].default)
    default = m.PARAMETERS["secretion_pb"].default
    np.testing.assert_array_equal(pp.sel(parameter="secretion_pb"), [default] * 3)
    assert list(ds.patient_id.values) == ["P1", "P2", "P3"]
    assert list(ds.sex.values) == ["F", "M", "F"] and list(ds.age.values) == [34, 27, 45]
    by_sex = ds.remission.groupby("sex").mean()
    assert list(by_sex.sex.values) == ["F", "M"]


def test_population_covariates_survive_zarr(tmp_path):
    from immunosim.experiments.sweep import sweep

    cfg = load_config(write(tmp_path, POP_CONFIG, None, PATIENTS))
    out = sweep(cfg, tmp_path / "r.zarr", progress=False)
    with xr.open_zarr(out) as ds:
        assert list(ds.sex.values) == ["F", "M", "F"]
        assert list(ds.patient_id.values) == ["P1", "P2", "P3"]


def test_population_table_with_posterior_draws_repeats_its_patients(tmp_path):
    from immunosim.experiments.cohort import sample_cohort

    text = POP_CONFIG.replace('table = "patients.csv"', """table = "patients.csv"
posterior_draws = 2
[cohort.parameters.reg_induction]
distribution = "lognormal"
median = 0.6
cv = 0.5
[cohort.posterior]
parameters = ["reg_induction"]
median = [[0.5], [0.7]]
cv = [[0.4], [0.4]]""")
    cfg = load_config(write(tmp_path, text, None, PATIENTS))
    c = sample_cohort(cfg.cohort, m.PARAMETERS.defaults(), cfg.seed)
    assert c.size == 6 and list(c.ids) == ["P1", "P2", "P3"] * 2
    ar = c.params[:, m.PARAMETERS.index["activation_rate"]]
    np.testing.assert_array_equal(ar, [0.06, 0.09, 0.05] * 2)


def test_table_of_an_included_cohort_is_read_from_its_directory(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "patients.csv").write_text(PATIENTS)
    (tmp_path / "sub" / "cohort.toml").write_text('[cohort]\ntable = "patients.csv"\nsize = 9\n')
    path = write(tmp_path, '[scenarios.u]\n[cohort]\ninclude = "sub/cohort.toml"\n', None)
    assert "cohort.size: 9 is invalid: cohort.table 'patients.csv' has 3" in one_line_error(path)
    (tmp_path / "sub" / "cohort.toml").write_text('[cohort]\ntable = "patients.csv"\n')
    cohort = load_config(path).cohort
    assert cohort.table.ids == ["P1", "P2", "P3"] and cohort.size == 3
    # a local table replaces an included size
    (tmp_path / "sub" / "cohort.toml").write_text('[cohort]\nsize = 9\n')
    path.write_text('[scenarios.u]\n[cohort]\ninclude = "sub/cohort.toml"\n'
                    'table = "sub/patients.csv"\n')
    assert load_config(path).cohort.size == 3


def test_population_from_a_dataframe():
    df = pd.DataFrame({"activation_rate": [0.06, 0.07]}, index=pd.Index([10, 11], name="ID"))
    cfg = parse_config({"scenarios": {"u": {}}, "cohort": {"table": df}})
    assert cfg.cohort.table.ids == ["10", "11"] and cfg.cohort.size == 2
    assert cfg.cohort.table.file == "DataFrame"
    back = read_population(df)
    assert back.index.tolist() == ["10", "11"]
    assert back.attrs["parameters"] == ["activation_rate"] and back.attrs["covariates"] == []


def test_editing_a_table_changes_the_digest_and_refuses_resume(tmp_path):
    from immunosim.experiments.sweep import SweepError, ZarrWriter, config_digest, plan, sweep

    path = write(tmp_path, POP_CONFIG.replace("[cohort]", '[scenarios.t]\ndoses = "doses.csv"'
                                              "\n[cohort]"),
                 "TIME,AMT,KIND\n0,1e6,msc\n", PATIENTS)
    cfg = load_config(path)
    ZarrWriter(plan(cfg), tmp_path / "r.zarr", "zarr", resume=False)  # leaves r.zarr.partial
    d0 = config_digest(cfg)
    (tmp_path / "patients.csv").write_text(PATIENTS.replace("0.09", "0.1"))
    d1 = config_digest(load_config(path))
    (tmp_path / "patients.csv").write_text(PATIENTS)
    (tmp_path / "doses.csv").write_text("TIME,AMT,KIND\n0,2e6,msc\n")
    d2 = config_digest(load_config(path))
    assert len({d0, d1, d2}) == 3
    with pytest.raises(SweepError, match="different config"):
        sweep(load_config(path), tmp_path / "r.zarr", resume=True, progress=False)


BAD_PATIENTS = [
    ("activation_rate\n0.06\n",
     "patients.csv, header (line 1): missing required column ID"),
    ("ID,activation_rate\nP1,0.06\nP2,0.07\nP1,0.08\n",
     "patients.csv, row 3 (line 4), column ID: 'P1' is a duplicate of row 1; expected one row "
     "per patient"),
    ("ID,activation_rate\nP1,0.06\nP2,high\n",
     "patients.csv, row 2 (line 3), column activation_rate: 'high' is invalid: expected a "
     "number (activation_rate, 1/d)"),
    ("ID,msc_half_life\nP1,0\n",
     "patients.csv, row 1 (line 2), column msc_half_life: 0 is invalid: expected > 0 (d, the "
     "hard domain of msc_half_life"),
    ("ID,activaton_rate\nP1,0.06\n",
     "patients.csv, header (line 1), column activaton_rate: unknown parameter 'activaton_rate'; "
     "did you mean 'activation_rate'?"),
    ("ID,activation_rate\n", "patients.csv: no patients"),
    ("", "patients.csv: empty table"),
    ("ID,activation_rate\nP1,\n",
     "patients.csv, row 1 (line 2), column activation_rate: blank; expected a value"),
    ("ID,activation_rate\n,0.06\n", "patients.csv, row 1 (line 2), column ID: blank"),
    ("ID,status\nP1,1\n",
     "patients.csv, header (line 1), column status: 'status' is a name of the result itself"),
]


@pytest.mark.parametrize("text,expected", BAD_PATIENTS, ids=[e[:40] for _, e in BAD_PATIENTS])
def test_bad_population_tables_name_file_row_and_column(tmp_path, text, expected):
    assert expected in one_line_error(write(tmp_path, POP_CONFIG, None, text))


@pytest.mark.parametrize("extra,expected", [
    ("size = 5", "cohort.size: 5 is invalid: cohort.table 'patients.csv' has 3 patients"),
    ('[cohort.parameters.activation_rate]\ndistribution = "lognormal"\nmedian = 0.06\ncv = 0.5',
     "cohort.parameters.activation_rate: also a column of cohort.table 'patients.csv'"),
    ('covariates = ["age", "weight"]',
     "patients.csv, header (line 1): no column 'weight', listed in cohort.covariates"),
    ('covariates = ["age"]',
     "patients.csv, header (line 1), column sex: unknown parameter 'sex'; expected a model "
     "parameter name (immunosim info) or a column listed in cohort.covariates"),
    ('covariates = ["age", "sex", "msc_response"]',
     "patients.csv, header (line 1), column msc_response: 'msc_response' is a model parameter, "
     "listed in cohort.covariates"),
])
def test_cohort_keys_that_contradict_the_table(tmp_path, extra, expected):
    text = POP_CONFIG.replace('table = "patients.csv"', 'table = "patients.csv"\n' + extra)
    assert expected in one_line_error(write(tmp_path, text, None, PATIENTS))


def test_covariates_list_allows_a_parameter_like_name(tmp_path):
    text = "ID,activation_rate,proteinuria_maxi\nP1,0.06,3.5\n"
    path = write(tmp_path, POP_CONFIG, None, text)
    assert "did you mean 'proteinuria_max'?" in one_line_error(path)
    path.write_text(POP_CONFIG.replace('table = "patients.csv"',
                                       'table = "patients.csv"\ncovariates = ["proteinuria_maxi"]'))
    assert load_config(path).cohort.table.covariates == {"proteinuria_maxi": [3.5]}


def test_covariate_named_like_an_axis_is_refused(tmp_path):
    text = POP_CONFIG + '[sweep.axes.age]\ntarget = "msc.amount"\nvalues = [1e6]\n'
    assert "column age: 'age' is also a sweep axis name" in one_line_error(
        write(tmp_path, text, None, PATIENTS))


def test_implausible_table_value_warns_with_row_and_column(tmp_path):
    text = "ID,activation_rate\nP1,0.06\nP2,0.9\n"
    with pytest.warns(ConfigWarning, match=r"patients.csv, row 2 \(line 3\), column "
                                           r"activation_rate: 0.9 is outside the plausible"):
        load_config(write(tmp_path, POP_CONFIG, None, text))


def test_patient_without_diseased_state_names_the_row(tmp_path):
    from immunosim.experiments.sweep import plan

    cfg = load_config(write(tmp_path, POP_CONFIG, None, "ID,activation_rate\nA,0.06\nB,0.01\n"))
    with pytest.raises(ConfigError, match=r"cohort.table: patients.csv, row 2 \(ID 'B'\): no "
                                          "untreated diseased steady state"):
        plan(cfg)


def test_cli_exit_2_with_one_line(tmp_path, capsys):
    from immunosim.cli import main

    path = write(tmp_path, '[scenarios.t]\ndoses = "doses.csv"', "TIME,AMT,KIND\n0,-1,msc\n")
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert "doses.csv, row 1 (line 2), column AMT: -1 is invalid" in err
