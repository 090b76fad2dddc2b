"""GeneSet / GeneSetCollection behaviour."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from noa_omics.genesets import GeneSet, GeneSetCollection


@pytest.fixture
def small():
    return GeneSetCollection(
        [
            GeneSet("pro_a", ("A1", "A2", "A3"), category="apoptosis", direction="pro", axis=None,
                    description="first", sources=("GO:1",), references=("PMID:1",), species="human"),
            GeneSet("anti_b", ("B1", "A2"), category="apoptosis", direction="anti", species="human"),
            GeneSet("ox_c", ("C1",), category="stress", axis="oxidative", species="human"),
        ],
        species="human",
        version="2026.11.0",
    )


def test_mapping_protocol(small):
    assert len(small) == 3
    assert list(small) == ["pro_a", "anti_b", "ox_c"]
    assert small.names == ("pro_a", "anti_b", "ox_c")
    assert "anti_b" in small and "nope" not in small
    assert small["pro_a"].genes == ("A1", "A2", "A3")
    assert small.genes == ("A1", "A2", "A3", "B1", "C1")
    assert dict(small.items())["ox_c"].axis == "oxidative"


def test_missing_name_lists_available(small):
    with pytest.raises(KeyError, match="pro_a"):
        small["nope"]


def test_to_network_weights(small):
    net = small.to_network()
    assert list(net.columns) == ["source", "target", "weight"]
    assert len(net) == 6
    expected = {("pro_a", "A1"): 1, ("pro_a", "A2"): 1, ("pro_a", "A3"): 1,
                ("anti_b", "B1"): -1, ("anti_b", "A2"): -1, ("ox_c", "C1"): 1}
    got = {(s, t): w for s, t, w in net.itertuples(index=False)}
    assert got == expected


def test_to_network_real_library_weights(human):
    net = human.to_network()
    anti = set(human.filter(direction="anti").names)
    assert (net.loc[net["source"].isin(anti), "weight"] == -1).all()
    assert (net.loc[~net["source"].isin(anti), "weight"] == 1).all()
    assert len(net) == sum(len(gs) for gs in human.values())


def test_to_network_is_accepted_by_decoupler(human):
    dc = pytest.importorskip("decoupler")
    net = human.filter(category="apoptosis").to_network()
    genes = list(net["target"].unique())
    rng = np.random.default_rng(0)
    data = pd.DataFrame(rng.poisson(2.0, (6, len(genes))).astype(float), columns=genes,
                        index=[f"cell{i}" for i in range(6)])
    scores, _ = dc.mt.ulm(data, net, tmin=3)
    assert sorted(scores.columns) == sorted(net["source"].unique())
    assert scores.shape == (6, 5)


def test_to_frame(small):
    frame = small.to_frame()
    assert list(frame.columns) == ["name", "category", "axis", "direction", "n_genes", "description",
                                   "sources", "references"]
    assert frame["n_genes"].tolist() == [3, 2, 1]
    assert frame.loc[0, "sources"] == "GO:1" and frame.loc[0, "references"] == "PMID:1"
    assert pd.isna(frame.loc[0, "axis"])


def test_to_dict(small):
    assert small.to_dict() == {"pro_a": ["A1", "A2", "A3"], "anti_b": ["B1", "A2"], "ox_c": ["C1"]}


def test_filter(small, human):
    assert small.filter(category="apoptosis").names == ("pro_a", "anti_b")
    assert small.filter(category=["stress"]).names == ("ox_c",)
    assert small.filter(axis="oxidative").names == ("ox_c",)
    assert small.filter(names=["ox_c", "pro_a"]).names == ("pro_a", "ox_c")
    assert small.filter(category="apoptosis", direction="anti").names == ("anti_b",)
    assert small.filter(category="marker").names == ()
    filtered = small.filter(category="apoptosis")
    assert filtered.version == small.version and filtered.species == small.species
    assert set(human.filter(category="marker").names) == {n for n in human.names if n.startswith("marker_")}
    assert human.filter(axis="genetic").names == ("genetic_azf", "genetic_noa_risk")


@pytest.mark.parametrize("kwargs, error", [
    ({"category": "apoptotic"}, ValueError),
    ({"axis": "hormonal"}, ValueError),
    ({"direction": "up"}, ValueError),
    ({"names": ["nope"]}, KeyError),
    ({"category": 3}, TypeError),
])
def test_filter_rejects_unknown_values(small, kwargs, error):
    with pytest.raises(error):
        small.filter(**kwargs)


@pytest.mark.parametrize("kwargs, match", [
    ({"genes": ()}, "empty"),
    ({"genes": ("A", "A")}, "more than once"),
    ({"genes": ("A", " B")}, "invalid gene"),
    ({"genes": ("A",), "category": "apoptotic"}, "category"),
    ({"genes": ("A",), "axis": "x"}, "axis"),
    ({"genes": ("A",), "direction": "up"}, "direction"),
    ({"genes": ("A",), "species": "rat"}, "species"),
])
def test_geneset_validation(kwargs, match):
    with pytest.raises(ValueError, match=match):
        GeneSet("x", **kwargs)


def test_geneset_rejects_string_genes():
    with pytest.raises(TypeError, match="TP53"):
        GeneSet("x", "TP53")


def test_duplicate_names_rejected():
    with pytest.raises(ValueError, match="duplicated"):
        GeneSetCollection([GeneSet("a", ("X",)), GeneSet("a", ("Y",))])


def test_collection_equality(small):
    same = GeneSetCollection(list(small.values()), species="human", version="2026.11.0")
    assert same == small
    assert small.filter(category="stress") != small
