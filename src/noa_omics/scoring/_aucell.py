r"""``aucell``: area under the recovery curve of the set's genes in each cell's ranking (AUCell).

Same definition, defaults and tie rule as ``decoupler.mt.aucell`` (decoupler 2.x). Genes never
detected (zero in every cell) are left out of the ranking and of the sets, as decoupler drops
empty features; the remaining :math:`m` genes are ranked in each cell by decreasing expression,
:math:`r_{ig} \in \{1,\dots,m\}`, ties broken by one fixed random order of the genes (a
permutation drawn with ``numpy.random.default_rng(random_state)``, decoupler's draw for
``random_state=0``). With :math:`n_\mathrm{up}` (default
:math:`\max(2, \lceil 0.05\,m \rceil)`), the area under the recovery curve of set :math:`S`
(:math:`k = |S|` genes) is

.. math::

   \mathrm{AUC}_{i,S} = \frac{\sum_{g \in S,\; r_{ig} < n_\mathrm{up}} (n_\mathrm{up} - r_{ig})}
                             {\sum_{t=1}^{\min(k,\, n_\mathrm{up}-1)} (n_\mathrm{up} - t)},

the recovery-curve area of decoupler's implementation divided by its maximum (all set genes at
the top), so :math:`0 \le \mathrm{AUC} \le 1`.

Ranking without sorting 20,000 genes per cell: in a sparse row with :math:`p` positive values,
a positive gene's rank is its position after sorting only those :math:`p` values (by value,
then tie order), and a zero gene :math:`g` has rank
:math:`p + 1 + \#\{\text{zero genes before } g \text{ in the tie order}\}`, computed from the
tie-order positions of the positives by binary search, and only needed when
:math:`p < n_\mathrm{up} - 1`.

Differences from decoupler: decoupler also drops cells without any expressed gene (we score them,
from the tie order alone), and in backed mode decoupler does not shuffle the tie order
(ours does not depend on the storage).

References
----------
Aibar S et al. (2017). SCENIC: single-cell regulatory network inference and clustering.
Nat Methods 14:1083-1086. doi:10.1038/nmeth.4463
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numba as nb
import numpy as np
import scipy.sparse as sp

from ._base import Context, GeneStats, MethodMeta, membership, unknown_params
from ._kernels import row_blocks

_DEFAULTS: dict[str, Any] = {"n_up": None}


@dataclass
class AUCellPlan:
    tie_pos: np.ndarray  #: position of each gene in the tie order (-1: never expressed)
    u_genes: np.ndarray  #: genes of any set (sorted)
    m_ptr: np.ndarray  #: gene -> sets layout (see ``membership``)
    m_set: np.ndarray
    n_up: int
    max_auc: np.ndarray  #: per set, the normaliser of the formula


def _aucell_rows(data, indices, indptr, tie_pos, u_genes, m_ptr, m_set, n_up, max_auc, n_blocks, max_nnz, out):
    n_rows = indptr.size - 1
    n_sets = out.shape[1]
    for b in nb.prange(n_blocks):
        r0 = b * n_rows // n_blocks
        r1 = (b + 1) * n_rows // n_blocks
        positive = np.zeros(tie_pos.size, dtype=np.uint8)
        val = np.empty(max_nnz)
        tie = np.empty(max_nnz, dtype=np.int64)
        gene = np.empty(max_nnz, dtype=np.int64)
        acc = np.empty(n_sets)
        for i in range(r0, r1):
            p = 0
            for k in range(indptr[i], indptr[i + 1]):
                x = data[k]
                if x > 0:
                    g = indices[k]
                    val[p] = x
                    tie[p] = tie_pos[g]
                    gene[p] = g
                    positive[g] = 1
                    p += 1
            acc[:] = 0.0
            by_tie = np.argsort(tie[:p])
            tie_sorted = tie[:p][by_tie]
            val_t = val[:p][by_tie]
            gene_t = gene[:p][by_tie]
            # stable sort by decreasing value keeps the tie order within equal values
            order = np.argsort(-val_t, kind="mergesort")
            for r in range(min(p, n_up - 1)):
                g = gene_t[order[r]]
                for t in range(m_ptr[g], m_ptr[g + 1]):
                    acc[m_set[t]] += n_up - (r + 1)
            if p < n_up - 1:
                for j in range(u_genes.size):
                    g = u_genes[j]
                    if positive[g] == 0:
                        rank = p + 1 + tie_pos[g] - np.searchsorted(tie_sorted, tie_pos[g])
                        if rank < n_up:
                            for t in range(m_ptr[g], m_ptr[g + 1]):
                                acc[m_set[t]] += n_up - rank
            for s in range(n_sets):
                out[i, s] = acc[s] / max_auc[s]
            for k in range(indptr[i], indptr[i + 1]):
                positive[indices[k]] = 0


_aucell_rows_par = nb.njit(parallel=True, cache=True)(_aucell_rows)
_aucell_rows_ser = nb.njit(cache=True)(_aucell_rows)


def _check_params(params: dict[str, Any], n_vars: int) -> dict[str, Any]:
    unknown_params(params, _DEFAULTS, "aucell")
    out = {**_DEFAULTS, **params}
    n_up = out["n_up"]
    if n_up is not None and (isinstance(n_up, bool) or not isinstance(n_up, (int, float, np.integer, np.floating))):
        raise ValueError(f"`n_up` must be a number of genes or None, got {n_up!r}.")
    return out


def _usable_genes(stats: GeneStats, params: dict[str, Any]) -> np.ndarray:
    return stats.nnz > 0


def _effective_n_up(n_up: float | None, n_ranked: int) -> int:
    if n_up is None:
        return int(np.clip(np.ceil(0.05 * n_ranked), 2, n_ranked))
    value = int(np.ceil(n_up))
    if not 1 < value <= n_ranked:
        raise ValueError(
            f"aucell: n_up={n_up} must be between 2 and the number of expressed genes ({n_ranked}); "
            "pass a smaller n_up or leave it at None (5% of the genes)."
        )
    return value


def _prepare(ctx: Context) -> AUCellPlan:
    expressed = np.flatnonzero(ctx.stats.nnz > 0)
    n_ranked = expressed.size
    n_up = _effective_n_up(ctx.params["n_up"], n_ranked)
    ctx.params["n_up"] = n_up
    shuffled = np.random.default_rng(ctx.random_state).choice(np.arange(n_ranked), n_ranked, replace=False)
    tie_pos = np.full(len(ctx.gene_names), -1, dtype=np.int64)
    tie_pos[expressed[shuffled]] = np.arange(n_ranked)
    ptr, set_id, _ = membership(ctx.sets, len(ctx.gene_names))
    max_auc = np.array(
        [sum(n_up - t for t in range(1, min(idx.size, n_up - 1) + 1)) for idx in ctx.sets], dtype=np.float64
    )
    u_genes = np.unique(np.concatenate(ctx.sets)).astype(np.int64)
    return AUCellPlan(tie_pos, u_genes, ptr, set_id, n_up, max_auc)


def _score_block(block, plan: AUCellPlan, parallel: bool) -> np.ndarray:
    block = block if sp.issparse(block) else sp.csr_matrix(block)
    out = np.empty((block.shape[0], plan.max_auc.size))
    if block.shape[0] == 0:
        return out
    max_nnz = int(np.diff(block.indptr).max())
    n_blocks = row_blocks(block.shape[0], nb.get_num_threads() if parallel else 1)
    kernel = _aucell_rows_par if parallel else _aucell_rows_ser
    kernel(
        block.data, block.indices, block.indptr, plan.tie_pos, plan.u_genes, plan.m_ptr, plan.m_set,
        plan.n_up, plan.max_auc, n_blocks, max_nnz, out,
    )
    return out


META = MethodMeta(
    name="aucell",
    description="AUCell: area under the recovery curve of the set in each cell's gene ranking",
    input="any non-negative expression (counts or normalised); only the within-cell order matters",
    reference="Aibar et al. 2017 doi:10.1038/nmeth.4463",
    defaults=_DEFAULTS,
    needs_gene_stats=True,
    nonnegative=True,
    check_params=_check_params,
    prepare=_prepare,
    score_block=_score_block,
    usable_genes=_usable_genes,
)
