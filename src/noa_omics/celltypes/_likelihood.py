r"""Count-likelihood cell-type model behind :func:`noa.tl.annotate_testis` (``method="likelihood"``).

A mixture of multinomials over all genes with marker-informed starting profiles, an ambient floor
and neighbour priors (expression kNN graph, spatial graph, clusters); every step works on the
sparse count matrix (no dense cells x genes copy).

1. **Support check** (split marker sets). Each marker set :math:`M_k` is split into two halves
   :math:`A_k, B_k`. Cells are labelled by the naive marker argmax on the :math:`A` halves; for type
   :math:`k` the enrichment of the *other* half among those cells,
   :math:`e_k = \frac{\sum_{c \in k} y_{c,B_k} / \sum_{c\in k} n_c}{\sum_c y_{c,B_k} / \sum_c n_c}`
   (and symmetrically with the halves swapped; :math:`e_k` is the mean), is 1 in expectation when the
   markers are not co-expressed (pure noise, a type absent from the sample) and well above 1 when
   the type is there. Types with :math:`e_k < e_{\min}` or fewer than ``min_type_cells`` cells are
   not called.
2. **Start.** Naive marker scores (mean of per-gene z-scores of the log-normalised marker genes),
   smoothed over the graphs, argmax: one-hot responsibilities :math:`R^{(0)}`.
3. **EM.** Profiles :math:`q_k = (\sum_c R_{ck} y_c + \lambda a) / (\sum_c R_{ck} n_c + \lambda)`,
   with :math:`a` the pooled profile of all cells (ambient-like) and :math:`\lambda` = 1,000 UMI;
   emission :math:`p_k = (1-\rho) q_k + \rho a` (:math:`\rho = 0.05` ambient floor); cell
   log-likelihood :math:`\ell_{ck} = \sum_g y_{cg} \log p_{kg}` (one sparse product);
   posterior

   .. math::

       R_{ck} \propto \pi_k \exp\Bigl(\ell_{ck} + \sum_h w_h \log\bigl(\varepsilon +
       \textstyle\sum_j P^{(h)}_{cj} R_{jk}\bigr)\Bigr)

   where :math:`P^{(h)}` are the row-normalised neighbour graphs (expression kNN, weight
   ``graph_weight``; spatial neighbours, weight ``spatial_weight``; same-cluster cells) and
   :math:`\varepsilon = 0.05`. The neighbour term is bounded (at most
   :math:`w_h \log(1.05/0.05) \approx 3\,w_h` nats), so it decides shallow cells and is outweighed
   by the cell's own counts at normal depth.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp

from .._stream import log1p_cp10k, row_chunks

LIKELIHOOD_DEFAULTS: dict[str, Any] = {
    "n_iter": 8,
    "pseudocount": 1000.0,
    "ambient_floor": 0.05,
    "prior_epsilon": 0.05,
    "min_enrichment": 1.25,
    "temperature": 6.0,
}


def count_matrix(matrix: Any, is_counts: bool) -> sp.csr_matrix:
    """Float64 CSR counts; log-normalised input is turned back into pseudo-counts.

    For :math:`x = \\log(1 + s\\,y/n)` the smallest non-zero :math:`e^x - 1` of a cell is
    :math:`s/n` (one count), so dividing by it recovers the counts exactly.
    """
    if is_counts and _shareable(matrix):
        # canonical CSR without stored zeros: a float64 copy of the values only (the index arrays
        # are shared with ``matrix``; nothing here sorts or prunes them)
        return sp.csr_matrix((matrix.data.astype(np.float64), matrix.indices, matrix.indptr), shape=matrix.shape)
    x = sp.csr_matrix(matrix, dtype=np.float64, copy=True)
    x.eliminate_zeros()
    if is_counts:
        return x
    # in place on the copy: no per-entry temporaries beyond one row-repeat of the minima
    np.clip(x.data, 0, None, out=x.data)
    if x.data.size and x.data.max() < 30:
        np.expm1(x.data, out=x.data)
    x.eliminate_zeros()
    lengths = np.diff(x.indptr)
    filled = lengths > 0
    smallest = np.full(x.shape[0], np.inf)
    if filled.any():
        smallest[filled] = np.minimum.reduceat(x.data, x.indptr[:-1][filled])
    x.data /= np.repeat(smallest, lengths)
    return x


def _shareable(matrix: Any) -> bool:
    """CSR in canonical format with no stored zeros: its index arrays can be shared safely."""
    return (sp.issparse(matrix) and matrix.format == "csr" and bool(matrix.has_canonical_format)
            and not (matrix.data == 0).any())


def log_normalise(counts: sp.csr_matrix, target_sum: float = 1e4) -> sp.csr_matrix:
    """:math:`\log(1 + 10^4 x / \text{total})` per cell, float32 (one rule:
    :func:`noa_omics._stream.log1p_cp10k`, the precision of ``scanpy.pp.log1p`` on float32 data); a
    new values array on the counts' index arrays when they can be shared. It only ranks cells for
    the start and the marker check, so float32 is enough, and half the memory of float64."""
    return log1p_cp10k(counts, target_sum, dtype=np.float32, share_structure=_shareable(counts))


def zmean_scores(logx: sp.csr_matrix, sets: list[np.ndarray]) -> np.ndarray:
    """Mean over each set of the per-gene z-scores, computed sparsely (n x K)."""
    logx = sp.csr_matrix(logx)
    n, n_genes = logx.shape
    if not n:
        return np.zeros((0, len(sets)))
    # column moments and the product in row chunks: no float64 or squared copy of the whole matrix
    total, total_sq = np.zeros(n_genes), np.zeros(n_genes)
    for lo, hi in row_chunks(n):
        vals = logx.data[logx.indptr[lo]:logx.indptr[hi]].astype(np.float64)
        idx = logx.indices[logx.indptr[lo]:logx.indptr[hi]]
        total += np.bincount(idx, weights=vals, minlength=n_genes)
        total_sq += np.bincount(idx, weights=vals * vals, minlength=n_genes)
    mean, sq = total / n, total_sq / n
    sd = np.sqrt(np.maximum(sq - mean**2, 0.0))
    inv = np.divide(1.0, sd, out=np.zeros_like(sd), where=sd > 0)
    weights = np.zeros((n_genes, len(sets)))
    for k, genes in enumerate(sets):
        weights[genes, k] = inv[genes] / max(len(genes), 1)
    out = np.empty((n, len(sets)))
    for lo, hi in row_chunks(n):
        out[lo:hi] = np.asarray(logx[lo:hi] @ weights)
    return out - (mean @ weights)[None, :]



def marker_support(counts: sp.csr_matrix, sets: list[np.ndarray], min_cells: int,
                   top_fraction: float = 0.03) -> tuple[float, np.ndarray]:
    """Split-set marker enrichment: the pooled :math:`e` and the per-type :math:`e_k`.

    Each set is split into halves :math:`A_k, B_k` (alternate genes). The cells with the highest
    naive score on :math:`A_k` (top ``top_fraction``, at least ``min_cells``) are taken and the
    share of their counts falling in :math:`B_k` is compared with the share over all cells (and
    with the halves swapped).
    """
    logx = log_normalise(counts)
    totals = np.asarray(counts.sum(axis=1)).ravel()
    grand = totals.sum()
    n_top = int(min(len(totals), max(min_cells, round(top_fraction * len(totals)))))
    observed = np.zeros((2, len(sets)))
    expected = np.zeros((2, len(sets)))
    halves = [[s[0::2] for s in sets], [s[1::2] for s in sets]]
    for side in range(2):
        select = zmean_scores(logx, halves[side])
        for k, genes in enumerate(halves[1 - side]):
            if len(genes) == 0 or grand <= 0:
                continue
            in_set = np.asarray(counts[:, genes].sum(axis=1)).ravel()
            top = np.argsort(-select[:, k], kind="stable")[:n_top]
            observed[side, k] = in_set[top].sum()
            expected[side, k] = totals[top].sum() * in_set.sum() / grand
    per_type = np.divide(observed.sum(axis=0), expected.sum(axis=0), out=np.zeros(len(sets)),
                         where=expected.sum(axis=0) > 0)
    pooled = float(observed.sum() / expected.sum()) if expected.sum() > 0 else 0.0
    return pooled, per_type


def row_normalise(graph: sp.spmatrix) -> sp.csr_matrix:
    graph = sp.csr_matrix(graph, dtype=np.float64)
    graph.setdiag(0)
    graph.eliminate_zeros()
    degree = np.asarray(graph.sum(axis=1)).ravel()
    inv = np.divide(1.0, degree, out=np.zeros_like(degree), where=degree > 0)
    return sp.csr_matrix(sp.diags(inv) @ graph)


def _softmax(logits: np.ndarray) -> np.ndarray:
    logits = logits - logits.max(axis=1, keepdims=True)
    out = np.exp(logits)
    out /= out.sum(axis=1, keepdims=True)
    return out


def fit_mixture(
    counts: sp.csr_matrix,
    start: np.ndarray,
    graphs: list[tuple[sp.csr_matrix, float]],
    *,
    n_iter: int,
    pseudocount: float,
    ambient_floor: float,
    prior_epsilon: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """EM of the multinomial mixture with neighbour priors.

    Returns the posteriors, the count log-likelihoods, the log-prior term (mixing weights plus
    neighbour priors) of the last E-step and the emission profiles (K x genes; 1 for genes
    without counts, which contribute nothing).
    """
    n, n_genes = counts.shape
    gene_total = np.asarray(counts.sum(axis=0)).ravel()
    ambient = gene_total / gene_total.sum()
    keep = ambient > 0
    # genes without counts are not cut out of ``counts`` (a copy of the matrix): their emission
    # is set to 1, log 0, and they have no stored entries, so they add nothing to the likelihood
    resp = start.astype(np.float64)
    for _ in range(max(1, int(n_iter))):
        mass = np.asarray(counts.T @ resp).T  # K x G
        profile = (mass + pseudocount * ambient[None, :]) / (mass.sum(axis=1, keepdims=True) + pseudocount)
        emission = (1 - ambient_floor) * profile + ambient_floor * ambient[None, :]
        emission[:, ~keep] = 1.0
        loglik = np.asarray(counts @ np.log(emission).T)
        weights = np.maximum(resp.mean(axis=0), 1e-6)
        logits = loglik + np.log(weights)[None, :]
        for graph, weight in graphs:
            if weight > 0:
                logits = logits + weight * np.log(prior_epsilon + np.asarray(graph @ resp))
        resp = _softmax(logits)
    prior = logits - loglik
    return resp, loglik, prior, emission
