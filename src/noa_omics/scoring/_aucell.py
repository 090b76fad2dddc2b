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

Ranking without sorting 20,000 genes per cell: in a row with :math:`p` positive values, only the
expressed set genes are sorted (by value, then tie order); the cell's values are counted against
each distinct set value (greater; equal and earlier in the tie order), which gives each set
gene's rank; the other genes are never ranked. A zero gene
:math:`g` has rank :math:`p + 1 + \#\{\text{zero genes before } g \text{ in the tie order}\}`,
needed only when :math:`p < n_\mathrm{up} - 1`.

Cells without any expressed gene have no ranking (only the tie order would rank their genes):
their score is NaN, and one warning counts them. decoupler drops such cells from its output; we
keep the row so the result stays aligned with ``obs_names``. In backed mode decoupler does not
shuffle the tie order (ours does not depend on the storage).

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
from ._kernels import class_counts, lower_bound, row_blocks, twins

_DEFAULTS: dict[str, Any] = {"n_up": None}


@dataclass
class AUCellPlan:
    tie_pos: np.ndarray  #: position of each gene in the tie order (-1: never expressed)
    u_genes: np.ndarray  #: genes of any set (sorted)
    m_ptr: np.ndarray  #: gene -> sets layout (see ``membership``)
    m_set: np.ndarray
    n_up: int
    max_auc: np.ndarray  #: per set, the normaliser of the formula


@nb.njit(cache=True)
def _slot(key, mask):
    # Fibonacci hashing of the value's bit pattern (equal values have equal bits: values > 0)
    return ((np.uint64(key) * np.uint64(11400714819323198485)) >> np.uint64(40)) & mask


def _aucell_rows(data, bits, indices, indptr, tie_pos, u_genes, m_ptr, m_set, n_up, max_auc, n_blocks, max_nnz, out):
    # Per cell only the expressed set genes are sorted, by (value, tie order); the row's values
    # are counted against each distinct set value (greater / equal). Where genes outside the sets
    # share a set value, the tie positions of that value's holders are gathered (hash table on
    # the value's bits, ``bits`` = ``data`` reinterpreted) and each member counts those before it.
    n_rows = indptr.size - 1
    n_sets = out.shape[1]
    for b in nb.prange(n_blocks):
        r0 = b * n_rows // n_blocks
        r1 = (b + 1) * n_rows // n_blocks
        positive = np.zeros(tie_pos.size, dtype=np.uint8)
        set_val = np.empty(max_nnz, dtype=data.dtype)
        set_bits = np.empty(max_nnz, dtype=bits.dtype)
        set_tie = np.empty(max_nnz, dtype=np.int64)
        set_gene = np.empty(max_nnz, dtype=np.int64)
        uniq = np.empty(max_nnz + 1, dtype=data.dtype)
        uniq_bits = np.empty(max_nnz + 1, dtype=bits.dtype)
        cls_start = np.empty(max_nnz + 1, dtype=np.int64)
        eq = np.empty(max_nnz + 1, dtype=np.int64)
        bucket = np.empty(max_nnz + 1, dtype=np.int64)
        greater = np.empty(max_nnz + 1, dtype=np.int64)
        gather_at = np.empty(max_nnz + 1, dtype=np.int64)
        holder_tie = np.empty(max_nnz, dtype=np.int64)
        row_tie = np.empty(max_nnz, dtype=np.int64)
        table_size = 1
        while table_size < 2 * max_nnz + 2:
            table_size *= 2
        table_key = np.empty(table_size, dtype=bits.dtype)
        table_cls = np.full(table_size, -1, dtype=np.int64)
        acc = np.empty(n_sets)
        for i in range(r0, r1):
            lo, hi = indptr[i], indptr[i + 1]
            m = 0
            p = 0
            for k in range(lo, hi):
                if data[k] > 0:
                    g = indices[k]
                    p += 1
                    if m_ptr[g + 1] > m_ptr[g]:
                        set_val[m] = data[k]
                        set_bits[m] = bits[k]
                        set_tie[m] = tie_pos[g]
                        set_gene[m] = g
                        m += 1
            acc[:] = 0.0
            if m > 0:
                by_tie = np.argsort(set_tie[:m])
                order = by_tie[np.argsort(set_val[:m][by_tie], kind="mergesort")]  # value, then tie order
                n_u = 0
                for t in range(m):
                    v = set_val[order[t]]
                    if n_u == 0 or v != uniq[n_u - 1]:
                        uniq[n_u] = v
                        uniq_bits[n_u] = set_bits[order[t]]
                        cls_start[n_u] = t
                        n_u += 1
                cls_start[n_u] = m
                class_counts(data, lo, hi, uniq, n_u, greater, eq, bucket)
                # values also held by genes outside the sets, for members that may rank < n_up
                mask = np.uint64(1)
                while mask < 2 * n_u:
                    mask *= np.uint64(2)
                mask -= np.uint64(1)
                n_gather = 0
                lowest = uniq[n_u - 1]
                for j in range(n_u):
                    gather_at[j] = -1
                    if eq[j] > cls_start[j + 1] - cls_start[j] and greater[j] + 1 < n_up:
                        gather_at[j] = n_gather
                        n_gather += eq[j]
                        lowest = min(lowest, uniq[j])
                        h = _slot(uniq_bits[j], mask)
                        while table_cls[h] >= 0:
                            h = (h + np.uint64(1)) & mask
                        table_key[h] = uniq_bits[j]
                        table_cls[h] = j
                if n_gather > 0:
                    for k in range(lo, hi):
                        if data[k] >= lowest:
                            key = bits[k]
                            h = _slot(key, mask)
                            while table_cls[h] >= 0:
                                if table_key[h] == key:
                                    j = table_cls[h]
                                    holder_tie[gather_at[j]] = tie_pos[indices[k]]
                                    gather_at[j] += 1
                                    break
                                h = (h + np.uint64(1)) & mask
                    for h in range(mask + 1):
                        table_cls[h] = -1
                for j in range(n_u):
                    c0, c1 = cls_start[j], cls_start[j + 1]
                    if greater[j] + 1 >= n_up:
                        continue  # every member ranks at or beyond n_up
                    h1 = gather_at[j]
                    h0 = h1 - eq[j]
                    for t in range(c0, c1):
                        if h1 >= 0:
                            own = set_tie[order[t]]
                            ahead = 0
                            for h in range(h0, h1):
                                ahead += holder_tie[h] < own
                        else:
                            ahead = t - c0  # only members hold this value
                        rank = greater[j] + ahead + 1
                        if rank < n_up:
                            g = set_gene[order[t]]
                            for q in range(m_ptr[g], m_ptr[g + 1]):
                                acc[m_set[q]] += n_up - rank
            if p < n_up - 1:
                # zeros rank after the p positives, in tie order
                n_pos = 0
                for k in range(lo, hi):
                    if data[k] > 0:
                        positive[indices[k]] = 1
                        row_tie[n_pos] = tie_pos[indices[k]]
                        n_pos += 1
                pos_sorted = np.sort(row_tie[:n_pos])
                for j in range(u_genes.size):
                    g = u_genes[j]
                    if positive[g] == 0:
                        rank = p + 1 + tie_pos[g] - lower_bound(pos_sorted, n_pos, tie_pos[g])
                        if rank < n_up:
                            for q in range(m_ptr[g], m_ptr[g + 1]):
                                acc[m_set[q]] += n_up - rank
                for k in range(lo, hi):
                    positive[indices[k]] = 0
            for s in range(n_sets):
                out[i, s] = acc[s] / max_auc[s] if p > 0 else np.nan  # no expressed gene: no ranking


_aucell_rows_par, _aucell_rows_ser = twins(_aucell_rows)


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
    if n_ranked < 2:
        raise ValueError(
            f"aucell ranks the expressed genes, but only {n_ranked} expressed gene(s) are in the data (at least "
            "2 needed); check the matrix (layer=/use_raw=) or use method='zmean'."
        )
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


def _bits(values: np.ndarray) -> np.ndarray:
    """The values' bit patterns as unsigned integers (equal values <=> equal bits, for values > 0)."""
    if values.dtype == np.float32:
        return values.view(np.uint32)
    if values.dtype == np.float64:
        return values.view(np.uint64)
    return values.astype(np.float64).view(np.uint64)


def _score_block(block, plan: AUCellPlan, parallel: bool) -> np.ndarray:
    block = block if sp.issparse(block) else sp.csr_matrix(block)  # as_block: float32/float64/integer
    out = np.empty((block.shape[0], plan.max_auc.size))
    if block.shape[0] == 0:
        return out
    max_nnz = int(np.diff(block.indptr).max())
    n_blocks = row_blocks(block.shape[0], nb.get_num_threads() if parallel else 1)
    kernel = _aucell_rows_par if parallel else _aucell_rows_ser
    kernel(
        block.data, _bits(block.data), block.indices, block.indptr, plan.tie_pos, plan.u_genes, plan.m_ptr, plan.m_set,
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
    extra={"empty_cells_nan": True, "stats": ("nnz",)},
)
