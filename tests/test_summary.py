"""The run/sweep summary: every printed number equals the one recomputed from the result."""

from __future__ import annotations

import itertools
import re

import numpy as np
import pytest

from immunosim.experiments.config import SweepConfig, load_config
from immunosim.experiments.summary import SelectError, parse_select, summary_table
from immunosim.experiments.sweep import sweep
from tests.conftest import SMALL_CONFIG


@pytest.fixture(scope="module")
def result(tmp_path_factory):
    p = tmp_path_factory.mktemp("summary") / "small.toml"
    p.write_text(SMALL_CONFIG)
    return sweep(load_config(p), progress=False)


def parse(text: str) -> dict[str, dict[str, dict[str, str]]]:
    """``{table title: {column: {row label: cell}}}`` ('' for a table without a title): cells
    are separated by two spaces or more, the notes after the last table are left out."""
    tables = {}
    for block in text.split("\n\n"):
        lines = block.splitlines()
        title = ""
        if lines and lines[0].startswith("scenario "):
            title, lines = lines[0], lines[1:]
        if not lines or not lines[0].startswith(" "):
            continue
        header = re.split(r"\s{2,}", lines[0].strip())
        rows = {}
        for ln in lines[1:]:
            parts = re.split(r"\s{2,}", ln.strip())
            if len(parts) != len(header) + 1:
                break
            rows[parts[0]] = parts[1:]
        tables[title] = {c: {r: v[i] for r, v in rows.items()} for i, c in enumerate(header)}
    return tables


def row(cells: dict[str, str], start: str) -> str:
    (hit,) = [v for k, v in cells.items() if k.startswith(start)]
    return hit


def check_share(cell: str, k: int, n: int) -> None:
    if n == 0:
        assert cell == "-"
        return
    m = re.fullmatch(r"(\d+)%(?: \[\d+-\d+\])? \((\d+)/(\d+)\)", cell)
    assert m, cell
    assert (int(m[2]), int(m[3])) == (k, n), cell
    assert int(m[1]) == round(100 * k / n), cell


def check_median_iqr(cell: str, x: np.ndarray) -> None:
    if x.size == 0:
        assert cell == "-"
        return
    m = re.fullmatch(r"(\S+) \[(\S+)-(\S+)\]", cell)
    assert m, cell
    q1, med, q3 = np.percentile(x, [25, 50, 75])
    np.testing.assert_allclose([float(m[1]), float(m[2]), float(m[3])], [med, q1, q3],
                               rtol=1e-3)


def check_column(cells: dict[str, str], d) -> None:
    """The column's numbers recomputed with numpy from the runs ``d`` (every dim pooled)."""
    v = {k: np.asarray(d[k].values).ravel() for k in ("status", "remission", "time_to_remission",
                                                       "response", "flare", "relapse", "death")}
    ok = v["status"] == 0
    rem, resp = v["remission"] & ok, v["response"] & ok
    assert cells["runs: successful/all"] == f"{ok.sum()}/{ok.size}"
    check_share(row(cells, "sustained remission by 240 d"), rem.sum(), ok.sum())
    check_median_iqr(row(cells, "time to remission"), v["time_to_remission"][rem])
    check_share(row(cells, "relapse among remitters"), (v["relapse"] & rem).sum(), rem.sum())
    check_share(row(cells, "SRI-4"), resp.sum(), ok.sum())
    check_share(row(cells, "flare among responders"), (v["flare"] & resp).sum(), resp.sum())
    check_share(row(cells, "death"), (v["death"] & ok).sum(), ok.sum())
    act = np.asarray(d.activity_at.transpose(..., "landmark").values)
    act = act.reshape(-1, act.shape[-1])[ok]
    for k, day in enumerate(d.landmark.values):
        check_median_iqr(row(cells, f"activity at {day:g} d"), act[:, k])


def test_sweep_summary_per_scenario_and_point(result):
    """Catches: a point column showing another point's runs (order of the axes), axes that do
    not set the untreated scenario not held (24 copies of 6 runs), a mean for the median, a
    share over all runs instead of status 0 / remitters / responders."""
    ds = result
    t = parse(summary_table(ds))
    untreated = next(v for k, v in t.items() if k.startswith("scenario untreated"))
    assert list(untreated) == ["all"]
    check_column(untreated["all"], ds.sel(scenario="untreated").isel(amount=0, n_infusions=0))
    msc = t["scenario msc"]
    assert len(msc) == 5  # all points, then each of the 4
    d = ds.sel(scenario="msc")
    check_column(msc["all 4 points"], d)
    for col, (i, j) in zip(list(msc)[1:], itertools.product(range(2), range(2))):
        check_column(msc[col], d.isel(amount=i, n_infusions=j))
        assert float(msc[col]["amount (cells/kg)"]) == float(ds.amount[i])
        assert int(msc[col]["n_infusions"]) == int(ds.n_infusions[j])
    # the shares compared are not all 0 or 100%
    assert d.remission.any() and not d.remission.all()


def test_best_and_worst_points(result):
    msc = parse(summary_table(result, max_points=2))["scenario msc"]
    assert list(msc) == ["all 4 points", "best remission", "worst remission"]
    d = result.sel(scenario="msc")
    share = (d.remission & (d.status == 0)).sum("patient") / (d.status == 0).sum("patient")
    flat = share.values.ravel()
    for col, i in (("best remission", int(np.argmax(flat))),
                   ("worst remission", int(np.argmin(flat)))):
        a, n = np.unravel_index(i, share.shape)
        check_column(msc[col], d.isel(amount=a, n_infusions=n))
    assert flat.max() > flat.min()


def test_select_points_and_scenarios(result):
    t = parse(summary_table(result, parse_select(["amount=3e6", "scenario=msc"])))
    assert list(t) == ["scenario msc"]
    msc = t["scenario msc"]
    assert list(msc) == ["all 2 points", "point 1", "point 2"]
    d = result.sel(scenario="msc", amount=3e6)
    check_column(msc["all 2 points"], d)
    check_column(msc["point 2"], d.sel(n_infusions=2))
    with pytest.raises(SelectError, match=r"^--select: 'dose_amount' is not a scenario or "
                                          r"sweep axis of the result; valid: scenario, amount"):
        summary_table(result, {"dose_amount": ["1"]})
    with pytest.raises(SelectError, match=r"^--select: amount = 1e6 is not in the result; "
                                          r"valid: 3e5, 3e6$"):
        summary_table(result, {"amount": ["1e6"]})


def test_parse_select():
    assert parse_select(["amount=1e6", "interval=30,90", "amount=1e7"]) == {
        "amount": ["1e6", "1e7"], "interval": ["30", "90"]}
    for bad in ("amount", "=3", "amount="):
        with pytest.raises(SelectError, match="expected AXIS=VALUE"):
            parse_select([bad])


def test_without_axes_the_scenarios_are_the_columns(small_config_path):
    plain = load_config(small_config_path).model_copy(update={"sweep": SweepConfig()})
    ds = sweep(plain, progress=False)
    t = parse(summary_table(ds))
    assert list(t) == [""] and list(t[""]) == ["untreated", "msc"]
    for s in ("untreated", "msc"):
        check_column(t[""][s], ds.sel(scenario=s))
