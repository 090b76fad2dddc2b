"""Curated, cited gene-set library for NOA testis omics (human and mouse).

>>> import noa_omics as noa
>>> gs = noa.genesets.load("human")
>>> gs.filter(category="apoptosis").names[:2]
('apoptosis_intrinsic', 'apoptosis_extrinsic')
"""

from ._geneset import GeneSet, GeneSetCollection
from ._gmt import read_gmt
from ._library import data_dir, library_info, load
from ._orthologs import orthologs, to_mouse
from ._resolve import as_collection
from ._species import detect_id_type, detect_species

__all__ = [
    "GeneSet",
    "GeneSetCollection",
    "as_collection",
    "data_dir",
    "detect_id_type",
    "detect_species",
    "library_info",
    "load",
    "orthologs",
    "read_gmt",
    "to_mouse",
]
