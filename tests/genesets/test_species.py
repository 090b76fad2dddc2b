"""Species and identifier-type detection."""

from __future__ import annotations

import pandas as pd
import pytest

from noa_omics.genesets import detect_id_type, detect_species


@pytest.mark.parametrize("symbols, expected", [
    (["TP53", "BAX", "CASP3", "HLA-A", "C14orf39"], "human"),
    (["Trp53", "Bax", "Casp3", "H2-K1", "1700001C19Rik", "mt-Co1"], "mouse"),
    (["ENSG00000141510", "ENSG00000087088.21"], "human"),
    (["ENSMUSG00000059552", "ENSMUSG00000057329"], "mouse"),
    (["TP53", "BAX", "Trp53", "Bax"], None),  # split vote
    (["H19", "5S", ""], None),  # nothing informative
    ([], None),
    (["TP53", "BAX", "CASP3", "CASP9", "Gm12345"], "human"),  # 4/5 = 80% agree
    (["TP53", "BAX", "Casp3", "Casp9"], None),
])
def test_detect_species(symbols, expected):
    assert detect_species(symbols) == expected


def test_detect_species_on_library(human, mouse):
    assert detect_species(human.genes) == "human"
    assert detect_species(mouse.genes) == "mouse"


def test_detect_species_accepts_index():
    assert detect_species(pd.Index(["Sox9", "Amh"])) == "mouse"


def test_detect_species_rejects_a_string():
    with pytest.raises(TypeError, match="iterable"):
        detect_species("TP53")


@pytest.mark.parametrize("ids, expected", [
    (["ENSG00000141510", "ENSG00000087088.21", "TP53"], "ensembl"),
    (["ENSMUSG00000059552"], "ensembl"),
    (["TP53", "ENSG00000141510"], "symbol"),
    (["Trp53"], "symbol"),
    ([], "symbol"),
])
def test_detect_id_type(ids, expected):
    assert detect_id_type(ids) == expected
