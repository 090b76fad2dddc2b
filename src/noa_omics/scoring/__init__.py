"""Per-cell gene-set scoring (``noa.tl.score``).

One file per method (``_score_genes.py``, ``_aucell.py``, ``_ucell.py``, ``_zmean.py``), each with
its formula, reference and a ``MethodMeta`` declaration listed in ``_registry.py``.
"""

from ._registry import METHODS, methods
from ._score import score

__all__ = ["score", "methods", "METHODS"]
