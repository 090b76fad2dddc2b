"""Spatial niche analysis (``noa.spatial``): seminiferous-tubule segmentation and niche metrics.

>>> import noa_omics as noa
>>> adata = noa.datasets.demo_spatial(seed=0, n_tubules=20, expression=False)
>>> tubules = noa.spatial.assign_tubules(adata)           # obs["noa_tubule"]
>>> metrics = noa.spatial.tubule_metrics(adata)            # one row per tubule
>>> summary = noa.spatial.niche_summary(adata, sample_key="sample")  # one row per sample
"""

from ._agreement import tubule_agreement, tubule_recovery
from ._compare import compare_tubules, tubules_per_donor
from ._metrics import NCI_WEIGHTS, tubule_metrics
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
]
