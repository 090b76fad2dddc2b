r"""``ucell``: normalised Mann-Whitney U statistic of the set's genes in each cell (UCell).

Same definition as UCell (R) and pyUCell (``pyucell.compute_ucell_scores``, defaults
``max_rank=1500``, ``ties_method="average"``). In cell :math:`i`, genes with a non-zero value are
ranked by decreasing value, ties receiving their average rank; a gene whose rank exceeds
``max_rank`` (a tied group is kept or dropped as a whole by its average rank) and every gene with
a zero value gets :math:`r_{ig} = r_\mathrm{max}`. For a set of :math:`n` genes,

.. math::

   U_{i,S} = 1 - \frac{\sum_{g \in S} r_{ig} - \frac{n(n+1)}{2}}
                      {n\,r_\mathrm{max} - \frac{n(n+1)}{2}},

clipped at 0. Only genes present in the data enter :math:`S` (pyUCell's
``missing_genes="skip"``; its default ``"impute"`` counts an absent gene as rank
:math:`r_\mathrm{max}`); signed signatures (``GENE+``/``GENE-``) are not parsed.

Ranking is restricted to the genes that matter: per cell only the :math:`p` non-zero values are
sorted, and a set gene's rank is read by binary search, :math:`r = \#\{x > v\} + (\#\{x = v\} + 1)/2`.

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

from ._base import Context, MethodMeta, membership, unknown_params
from ._kernels import row_blocks

_DEFAULTS: dict[str, Any] = {"max_rank": 1500}


@dataclass
class UCellPlan:
    u_genes: np.ndarray  #: genes of any set (sorted)
    m_ptr: np.ndarray  #: gene -> sets layout (see ``membership``)
    m_set: np.ndarray
    max_rank: int
    s_min: np.ndarray  #: n(n+1)/2 per set
    s_max: np.ndarray  #: n * max_rank per set


def _ucell_rows(data, indices, indptr, n_vars, u_genes, m_ptr, m_set, max_rank, s_min, s_max, n_blocks, max_nnz, out):
    n_rows = indptr.size - 1
    n_sets = out.shape[1]
    for b in nb.prange(n_blocks):
        r0 = b * n_rows // n_blocks
        r1 = (b + 1) * n_rows // n_blocks
        value = np.zeros(n_vars)
        val = np.empty(max_nnz)
        acc = np.empty(n_sets)
        for i in range(r0, r1):
            p = 0
            for k in range(indptr[i], indptr[i + 1]):
                x = data[k]
                if x > 0:
                    val[p] = x
                    value[indices[k]] = x
                    p += 1
            srt = np.sort(val[:p])
            acc[:] = 0.0
            for j in range(u_genes.size):
                g = u_genes[j]
                v = value[g]
                rank = np.float64(max_rank)
                if v > 0:
                    left = np.searchsorted(srt, v, side="left")
                    right = np.searchsorted(srt, v, side="right")
                    avg = (p - right) + (right - left + 1) / 2.0
                    if avg <= max_rank:
                        rank = avg
                for t in range(m_ptr[g], m_ptr[g + 1]):
                    acc[m_set[t]] += rank
            for s in range(n_sets):
                score = 1.0 - (acc[s] - s_min[s]) / (s_max[s] - s_min[s])
                out[i, s] = score if score > 0.0 else 0.0
            for k in range(indptr[i], indptr[i + 1]):
                value[indices[k]] = 0.0


_ucell_rows_par = nb.njit(parallel=True, cache=True)(_ucell_rows)
_ucell_rows_ser = nb.njit(cache=True)(_ucell_rows)


def _check_params(params: dict[str, Any], n_vars: int) -> dict[str, Any]:
    unknown_params(params, _DEFAULTS, "ucell")
    out = {**_DEFAULTS, **params}
    max_rank = out["max_rank"]
    if isinstance(max_rank, bool) or not isinstance(max_rank, (int, np.integer)) or max_rank < 1:
        raise ValueError(f"`max_rank` must be a positive integer, got {max_rank!r}.")
    out["max_rank"] = int(max_rank)
    return out


def _prepare(ctx: Context) -> UCellPlan:
    max_rank = ctx.params["max_rank"]
    sizes = np.array([idx.size for idx in ctx.sets], dtype=np.float64)
    s_min = sizes * (sizes + 1) / 2.0
    s_max = sizes * max_rank
    too_big = [name for name, lo, hi in zip(ctx.set_names, s_min, s_max) if hi <= lo]
    if too_big:
        raise ValueError(
            f"ucell: set(s) {too_big} have at least 2*max_rank-1 genes, so U is undefined; "
            f"pass a larger max_rank (now {max_rank})."
        )
    ptr, set_id, _ = membership(ctx.sets, len(ctx.gene_names))
    u_genes = np.unique(np.concatenate(ctx.sets)).astype(np.int64)
    return UCellPlan(u_genes, ptr, set_id, max_rank, s_min, s_max)


def _score_block(block, plan: UCellPlan, parallel: bool) -> np.ndarray:
    block = block if sp.issparse(block) else sp.csr_matrix(block)
    out = np.empty((block.shape[0], plan.s_min.size))
    if block.shape[0] == 0:
        return out
    max_nnz = int(np.diff(block.indptr).max())
    n_blocks = row_blocks(block.shape[0], nb.get_num_threads() if parallel else 1)
    kernel = _ucell_rows_par if parallel else _ucell_rows_ser
    kernel(
        block.data, block.indices, block.indptr, block.shape[1], plan.u_genes, plan.m_ptr, plan.m_set,
        plan.max_rank, plan.s_min, plan.s_max, n_blocks, max_nnz, out,
    )
    return out


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
)
