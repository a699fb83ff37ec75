"""``immunosim report``: the HTML page of a sweep result, checked as text and in a real browser
(headless Chromium: the rendered DOM holds the summary's tables and every image decodes)."""

from __future__ import annotations

import html
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

from immunosim.cli import main
from immunosim.experiments.results import open_result
from immunosim.experiments.summary import summary_tables
from immunosim.plotting import draw_figures, select_subgroup
from immunosim.reporting.report import ReportError, render_report, write_report
from tests.conftest import SMALL_CONFIG

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                  "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync"]
#: Added to a copy of the report for the browser test: after the page has loaded, record on
#: <body> how many images decoded (naturalWidth > 0) out of how many there are.
IMAGE_CHECK = ("<script>window.addEventListener('load', () => { const im = [...document.images];"
               " document.body.dataset.imagesDecoded = im.filter(i => i.complete && "
               "i.naturalWidth > 0).length + '/' + im.length; });</script>")


@pytest.fixture(scope="module")
def small_result(tmp_path_factory):
    """The SMALL_CONFIG sweep (2 scenarios x amount x n_infusions x 6 patients, 240 d)."""
    from immunosim.experiments.config import load_config
    from immunosim.experiments.sweep import sweep

    d = tmp_path_factory.mktemp("report")
    (d / "small.toml").write_text(SMALL_CONFIG)
    return sweep(load_config(d / "small.toml"), d / "r.zarr", progress=False)


@pytest.fixture(scope="module")
def ds(small_result):
    return open_result(small_result)


class _Tables(HTMLParser):
    """Every <table id=...> of a page as rows of cell texts (th and td alike); the <figure>
    ids and <img> alts, and the attributes of <body>."""

    def __init__(self):
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self.body: dict[str, str] = {}
        self.figures: list[str] = []
        self._table = self._cell = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "table" and "id" in a:
            self._table = self.tables.setdefault(a["id"], [])
        elif tag == "tr" and self._table is not None:
            self._table.append([])
        elif tag in ("td", "th") and self._table is not None:
            self._cell = []
        elif tag == "body":
            self.body = {k: v or "" for k, v in attrs}
        elif tag == "figure":
            self.figures.append(a.get("id", ""))

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self._table[-1].append(" ".join("".join(self._cell).split()))
            self._cell = None
        elif tag == "table":
            self._table = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def parse(page: str) -> _Tables:
    p = _Tables()
    p.feed(page)
    return p


def expected_rows(df) -> list[list[str]]:
    """A summary DataFrame as the rows its HTML table must show: header, then label + cells."""
    return [["", *map(str, df.columns)]] + [[str(i), *map(str, r)] for i, r in
                                             zip(df.index, df.itertuples(index=False))]


def check_summary(page: _Tables, summary) -> None:
    for i, (_, df) in enumerate(summary.tables):
        assert page.tables[f"summary-{i}"] == expected_rows(df), f"summary-{i}"
    assert f"summary-{len(summary.tables)}" not in page.tables


def chromium(*args: str, tmp: Path) -> subprocess.CompletedProcess:
    return subprocess.run([CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={tmp / 'profile'}",
                           *args], capture_output=True, text=True, timeout=60, check=True)


# --- in a browser ---------------------------------------------------------------------------------


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install "
                                             "chromium): the report's browser test is skipped")
def test_report_renders_in_chromium(small_result, ds, tmp_path):
    """Catches: tables whose numbers differ from the printed summary, a broken data URI or an
    image the browser cannot decode, a figure left out, a page that renders blank."""
    from PIL import Image

    out = write_report(small_result, tmp_path / "report.html")
    page = out.read_text(encoding="utf-8")
    probe = tmp_path / "probe.html"
    probe.write_text(page.replace("</body>", IMAGE_CHECK + "</body>"), encoding="utf-8")

    dom = parse(chromium("--dump-dom", probe.as_uri(), tmp=tmp_path).stdout)
    drawn, _ = draw_figures(ds)
    n = len(drawn)
    assert n >= 5  # timecourse, three maps, survival x2, waterfall, bistability
    assert dom.body.get("data-images-decoded") == f"{n}/{n}"
    assert dom.figures == [f"fig-{spec.stem}" for _, spec in drawn]
    check_summary(dom, summary_tables(ds))

    shot = tmp_path / "shot.png"
    chromium(f"--screenshot={shot}", "--window-size=1200,2000", out.as_uri(), tmp=tmp_path)
    px = np.asarray(Image.open(shot).convert("L"), dtype=float)
    assert px.shape == (2000, 1200)
    assert px.std() > 20  # text and tables, not a blank page
    assert (px < 128).mean() > 0.01


# --- the page as text ---------------------------------------------------------------------------


def test_provenance_config_and_cohort(ds):
    """Catches: provenance without the digests or version, the config text missing or not
    escaped, a cohort table that does not match the patients' parameters."""
    d = ds.copy()
    d.attrs = {**ds.attrs, "description": "dose <b>finding</b> & timing"}
    page = render_report(d, figures=["waterfall"])
    for key in ("model_digest", "config_digest", "immunosim_version"):
        assert str(ds.attrs[key]) in page
    assert "dose &lt;b&gt;finding&lt;/b&gt; &amp; timing" in page
    assert "<b>finding</b>" not in page
    details = re.search(r'<details id="config">(.*?)</details>', page, re.S).group(1)
    assert html.unescape(re.sub(r"<[^>]+>", "", details)).strip().endswith(
        SMALL_CONFIG.strip())
    t = parse(page).tables
    quant = {r[0]: r[1:] for r in t["cohort-quantiles"][1:]}
    assert set(quant) == {"activation_rate", "reg_induction"}  # the parameters drawn
    x = ds.patient_parameters.sel(parameter="activation_rate").values
    unit, lo, q1, med, q3, hi = quant["activation_rate"]
    assert unit == "1/d"
    np.testing.assert_allclose([float(v) for v in (lo, q1, med, q3, hi)],
                               np.percentile(x, [0, 25, 50, 75, 100]), rtol=1e-3)
    assert len(t["cohort-patients"]) == 2 + ds.sizes["patient"]  # two header rows
    assert [r[0] for r in t["design"][1:]] == ["amount", "n_infusions"]


def test_select_and_subgroup_restrict_tables_and_figures(ds):
    """Catches: --select or --subgroup applied to the figures but not to the tables (or the
    reverse), a float selection not matched to the nearest value as `immunosim plot` does."""
    page = render_report(ds, figures=["survival"], select=["amount=3.1e6"],
                         subgroup="activation_rate>q50")
    sub = select_subgroup(ds, "activation_rate>q50")
    check_summary(parse(page), summary_tables(sub, {"amount": ["3e6"]}))
    assert "amount = 3e6" in page
    assert html.escape(sub.attrs["subgroup"]) in page
    captions = re.findall(r"<figcaption>(.*?)</figcaption>", page, re.S)
    assert captions and all(f"{sub.attrs['subgroup']}; held at MSC amount = 3e6" in
                            html.unescape(c) for c in captions)
    assert len(parse(page).tables["cohort-patients"]) == 2 + sub.sizes["patient"]


def test_every_sweep_point_table(ds, monkeypatch):
    """Catches: a scenario with more points than the summary shows one by one losing its
    other points, rows not matching the summary's own per-point columns, the held scenario
    (one point) given a table."""
    import xarray as xr

    from immunosim.reporting import report

    more = xr.concat([ds, ds.assign_coords(amount=ds.amount * 10)], "amount",
                     data_vars="minimal", coords="minimal", compat="override")  # 8 msc points
    page = parse(render_report(more, figures=["waterfall"]))
    check_summary(page, summary_tables(more))
    (title, full), = [t for t in summary_tables(more, max_points=8).tables if t[0] ==
                      "scenario msc"]
    rows = page.tables["points-1"]
    assert rows[0] == ["", *map(str, full.index)]
    assert rows[1:] == [[f"point {i}", *map(str, full[f"point {i}"])] for i in range(1, 9)]
    assert "points-0" not in page.tables  # untreated: one point
    monkeypatch.setattr(report, "MAX_POINT_ROWS", 7)
    text = render_report(more, figures=["waterfall"])
    assert "points-1" not in parse(text).tables
    assert "More than 7 sweep points" in text


def test_posterior_draws_with_a_subgroup(ds):
    """Catches: the tables of a subgroup of a posterior-draws result failing on the per-draw
    intervals (the subgroup holds different subjects in each draw)."""
    draws = ds.assign_coords(draw=("patient", np.repeat([0, 1], 3)),
                             subject=("patient", np.tile([0, 1, 2], 2)))
    whole = render_report(draws, figures=["waterfall"])
    assert re.search(r"\d+% \[\d+-\d+\] \(\d+/\d+\)", whole)  # credible intervals
    page = render_report(draws, figures=["waterfall"], subgroup="activation_rate>q50")
    assert "no credible intervals for a subgroup" in page
    assert not re.search(r"\d+% \[\d+-\d+\] \(\d+/\d+\)", page)
    assert "6 virtual patients: 2 posterior draws x 3 subjects" in page


def test_covariates_of_a_population_table(ds):
    """Catches: text covariates left out of the cohort section, or the table's patient IDs
    counted as if they were a covariate."""
    d = ds.assign_coords(sex=("patient", list("FFMFFM")),
                         patient_id=("patient", [f"P{i}" for i in range(6)]))
    page = render_report(d, figures=["waterfall"])
    assert "<p>sex: F: 4, M: 2</p>" in page
    assert "<p>patient_id:" not in page
    assert [r[-2:] for r in parse(page).tables["cohort-patients"][2:4]] == [["F", "P0"],
                                                                           ["F", "P1"]]


def test_not_a_sweep_result(ds):
    with pytest.raises(ReportError, match=r"not a sweep result \(no 'remission'\)"):
        render_report(ds.drop_vars("remission"), figures=["waterfall"])


# --- writing and the command line ---------------------------------------------------------------


def test_cli_writes_refuses_to_overwrite_and_reports_bad_input(small_result, tmp_path, capsys):
    """Catches: an existing report replaced without --overwrite, a traceback or exit 1 for a
    bad input, a temporary file left behind, a half-written report after a failure."""
    out = tmp_path / "r.html"
    args = ["report", str(small_result), "-o", str(out), "--figures", "waterfall"]
    assert main(args) == 0
    first = out.read_text(encoding="utf-8")
    assert first.startswith("<!DOCTYPE html>") and first.rstrip().endswith("</html>")
    capsys.readouterr()

    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "exists; pass --overwrite" in err
    assert main([*args, "--overwrite", "--figures", "nope"]) == 2  # fails: old report kept
    assert out.read_text(encoding="utf-8") == first
    assert main([*args, "--overwrite", "--select", "amount=3e6"]) == 0
    assert "amount = 3e6" in out.read_text(encoding="utf-8")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.html"]  # no temporary file
    capsys.readouterr()

    for bad, message in ((tmp_path / "missing.zarr", "no such result file"),
                         (tmp_path / "r.html", "cannot read as a result")):
        assert main(["report", str(bad), "-o", str(tmp_path / "x.html")]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith("immunosim: error: ") and message in err
    assert main(["report", str(small_result), "-o", str(tmp_path / "no" / "x.html")]) == 2
    assert "the directory does not exist" in capsys.readouterr().err
    assert not (tmp_path / "x.html").exists()
