"""Gene universe and expression programmes of the simulated testis data.

The programmes are the curated gene sets of :func:`noa_omics.genesets.load` (so that scoring the
demo data with the library recovers what was planted); ``uns["demo"]["genesets_version"]``
records the library version.

The background genes are ~100 real housekeeping/ribosomal/mitochondrial symbols plus numbered
``BG00001``-style symbols (``Bg00001`` for mouse), so that species detection from symbol style
works on the demo data.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from .._vocabulary import CELL_TYPES

#: AZF regions (human protein-coding genes; facts/genes.md section 2) and their mouse Y orthologs.
AZF_REGIONS: dict[str, dict[str, tuple[str, ...]]] = {
    "human": {
        "a": ("USP9Y", "DDX3Y", "UTY"),
        "b": ("RBMY1A1", "PRY", "HSFY1", "HSFY2", "EIF1AY", "KDM5D", "CDY2A", "RPS4Y2", "XKRY"),
        "c": ("DAZ1", "DAZ2", "DAZ3", "DAZ4", "BPY2", "CDY1", "CSPG4LY"),
    },
    "mouse": {"a": ("Usp9y", "Ddx3y", "Uty"), "b": ("Kdm5d", "Rbmy"), "c": ()},
}

#: Y-chromosome genes expressed broadly (all cells of a male donor) and in germ cells only.
Y_BROAD: dict[str, tuple[str, ...]] = {
    "human": ("RPS4Y1", "DDX3Y", "UTY", "KDM5D", "EIF1AY", "USP9Y", "ZFY"),
    "mouse": ("Ddx3y", "Uty", "Kdm5d", "Eif2s3y", "Usp9y", "Zfy1"),
}
Y_GERM: dict[str, tuple[str, ...]] = {
    "human": ("DAZ1", "DAZ2", "DAZ3", "DAZ4", "BPY2", "CDY1", "RBMY1A1", "HSFY1", "PRY", "TSPY1", "CSPG4LY"),
    "mouse": ("Rbmy", "Zfy2", "Sly"),
}
XIST: dict[str, str] = {"human": "XIST", "mouse": "Xist"}

_HOUSEKEEPING_HUMAN: tuple[str, ...] = (
    "ACTB", "GAPDH", "B2M", "TMSB4X", "TPT1", "EEF1A1", "EEF2", "FTL", "FTH1", "UBC", "UBB", "PPIA",
    "HSP90AB1", "MALAT1", "NEAT1", "PTMA", "HNRNPA1", "NPM1", "NACA", "SERF2", "MYL6", "CFL1", "PFN1",
    "ARPC2", "TMSB10", "S100A6", "OAZ1", "COX4I1", "ATP5F1E", "UQCRH", "NDUFA4", "PSMA7", "PSMB1",
    "CALM2", "YWHAZ", "SRSF3", "H3-3B", "EIF4A1", "EIF3E", "PABPC1", "TUBA1B", "TPI1", "PGK1", "LDHA",
    "ENO1", "ALDOA", "PKM", "SOD1", "GSTP1", "ITM2B", "SELENOW", "BTF3", "FAU", "UBA52", "RACK1",
    "RPLP0", "RPLP1", "RPLP2", "RPL3", "RPL4", "RPL5", "RPL7", "RPL8", "RPL10", "RPL11", "RPL13",
    "RPL13A", "RPL18", "RPL19", "RPL21", "RPL23", "RPL27A", "RPL30", "RPL32", "RPL34", "RPL37",
    "RPL41", "RPS2", "RPS3", "RPS3A", "RPS6", "RPS8", "RPS11", "RPS12", "RPS14", "RPS18", "RPS19",
    "RPS23", "RPS24", "RPS27", "RPS27A", "RPS28", "RPS29",
)
_MITO_HUMAN: tuple[str, ...] = (
    "MT-ND1", "MT-ND2", "MT-CO1", "MT-CO2", "MT-ATP8", "MT-ATP6", "MT-CO3", "MT-ND3", "MT-ND4L",
    "MT-ND4", "MT-ND5", "MT-ND6", "MT-CYB",
)


def _mouse_symbol(human: str) -> str:
    """Mouse style (capitalised) of a housekeeping/mitochondrial symbol; background genes only."""
    if human.startswith("MT-"):
        return "mt-" + human[3:].capitalize()
    return human[0] + human[1:].lower()


def housekeeping(species: str) -> tuple[str, ...]:
    """Real housekeeping and ribosomal symbols used as high-abundance background genes."""
    if species == "human":
        return _HOUSEKEEPING_HUMAN
    return tuple(_mouse_symbol(g) for g in _HOUSEKEEPING_HUMAN)


def mitochondrial(species: str) -> tuple[str, ...]:
    """Mitochondrially encoded protein-coding genes (``MT-``/``mt-`` prefix), for QC."""
    if species == "human":
        return _MITO_HUMAN
    return tuple(_mouse_symbol(g) for g in _MITO_HUMAN)


def background_names(n: int, species: str) -> tuple[str, ...]:
    """Numbered background symbols: ``BG00001`` (human style) or ``Bg00001`` (mouse style)."""
    prefix = "BG" if species == "human" else "Bg"
    return tuple(f"{prefix}{i:05d}" for i in range(1, n + 1))


@dataclass(frozen=True)
class Programmes:
    """Gene programmes of the simulation.

    Attributes
    ----------
    sets
        Gene-set name -> genes (the curated library).
    version
        Library version string.
    species
        ``"human"`` or ``"mouse"``.
    """

    sets: Mapping[str, tuple[str, ...]]
    version: str
    species: str

    def get(self, name: str) -> tuple[str, ...]:
        """Genes of a set; an empty tuple when the library has no such set."""
        return tuple(self.sets.get(name, ()))

    def marker(self, cell_type: str) -> tuple[str, ...]:
        """Genes of ``marker_<cell_type>``."""
        return self.get(f"marker_{cell_type}")


def load_programmes(species: str) -> Programmes:
    """Programmes from the curated library :func:`noa_omics.genesets.load`."""
    from ..genesets import load

    library = load(species)
    sets = {name: tuple(library[name].genes) for name in library.names}
    return Programmes(sets=sets, version=str(library.version), species=species)


def marker_cell_types() -> tuple[str, ...]:
    """Cell types with a ``marker_<type>`` programme (every fine type except ``other``)."""
    return tuple(t for t in CELL_TYPES if t != "other")
