"""Methods whose score is linear in expression, :math:`S = XW + b` (``score_genes``, ``zmean``).

Such a method only has to build its sparse gene-major weight matrix ``W`` and offsets ``b`` once
(:class:`LinearPlan`); every row block is then one pass over its non-zeros
(:func:`~noa_omics.scoring._kernels.linear_scores`), the floor set by the bare product ``X @ W``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._kernels import linear_scores


@dataclass
class LinearPlan:
    """Gene-major weights ``W`` and offsets ``b`` of :math:`S = XW + b`."""

    w_ptr: np.ndarray
    w_set: np.ndarray
    w_val: np.ndarray
    offset: np.ndarray
    n_control: np.ndarray  #: control genes per set (for the record; zeros where not applicable)


def score_linear_block(block, plan: LinearPlan, parallel: bool) -> np.ndarray:
    """Scores of one row block under a linear plan."""
    return linear_scores(block, plan.w_ptr, plan.w_set, plan.w_val, plan.offset, parallel)
