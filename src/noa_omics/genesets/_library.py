"""The curated gene-set library: locating the YAML files and loading them per species.

Layout of the data folder (top-level ``genesets/`` in the source tree, shipped in the wheel as
``noa_omics/_library/genesets``)::

    library.yaml                  version, metadata and the ordered list of set names
    orthologs_human_mouse.tsv     human -> mouse ortholog table (see ``_orthologs.py``)
    <set name>.yaml               one file per gene set

A set file holds ``name``, ``category``, ``axis``, ``direction``, ``description``, ``genes``
(human HGNC symbols), an optional ``mouse`` block (``add``: mouse genes added to the mapped
orthologs, e.g. ``Hsd3b1``/``Hsd3b6`` for HSD3B2; ``remove``: mapped orthologs left out;
``note``), ``sources``, ``references``, and optional ``notes`` / ``gene_notes`` (curation notes;
unverified facts are flagged there).
"""

from __future__ import annotations

import importlib.resources
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from .._validation import check_species
from ._geneset import GeneSet, GeneSetCollection

LIBRARY_FILE = "library.yaml"
_SET_KEYS = {
    "name",
    "category",
    "axis",
    "direction",
    "description",
    "genes",
    "mouse",
    "sources",
    "references",
    "notes",
    "gene_notes",
}
_REQUIRED_KEYS = ("name", "category", "axis", "direction", "description", "genes", "sources", "references")


def data_dir() -> Path:
    """Folder holding the library files.

    The installed package (``noa_omics/_library/genesets`` inside a wheel) is looked up first with
    :mod:`importlib.resources`; an editable install falls back to ``<repository>/genesets``.
    """
    try:
        packaged = importlib.resources.files("noa_omics").joinpath("_library", "genesets")
        if packaged.is_dir() and packaged.joinpath(LIBRARY_FILE).is_file():
            return Path(str(packaged))
    except (ModuleNotFoundError, NotADirectoryError, FileNotFoundError):  # pragma: no cover
        pass
    source = Path(__file__).resolve().parents[3] / "genesets"
    if (source / LIBRARY_FILE).is_file():
        return source
    raise FileNotFoundError(
        "the gene-set library was not found (neither noa_omics/_library/genesets in the installed package "
        f"nor {source}); reinstall noa-omics (`pip install noa-omics` or `pip install -e .` in the repository)."
    )


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        content = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        raise ValueError(f"{path}: invalid YAML ({err}).") from None
    if not isinstance(content, dict):
        raise ValueError(f"{path}: expected a YAML mapping at the top level.")
    return content


@lru_cache(maxsize=1)
def library_info() -> dict[str, Any]:
    """Content of ``library.yaml``: ``version``, ``title``, ``sets`` (ordered names), ..."""
    path = data_dir() / LIBRARY_FILE
    info = _read_yaml(path)
    for key in ("version", "sets"):
        if key not in info:
            raise ValueError(f"{path}: missing key {key!r}.")
    info["version"] = str(info["version"])
    return info


def _as_tuple(value: Any, *, key: str, path: Path) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, (str, int)) for v in value):
        raise ValueError(f"{path}: {key!r} must be a list of strings.")
    return tuple(str(v).strip() for v in value)


def _read_set_file(path: Path) -> dict[str, Any]:
    raw = _read_yaml(path)
    unknown = sorted(set(raw) - _SET_KEYS)
    if unknown:
        raise ValueError(f"{path}: unknown key(s) {unknown}; allowed keys: {sorted(_SET_KEYS)}.")
    missing = [k for k in _REQUIRED_KEYS if k not in raw]
    if missing:
        raise ValueError(f"{path}: missing key(s) {missing}.")
    if raw["name"] != path.stem:
        raise ValueError(f"{path}: name {raw['name']!r} differs from the file name {path.stem!r}.")
    mouse = raw.get("mouse") or {}
    if not isinstance(mouse, dict) or not set(mouse) <= {"add", "remove", "note"}:
        raise ValueError(f"{path}: 'mouse' must be a mapping with keys among add, remove, note.")
    return {
        "name": raw["name"],
        "category": raw["category"],
        "axis": raw["axis"],
        "direction": raw["direction"],
        "description": " ".join(str(raw["description"]).split()),
        "genes": _as_tuple(raw["genes"], key="genes", path=path),
        "mouse_add": _as_tuple(mouse.get("add"), key="mouse.add", path=path),
        "mouse_remove": _as_tuple(mouse.get("remove"), key="mouse.remove", path=path),
        "mouse_note": str(mouse.get("note") or ""),
        "sources": _as_tuple(raw["sources"], key="sources", path=path),
        "references": _as_tuple(raw["references"], key="references", path=path),
        "notes": " ".join(str(raw.get("notes") or "").split()),
        "gene_notes": dict(raw.get("gene_notes") or {}),
    }


@lru_cache(maxsize=1)
def read_set_files() -> tuple[dict[str, Any], ...]:
    """Parsed set files, in the order given by ``library.yaml``."""
    root = data_dir()
    listed = [str(n) for n in library_info()["sets"]]
    present = sorted(p.stem for p in root.glob("*.yaml") if p.name != LIBRARY_FILE)
    missing = [n for n in listed if n not in present]
    unlisted = [n for n in present if n not in listed]
    if missing or unlisted or len(set(listed)) != len(listed):
        raise ValueError(
            f"{root / LIBRARY_FILE}: the 'sets' list must name every set file exactly once "
            f"(listed without a file: {missing}; files not listed: {unlisted})."
        )
    return tuple(_read_set_file(root / f"{name}.yaml") for name in listed)


def _build(record: dict[str, Any], species: str) -> GeneSet:
    genes, dropped = record["genes"], ()
    notes = record["notes"]
    if species == "mouse":
        from ._orthologs import to_mouse

        mapped, dropped = to_mouse(record["genes"])
        remove = set(record["mouse_remove"])
        genes = tuple(dict.fromkeys(g for g in (*mapped, *record["mouse_add"]) if g not in remove))
        notes = " ".join(n for n in (notes, record["mouse_note"]) if n)
    return GeneSet(
        name=record["name"],
        genes=genes,
        category=record["category"],
        axis=record["axis"],
        direction=record["direction"],
        description=record["description"],
        sources=record["sources"],
        references=record["references"],
        species=species,
        dropped=dropped,
        notes=notes,
    )


@lru_cache(maxsize=None)
def _load(species: str) -> GeneSetCollection:
    sets = [_build(record, species) for record in read_set_files()]
    return GeneSetCollection(sets, species=species, version=library_info()["version"])


def load(species: str = "human") -> GeneSetCollection:
    """Load the curated, cited NOA gene-set library.

    Parameters
    ----------
    species
        ``"human"`` (HGNC symbols) or ``"mouse"`` (MGI symbols: one-to-one orthologs from the
        curated table plus mouse-specific genes; genes without a one-to-one ortholog are dropped
        and listed in each set's ``dropped``).

    Returns
    -------
    GeneSetCollection
        Cached per species (the collection is read-only). ``.version`` is the library version to
        record next to any result computed with it.

    Raises
    ------
    ValueError
        For a species other than human or mouse.

    Examples
    --------
    >>> import noa_omics as noa
    >>> gs = noa.genesets.load("mouse")
    >>> "Trp53" in gs["apoptosis_checkpoint"].genes
    True
    """
    species = check_species(species, allow_none=False)
    return _load(species)
