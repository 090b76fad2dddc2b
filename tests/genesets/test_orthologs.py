"""Human -> mouse ortholog table."""

from __future__ import annotations

import re

import pytest

import noa_omics as noa
from noa_omics.genesets import orthologs, to_mouse


def test_table_columns_and_rules():
    table = orthologs()
    assert list(table.columns) == ["human", "mouse", "relation", "confidence", "note"]
    assert table["human"].is_unique
    mapped = table[table["mouse"] != ""]
    assert (mapped["relation"] == "one2one").all()
    assert mapped["mouse"].is_unique  # one-to-one in both directions
    dropped = table[table["mouse"] == ""]
    assert (dropped["relation"] != "one2one").all()
    assert (dropped["note"].str.len() > 0).all()
    assert set(table["confidence"]) <= {"high", "uncertain"}
    assert all(re.match(r"^[A-Z][a-z0-9]*(?:-[A-Z]?[a-z0-9]+)*$", m) for m in mapped["mouse"])


def test_table_is_a_copy():
    table = orthologs()
    table.loc[0, "mouse"] = "Changed"
    assert orthologs().loc[0, "mouse"] != "Changed"


def test_table_header_names_its_source():
    header = (noa.genesets.data_dir() / "orthologs_human_mouse.tsv").read_text().splitlines()[:5]
    text = " ".join(header)
    assert "HOM_MouseHumanSequence.rpt" in text
    assert "by hand" in text.lower() and "not machine-checked" in text.lower()


@pytest.mark.parametrize("human, mouse", [
    ("TP53", "Trp53"), ("TP63", "Trp63"), ("TP73", "Trp73"), ("FASLG", "Fasl"), ("KITLG", "Kitl"),
    ("TF", "Trf"), ("G6PD", "G6pdx"), ("TXN", "Txn1"), ("USP9Y", "Usp9y"), ("KDM5D", "Kdm5d"),
])
def test_non_trivial_mappings(human, mouse):
    assert to_mouse([human]) == ((mouse,), ())


def test_to_mouse_drops_and_orders():
    mapped, dropped = to_mouse(["DAZ1", "TP53", "HSD3B2", "BAX", "TP53", "NOT_A_GENE", "CXCL8"])
    assert mapped == ("Trp53", "Bax")
    assert dropped == ("DAZ1", "HSD3B2", "NOT_A_GENE", "CXCL8")


def test_to_mouse_rejects_string():
    with pytest.raises(TypeError):
        to_mouse("TP53")
