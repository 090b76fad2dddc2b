"""Multi-hit model per donor and the sperm-retrieval biomarker harness.

- :func:`multihit`: robust z-scores of the six multi-hit axes per donor (ingredients in
  ``axes.yaml``), germ-cell apoptosis, histology and the apoptosis context from the rule table
  ``context_rules.yaml``, with one evidence sentence per donor.
- :func:`retrieval_model`: nested cross-validated prediction of sperm-retrieval (TESE) success
  from any per-donor table, with bootstrap and permutation uncertainty (:class:`RetrievalResult`).
"""

from ._axes import load_axes, robust_z
from ._context import load_rules
from ._multihit import multihit
from ._retrieval import RetrievalResult, retrieval_model

__all__ = ["multihit", "retrieval_model", "RetrievalResult", "load_axes", "load_rules", "robust_z"]
