"""Spatial niche analysis (``noa.spatial``): seminiferous-tubule segmentation and niche metrics."""

from ._metrics import NCI_WEIGHTS, tubule_metrics
from ._tubules import assign_tubules

__all__ = ["assign_tubules", "tubule_metrics", "NCI_WEIGHTS"]
