"""The public dataset registry (registry.yaml), its table, its markdown and its documentation page."""

from __future__ import annotations

from pathlib import Path

import pytest

import noa_omics as noa
from noa_omics.celltypes._harmonize import label_sources
from noa_omics.datasets import registry, registry_markdown
from noa_omics.datasets._registry import VERIFICATION, validate_entry

DOCS = Path(__file__).resolve().parents[2] / "docs" / "datasets.md"


@pytest.fixture(scope="module")
def table():
    return registry()


def _species(value):
    return {value} if isinstance(value, str) else set(value)


def test_registry_content(table):
    assert len(table) >= 8
    for column in ("name", "accession", "species", "technology", "n_cells", "conditions", "citation", "url",
                   "format", "label_key", "checksum", "verification", "notes"):
        assert column in table.columns
    assert table["name"].is_unique
    species = set().union(*table["species"].map(_species))
    assert species == {"human", "mouse"}
    assert {"scRNA-seq", "spatial"} <= set(table["technology"])
    assert {"GSE149512", "GSE112013", "GSE112393", "GSE235321", "GSE154535"} <= set(table["accession"])


def test_verification_tags(table):
    for name, verification in table["verification"].items():
        assert verification, name
        assert set(verification.values()) <= set(VERIFICATION), name
    gse154535 = table.set_index("accession").loc["GSE154535", "verification"]
    assert gse154535["citation"] == "unverified" and gse154535["accession"] == "unverified"
    assert table.loc["gse235321_sccoolseq_noa", "value_type"] == "log2tpm"


def test_downloadable_entries_have_files(table):
    for name, row in table.iterrows():
        if row["downloadable"]:
            assert row["checksum"], name  # one slot (sha256 or None) per file
        else:
            assert row["checksum"] == [], name


def test_label_sources_are_known_to_harmonize_labels(table):
    known = {s.lower() for s in label_sources()}
    for name, source in table["label_source"].items():
        if source is not None:
            assert source.lower() in known, name


def test_integer_label_maps_agree_with_harmonize_labels(table):
    """Published names from the registry's code map harmonise like the codes with the source."""
    for name, row in table.iterrows():
        if row["label_map"] and row["label_source"]:
            codes = list(row["label_map"])
            by_code = noa.tl.harmonize_labels(codes, source=row["label_source"], warn_unknown=False)
            by_name = noa.tl.harmonize_labels([row["label_map"][c] for c in codes], warn_unknown=False)
            assert list(by_code) == list(by_name), name


def test_markdown_tags_unverified_facts():
    md = registry_markdown()
    line = next(l for l in md.splitlines() if "gse154535" in l)
    assert "GSE154535 [U]" in line
    assert md.count("\n") == len(registry()) + 2


def test_docs_page_contains_current_table():
    assert registry_markdown() in DOCS.read_text(encoding="utf-8"), (
        "docs/datasets.md is out of date; regenerate the table with noa_omics.datasets.registry_markdown()."
    )


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"format": "rds"}, "unknown format"),
        ({"species": "rat"}, "species"),
        ({"technology": "bulk"}, "unknown technology"),
        ({"files": [{"url": "http://x/y", "sha256": "abc"}]}, "64 hex"),
        ({"verification": {"n_cells": "maybe"}}, "verification"),
        ({"colour": 1}, "unknown field"),
        ({"citation": None}, "missing required"),
    ],
)
def test_validate_entry_errors(change, match):
    entry = {"name": "x", "species": "human", "technology": "scRNA-seq", "format": "h5ad", "citation": "c",
             "url": ["u"], "files": [{"url": "http://x/y"}]}
    entry.update(change)
    with pytest.raises(ValueError, match=match):
        validate_entry(entry)
