r"""``ucell``: normalised Mann-Whitney U statistic of the set's genes in each cell (UCell).

Same definition as UCell (R) and pyUCell (``pyucell.compute_ucell_scores``, defaults
``max_rank=1500``, ``ties_method="average"``). In cell :math:`i`, genes with a non-zero value are
ranked by decreasing value, ties receiving their average rank; a gene whose rank exceeds
``max_rank`` (a tied group is kept or dropped as a whole by its average rank) and every gene with
a zero value gets :math:`r_{ig} = r_\mathrm{max}`. For a set of :math:`n` genes,

.. math::

   U_{i,S} = 1 - \frac{\sum_{g \in S} r_{ig} - \frac{n(n+1)}{2}}
                      {n\,r_\mathrm{max} - \frac{n(n+1)}{2}},

clipped at 0.

Signed signatures (UCell, pyUCell): genes written ``GENE+`` form the positive part
:math:`S^+` (a gene without suffix is positive), ``GENE-`` the negative part :math:`S^-`, and

.. math::

   \mathrm{score}_{i,S} = \max\bigl(0,\; U_{i,S^+} - w_\mathrm{neg}\, U_{i,S^-}\bigr),

with :math:`U` of an empty part equal to 0 and ``w_neg=1`` by default (``signed=False`` reads the
names as written).

Genes of the set absent from the data: ``missing_genes="skip"`` (the default) leaves them out of
:math:`S`; ``missing_genes="impute"`` (pyUCell's default) counts each at rank
:math:`r_\mathrm{max}`, so :math:`n` includes them. We skip by default because a gene absent from
the panel is not evidence that the cell does not express it: imputing pulls every cell's score
towards 0 by a factor that depends on how many set genes the platform happens to measure, so
scores of the same set would not be comparable across datasets with different gene panels.

Ranking is restricted to the genes that matter: per cell only the expressed genes of the sets are
sorted; the cell's values are then counted against each of their distinct values :math:`v`
(greater, equal: a vectorised pass per value, or a binary search per cell value when there are
many distinct set values), and
:math:`r = \#\{x > v\} + (\#\{x = v\} + 1)/2`. Genes outside every set are never ranked.

References
----------
Andreatta M, Carmona SJ (2021). UCell: Robust and scalable single-cell gene signature scoring.
Comput Struct Biotechnol J 19:3796-3798. doi:10.1016/j.csbj.2021.06.043
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numba as nb
import numpy as np
import scipy.sparse as sp

from .._validation import check_positive_int
from ._base import Context, MethodMeta, membership, unknown_params
from ._kernels import class_counts, row_blocks, twins

_DEFAULTS: dict[str, Any] = {"max_rank": 1500, "signed": True, "w_neg": 1.0, "missing_genes": "skip"}
MISSING_RULES = ("skip", "impute")


@dataclass
class UCellPlan:
    m_ptr: np.ndarray  #: gene -> sets layout (see ``membership``)
    m_set: np.ndarray
    max_rank: int
    s_min: np.ndarray  #: n(n+1)/2 per set
    s_max: np.ndarray  #: n * max_rank per set
    pos_col: np.ndarray  #: per output set, its positive part among the ranked parts (-1: none)
    neg_col: np.ndarray  #: per output set, its negative part (-1: none)
    w_neg: float


def _ucell_rows(data, indices, indptr, m_ptr, m_set, max_rank, s_min, s_max, n_blocks, max_nnz, out):
    # Per cell, only the expressed genes of some set are sorted (m of them, m << p); the row's
    # values are then counted against each distinct set value (greater / equal), which gives
    # the average ranks. The other genes are never ranked.
    n_rows = indptr.size - 1
    n_sets = out.shape[1]
    for b in nb.prange(n_blocks):
        r0 = b * n_rows // n_blocks
        r1 = (b + 1) * n_rows // n_blocks
        set_val = np.empty(max_nnz, dtype=data.dtype)
        set_gene = np.empty(max_nnz, dtype=np.int64)
        uniq = np.empty(max_nnz + 1, dtype=data.dtype)
        cls = np.empty(max_nnz, dtype=np.int64)
        eq = np.empty(max_nnz + 1, dtype=np.int64)
        bucket = np.empty(max_nnz + 1, dtype=np.int64)
        greater = np.empty(max_nnz + 1, dtype=np.int64)
        rank_sum = np.empty(n_sets)
        for i in range(r0, r1):
            lo, hi = indptr[i], indptr[i + 1]
            m = 0
            for k in range(lo, hi):
                g = indices[k]
                if data[k] > 0 and m_ptr[g + 1] > m_ptr[g]:
                    set_val[m] = data[k]
                    set_gene[m] = g
                    m += 1
            for s in range(n_sets):
                rank_sum[s] = s_max[s]  # every set gene at max_rank, corrected below
            if m > 0:
                order = np.argsort(set_val[:m])
                n_u = 0
                for t in range(m):
                    v = set_val[order[t]]
                    if n_u == 0 or v != uniq[n_u - 1]:
                        uniq[n_u] = v
                        n_u += 1
                    cls[t] = n_u - 1
                class_counts(data, lo, hi, uniq, n_u, greater, eq, bucket)
                for t in range(m):
                    j = cls[t]
                    rank = greater[j] + (eq[j] + 1) / 2.0
                    if rank > max_rank:
                        rank = max_rank
                    g = set_gene[order[t]]
                    for q in range(m_ptr[g], m_ptr[g + 1]):
                        rank_sum[m_set[q]] += rank - max_rank
            for s in range(n_sets):
                score = 1.0 - (rank_sum[s] - s_min[s]) / (s_max[s] - s_min[s])
                out[i, s] = score if score > 0.0 else 0.0


_ucell_rows_par, _ucell_rows_ser = twins(_ucell_rows)


def _check_params(params: dict[str, Any], n_vars: int) -> dict[str, Any]:
    unknown_params(params, _DEFAULTS, "ucell")
    out = {**_DEFAULTS, **params}
    out["max_rank"] = check_positive_int(out["max_rank"], name="max_rank")
    out["signed"] = bool(out["signed"])
    w_neg = out["w_neg"]
    if isinstance(w_neg, bool) or not isinstance(w_neg, (int, float, np.integer, np.floating)) or not w_neg >= 0:
        raise ValueError(f"`w_neg` must be a number >= 0, got {w_neg!r}.")
    out["w_neg"] = float(w_neg)
    if out["missing_genes"] not in MISSING_RULES:
        raise ValueError(f"`missing_genes` must be one of {MISSING_RULES}, got {out['missing_genes']!r}.")
    return out


def _parts(ctx: Context):
    """The ranked parts of the sets: per set its positive and negative genes (non-empty parts
    only), with the absent genes counted at max_rank when ``missing_genes="impute"``."""
    impute = ctx.params["missing_genes"] == "impute"
    genes, sizes, pos_col, neg_col = [], [], [], []
    for j, idx in enumerate(ctx.sets):
        negative = ctx.signs[j] if ctx.signs is not None else np.zeros(idx.size, dtype=bool)
        absent = ctx.n_absent[j] if (impute and ctx.n_absent is not None) else (0, 0)
        for part, n_abs, cols in ((idx[~negative], absent[0], pos_col), (idx[negative], absent[1], neg_col)):
            if part.size + n_abs == 0:
                cols.append(-1)
                continue
            cols.append(len(genes))
            genes.append(part)
            sizes.append(part.size + n_abs)
    return genes, np.array(sizes, dtype=np.float64), np.array(pos_col), np.array(neg_col)


def _prepare(ctx: Context) -> UCellPlan:
    max_rank = ctx.params["max_rank"]
    genes, sizes, pos_col, neg_col = _parts(ctx)
    s_min = sizes * (sizes + 1) / 2.0
    s_max = sizes * max_rank
    part_set = np.concatenate([np.flatnonzero((pos_col == k) | (neg_col == k)) for k in range(len(genes))])
    too_big = sorted({ctx.set_names[j] for j, lo, hi in zip(part_set, s_min, s_max) if hi <= lo})
    if too_big:
        raise ValueError(
            f"ucell: set(s) {too_big} have at least 2*max_rank-1 genes, so U is undefined; "
            f"pass a larger max_rank (now {max_rank})."
        )
    ptr, set_id, _ = membership(genes, len(ctx.gene_names))
    return UCellPlan(ptr, set_id, max_rank, s_min, s_max, pos_col, neg_col, ctx.params["w_neg"])


def _combine(u: np.ndarray, plan: UCellPlan) -> np.ndarray:
    """Signed score ``max(0, U+ - w_neg U-)`` per output set from the parts' U (absent part: 0)."""
    pos = u[:, np.maximum(plan.pos_col, 0)] * (plan.pos_col >= 0)
    neg = u[:, np.maximum(plan.neg_col, 0)] * (plan.neg_col >= 0)
    return np.maximum(pos - plan.w_neg * neg, 0.0)


def _score_block(block, plan: UCellPlan, parallel: bool) -> np.ndarray:
    block = block if sp.issparse(block) else sp.csr_matrix(block)
    out = np.empty((block.shape[0], plan.s_min.size))
    if block.shape[0] == 0:
        return np.empty((0, plan.pos_col.size))
    max_nnz = int(np.diff(block.indptr).max())
    n_blocks = row_blocks(block.shape[0], nb.get_num_threads() if parallel else 1)
    kernel = _ucell_rows_par if parallel else _ucell_rows_ser
    kernel(
        block.data, block.indices, block.indptr, plan.m_ptr, plan.m_set, plan.max_rank, plan.s_min, plan.s_max,
        n_blocks, max_nnz, out,
    )
    if plan.pos_col.size == plan.s_min.size and (plan.pos_col == np.arange(plan.s_min.size)).all():
        return out  # unsigned sets: the parts are the sets
    return _combine(out, plan)


META = MethodMeta(
    name="ucell",
    description="UCell: normalised Mann-Whitney U of the set's within-cell ranks (max_rank=1500)",
    input="any non-negative expression (counts or normalised); only the within-cell order matters",
    reference="Andreatta & Carmona 2021 doi:10.1016/j.csbj.2021.06.043",
    defaults=_DEFAULTS,
    needs_gene_stats=False,
    nonnegative=True,
    check_params=_check_params,
    prepare=_prepare,
    score_block=_score_block,
    extra={"signed": True},
)
