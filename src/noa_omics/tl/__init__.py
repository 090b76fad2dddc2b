"""Tools (``noa.tl``): thin re-exports of the analysis steps, in data-flow order."""

from ..scoring import score
from ..scoring._accessor import get_scores, scores_to_obs
from ..celltypes import (
    annotate_testis,
    apoptosis_profile,
    compare_conditions,
    enrichment,
    harmonize_labels,
)
from ..multihit import multihit, retrieval_model

__all__ = [
    "score",
    "get_scores",
    "scores_to_obs",
    "annotate_testis",
    "harmonize_labels",
    "apoptosis_profile",
    "compare_conditions",
    "enrichment",
    "multihit",
    "retrieval_model",
]
