"""plotting/_select.py: held values (--select) and patient subgroups (--subgroup), from the
parsing functions to the titles of the figures and the CLI."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from immunosim.plotting import (
    PlotError,
    km_curves,
    match_index,
    parse_condition,
    parse_select,
    plot_result,
    select_subgroup,
)
from immunosim.plotting._select import Condition, resolve_select
from tests.test_plotting import fake_result

PARAMS = ["activation_rate", "reg_induction"]


def fake_cohort_result(n_patients: int = 40) -> xr.Dataset:
    """:func:`fake_result` with patient parameters, a text covariate and a model digest; the
    amount axis is log-spaced like the main job's (3.162e5, not 3.2e5)."""
    ds = fake_result(n_patients=n_patients).isel(amount=[0, 1, 2])
    ds = ds.assign_coords(amount=("amount", np.logspace(5, 6, 3), ds.amount.attrs))
    rng = np.random.default_rng(3)
    pp = np.column_stack([rng.lognormal(np.log(0.06), 0.5, n_patients),
                          rng.lognormal(np.log(0.6), 0.5, n_patients)])
    sex = np.where(np.arange(n_patients) % 3 == 0, "F", "M")
    return ds.assign(patient_parameters=(("patient", "parameter"), pp)).assign_coords(
        parameter=PARAMS, sex=("patient", sex)).assign_attrs(model_digest="x")


# --- held values ----------------------------------------------------------------------------------


def test_parse_select_reads_dim_equals_value():
    assert parse_select(["amount=1e6", " first_day = 91 "]) == {"amount": "1e6",
                                                                 "first_day": "91"}
    assert parse_select({"amount": 1e6}) == {"amount": 1e6}
    with pytest.raises(PlotError, match=r"select: 'amount' is not DIM=VALUE \(e.g. amount=1e6\)"):
        parse_select(["amount"])
    with pytest.raises(PlotError, match="select: amount given twice"):
        parse_select(["amount=1", "amount=2"])


def test_match_index_nearest_for_floats_exact_for_names_and_integers():
    ds = fake_cohort_result().assign_coords(n_infusions=("count", [1, 2]))
    ds = ds.swap_dims(count="n_infusions")
    # amount 1e5, 3.162e5, 1e6: figures print 3.2e5, which must select it (1.2% away)
    assert match_index(ds, "amount", "3.2e5") == 1
    assert match_index(ds, "amount", 1e6) == 2
    assert match_index(ds, "first_day", "91") == 1
    assert match_index(ds, "scenario", "msc") == 0
    assert match_index(ds, "n_infusions", "2") == 1
    with pytest.raises(PlotError) as e:
        match_index(ds, "amount", "2e5")  # 1e5 is nearest, 50% away: not a match
    assert str(e.value) == ("select: amount = 2e5 is not in the result (nearest 1e5, "
                            "tolerance 5%); available: 1e5, 3.2e5, 1e6")
    with pytest.raises(PlotError, match="integers match exactly"):
        match_index(ds, "n_infusions", "1.5")
    with pytest.raises(PlotError, match="scenario = 'placebo' is not in the result; "
                                        "available: msc"):
        match_index(ds, "scenario", "placebo")
    with pytest.raises(PlotError, match="'dose' is not a scenario or sweep axis"):
        match_index(ds, "dose", 1)
    assert resolve_select(ds, {"amount": "3.2e5"}) == {"amount": pytest.approx(10 ** 5.5)}


# --- subgroups ------------------------------------------------------------------------------------


def test_parse_condition_forms_and_errors():
    assert parse_condition("activation_rate>q75") == Condition("activation_rate", ">",
                                                              quantile=0.75)
    assert parse_condition(" reg_induction <= 0.5 ") == Condition("reg_induction", "<=", 0.5)
    assert parse_condition("sex==F") == Condition("sex", "==", "F")
    for bad in ("activation_rate", "activation_rate=>1", "x>q101", "x>high"):
        with pytest.raises(PlotError, match="subgroup: ") as e:
            parse_condition(bad)
        assert "\n" not in str(e.value)


def test_select_subgroup_keeps_the_patients_meeting_every_condition():
    ds = fake_cohort_result()
    rate = ds.patient_parameters.values[:, 0]
    q75 = np.quantile(rate, 0.75)
    sub = select_subgroup(ds, "activation_rate>q75")
    np.testing.assert_array_equal(sub.patient.values, np.nonzero(rate > q75)[0])
    assert sub.attrs["subgroup"] == (f"subgroup activation_rate > {q75:.3g} 1/d (q75): "
                                     f"{sub.sizes['patient']} of 40 patients")
    both = select_subgroup(ds, ["activation_rate>q50", "sex==F"])
    expected = (rate > np.median(rate)) & (ds.sex.values == "F")
    np.testing.assert_array_equal(both.patient.values, np.nonzero(expected)[0])
    assert select_subgroup(ds, None) is ds
    with pytest.raises(PlotError, match=r"'age' is not a patient parameter or covariate of the "
                                        r"result; available: sex, activation_rate, "
                                        r"reg_induction"):
        select_subgroup(ds, "age>50")
    with pytest.raises(PlotError, match="no patient has activation_rate > 10"):
        select_subgroup(ds, "activation_rate>10")
    with pytest.raises(PlotError, match="sex holds names"):
        select_subgroup(ds, "sex>q50")


def test_figures_of_a_subgroup_say_so_with_n(tmp_path):
    ds = fake_cohort_result()
    rate = ds.patient_parameters.values[:, 0]
    k = int((rate > np.quantile(rate, 0.75)).sum())
    written = plot_result(ds, tmp_path, figures=["survival", "dose_timing_map"],
                          formats=["png"], subgroup="activation_rate>q75",
                          select={"amount": "3.2e5", "first_day": 91})
    index = (tmp_path / "index.md").read_text()
    held = "held at MSC amount = 3.2e5 cells/kg, first infusion = 91 d"
    for stem in ("survival__remission", "dose_timing__remission_map"):
        caption = index.split(f"## {stem}", 1)[1].split("\n## ", 1)[0]
        assert f": {k} of 40 patients" in caption
    assert index.count(held) == 5  # both curves and the three maps (count x interval)
    assert len(written) == 6
    # the data behind the curves is the subgroup's: k patients at the held values
    sub = select_subgroup(ds, "activation_rate>q75")
    curves = km_curves(sub, "remission", select={"amount": 10 ** 5.5, "first_day": 91})
    ok = sub.status.sel(first_day=91).isel(amount=1, interval=0).values[0] == 0
    assert curves["1"].n == ok[0].sum() <= k


def test_draw_figures_title_carries_subgroup_and_held_values():
    from immunosim.plotting import draw_figures

    ds = fake_cohort_result()
    drawn, _ = draw_figures(ds, ["waterfall"], subgroup=["reg_induction<q50"],
                            select=["amount=1e6"])
    title = " ".join(drawn[0][1].figure.get_suptitle().split())
    assert "subgroup reg_induction <" in title and "(q50): 20 of 40 patients" in title
    assert "held at MSC amount = 1e6 cells/kg" in title


# --- CLI ------------------------------------------------------------------------------------------


def test_cli_select_and_subgroup(tmp_path, capsys):
    from immunosim.cli import main

    path = tmp_path / "r.nc"
    fake_cohort_result().to_netcdf(path)
    out = tmp_path / "figs"
    code = main(["plot", str(path), "-o", str(out), "--figures", "waterfall", "--format", "png",
                 "--select", "amount=1e6", "--select", "first_day=91",
                 "--subgroup", "activation_rate>q75"])
    assert code == 0, capsys.readouterr().err
    index = (out / "index.md").read_text()
    assert "held at MSC amount = 1e6 cells/kg, first infusion = 91 d" in index
    assert "subgroup activation_rate >" in index and ": 10 of 40 patients" in index
    capsys.readouterr()
    code = main(["plot", str(path), "-o", str(out), "--select", "amount=2e6"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1
    assert "select: amount = 2e6 is not in the result" in err
    assert "available: 1e5, 3.2e5, 1e6" in err
    code = main(["plot", str(path), "-o", str(out), "--subgroup", "activation_rate>>1"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1
    assert err.startswith("immunosim: error: subgroup: 'activation_rate>>1'")
    code = main(["plot", str(path), "-o", str(out), "--subgroup", "activation_rate~1"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "is not NAME OP VALUE" in err
