"""The generated parameter table in docs/ is current (no drift between code and docs)."""

import importlib.util
from pathlib import Path

DOCS = Path(__file__).resolve().parents[1] / "docs"


def test_parameters_md_is_current():
    spec = importlib.util.spec_from_file_location("make_docs", DOCS / "make_docs.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    assert (DOCS / "parameters.md").read_text() == mod.parameters_markdown(), (
        "docs/parameters.md is stale: run python docs/make_docs.py"
    )


def test_tutorial_question_3_numbers(tmp_path):
    """docs/tutorial.md quotes relapse among remitters at four regulatory half-lives: rerun its
    config (1,600 runs) and compare the counts (catches a tutorial gone stale after a model or
    outcome change)."""
    import re

    import pytest

    from immunosim.experiments.config import load_config
    from immunosim.experiments.results import event_counts
    from immunosim.experiments.sweep import sweep

    root = DOCS.parent
    ds = sweep(load_config(root / "configs/tutorial/q3_relapse_vs_reg_half_life.toml"),
               progress=False)
    k, n = event_counts(ds.sel(scenario="msc"), "relapse", among="remission")
    text = (DOCS / "tutorial.md").read_text()
    quoted = re.search(r"years: (\d+) of (\d+) \(\d+%\), (\d+) of (\d+) \(\d+%\), (\d+) of (\d+) "
                       r"\(\d+%\) and (\d+) of (\d+)", " ".join(text.split()))
    assert quoted, "the sentence quoting the counts moved: update this test"
    got = [int(v) for pair in zip(k.values, n.values) for v in pair]
    assert got == [int(g) for g in quoted.groups()], got
    assert list(ds.reg_half_life.values) == pytest.approx([30, 90, 180, 365])
