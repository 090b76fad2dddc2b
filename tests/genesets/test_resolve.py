"""as_collection on every accepted input type."""

from __future__ import annotations

from pathlib import Path

import pytest

import noa_omics as noa
from noa_omics.genesets import GeneSet, GeneSetCollection, as_collection


def test_none_loads_curated(human, mouse):
    assert as_collection(None, species="human") is human
    assert as_collection(species="mouse") is mouse
    with pytest.raises(ValueError, match="species"):
        as_collection(None)
    with pytest.raises(ValueError, match="species"):
        as_collection(None, species="rat")


def test_collection_passthrough(human):
    assert as_collection(human) is human
    assert as_collection(human, species="human") is human
    with pytest.raises(ValueError, match="mouse"):
        as_collection(human, species="mouse")


def test_dict():
    c = as_collection({"a": ["TP53", "BAX", "BAX"], "b": ("CASP3",)})
    assert isinstance(c, GeneSetCollection)
    assert c.to_dict() == {"a": ["TP53", "BAX"], "b": ["CASP3"]}
    assert c.species == "human" and c["a"].species == "human"
    assert c.version == "custom"
    assert as_collection({"a": {"Trp53"}}).species == "mouse"
    assert as_collection({"a": ["X1", "X2"]}, species="mouse").species == "mouse"


def test_dict_of_genesets():
    gs = GeneSet("orig", ("TP53",), category="apoptosis")
    c = as_collection({"renamed": gs})
    assert c.names == ("renamed",) and c["renamed"].category == "apoptosis"


@pytest.mark.parametrize("bad, error, match", [
    ({"a": "TP53"}, TypeError, "list of gene symbols"),
    ({"a": 5}, TypeError, "list of gene symbols"),
    ({"a": []}, ValueError, "empty"),
    ({}, ValueError, "empty dict"),
    ({1: ["A"]}, TypeError, "names must be strings"),
    ({"a": ["A", 3]}, TypeError, "non-string"),
    (["TP53", "BAX"], TypeError, "not supported"),
    (42, TypeError, "not supported"),
])
def test_bad_inputs(bad, error, match):
    with pytest.raises(error, match=match):
        as_collection(bad)


@pytest.mark.parametrize("as_str", [True, False])
def test_gmt_path(tmp_path, human, as_str):
    path = human.filter(category="apoptosis").to_gmt(tmp_path / "a.gmt")
    c = as_collection(str(path) if as_str else Path(path))
    assert c.to_dict() == human.filter(category="apoptosis").to_dict()
    assert c.species == "human"


def test_missing_gmt_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="GMT"):
        as_collection(tmp_path / "missing.gmt")


def test_single_geneset():
    c = as_collection(GeneSet("x", ("A", "B"), species="human"))
    assert c.names == ("x",) and c.species == "human"


def test_public_namespace():
    for name in ["load", "read_gmt", "as_collection", "detect_species", "detect_id_type", "orthologs",
                 "to_mouse", "GeneSet", "GeneSetCollection"]:
        assert hasattr(noa.genesets, name)
