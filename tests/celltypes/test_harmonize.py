"""harmonize_labels: published vocabularies -> noa-omics cell types."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import noa_omics as noa
from noa_omics._vocabulary import CELL_TYPES
from noa_omics.celltypes._harmonize import label_table, normalize_label

# (label, expected) per published vocabulary (datasets.md section 3 and the task brief)
LIQIANGLAB = {
    "ECs": "endothelial", "LCs": "leydig", "Lym": "t_cell", "Myeloid": "macrophage", "Myoid": "peritubular_myoid",
    "SPCs": "spermatocyte", "SPGs": "spermatogonia", "SSCs": "SSC", "STs": "sertoli",
    "Spermatids": "round_spermatid", "Endothelial cells": "endothelial", "Leydig cells": "leydig",
    "Sertoli cells": "sertoli", "Early_primary_SPCs": "spermatocyte", "Late_primary_SPCs": "spermatocyte",
    "Round_Spermatids": "round_spermatid", "Elongated_Spermatids": "elongating_spermatid",
    "Sperm": "elongating_spermatid", "SPG (Stem)": "SSC", "Early SPC": "spermatocyte", "Late SPC": "spermatocyte",
    "Round Sperm": "round_spermatid", "Elongated Sperm": "elongating_spermatid",
}
GSE235321 = {
    "Undiff.SPG-1": "SSC", "Undiff.SPG-2": "SSC", "Undiff.SPG-out1": "SSC", "Undiff.SPG-out2": "SSC",
    "Diff.ing SPG": "spermatogonia", "preL": "spermatocyte", "preL-1": "spermatocyte", "preL-2": "spermatocyte",
    "L1/2": "spermatocyte", "L3": "spermatocyte", "Z": "spermatocyte", "preP": "spermatocyte", "P": "spermatocyte",
    "D": "spermatocyte", "SPC7": "spermatocyte", "S1": "round_spermatid", "S2": "round_spermatid",
    "S3": "round_spermatid", "ST": "round_spermatid",
}
HISTA = {
    "Leydig": "leydig", "Neuro": "other", "Myoid": "peritubular_myoid", "Sertoli": "sertoli",
    "Endothelial": "endothelial", "Macrophage-M1": "macrophage", "Macrophage-M2": "macrophage",
    "Lymphoid-Bcell": "other", "Lymphoid-Tcell": "t_cell", "Gamete_UndiffSg": "SSC",
    "Gamete_DifferentiatingSgSct": "spermatogonia", "Gamete_Meiotic_preLep_Lep_Zyg_Scts": "spermatocyte",
    "Gamete_Meiotic_Pach_Dip_2nd_Scts": "spermatocyte", "Gamete_RoundSpermatid": "round_spermatid",
}
GREEN_NAMES = {
    "InnateLymph": "t_cell", "Macrophage": "macrophage", "Endothelial": "endothelial", "Myoid": "peritubular_myoid",
    "Leydig": "leydig", "Sertoli": "sertoli", "Unknown": "other", "SPG": "spermatogonia", "Scytes": "spermatocyte",
    "STids": "round_spermatid", "Elongating": "elongating_spermatid",
}
CHEN_NMFREG = {
    "Elongating/elongated Spermatid": "elongating_spermatid", "Round Spermatid": "round_spermatid",
    "Myoid Cell": "peritubular_myoid", "Spermatocyte": "spermatocyte", "Spermatogonium": "spermatogonia",
    "Sertoli cell": "sertoli", "Leydig cell": "leydig", "Endothelial cell": "endothelial", "Macrophage": "macrophage",
}
GUO_CTDATA = {
    "SSC": "SSC", "Spermatogonia": "spermatogonia", "Early_spermatocyte": "spermatocyte",
    "Late_spermatocyte": "spermatocyte", "Round_spermatid": "round_spermatid",
    "Elongated_spermatid": "elongating_spermatid", "Sperm1": "elongating_spermatid", "Sperm2": "elongating_spermatid",
    "Macrophage": "macrophage", "Endothelial": "endothelial", "Myoid": "peritubular_myoid", "Sertoli": "sertoli",
    "Leydig": "leydig",
}
WANG_2025 = {
    "SSC0": "SSC", "SSC1": "SSC", "SSC2": "SSC", "Diffing-SPG": "spermatogonia", "Diffed-SPG": "spermatogonia",
    "Pre-Lep": "spermatocyte", "L-Z": "spermatocyte", "Pa": "spermatocyte", "Di": "spermatocyte",
    "SC1": "sertoli", "SC8": "sertoli",
}
CELL_ONTOLOGY = {
    "Sertoli cell": "sertoli", "spermatogonium": "spermatogonia", "spermatocyte": "spermatocyte",
    "spermatid": "round_spermatid", "Leydig cell": "leydig", "endothelial cell": "endothelial",
    "macrophage": "macrophage", "T cell": "t_cell", "secondary spermatocyte": "spermatocyte",
    "male germ cell": "other", "CL:0000216": "sertoli", "CL:0000178": "leydig", "CL:0000020": "spermatogonia",
    "CL:0000017": "spermatocyte", "CL:0000018": "round_spermatid", "CL:0000115": "endothelial",
    "CL:0000235": "macrophage", "CL:0000084": "t_cell", "CL_0000216": "sertoli",
}
OTHER = {"T cells": "t_cell", "Endothelial cells": "endothelial", "Macrophage": "macrophage", "SPGs": "spermatogonia"}


def _check(table: dict[str, str], **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # every label is known: no warning at all
        out = noa.tl.harmonize_labels(list(table), **kwargs)
    assert out.tolist() == list(table.values())


@pytest.mark.parametrize(
    "table", [LIQIANGLAB, HISTA, GREEN_NAMES, CHEN_NMFREG, GUO_CTDATA, WANG_2025, CELL_ONTOLOGY, OTHER],
    ids=["liqianglab", "hista", "green2018", "chen2021", "guo2018", "wang2025", "cell_ontology", "other"],
)
def test_vocabularies(table):
    _check(table)


def test_gse235321_needs_source_for_st():
    _check(GSE235321, source="GSE235321")
    with pytest.warns(UserWarning, match="ambiguous.*ST"):
        out = noa.tl.harmonize_labels(["ST", "Sertoli cells"])
    assert out.tolist() == ["sertoli", "sertoli"]
    assert noa.tl.harmonize_labels(["ST"], source="Liqianglab").tolist() == ["sertoli"]


@pytest.mark.parametrize(
    ("source", "codes", "expected"),
    [
        ("Guo2018", [1, 2, 3, 5, 6, 7, 9, 10, 11, 12, 13],
         ["SSC", "spermatogonia", "spermatocyte", "round_spermatid", "elongating_spermatid", "elongating_spermatid",
          "macrophage", "endothelial", "peritubular_myoid", "sertoli", "leydig"]),
        ("Green2018", [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11],
         ["t_cell", "macrophage", "endothelial", "peritubular_myoid", "leydig", "sertoli", "other",
          "spermatogonia", "spermatocyte", "round_spermatid", "elongating_spermatid"]),
        ("chen2021", ["1", "2", "3", "4", "5", "6", "7", "8", "9"],
         ["elongating_spermatid", "round_spermatid", "peritubular_myoid", "spermatocyte", "spermatogonia", "sertoli",
          "leydig", "endothelial", "macrophage"]),
    ],
)
def test_integer_codes_with_source(source, codes, expected):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert noa.tl.harmonize_labels(codes, source=source).tolist() == expected
    # float codes (pandas with missing values) are the same codes
    assert noa.tl.harmonize_labels(np.array(codes, dtype=float), source=source).tolist() == expected


def test_unknown_labels_one_warning_and_other():
    labels = pd.Series(["Sertoli cells", "mystery", "foo", "mystery", None], index=list("abcde"))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = noa.tl.harmonize_labels(labels)
    messages = [str(w.message) for w in caught]
    assert len(messages) == 1
    assert "mystery" in messages[0] and "foo" in messages[0] and "<missing>" in messages[0]
    assert out.tolist() == ["sertoli", "other", "other", "other", "other"]
    assert list(out.index) == list("abcde")
    assert list(out.cat.categories) == list(CELL_TYPES)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        noa.tl.harmonize_labels(["mystery"], warn_unknown=False)


def test_normalisation_and_plural_fallback():
    assert normalize_label(" Sertoli-Cells ") == "sertolicells"
    out = noa.tl.harmonize_labels(["SERTOLI_CELLS", "leydig  cells", "Elongated spermatids", "macrophages"])
    assert out.tolist() == ["sertoli", "leydig", "elongating_spermatid", "macrophage"]


def test_mapping_overrides_and_validates():
    out = noa.tl.harmonize_labels(["ST", "weird"], mapping={"weird": "leydig", "ST": "round_spermatid"})
    assert out.tolist() == ["round_spermatid", "leydig"]
    with pytest.raises(ValueError, match="not a noa-omics cell type"):
        noa.tl.harmonize_labels(["x"], mapping={"x": "neuron"})
    with pytest.raises(ValueError, match="unknown label source"):
        noa.tl.harmonize_labels(["x"], source="nowhere")
    with pytest.raises(TypeError):
        noa.tl.harmonize_labels("Sertoli")


def test_alias_table_is_consistent():
    table = label_table()
    targets = {target for target, _ in table["aliases"].values()}
    assert targets <= set(CELL_TYPES)
    for entry in table["sources"].values():
        assert set(entry["labels"].values()) <= set(CELL_TYPES)
    # every CL id carries a verified flag
    assert all(isinstance(r["verified"], bool) for r in table["cell_ontology"].values())
    for cl_id in ("CL:0000216", "CL:0000178", "CL:0000020", "CL:0000017", "CL:0000018", "CL:0000115",
                  "CL:0000235", "CL:0000084"):
        assert table["cell_ontology"][cl_id]["verified"] is True
