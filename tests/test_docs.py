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
