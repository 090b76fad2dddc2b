"""Turn any accepted gene-set input into a :class:`GeneSetCollection`."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any, Union

from .._validation import check_species
from ._geneset import CUSTOM_VERSION, GeneSet, GeneSetCollection
from ._gmt import read_gmt
from ._library import load
from ._species import detect_species

GeneSetsLike = Union[None, GeneSetCollection, Mapping[str, Iterable[str]], str, os.PathLike]


def _from_mapping(gene_sets: Mapping[Any, Any], species: str | None) -> GeneSetCollection:
    if not gene_sets:
        raise ValueError("`gene_sets` is an empty dict; give at least one {name: [genes]} entry.")
    sets = []
    for name, genes in gene_sets.items():
        if not isinstance(name, str):
            raise TypeError(f"gene-set names must be strings, got {name!r} ({type(name).__name__}).")
        if isinstance(genes, GeneSet):
            sets.append(genes if genes.name == name else replace(genes, name=name))
            continue
        if isinstance(genes, str) or not isinstance(genes, Iterable):
            raise TypeError(
                f"gene set {name!r} must map to a list of gene symbols, got {type(genes).__name__} "
                f"({genes!r}); write e.g. {{{name!r}: ['GENE1', 'GENE2']}}."
            )
        genes = list(genes)
        if not all(isinstance(g, str) for g in genes):
            raise TypeError(f"gene set {name!r} holds non-string genes; use gene symbols (strings).")
        sets.append(GeneSet(name=name, genes=tuple(dict.fromkeys(g.strip() for g in genes)), species=species))
    if species is None:
        species = detect_species([g for gs in sets for g in gs.genes])
        sets = [replace(gs, species=species) if gs.species is None else gs for gs in sets]
    return GeneSetCollection(sets, species=species, version=CUSTOM_VERSION)


def as_collection(gene_sets: GeneSetsLike = None, species: str | None = None) -> GeneSetCollection:
    """Resolve the gene-set argument of downstream functions into a :class:`GeneSetCollection`.

    Parameters
    ----------
    gene_sets
        - None: the curated library for ``species`` (``species`` is then required);
        - a :class:`GeneSetCollection`: returned as is;
        - a dict ``name -> iterable of genes`` (duplicated genes within a set are collapsed);
        - a ``str`` or :class:`~pathlib.Path` to a GMT file.
    species
        ``"human"`` or ``"mouse"``. For dict and GMT input it labels the sets; when None there,
        the species is detected from the symbol style (None if ambiguous).

    Returns
    -------
    GeneSetCollection

    Raises
    ------
    TypeError
        For an unsupported input type.
    ValueError
        For a missing species with ``gene_sets=None``, an unknown species, empty sets, or a
        malformed GMT file.
    FileNotFoundError
        For a path that does not exist.
    """
    species = check_species(species)
    if gene_sets is None:
        if species is None:
            raise ValueError(
                "`species` is required to load the curated gene sets (gene_sets=None); pass species='human' "
                "or 'mouse', e.g. species=noa.genesets.detect_species(adata.var_names)."
            )
        return load(species)
    if isinstance(gene_sets, GeneSetCollection):
        if species is not None and gene_sets.species is not None and gene_sets.species != species:
            raise ValueError(
                f"the gene-set collection is for {gene_sets.species!r} but species={species!r} was requested; "
                f"load the right one with noa.genesets.load({species!r})."
            )
        return gene_sets
    if isinstance(gene_sets, (str, os.PathLike)):
        path = Path(gene_sets)
        if not path.is_file():
            raise FileNotFoundError(
                f"gene-set file {str(path)!r} not found; pass an existing GMT file, a dict name -> genes, "
                "a GeneSetCollection, or None for the curated library."
            )
        return read_gmt(path, species=species)
    if isinstance(gene_sets, GeneSet):
        return GeneSetCollection([gene_sets], species=gene_sets.species or species, version=CUSTOM_VERSION)
    if isinstance(gene_sets, Mapping):
        return _from_mapping(gene_sets, species)
    raise TypeError(
        f"`gene_sets` of type {type(gene_sets).__name__} is not supported; pass None (curated library), "
        "a GeneSetCollection, a dict name -> list of genes, or the path of a GMT file."
    )
