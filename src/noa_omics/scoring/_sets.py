"""Gene sets for scoring: resolve the input, check the species, map genes to columns.

Gene identifiers (symbols vs Ensembl ids) are resolved by :mod:`noa_omics._identifiers`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .. import genesets as _gs


@dataclass
class ResolvedSets:
    collection: _gs.GeneSetCollection
    species: str | None  #: species of the run (the sets', else the data's)
    data_species: str | None
    set_species: str | None


def _sample(names, n: int = 2000) -> list[str]:
    """Up to ``n`` identifiers spread over the list (symbol-style detection does not need 60,000)."""
    names = list(names) if not isinstance(names, pd.Index) else names
    if len(names) <= n:
        return list(names)
    return [names[i] for i in np.linspace(0, len(names) - 1, n).astype(int)]


def _examples(names, n: int = 3) -> list[str]:
    out = [str(g) for g in names if sum(c.isalpha() for c in str(g)) >= 2]
    return out[:n]


def resolve_sets(gene_sets, species: str | None, names: pd.Index) -> ResolvedSets:
    """Gene sets as a collection; the species detected from the data when not given."""
    data_species = _gs.detect_species(_sample(names))
    if gene_sets is None and species is None:
        if data_species is None:
            raise ValueError(
                f"could not detect the species from the gene names (e.g. {_examples(names)}); "
                "pass species='human' or species='mouse'."
            )
        species = data_species
    collection = _gs.as_collection(gene_sets, species=species)
    set_species = _gs.detect_species(_sample(collection.genes)) or collection.species
    if data_species is not None and set_species is not None and data_species != set_species:
        data_ex, set_ex = _examples(names), _examples(collection.genes)
        if gene_sets is None:
            fix = f"pass species={data_species!r} (or leave species=None to detect it)"
        else:
            fix = (
                f"pass species={data_species!r} with gene_sets=None for the curated {data_species} sets, "
                f"or convert your sets to {data_species} symbols"
            )
        raise ValueError(
            f"the gene names of the data look {data_species} (e.g. {data_ex}) but the gene sets are "
            f"{set_species} (e.g. {set_ex}); {fix}."
        )
    return ResolvedSets(collection, set_species or data_species or species, data_species, set_species)


def map_sets(collection, names: pd.Index) -> tuple[list[str], list[np.ndarray], dict[str, list[str]]]:
    """Per set: column indices of its genes present in the data (set order) and the missing genes."""
    set_names, indices, missing = [], [], {}
    for name in collection.names:
        genes = list(dict.fromkeys(collection[name].genes))
        pos = names.get_indexer(genes)
        set_names.append(name)
        indices.append(pos[pos >= 0].astype(np.int64))
        missing[name] = [g for g, p in zip(genes, pos) if p < 0]
    return set_names, indices, missing


def no_sets_message(
    n_sets: int, min_genes: int, best: tuple[str, int] | None, names: pd.Index, source: str, resolved: ResolvedSets
) -> str:
    style = _gs.detect_id_type(_sample(names))
    species = resolved.data_species or "undetermined-species"
    best_txt = f" (best: {best[0]!r} with {best[1]})" if best else ""
    return (
        f"none of the {n_sets} gene set(s) has at least min_genes={min_genes} usable genes in the data{best_txt}. "
        f"Genes were matched on {source}, which look like {species} {style}s (e.g. {_examples(names)}); "
        f"the sets' genes look {resolved.set_species or 'undetermined'} (e.g. {_examples(resolved.collection.genes)}). "
        "Check species=, gene_symbols= and the gene sets, or lower min_genes."
    )


def parse_signed(gene: str) -> tuple[str, bool]:
    """``"CD8A-"`` -> ``("CD8A", True)``, ``"CD8A+"`` / ``"CD8A"`` -> ``("CD8A", False)``.

    UCell's rule: the name is stripped of white space, then a trailing ``+`` or ``-`` is the sign.
    """
    name = str(gene).strip()
    if name.endswith("+"):
        return name[:-1], False
    if name.endswith("-"):
        return name[:-1], True
    return name, False


def map_signed_sets(collection, names: pd.Index):
    """:func:`map_sets` for signed signatures (``GENE+`` / ``GENE-``).

    Returns ``(set_names, indices, missing, signs, n_absent)``: per set the column indices of the
    present genes in set order, the missing genes (as written in the set), a bool array marking
    the negative genes of ``indices``, and ``(absent positive, absent negative)`` counts.
    """
    set_names, indices, missing, signs, n_absent = [], [], {}, [], []
    for name in collection.names:
        parsed = list(dict.fromkeys(parse_signed(g) for g in collection[name].genes))
        written = {p: g for g, p in zip(collection[name].genes, (parse_signed(g) for g in collection[name].genes))}
        pos = names.get_indexer([gene for gene, _ in parsed])
        negative = np.array([neg for _, neg in parsed], dtype=bool)
        set_names.append(name)
        indices.append(pos[pos >= 0].astype(np.int64))
        signs.append(negative[pos >= 0])
        missing[name] = [written[p] for p, at in zip(parsed, pos) if at < 0]
        n_absent.append((int(np.sum((pos < 0) & ~negative)), int(np.sum((pos < 0) & negative))))
    return set_names, indices, missing, signs, n_absent


def suffixed_genes(collection) -> dict[str, list[str]]:
    """Per set, the genes written with a trailing ``+`` or ``-`` (signed-signature notation)."""
    out = {}
    for name in collection.names:
        genes = [g for g in collection[name].genes if str(g).strip().endswith(("+", "-"))]
        if genes:
            out[name] = genes
    return out
