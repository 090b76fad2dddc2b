"""Gene universe and expression programmes of the simulated testis data.

The programmes are the curated gene sets of :func:`noa_omics.genesets.load` (so that scoring the
demo data with the library recovers what was planted). Until the library files are present (or if
they cannot be read), a small built-in fallback with the same set names is used and
``uns["demo"]["genesets_version"]`` says ``"builtin-fallback"``.

The background genes are ~100 real housekeeping/ribosomal/mitochondrial symbols plus numbered
``BG00001``-style symbols (``Bg00001`` for mouse), so that species detection from symbol style
works on the demo data.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from .._vocabulary import CELL_TYPES

#: Minimal fallback programmes (human symbols), used only while the curated library is absent.
_FALLBACK_HUMAN: dict[str, tuple[str, ...]] = {
    "marker_SSC": ("UTF1", "ID4", "FGFR3", "TSPAN33", "PIWIL4", "ZBTB16", "SALL4", "GFRA1"),
    "marker_spermatogonia": ("DMRT1", "KIT", "STRA8", "MKI67", "DAZL", "SOHLH1", "DMRTB1", "TOP2A"),
    "marker_spermatocyte": ("SYCP3", "SYCP1", "SPO11", "DMC1", "MEIOB", "PIWIL1", "HORMAD1", "TEX101"),
    "marker_round_spermatid": ("ACRV1", "SPACA1", "SPATA9", "TSSK6", "CRISP2", "SUN5", "TXNDC2"),
    "marker_elongating_spermatid": ("PRM1", "PRM2", "TNP1", "TNP2", "ODF1", "AKAP4", "CAPZA3"),
    "marker_sertoli": ("SOX9", "WT1", "CLU", "FATE1", "CITED1", "SOX8", "DHH"),
    "marker_leydig": ("CYP17A1", "STAR", "INSL3", "CYP11A1", "HSD3B2", "LHCGR", "IGF2"),
    "marker_peritubular_myoid": ("MYH11", "ACTA2", "DES", "CNN1", "TAGLN", "PDGFRB"),
    "marker_endothelial": ("PECAM1", "VWF", "CDH5", "CLDN5", "EMCN"),
    "marker_macrophage": ("CD68", "CD163", "C1QA", "C1QB", "LYZ", "CSF1R"),
    "marker_t_cell": ("CD3D", "CD3E", "CD2", "CCL5", "IL7R", "TRAC"),
    "apoptosis_intrinsic": ("BAX", "BAK1", "BCL2L11", "BID", "PMAIP1", "BBC3", "CYCS", "APAF1", "CASP9", "DIABLO"),
    "apoptosis_extrinsic": ("FAS", "FASLG", "TNFSF10", "TNFRSF10B", "FADD", "CASP8", "TNFRSF1A", "RIPK1"),
    "apoptosis_checkpoint": ("TP53", "TP63", "CHEK2", "ATM", "TRIP13", "CDKN1A", "GADD45A", "MDM2"),
    "apoptosis_execution": ("CASP3", "CASP7", "CASP6", "DFFA", "DFFB"),
    "apoptosis_antiapoptotic": ("BCL2", "BCL2L1", "BCL2L2", "MCL1", "XIAP", "CFLAR", "BIRC3"),
    "stress_oxidative": ("HMOX1", "NQO1", "GPX1", "GPX4", "SOD1", "SOD2", "TXNRD1", "GCLM", "CAT", "PRDX1"),
    "stress_heat": ("HSPA1A", "HSPA1B", "HSPH1", "DNAJB1", "HSPB1", "HSP90AA1"),
    "stress_er": ("HSPA5", "DDIT3", "ATF4", "XBP1", "ERN1", "ATF6", "HERPUD1"),
    "inflammation": ("IL1B", "IL6", "TNF", "CXCL8", "CCL2", "NFKBIA", "PTGS2", "IL18", "ICAM1"),
    "epigenetic_regulation": ("DNMT1", "DNMT3A", "DNMT3B", "TET1", "TET2", "EZH2", "KDM1A", "HDAC1"),
    "endocrine_leydig_steroidogenesis": ("STAR", "CYP11A1", "HSD3B2", "CYP17A1", "HSD17B3", "LHCGR"),
    "endocrine_sertoli_response": ("FSHR", "AR", "INHBB", "GATA4", "NR0B1"),
    "niche_btb": ("CLDN11", "TJP1", "OCLN", "GJA1", "CDH2", "ITGB1"),
    "sertoli_immaturity": ("AMH", "KRT18", "KRT8", "VIM"),
    "leydig_immaturity": ("DLK1", "PDGFRA", "NES", "THY1", "TCF21"),
    "genetic_azf": (
        "USP9Y", "DDX3Y", "UTY", "KDM5D", "EIF1AY", "RBMY1A1", "HSFY1", "PRY",
        "DAZ1", "DAZ2", "DAZ3", "DAZ4", "BPY2", "CDY1",
    ),
    "genetic_noa_risk": ("TEX11", "TEX14", "TEX15", "SYCE1", "STAG3", "SHOC1", "M1AP", "NR5A1", "FANCM"),
    "control_dissociation": ("FOS", "FOSB", "JUN", "JUNB", "EGR1", "ATF3", "IER2", "DUSP1", "ZFP36"),
}

#: Human -> mouse symbols for the fallback where capitalisation is not the ortholog.
_FALLBACK_MOUSE_EXCEPTIONS: dict[str, str | None] = {
    "TP53": "Trp53", "TP63": "Trp63", "HSD3B2": "Hsd3b1", "CXCL8": None, "FASLG": "Fasl",
    "DAZ1": None, "DAZ2": None, "DAZ3": None, "DAZ4": None, "BPY2": None, "CDY1": None,
    "PRY": None, "HSFY1": None, "EIF1AY": None, "RBMY1A1": "Rbmy", "TRAC": "Trac",
}

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


def _mouse_symbol(human: str) -> str | None:
    if human in _FALLBACK_MOUSE_EXCEPTIONS:
        return _FALLBACK_MOUSE_EXCEPTIONS[human]
    if human.startswith("MT-"):
        return "mt-" + human[3:].capitalize()
    return human[0] + human[1:].lower()


def _fallback(species: str) -> dict[str, tuple[str, ...]]:
    if species == "human":
        return dict(_FALLBACK_HUMAN)
    out = {}
    for name, genes in _FALLBACK_HUMAN.items():
        mapped = tuple(dict.fromkeys(m for g in genes if (m := _mouse_symbol(g)) is not None))
        out[name] = mapped
    return out


def housekeeping(species: str) -> tuple[str, ...]:
    """Real housekeeping and ribosomal symbols used as high-abundance background genes."""
    if species == "human":
        return _HOUSEKEEPING_HUMAN
    return tuple(m for g in _HOUSEKEEPING_HUMAN if (m := _mouse_symbol(g)) is not None)


def mitochondrial(species: str) -> tuple[str, ...]:
    """Mitochondrially encoded protein-coding genes (``MT-``/``mt-`` prefix), for QC."""
    if species == "human":
        return _MITO_HUMAN
    return tuple(m for g in _MITO_HUMAN if (m := _mouse_symbol(g)) is not None)


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
        Gene-set name -> genes (the curated library or the built-in fallback).
    version
        Library version string, or ``"builtin-fallback"``.
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
    """Programmes from :func:`noa_omics.genesets.load`, or the built-in fallback when unavailable."""
    try:
        from ..genesets import load

        library = load(species)
        sets = {name: tuple(library[name].genes) for name in library.names}
        version = str(library.version)
    except (ImportError, OSError, ValueError, KeyError) as err:  # library absent or incomplete
        import warnings

        warnings.warn(f"gene-set library unavailable ({err}); demo data use the built-in fallback programmes.",
                      stacklevel=3)
        sets = _fallback(species)
        version = "builtin-fallback"
    return Programmes(sets=sets, version=version, species=species)


def marker_cell_types() -> tuple[str, ...]:
    """Cell types with a ``marker_<type>`` programme (every fine type except ``other``)."""
    return tuple(t for t in CELL_TYPES if t != "other")
