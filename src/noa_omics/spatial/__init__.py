"""Spatial niche analysis (``noa.spatial``): seminiferous-tubule segmentation and niche metrics.

>>> import noa_omics as noa
>>> adata = noa.datasets.demo_spatial(seed=0, n_tubules=20, expression=False)
>>> tubules = noa.spatial.assign_tubules(adata)           # obs["noa_tubule"]
>>> metrics = noa.spatial.tubule_metrics(adata)            # one row per tubule
>>> summary = noa.spatial.niche_summary(adata, sample_key="sample")  # one row per sample
>>> shapes = noa.spatial.tubule_shapes(adata)              # GeoDataFrame, one outline per tubule
"""

from ._agreement import tubule_agreement, tubule_recovery
from ._compare import compare_tubules, tubules_per_donor
from ._metrics import NCI_WEIGHTS, tubule_metrics
from ._outlines import assign_tubules_from_outlines, read_outlines, write_outlines
from ._shapes import tubule_shapes
from ._spatialdata import from_spatialdata, tubules_to_spatialdata
from ._summary import niche_summary
from ._tubules import assign_tubules

__all__ = [
    "assign_tubules",
    "tubule_metrics",
    "niche_summary",
    "compare_tubules",
    "tubules_per_donor",
    "NCI_WEIGHTS",
    "tubule_agreement",
    "tubule_recovery",
    "tubule_shapes",
    "read_outlines",
    "write_outlines",
    "assign_tubules_from_outlines",
    "from_spatialdata",
    "tubules_to_spatialdata",
]
