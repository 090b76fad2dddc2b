"""The curated library: content rules for both species."""

from __future__ import annotations

import re

import pytest
import yaml

import noa_omics as noa
from noa_omics._vocabulary import AXES, CELL_TYPES, DIRECTIONS, GENESET_CATEGORIES
from noa_omics.genesets import data_dir, library_info

REQUIRED = [
    "apoptosis_intrinsic", "apoptosis_extrinsic", "apoptosis_checkpoint", "apoptosis_execution",
    "apoptosis_antiapoptotic", "stress_oxidative", "stress_heat", "stress_er", "inflammation",
    "epigenetic_regulation", "endocrine_leydig_steroidogenesis", "endocrine_sertoli_response",
    "niche_btb", "sertoli_immaturity", "leydig_immaturity", "genetic_azf", "genetic_noa_risk",
    "control_dissociation",
] + [f"marker_{t}" for t in CELL_TYPES if t != "other"]

HUMAN_SYMBOL = re.compile(r"^[A-Z0-9][A-Z0-9\-\.]*$")
MOUSE_SYMBOL = re.compile(r"^[A-Z][a-z0-9]*(?:-[A-Z]?[a-z0-9]+)*$")

# Mouse genes that sit on the Y chromosome (MGI); the AZF set may only hold these.
MOUSE_Y_GENES = {"Usp9y", "Ddx3y", "Uty", "Kdm5d", "Rbmy", "Zfy1", "Zfy2", "Sry", "Eif2s3y", "Uba1y"}


def test_required_sets_present_in_both_species(human, mouse):
    for collection in (human, mouse):
        missing = [n for n in REQUIRED if n not in collection]
        assert not missing
        assert collection.names == human.names  # same sets, same order


def test_version_and_species(human, mouse):
    assert human.version == mouse.version == library_info()["version"]
    assert re.match(r"^\d{4}\.\d+\.\d+$", human.version)
    assert human.species == "human" and mouse.species == "mouse"
    assert all(gs.species == "human" for gs in human.values())
    assert all(gs.species == "mouse" for gs in mouse.values())


def test_load_is_cached_and_read_only(human):
    assert noa.genesets.load("human") is human
    with pytest.raises(TypeError):
        human["apoptosis_intrinsic"] = None  # Mapping, not MutableMapping
    with pytest.raises(AttributeError):
        human["apoptosis_intrinsic"].genes = ()


@pytest.mark.parametrize("bad", ["rat", "Human ", None, 3])
def test_unknown_species_raises(bad):
    with pytest.raises(ValueError, match="species"):
        noa.genesets.load(bad)


def test_species_names_are_case_insensitive(human):
    assert noa.genesets.load("HUMAN") is human


def test_sets_are_valid(human, mouse):
    for collection in (human, mouse):
        for gs in collection.values():
            assert gs.genes, gs.name
            assert len(set(gs.genes)) == len(gs.genes), gs.name
            assert gs.category in GENESET_CATEGORIES
            assert gs.axis is None or gs.axis in AXES
            assert gs.direction is None or gs.direction in DIRECTIONS
            assert gs.description and len(gs.description) > 80, gs.name
            assert gs.name.startswith(gs.category) or gs.category in {"niche", "endocrine"}, gs.name


def test_marker_sets_have_marker_category(human):
    for name, gs in human.items():
        assert (gs.category == "marker") == name.startswith("marker_")


def test_human_symbols_have_human_style(human):
    bad = [g for gs in human.values() for g in gs.genes
           if not HUMAN_SYMBOL.match(g) or not any(c.isalpha() for c in g)]
    assert not bad


def test_mouse_symbols_have_mouse_style(mouse):
    bad = [g for gs in mouse.values() for g in gs.genes if not MOUSE_SYMBOL.match(g)]
    assert not bad


def test_mouse_symbol_pattern_accepts_real_symbols():
    for ok in ["Trp53", "H2-K1", "Rbmy", "Zfy1", "Hsd3b6", "Hsp90aa1", "Cd3e", "H1f6"]:
        assert MOUSE_SYMBOL.match(ok), ok
    for bad in ["TP53", "trp53", "Trp53 ", "HSD3B2", "CD3E", "H2AX"]:
        assert not MOUSE_SYMBOL.match(bad), bad


def test_package_species_detector_on_real_symbols(human, mouse):
    """The package's own detector (``noa.genesets.detect_species``), not the test's regex: real MGI
    symbols vote mouse one by one, human symbols vote human, lower-case junk votes nothing, and the
    curated libraries are recognised as their species."""
    detect = noa.genesets.detect_species
    for ok in ["Trp53", "H2-K1", "Rbmy", "Zfy1", "Hsd3b6", "Hsp90aa1", "Cd3e", "H1f6", "mt-Co1", "1700001C19Rik"]:
        assert detect([ok]) == "mouse", ok
    for bad in ["TP53", "HSD3B2", "CD3E", "H2AX", "C14orf39"]:
        assert detect([bad]) == "human", bad
    assert detect(["trp53"]) is None and detect(["H19"]) is None
    assert detect(["Trp53", "TP53"]) is None  # a split vote is ambiguous
    mouse_genes = [g for gs in mouse.values() for g in gs.genes]
    human_genes = [g for gs in human.values() for g in gs.genes]
    assert detect(mouse_genes) == "mouse" and detect(human_genes) == "human"
    assert [g for g in set(mouse_genes) if detect([g]) == "human"] == []


def test_mouse_uses_mgi_symbols_not_capitalisation(mouse):
    checkpoint = mouse["apoptosis_checkpoint"].genes
    assert "Trp53" in checkpoint and "Tp53" not in checkpoint
    assert "Trp63" in checkpoint and "Tp63" not in checkpoint
    assert {"Zfy1", "Zfy2"} <= set(checkpoint)
    assert "Fasl" in mouse["apoptosis_extrinsic"].genes
    assert "Faslg" not in mouse["apoptosis_extrinsic"].genes
    leydig = mouse["endocrine_leydig_steroidogenesis"].genes
    assert {"Hsd3b1", "Hsd3b6"} <= set(leydig) and "Hsd3b2" not in leydig
    assert "Kitl" in mouse["endocrine_sertoli_response"].genes
    assert "Rhox5" in mouse["endocrine_sertoli_response"].genes


def test_mouse_azf_only_real_y_orthologs(human, mouse):
    azf = mouse["genetic_azf"]
    assert set(azf.genes) <= MOUSE_Y_GENES
    assert {"Usp9y", "Ddx3y", "Uty", "Kdm5d", "Rbmy"} <= set(azf.genes)
    for human_only in ["DAZ1", "BPY2", "CDY1", "EIF1AY", "RPS4Y2"]:
        assert human_only in human["genetic_azf"].genes
        assert human_only in azf.dropped


def test_dropped_genes_are_listed_not_guessed(human, mouse):
    table = noa.genesets.orthologs()
    no_ortholog = set(table.loc[table["mouse"] == "", "human"])
    for name, gs in mouse.items():
        expected = tuple(g for g in human[name].genes if g in no_ortholog)
        assert gs.dropped == expected, name
        capitalised = {g[0] + g[1:].lower() for g in gs.dropped}
        assert not capitalised & set(gs.genes) - {"Rbmy"}, name  # Rbmy is added for RBMY1A1


def test_every_human_gene_is_in_the_ortholog_table(human):
    table = noa.genesets.orthologs()
    listed = set(table["human"])
    missing = sorted({g for gs in human.values() for g in gs.genes} - listed)
    assert not missing, f"add these genes to orthologs_human_mouse.tsv: {missing}"


def test_markers_do_not_overlap_stress_or_apoptosis(human):
    markers = human.filter(category="marker")
    stress = human.filter(category=["apoptosis", "stress", "inflammation", "control"])
    overlap = {
        (m.name, s.name, g)
        for m in markers.values() for s in stress.values() for g in set(m.genes) & set(s.genes)
    }
    assert not overlap


def test_known_testis_caveat_genes_kept_out_of_apoptosis(human):
    apoptosis_genes = set(human.filter(category=["apoptosis", "stress"]).genes)
    assert not {"KRT18", "HSPA2", "HSPA4L", "CCNA1", "GPX4"} & apoptosis_genes


def test_antiapoptotic_is_the_only_anti_set(human):
    assert human.filter(direction="anti").names == ("apoptosis_antiapoptotic",)


def test_set_sizes_are_reasonable(human):
    for gs in human.values():
        assert 5 <= len(gs) <= 80, gs.name
    for gs in human.filter(category="marker").values():
        assert 7 <= len(gs) <= 25, gs.name


def test_library_files_match_library_yaml():
    root = data_dir()
    files = sorted(p.stem for p in root.glob("*.yaml") if p.name != "library.yaml")
    assert sorted(library_info()["sets"]) == files
    for name in files:
        raw = yaml.safe_load((root / f"{name}.yaml").read_text())
        assert raw["name"] == name
        assert all(re.match(r"^(PMID:\d+|doi:10\.\S+)$", r) for r in raw["references"]), name


def test_all_sets_have_references(human):
    assert all(gs.references for gs in human.values())
