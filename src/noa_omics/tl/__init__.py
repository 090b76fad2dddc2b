"""Tools (``noa.tl``): thin re-exports of the analysis steps, in data-flow order."""

from ..scoring import score
from ..scoring._accessor import get_scores, scores_to_obs
from ..celltypes import (
    annotate_testis,
    apoptosis_profile,
    compare_conditions,
    compare_composition,
    enrichment,
    harmonize_labels,
    panel_coverage,
)
from ..multihit import multihit, multihit_stability, retrieval_model

__all__ = [
    "score",
    "get_scores",
    "scores_to_obs",
    "annotate_testis",
    "harmonize_labels",
    "panel_coverage",
    "apoptosis_profile",
    "compare_conditions",
    "compare_composition",
    "enrichment",
    "multihit",
    "multihit_stability",
    "retrieval_model",
]
