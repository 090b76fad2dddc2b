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
- :mod:`noa.pipeline`  the pipeline of the command line and the workflow (loaded on first use)
"""

import importlib as _importlib

from ._version import __version__
from . import genesets, tl, spatial, datasets, pl

__all__ = ["__version__", "genesets", "tl", "spatial", "datasets", "pl", "pipeline"]


def __getattr__(name: str):
    # ``noa.pipeline`` as an attribute, imported lazily (it pulls in the report and figures)
    if name == "pipeline":
        return _importlib.import_module(".pipeline", __name__)
    raise AttributeError(f"module 'noa_omics' has no attribute {name!r}")
