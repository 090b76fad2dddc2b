"""Datasets (``noa.datasets``): embedded simulated demo data and readers for public testis atlases.

- :func:`demo_testis`: simulated single-cell cohort with planted ground truth (:class:`DonorSpec`,
  :func:`default_cohort`).
- :func:`composition_cohort`: per-cell labels of a cohort with overdispersed donor composition.
- :func:`demo_spatial`: simulated spatial data (seminiferous tubules) with truth columns.
- :func:`registry`, :func:`load`: public testis datasets (YAML registry, pooch download cache,
  readers for 10x h5/mtx, h5ad, loom and text tables, label harmonisation); :func:`read` reads one
  local file.
"""

from ._composition_cohort import composition_cohort
from ._demo_testis import demo_testis
from ._donors import ApoptosisSpec, DonorSpec, Hits, default_cohort
from ._load import cache_path, load
from ._readers import read
from ._registry import register, registry, registry_markdown, unregister
from ._demo_spatial import demo_spatial, demo_spatial_for_donors

__all__ = [
    "ApoptosisSpec",
    "DonorSpec",
    "Hits",
    "cache_path",
    "composition_cohort",
    "default_cohort",
    "demo_spatial",
    "demo_spatial_for_donors",
    "demo_testis",
    "load",
    "read",
    "register",
    "registry",
    "registry_markdown",
    "unregister",
]
