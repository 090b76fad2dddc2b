"""Fixed vocabulary shared by every module (see ``CONTRACT.md``).

These strings are part of the public contract: users' notebooks, the workflow and the
acceptance checks compare against them, so they never change spelling.
"""

from __future__ import annotations

from types import MappingProxyType

#: Fine cell types, ``obs["noa_cell_type"]``; germ stages first, in developmental order.
GERM_STAGES: tuple[str, ...] = (
    "SSC",
    "spermatogonia",
    "spermatocyte",
    "round_spermatid",
    "elongating_spermatid",
)
CELL_TYPES: tuple[str, ...] = GERM_STAGES + (
    "sertoli",
    "leydig",
    "peritubular_myoid",
    "endothelial",
    "macrophage",
    "t_cell",
    "other",
)

#: Broad classes, ``obs["noa_cell_class"]``.
CELL_CLASSES: tuple[str, ...] = (
    "germ",
    "sertoli",
    "leydig",
    "peritubular_myoid",
    "endothelial",
    "immune",
    "other",
)

#: Fine type -> broad class.
CELL_TYPE_TO_CLASS: MappingProxyType[str, str] = MappingProxyType(
    {
        **{stage: "germ" for stage in GERM_STAGES},
        "sertoli": "sertoli",
        "leydig": "leydig",
        "peritubular_myoid": "peritubular_myoid",
        "endothelial": "endothelial",
        "macrophage": "immune",
        "t_cell": "immune",
        "other": "other",
    }
)

#: Histology classes, per tubule and per sample.
HISTOLOGIES: tuple[str, ...] = (
    "normal",
    "hypospermatogenesis",
    "maturation_arrest",
    "sertoli_cell_only",
)

#: Multi-hit axes.
AXES: tuple[str, ...] = ("genetic", "endocrine", "oxidative", "epigenetic", "inflammation", "niche")

#: Apoptosis context calls. ``not_elevated``: germ-cell apoptosis is not elevated, so it is not what
#: drives the loss (upstream hits are still listed in the evidence); ``indeterminate``: apoptosis is
#: elevated without an identified cause, or the evidence conflicts or cannot be evaluated.
APOPTOSIS_CONTEXTS: tuple[str, ...] = (
    "protective",
    "irreversible",
    "potentially_reversible",
    "not_elevated",
    "indeterminate",
)

#: Gene-set categories.
GENESET_CATEGORIES: tuple[str, ...] = (
    "apoptosis",
    "stress",
    "inflammation",
    "epigenetic",
    "endocrine",
    "niche",
    "genetic",
    "marker",
    "control",
)

#: Directions of a gene set relative to apoptosis.
DIRECTIONS: tuple[str, ...] = ("pro", "anti")

SPECIES: tuple[str, ...] = ("human", "mouse")


def cell_class_of(cell_type: str) -> str:
    """Broad class of a fine cell type (``other`` for anything outside the vocabulary)."""
    return CELL_TYPE_TO_CLASS.get(cell_type, "other")
