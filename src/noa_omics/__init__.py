"""noa-omics: apoptosis and multi-hit analysis of NOA testis single-cell and spatial omics.

The package reads as the data flow::

    genesets -> scoring -> celltypes -> spatial -> multihit -> report / cli
                           (datasets and pl at the side)

Public namespaces (``import noa_omics as noa``):

- :mod:`noa.genesets`  curated, cited gene-set library (human and mouse)
- :mod:`noa.tl`        tools: scoring, annotation, profiles, statistics, multi-hit model
- :mod:`noa.spatial`   seminiferous-tubule segmentation and niche-collapse metrics
- :mod:`noa.pl`        plotting
- :mod:`noa.datasets`  embedded demo data and public testis atlases
"""

from ._version import __version__
from . import genesets, tl, spatial, datasets, pl

__all__ = ["__version__", "genesets", "tl", "spatial", "datasets", "pl"]
