"""Datasets (``noa.datasets``): embedded simulated demo data and readers for public testis atlases.

- :func:`demo_testis`: simulated single-cell cohort with planted ground truth (:class:`DonorSpec`,
  :func:`default_cohort`).
- :func:`composition_cohort`: per-cell labels of a cohort with overdispersed donor composition.
- :func:`demo_spatial`: simulated spatial data (seminiferous tubules) with truth columns.
- :func:`realistic_spatial`: irregular, elongated, bent, tightly packed tubules (shapely outlines).
- :func:`open_soma`, :func:`census_testis`: a TileDB-SOMA experiment or the CELLxGENE Census testis
  query as a streamed view (:class:`SomaCells`) that scoring reads in row blocks.
- :func:`registry`, :func:`load`: public testis datasets (YAML registry, pooch download cache,
  readers for 10x h5/mtx, h5ad, loom and text tables, label harmonisation); :func:`read` reads one
  local file.
"""

from ._census import SomaCells, census_filter, census_testis, open_soma
from ._composition_cohort import composition_cohort
from ._demo_testis import demo_testis
from ._donors import ApoptosisSpec, DonorSpec, Hits, default_cohort
from ._load import cache_path, load
from ._readers import read
from ._registry import register, registry, registry_markdown, unregister
from ._demo_spatial import demo_spatial, demo_spatial_for_donors
from ._realistic_spatial import SHAPE_CLASSES, realistic_spatial

__all__ = [
    "ApoptosisSpec",
    "SomaCells",
    "census_filter",
    "census_testis",
    "open_soma",
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
    "realistic_spatial",
    "SHAPE_CLASSES",
    "register",
    "registry",
    "registry_markdown",
    "unregister",
]
