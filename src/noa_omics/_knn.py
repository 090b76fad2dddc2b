"""One k-nearest-neighbour graph helper: exact for small data, approximate (pynndescent) for large.

Every step that needs a cell-cell kNN graph (the pipeline's embedding, the smoothing of
:func:`noa_omics.tl.annotate_testis`) builds it here, so the whole package uses one rule:

- ``n_obs <= exact_max_cells`` (default :data:`EXACT_MAX_CELLS` = 20,000): exact Euclidean
  neighbours (:class:`sklearn.neighbors.NearestNeighbors`). Exact search costs
  :math:`O(n^2 d)`; on 30 principal components it takes ~3 s at 20k cells and ~35 s at 50k on
  one core, so above 20k the approximate path is faster by an order of magnitude.
- larger data: nearest-neighbour descent (:class:`pynndescent.NNDescent`, Dong et al. 2011),
  :math:`\\approx O(n \\log n)`, seeded with ``random_state`` so the same seed gives the same graph.
  The descent is run with ``max(n_neighbors, 30)`` neighbours and the first ``n_neighbors`` kept
  (a larger search graph raises the recall of the first neighbours; recall against the exact
  graph is tested, >= 0.9).

The connectivities are UMAP's fuzzy simplicial set of the kNN distances
(:func:`umap.umap_.fuzzy_simplicial_set`, McInnes et al. 2018), the weights ``scanpy.pp.neighbors``
computes (``method="umap"``); :func:`neighbors` stores them where scanpy expects them
(``obsp["connectivities"]``, ``obsp["distances"]``, ``uns["neighbors"]``), so ``sc.tl.umap`` and
``sc.tl.leiden`` run on the result.

References
----------
Dong W, Moses C, Li K (2011) Efficient k-nearest neighbor graph construction for generic
similarity measures. WWW '11. McInnes L, Healy J, Melville J (2018) UMAP. arXiv:1802.03426.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import scipy.sparse as sp

#: Largest number of cells searched exactly by default (``method="auto"``).
EXACT_MAX_CELLS = 20_000

#: Neighbours searched by the approximate path (at least ``n_neighbors``).
ANN_SEARCH_NEIGHBORS = 30

KNN_METHODS = ("auto", "exact", "pynndescent")


def _check(data: Any, n_neighbors: int, method: str) -> np.ndarray:
    if method not in KNN_METHODS:
        raise ValueError(f"unknown kNN method {method!r}; use one of {list(KNN_METHODS)}.")
    data = np.asarray(data.toarray() if sp.issparse(data) else data, dtype=np.float32)
    if data.ndim != 2:
        raise ValueError(f"the kNN input must be a 2-d cells x features matrix, got shape {data.shape}.")
    if not np.isfinite(data).all():
        raise ValueError("the kNN input holds NaN or infinite values; impute or drop those cells first.")
    if int(n_neighbors) < 2:
        raise ValueError(f"`n_neighbors` must be at least 2 (the cell itself counts), got {n_neighbors}.")
    if data.shape[0] < 2:
        raise ValueError(f"a kNN graph needs at least 2 cells, got {data.shape[0]}.")
    return data


def resolve_method(n_obs: int, method: str = "auto", *, exact_max_cells: int = EXACT_MAX_CELLS) -> str:
    """The search actually used: ``exact`` or ``pynndescent`` (``auto`` picks by ``n_obs``)."""
    if method != "auto":
        return method
    return "exact" if n_obs <= int(exact_max_cells) else "pynndescent"


def _self_first(indices: np.ndarray, distances: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Make each cell its own first neighbour (approximate search may miss it among duplicates)."""
    n, k = indices.shape
    rows = np.flatnonzero(indices[:, 0] != np.arange(n))
    for i in rows:
        others = [j for j in range(k) if indices[i, j] != i][: k - 1]
        indices[i] = np.concatenate([[i], indices[i, others]])
        distances[i] = np.concatenate([[0.0], distances[i, others]])
    return indices, distances


def knn(data: Any, n_neighbors: int = 15, *, method: str = "auto", exact_max_cells: int = EXACT_MAX_CELLS,
        random_state: int = 0) -> tuple[np.ndarray, np.ndarray, str]:
    """Nearest neighbours of every row of ``data`` (Euclidean), the row itself first.

    Parameters
    ----------
    data
        Cells x features (e.g. ``obsm["X_pca"]``).
    n_neighbors
        Neighbours per cell, the cell itself included (scanpy's convention); capped at ``n_obs``.
    method
        ``auto`` (exact up to ``exact_max_cells`` cells, else ``pynndescent``), ``exact`` or
        ``pynndescent``.
    exact_max_cells
        Threshold of ``auto``.
    random_state
        Seed of the approximate search.

    Returns
    -------
    (indices, distances, method)
        ``n_obs x k`` neighbour indices and distances (column 0 is the cell itself at distance 0)
        and the search used.
    """
    data = _check(data, n_neighbors, method)
    n = data.shape[0]
    k = int(min(n_neighbors, n))
    used = resolve_method(n, method, exact_max_cells=exact_max_cells)
    if used == "exact":
        from sklearn.neighbors import NearestNeighbors

        distances, indices = NearestNeighbors(n_neighbors=k).fit(data).kneighbors(data)
    else:
        from pynndescent import NNDescent

        search = int(min(n - 1, max(k, ANN_SEARCH_NEIGHBORS)))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            index = NNDescent(data, n_neighbors=max(search, k), metric="euclidean", random_state=int(random_state),
                              low_memory=True, compressed=False, verbose=False)
            indices, distances = index.neighbor_graph
        indices, distances = indices[:, :k], distances[:, :k]
    indices = np.ascontiguousarray(indices, dtype=np.int64)
    distances = np.ascontiguousarray(distances, dtype=np.float32)
    indices, distances = _self_first(indices, distances)
    return indices, distances, used


def graph_from_knn(indices: np.ndarray, distances: np.ndarray) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    """Scanpy's (connectivities, distances) from kNN indices/distances (self in column 0).

    ``distances`` is the sparse kNN distance matrix without the self column; ``connectivities``
    the symmetric fuzzy union of UMAP's membership strengths.
    """
    from umap.umap_ import fuzzy_simplicial_set

    n, k = indices.shape
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        empty = sp.coo_matrix((n, 1))
        conn, _, _ = fuzzy_simplicial_set(empty, k, None, "euclidean", knn_indices=indices, knn_dists=distances,
                                          set_op_mix_ratio=1.0, local_connectivity=1.0)
    conn = sp.csr_matrix(conn, dtype=np.float32)
    conn.eliminate_zeros()
    rows = np.repeat(np.arange(n), k - 1)
    dist = sp.csr_matrix((distances[:, 1:].ravel(), (rows, indices[:, 1:].ravel())), shape=(n, n), dtype=np.float32)
    dist.eliminate_zeros()
    return conn, dist


def knn_graph(data: Any, n_neighbors: int = 15, *, method: str = "auto", exact_max_cells: int = EXACT_MAX_CELLS,
              random_state: int = 0) -> tuple[sp.csr_matrix, sp.csr_matrix, dict[str, Any]]:
    """Connectivities, distances and parameters of the kNN graph of ``data`` (see :func:`knn`)."""
    indices, distances, used = knn(data, n_neighbors, method=method, exact_max_cells=exact_max_cells,
                                   random_state=random_state)
    conn, dist = graph_from_knn(indices, distances)
    params = {"n_neighbors": int(indices.shape[1]), "method": "umap", "metric": "euclidean",
              "knn_method": used, "random_state": int(random_state), "exact_max_cells": int(exact_max_cells)}
    return conn, dist, params


def neighbors(adata: Any, *, n_neighbors: int = 15, use_rep: str = "X_pca", n_pcs: int | None = None,
              method: str = "auto", exact_max_cells: int = EXACT_MAX_CELLS, random_state: int = 0) -> dict[str, Any]:
    """Scanpy-compatible neighbour graph of ``adata.obsm[use_rep]``, in place.

    Writes ``obsp["connectivities"]``, ``obsp["distances"]`` and ``uns["neighbors"]`` as
    ``scanpy.pp.neighbors`` does (so ``sc.tl.umap`` / ``sc.tl.leiden`` use it) and returns the
    parameters recorded there.
    """
    if use_rep not in adata.obsm:
        raise KeyError(f"no representation at adata.obsm[{use_rep!r}]; run PCA first (scanpy.pp.pca).")
    rep = np.asarray(adata.obsm[use_rep])
    if n_pcs is not None:
        rep = rep[:, : int(n_pcs)]
    conn, dist, params = knn_graph(rep, n_neighbors, method=method, exact_max_cells=exact_max_cells,
                                   random_state=random_state)
    adata.obsp["connectivities"] = conn
    adata.obsp["distances"] = dist
    params = {**params, "use_rep": use_rep, "n_pcs": int(rep.shape[1])}
    adata.uns["neighbors"] = {"connectivities_key": "connectivities", "distances_key": "distances",
                              "params": params}
    return params
