"""Gene-set data structures: :class:`GeneSet` and :class:`GeneSetCollection`."""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

import pandas as pd

from .._io import write_text
from .._vocabulary import AXES, DIRECTIONS, GENESET_CATEGORIES, SPECIES

#: Version string of collections that do not come from the curated library.
CUSTOM_VERSION = "custom"


@dataclass(frozen=True)
class GeneSet:
    """One gene set.

    Attributes
    ----------
    name
        Unique name (e.g. ``"apoptosis_intrinsic"``).
    genes
        Gene symbols in the symbol style of ``species``, without duplicates.
    category
        One of :data:`noa_omics._vocabulary.GENESET_CATEGORIES`, or None for user sets.
    axis
        Multi-hit axis (one of :data:`noa_omics._vocabulary.AXES`) or None.
    direction
        ``"pro"`` / ``"anti"`` (relative to apoptosis) or None.
    description
        What biology the set captures.
    sources
        Database identifiers (``GO:…``, ``R-HSA-…``, ``hsa…``, MSigDB names).
    references
        PMIDs (``PMID:…``) or DOIs (``doi:…``).
    species
        ``"human"``, ``"mouse"`` or None when unknown.
    dropped
        Human genes of the curated set without a one-to-one mouse ortholog (mouse sets only).
    notes
        Curation notes (unverified facts are flagged here).
    """

    name: str
    genes: tuple[str, ...]
    category: str | None = None
    axis: str | None = None
    direction: str | None = None
    description: str = ""
    sources: tuple[str, ...] = ()
    references: tuple[str, ...] = ()
    species: str | None = None
    dropped: tuple[str, ...] = field(default=(), compare=False)
    notes: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            raise ValueError(f"a gene set needs a non-empty string name, got {self.name!r}.")
        if isinstance(self.genes, str) or not isinstance(self.genes, Iterable):
            raise TypeError(
                f"genes of gene set {self.name!r} must be an iterable of symbols (list/tuple), "
                f"got {type(self.genes).__name__}; wrap a single gene as ['{self.genes}']."
            )
        genes = tuple(self.genes)
        object.__setattr__(self, "genes", genes)
        object.__setattr__(self, "sources", tuple(self.sources))
        object.__setattr__(self, "references", tuple(self.references))
        object.__setattr__(self, "dropped", tuple(self.dropped))
        bad = [g for g in genes if not isinstance(g, str) or not g.strip() or g != g.strip()]
        if bad:
            raise ValueError(
                f"gene set {self.name!r} has invalid gene symbols {bad[:5]!r}; "
                "genes must be non-empty strings without surrounding whitespace."
            )
        if not genes:
            raise ValueError(f"gene set {self.name!r} is empty; give it at least one gene.")
        dup = duplicates(genes)
        if dup:
            raise ValueError(f"gene set {self.name!r} lists genes more than once: {dup}; remove the duplicates.")
        if self.category is not None and self.category not in GENESET_CATEGORIES:
            raise ValueError(
                f"gene set {self.name!r}: unknown category {self.category!r}; use one of {list(GENESET_CATEGORIES)}."
            )
        if self.axis is not None and self.axis not in AXES:
            raise ValueError(f"gene set {self.name!r}: unknown axis {self.axis!r}; use one of {list(AXES)} or None.")
        if self.direction is not None and self.direction not in DIRECTIONS:
            raise ValueError(
                f"gene set {self.name!r}: unknown direction {self.direction!r}; use one of {list(DIRECTIONS)} or None."
            )
        if self.species is not None and self.species not in SPECIES:
            raise ValueError(f"gene set {self.name!r}: unknown species {self.species!r}; use one of {list(SPECIES)}.")

    def __len__(self) -> int:
        return len(self.genes)


def duplicates(genes: Iterable[str]) -> list[str]:
    """The genes listed more than once, sorted."""
    return sorted(g for g, n in Counter(genes).items() if n > 1)


def _as_selection(value: str | Iterable[str] | None, *, name: str) -> frozenset[str] | None:
    if value is None:
        return None
    if isinstance(value, str):
        return frozenset([value])
    if isinstance(value, Iterable):
        values = list(value)
        if not all(isinstance(v, str) for v in values):
            raise TypeError(f"`{name}` must be a string or a list of strings, got {values!r}.")
        return frozenset(values)
    raise TypeError(f"`{name}` must be a string or a list of strings, got {type(value).__name__}.")


class GeneSetCollection(Mapping):
    """Read-only mapping ``name -> GeneSet`` with library metadata.

    Parameters
    ----------
    gene_sets
        The gene sets (names must be unique).
    species
        ``"human"``, ``"mouse"`` or None when unknown (custom sets).
    version
        Library version (``"2026.11.0"`` for the curated library, ``"custom"`` otherwise).

    Examples
    --------
    >>> import noa_omics as noa
    >>> gs = noa.genesets.load("human")
    >>> gs.filter(category="apoptosis").to_network().columns.tolist()
    ['source', 'target', 'weight']
    """

    def __init__(self, gene_sets: Iterable[GeneSet], *, species: str | None = None, version: str = CUSTOM_VERSION):
        sets: dict[str, GeneSet] = {}
        for gs in gene_sets:
            if not isinstance(gs, GeneSet):
                raise TypeError(f"a GeneSetCollection holds GeneSet objects, got {type(gs).__name__}.")
            if gs.name in sets:
                raise ValueError(f"duplicated gene set name {gs.name!r}; gene set names must be unique.")
            sets[gs.name] = gs
        if species is not None and species not in SPECIES:
            raise ValueError(f"unknown species {species!r}; use one of {list(SPECIES)} or None.")
        self._sets = MappingProxyType(sets)
        self._species = species
        self._version = str(version)

    # Mapping protocol ------------------------------------------------------------------------
    def __getitem__(self, name: str) -> GeneSet:
        try:
            return self._sets[name]
        except KeyError:
            raise KeyError(
                f"gene set {name!r} not found; available: {', '.join(self._sets) or '(none)'}."
            ) from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._sets)

    def __len__(self) -> int:
        return len(self._sets)

    def __contains__(self, name: object) -> bool:
        return name in self._sets

    def __repr__(self) -> str:
        return (
            f"GeneSetCollection({len(self)} sets, species={self._species!r}, version={self._version!r})"
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, GeneSetCollection):
            return NotImplemented
        return (
            list(self._sets.values()) == list(other._sets.values())
            and self._species == other._species
            and self._version == other._version
        )

    __hash__ = None  # type: ignore[assignment]

    # Metadata --------------------------------------------------------------------------------
    @property
    def names(self) -> tuple[str, ...]:
        """Names of the sets, in library order."""
        return tuple(self._sets)

    @property
    def species(self) -> str | None:
        """Species of the symbols (``"human"``, ``"mouse"`` or None)."""
        return self._species

    @property
    def version(self) -> str:
        """Library version (``"custom"`` for user-supplied sets)."""
        return self._version

    @property
    def genes(self) -> tuple[str, ...]:
        """Union of all genes, in first-seen order."""
        return tuple(dict.fromkeys(g for gs in self._sets.values() for g in gs.genes))

    # Selection -------------------------------------------------------------------------------
    def filter(
        self,
        category: str | Iterable[str] | None = None,
        axis: str | Iterable[str] | None = None,
        names: str | Iterable[str] | None = None,
        direction: str | Iterable[str] | None = None,
    ) -> GeneSetCollection:
        """Sets matching every given criterion (each criterion: one value or a list of values).

        Raises
        ------
        ValueError
            For a category / axis / direction outside the vocabulary.
        KeyError
            For names not in the collection.
        """
        cats = _as_selection(category, name="category")
        axes = _as_selection(axis, name="axis")
        dirs = _as_selection(direction, name="direction")
        wanted = _as_selection(names, name="names")
        if cats is not None and not cats <= set(GENESET_CATEGORIES):
            raise ValueError(
                f"unknown category {sorted(cats - set(GENESET_CATEGORIES))}; use one of {list(GENESET_CATEGORIES)}."
            )
        if axes is not None and not axes <= set(AXES):
            raise ValueError(f"unknown axis {sorted(axes - set(AXES))}; use one of {list(AXES)}.")
        if dirs is not None and not dirs <= set(DIRECTIONS):
            raise ValueError(f"unknown direction {sorted(dirs - set(DIRECTIONS))}; use one of {list(DIRECTIONS)}.")
        if wanted is not None and not wanted <= set(self._sets):
            raise KeyError(
                f"gene set(s) {sorted(wanted - set(self._sets))} not found; available: {', '.join(self._sets)}."
            )
        kept = [
            gs
            for gs in self._sets.values()
            if (cats is None or gs.category in cats)
            and (axes is None or gs.axis in axes)
            and (dirs is None or gs.direction in dirs)
            and (wanted is None or gs.name in wanted)
        ]
        return GeneSetCollection(kept, species=self._species, version=self._version)

    # Export ----------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, list[str]]:
        """``{name: [genes]}``."""
        return {name: list(gs.genes) for name, gs in self._sets.items()}

    def to_network(self) -> pd.DataFrame:
        """Long table in the decoupler layout: columns ``source`` (set), ``target`` (gene), ``weight``.

        ``weight`` is -1 for the genes of sets whose ``direction`` is ``"anti"``, 1 otherwise.
        """
        rows = [
            (gs.name, gene, -1.0 if gs.direction == "anti" else 1.0)
            for gs in self._sets.values()
            for gene in gs.genes
        ]
        return pd.DataFrame(rows, columns=["source", "target", "weight"]).astype(
            {"source": str, "target": str, "weight": float}
        )

    def to_frame(self) -> pd.DataFrame:
        """One row per set: name, category, axis, direction, n_genes, description, sources, references.

        ``sources`` and ``references`` are ``"; "``-joined strings.
        """
        columns = ["name", "category", "axis", "direction", "n_genes", "description", "sources", "references"]
        rows = [
            {
                "name": gs.name,
                "category": gs.category,
                "axis": gs.axis,
                "direction": gs.direction,
                "n_genes": len(gs.genes),
                "description": gs.description,
                "sources": "; ".join(gs.sources),
                "references": "; ".join(gs.references),
            }
            for gs in self._sets.values()
        ]
        return pd.DataFrame(rows, columns=columns)

    def to_gmt(self, path: str | os.PathLike) -> Path:
        """Write the sets to a GMT file (atomically: a temporary file, then ``os.replace``).

        Each line is ``name<TAB>description<TAB>gene1<TAB>gene2...``; tabs and line breaks in the
        description are replaced by spaces.
        """
        from ._gmt import format_gmt

        return write_text(path, format_gmt(self), create_parent=False)
