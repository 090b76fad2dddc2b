"""docs/genesets.md is generated from the library files and must be up to date."""

from __future__ import annotations

import importlib.util
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _script():
    spec = importlib.util.spec_from_file_location("make_geneset_docs", REPO / "scripts" / "make_geneset_docs.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_docs_page_is_up_to_date():
    expected = _script().render()
    current = (REPO / "docs" / "genesets.md").read_text(encoding="utf-8")
    assert current == expected, "docs/genesets.md is stale: run `python scripts/make_geneset_docs.py`"


def test_docs_page_lists_every_set(human):
    text = _script().render()
    for name, gs in human.items():
        assert f"| `{name}` | {gs.category} |" in text
