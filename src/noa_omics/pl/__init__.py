"""Plotting (``noa.pl``): matplotlib figures that return their axes, like scanpy.

Each concern keeps its plots in one private module; this namespace only re-exports them.
"""

from ._scores import score_embedding
from ._celltypes import celltype_heatmap, donor_scores, forest, enrichment, confusion_matrix
from ._spatial import tubules, histology_composition
from ._multihit import multihit_heatmap, multihit_profile
from ._composition import composition_bars, composition_effects

__all__ = ['score_embedding', 'celltype_heatmap', 'donor_scores', 'forest', 'enrichment', 'confusion_matrix', 'tubules', 'histology_composition', 'multihit_heatmap', 'multihit_profile', 'composition_bars', 'composition_effects']
