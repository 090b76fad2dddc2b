r"""kNN smoothing of per-cell scores (UCell's ``SmoothKNN``, pyUCell's ``smooth_knn_scores``).

Sparse data give noisy per-cell scores; averaging each cell with its nearest neighbours in
expression space trades resolution for signal. With :math:`N(i)` the neighbours of cell
:math:`i` in a kNN graph (the stored neighbours of row :math:`i`, self excluded), ordered by
decreasing connectivity, :math:`j_1, j_2, \dots, j_{k_i}`, the smoothed score is the weighted mean

.. math::

   \tilde{s}_i = \frac{s_i + \sum_{r=1}^{k_i} (1-\delta)^r\, s_{j_r}}{1 + \sum_{r=1}^{k_i} (1-\delta)^r},

with decay :math:`0 < \delta < 1` (default 0.1: the nearest neighbour weighs 0.9, the tenth
0.35). ``up_only=True`` keeps :math:`\max(s_i, \tilde{s}_i)`. Ties in connectivity keep the
graph's column order. NaN scores (e.g. ``aucell`` on a cell without expressed genes) are left
out of the mean and the weights renormalised over the others; a cell whose whole neighbourhood
is NaN stays NaN.

The graph is ``adata.obsp[graph_key]`` (default ``"connectivities"``, scanpy's
``sc.pp.neighbors``) when present; otherwise a kNN graph with ``k`` neighbours is built by
``scanpy.pp.neighbors`` on ``adata.obsm[use_rep]`` (default ``"X_pca"``), in a throw-away
AnnData so the input is not modified.

References
----------
Andreatta M, Carmona SJ (2021). UCell: Robust and scalable single-cell gene signature scoring.
Comput Struct Biotechnol J 19:3796-3798. doi:10.1016/j.csbj.2021.06.043
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import scipy.sparse as sp
from anndata import AnnData

from .._validation import check_positive_int

SMOOTH_DEFAULTS: dict[str, Any] = {"graph_key": "connectivities", "k": 10, "use_rep": "X_pca", "decay": 0.1,
                                   "up_only": False}


def smooth_params(value: bool | Mapping[str, Any]) -> dict[str, Any] | None:
    """Effective smoothing settings from ``smooth_knn=`` (False/None: no smoothing)."""
    if value is None or value is False:
        return None
    if value is True:
        value = {}
    if not isinstance(value, Mapping):
        raise ValueError(f"`smooth_knn` must be True/False or a dict of {sorted(SMOOTH_DEFAULTS)}, got {value!r}.")
    unknown = sorted(set(value) - set(SMOOTH_DEFAULTS))
    if unknown:
        raise ValueError(f"`smooth_knn` got unknown key(s) {unknown}; it takes {sorted(SMOOTH_DEFAULTS)}.")
    out = {**SMOOTH_DEFAULTS, **value}
    decay = out["decay"]
    if isinstance(decay, bool) or not isinstance(decay, (int, float, np.integer, np.floating)) or not 0 < decay < 1:
        raise ValueError(f"`smooth_knn['decay']` must be between 0 and 1 (exclusive), got {decay!r}.")
    out["decay"] = float(decay)
    out["k"] = check_positive_int(out["k"], name="smooth_knn['k']")
    out["up_only"] = bool(out["up_only"])
    return out


def knn_graph(adata: AnnData, params: Mapping[str, Any]) -> tuple[sp.csr_matrix, str]:
    """The cells x cells graph to smooth on and a description of where it came from."""
    key = params["graph_key"]
    if key is not None and key in adata.obsp:
        return sp.csr_matrix(adata.obsp[key]), f"obsp[{key!r}]"
    if key is not None and key != SMOOTH_DEFAULTS["graph_key"]:
        raise KeyError(f"smooth_knn: graph {key!r} is not in adata.obsp (keys: {list(adata.obsp.keys())}).")
    rep = params["use_rep"]
    if rep not in adata.obsm:
        raise ValueError(
            f"smooth_knn needs a kNN graph: adata.obsp has no {key!r} and adata.obsm has no {rep!r}; run "
            "sc.pp.pca and sc.pp.neighbors first, or pass smooth_knn={'use_rep': '<obsm key>'} or "
            "{'graph_key': '<obsp key>'}."
        )
    import scanpy as sc

    holder = AnnData(obs=adata.obs[[]].copy(), obsm={rep: np.asarray(adata.obsm[rep])})
    sc.pp.neighbors(holder, n_neighbors=params["k"], use_rep=rep)
    return sp.csr_matrix(holder.obsp["connectivities"]), f"scanpy kNN graph (k={params['k']}) on obsm[{rep!r}]"


def smoothing_weights(graph: sp.spmatrix, decay: float) -> sp.csr_matrix:
    r"""Row-normalised weights: self 1, the ``r``-th strongest neighbour :math:`(1-\delta)^r`."""
    graph = sp.csr_matrix(graph, dtype=np.float64, copy=True)
    graph.sum_duplicates()
    n = graph.shape[0]
    graph.data[np.repeat(np.arange(n), np.diff(graph.indptr)) == graph.indices] = 0.0  # self is weighted 1
    graph.eliminate_zeros()
    n_per_row = np.diff(graph.indptr)
    rows = np.repeat(np.arange(n), n_per_row)
    order = np.lexsort((-graph.data, rows))  # by row, then strongest first; stable for ties
    rank = np.arange(rows.size) - np.repeat(graph.indptr[:-1], n_per_row) + 1
    weights = sp.csr_matrix(
        (np.concatenate([np.ones(n), (1.0 - decay) ** rank]),
         (np.concatenate([np.arange(n), rows]), np.concatenate([np.arange(n), graph.indices[order]]))),
        shape=(n, n),
    )
    return sp.diags(1.0 / np.asarray(weights.sum(axis=1)).ravel()) @ weights


def smooth_scores(values: np.ndarray, graph: sp.spmatrix, decay: float = 0.1, up_only: bool = False) -> np.ndarray:
    """Smooth a (cells x sets) score matrix over a kNN graph (formula in the module docstring)."""
    values = np.asarray(values, dtype=np.float64)
    if graph.shape != (values.shape[0], values.shape[0]):
        raise ValueError(f"smooth_knn: the graph is {graph.shape}, but there are {values.shape[0]} cells.")
    weights = smoothing_weights(graph, decay)
    known = ~np.isnan(values)
    total = weights @ np.where(known, values, 0.0)
    if known.all():
        smoothed = total
    else:
        with np.errstate(invalid="ignore", divide="ignore"):
            smoothed = total / (weights @ known.astype(np.float64))
    if up_only:
        smoothed = np.fmax(smoothed, values)
    return smoothed
