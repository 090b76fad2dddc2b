"""Reading and writing GMT files (Broad/MSigDB gene matrix transposed format)."""

from __future__ import annotations

import os
from pathlib import Path

from .._validation import check_species
from ._geneset import CUSTOM_VERSION, GeneSet, GeneSetCollection, duplicates


def _clean(text: str) -> str:
    return " ".join(text.split())


def format_gmt(collection: GeneSetCollection) -> str:
    """GMT text of a collection: one line ``name<TAB>description<TAB>genes...`` per set."""
    lines = []
    for gs in collection.values():
        description = _clean(gs.description) or "NA"
        lines.append("\t".join([gs.name, description, *gs.genes]))
    return "\n".join(lines) + ("\n" if lines else "")


def read_gmt(path: str | os.PathLike, *, species: str | None = None) -> GeneSetCollection:
    """Read a GMT file into a :class:`GeneSetCollection`.

    Each non-blank line is ``name<TAB>description<TAB>gene1<TAB>gene2...``. A description of
    ``NA`` (as written for sets without one) is read back as an empty description. Empty gene
    fields (trailing tabs) are ignored.

    Parameters
    ----------
    path
        GMT file.
    species
        ``"human"`` / ``"mouse"``; when None it is detected from the symbol style with
        :func:`noa_omics.genesets.detect_species` (None if ambiguous).

    Returns
    -------
    GeneSetCollection
        Sets with ``category``, ``axis`` and ``direction`` None and version ``"custom"``.

    Raises
    ------
    FileNotFoundError
        When the file does not exist.
    ValueError
        For a malformed file; the message names the line number and the problem.
    """
    from ._species import detect_species

    species = check_species(species)
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"GMT file {str(path)!r} not found; check the path.")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise ValueError(f"{path}: not a UTF-8 text file ({err}); a GMT file is tab-separated text.") from None
    records: list[tuple[str, str, list[str]]] = []
    first_line: dict[str, int] = {}
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.rstrip("\r\n")
        if not line.strip():
            continue
        fields = line.split("\t")
        if len(fields) < 3:
            raise ValueError(
                f"{path}, line {lineno}: expected at least 3 tab-separated fields "
                f"(name, description, genes...), found {len(fields)}; GMT fields must be separated by tabs."
            )
        name, description = fields[0].strip(), fields[1].strip()
        genes = [g.strip() for g in fields[2:] if g.strip()]
        if not name:
            raise ValueError(f"{path}, line {lineno}: the gene-set name (first field) is empty; give the set a name.")
        if not genes:
            raise ValueError(f"{path}, line {lineno}: gene set {name!r} is empty; list at least one gene.")
        if name in first_line:
            raise ValueError(
                f"{path}, line {lineno}: duplicated gene-set name {name!r} (first seen on line "
                f"{first_line[name]}); gene-set names must be unique."
            )
        dups = duplicates(genes)
        if dups:
            raise ValueError(
                f"{path}, line {lineno}: gene set {name!r} lists genes more than once: {dups}; remove the duplicates."
            )
        first_line[name] = lineno
        records.append((name, "" if description == "NA" else description, genes))
    if not records:
        raise ValueError(f"{path}: the file holds no gene sets; a GMT line is name<TAB>description<TAB>genes...")
    if species is None:
        species = detect_species([g for _, _, genes in records for g in genes])
    sets = [GeneSet(name=n, genes=tuple(g), description=d, species=species) for n, d, g in records]
    return GeneSetCollection(sets, species=species, version=CUSTOM_VERSION)
