"""Cell-type annotation and cell-type-resolved apoptosis statistics.

One file per public function:

- :func:`annotate_testis` (``_annotate.py``): marker-based labels for the 12 fine cell types.
- :func:`harmonize_labels` (``_harmonize.py`` + ``label_aliases.yaml``): published labels ->
  vocabulary.
- :func:`apoptosis_profile` (``_profile.py``): per sample x cell type x gene-set summaries.
- :func:`compare_conditions` (``_compare.py``): donor-level inference between conditions.
- :func:`compare_composition` (``_composition.py``): donor-level cell-type proportions (propeller-style).
- :func:`enrichment` (``_enrichment.py``): pseudobulk ranking + gseapy prerank per cell type.
- :func:`panel_coverage` (``_panels.py`` + ``panel_markers.yaml``): can a gene panel call each type?

``_likelihood.py`` holds the count-likelihood model behind ``annotate_testis``.

``_stats.py`` holds the donor-level statistics (Welch, Hedges' g, permutation, moderated t).
"""

from ._annotate import annotate_testis
from ._compare import compare_conditions
from ._composition import compare_composition
from ._enrichment import enrichment
from ._harmonize import harmonize_labels, label_sources
from ._panels import panel_coverage
from ._profile import apoptosis_profile

__all__ = [
    "annotate_testis",
    "apoptosis_profile",
    "compare_conditions",
    "compare_composition",
    "enrichment",
    "harmonize_labels",
    "label_sources",
    "panel_coverage",
]
