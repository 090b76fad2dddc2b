"""Per-cell gene-set scoring (``noa.tl.score``).

One file per method (``_score_genes.py``, ``_aucell.py``, ``_ucell.py``, ``_zmean.py``), each with
its formula, reference and a ``MethodMeta`` declaration listed in ``_registry.py``.
"""

from ._base import ScoringError
from ._registry import METHODS, methods
from ._score import score
from ._smooth import smooth_scores

__all__ = ["score", "methods", "METHODS", "ScoringError", "smooth_scores"]
