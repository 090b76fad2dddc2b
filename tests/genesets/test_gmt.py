"""GMT reading and writing."""

from __future__ import annotations

import pytest

import noa_omics as noa
from noa_omics.genesets import GeneSet, GeneSetCollection, read_gmt


@pytest.mark.parametrize("species", ["human", "mouse"])
def test_round_trip_is_lossless(tmp_path, species):
    collection = noa.genesets.load(species)
    path = tmp_path / "lib.gmt"
    assert collection.to_gmt(path) == path
    back = read_gmt(path)
    assert back.names == collection.names
    assert back.species == species  # detected from symbol style
    for name in collection:
        assert back[name].genes == collection[name].genes
        assert back[name].description == collection[name].description
    assert back.version == "custom"
    assert read_gmt(path).to_dict() == collection.to_dict()


def test_written_gmt_layout(tmp_path):
    c = GeneSetCollection([GeneSet("s1", ("A", "B"), description="two\twords\nhere"), GeneSet("s2", ("C",))])
    path = c.to_gmt(tmp_path / "x.gmt")
    assert path.read_text() == "s1\ttwo words here\tA\tB\ns2\tNA\tC\n"
    back = read_gmt(path)
    assert back["s1"].description == "two words here"
    assert back["s2"].description == ""
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_trailing_tabs_blank_lines_and_crlf(tmp_path):
    path = tmp_path / "x.gmt"
    path.write_bytes(b"s1\tdesc\tTP53\tBAX\t\r\n\r\ns2\thttp://x\tCASP3\r\n")
    back = read_gmt(path)
    assert back.to_dict() == {"s1": ["TP53", "BAX"], "s2": ["CASP3"]}
    assert back.species == "human"


@pytest.mark.parametrize("content, line, what", [
    ("s1\tdesc\tA\nbroken line with spaces\n", 2, "at least 3 tab-separated fields"),
    ("s1\tdesc\n", 1, "at least 3 tab-separated fields"),
    ("s1\tdesc\tA\n\ns2\tdesc\t\t\n", 3, "empty"),
    ("s1\tdesc\tA\ns2\td\tB\ns1\tdesc\tC\n", 3, "duplicated gene-set name 's1'"),
    ("\tdesc\tA\n", 1, "name"),
    ("s1\tdesc\tA\tA\n", 1, "more than once"),
])
def test_malformed_gmt_names_the_line(tmp_path, content, line, what):
    path = tmp_path / "bad.gmt"
    path.write_text(content)
    with pytest.raises(ValueError, match=f"line {line}:") as err:
        read_gmt(path)
    assert what in str(err.value)


def test_empty_or_missing_file(tmp_path):
    empty = tmp_path / "empty.gmt"
    empty.write_text("\n\n")
    with pytest.raises(ValueError, match="no gene sets"):
        read_gmt(empty)
    with pytest.raises(FileNotFoundError, match="not found"):
        read_gmt(tmp_path / "missing.gmt")


def test_binary_file_rejected(tmp_path):
    path = tmp_path / "x.gmt"
    path.write_bytes(b"\xff\xfe\x00\x01")
    with pytest.raises(ValueError, match="UTF-8"):
        read_gmt(path)


def test_to_gmt_missing_folder(tmp_path, human):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        human.to_gmt(tmp_path / "nope" / "x.gmt")


def test_explicit_species(tmp_path):
    path = tmp_path / "x.gmt"
    path.write_text("s\td\tH19\t5S\n")
    assert read_gmt(path).species is None  # nothing informative
    assert read_gmt(path, species="mouse").species == "mouse"
    with pytest.raises(ValueError, match="species"):
        read_gmt(path, species="rat")
