"""Multi-hit model per donor and the sperm-retrieval biomarker harness.

- :func:`multihit`: robust z-scores of the six multi-hit axes per donor (ingredients in
  ``axes.yaml``), germ-cell apoptosis, histology and the apoptosis context from the rule table
  ``context_rules.yaml``, with one evidence sentence per donor.
- :func:`retrieval_model`: nested cross-validated prediction of sperm-retrieval (TESE) success
  from any per-donor table, with bootstrap and permutation uncertainty (:class:`RetrievalResult`).
- :func:`multihit_stability`: the multihit table with per-donor call stability (cell bootstrap and
  reference leave-one-out), z-score intervals and an ``unstable`` flag.
"""

from ._axes import load_axes, robust_z
from ._context import load_rules
from ._multihit import multihit
from ._retrieval import RetrievalResult, retrieval_model
from ._stability import multihit_stability

__all__ = ["multihit", "multihit_stability", "retrieval_model", "RetrievalResult", "load_axes", "load_rules", "robust_z"]
