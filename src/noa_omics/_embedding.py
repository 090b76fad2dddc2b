"""UMAP at atlas scale: a UMAP of a seeded subsample, extended to every cell along the kNN graph.

``scanpy.tl.umap`` optimises the layout of every cell: its cost grows with the number of graph
edges times the epochs (a full UMAP of 200,000 cells had not finished after 10 minutes on two
cores; the anchor UMAP below takes 46 s there and 45 s for 10^6 cells). A
two-dimensional picture of 10^6 cells does not need 10^6 optimised points, so above
``max_cells`` cells (default :data:`UMAP_MAX_CELLS`) :func:`umap` does this instead:

1. **Anchors.** A seeded uniform sample of ``max_cells`` cells, plus one cell of every connected
   component of the kNN graph that the sample missed (so every cell can be reached).
2. **Anchor layout.** The anchors get their own kNN graph on the same representation
   (:func:`noa_omics._knn.neighbors`, same ``n_neighbors``) and ``scanpy.tl.umap`` (same seed).
3. **Extension.** Every other cell is placed along the full graph's connectivities
   :math:`W` (the fuzzy kNN weights). In wave :math:`t` each unplaced cell :math:`i` with placed
   neighbours :math:`P` gets

   .. math:: y_i = \\frac{\\sum_{j \\in P} w_{ij}\\, y_j}{\\sum_{j \\in P} w_{ij}},

   then ``smoothing_sweeps`` Jacobi sweeps of the same weighted mean over all neighbours relax
   the extended cells (the anchors stay fixed): the harmonic extension of the anchor layout
   (Zhu, Ghahramani & Lafferty 2003), computed as sparse matrix products, :math:`O(n k)`.

Each extended cell lands inside the region of the neighbours it was connected to, so clusters
keep their places and their members; distances within a cluster are those of a weighted mean
(the extended cells are drawn a little tighter than a full UMAP would draw them). The method,
the anchor count and the sweeps are recorded in ``uns["umap"]["params"]``.

References
----------
McInnes L, Healy J, Melville J (2018) UMAP: uniform manifold approximation and projection for
dimension reduction. arXiv:1802.03426. Zhu X, Ghahramani Z, Lafferty J (2003) Semi-supervised
learning using Gaussian fields and harmonic functions. ICML.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components

#: Largest number of cells laid out by a full UMAP (``scanpy.tl.umap``); above it, anchors.
UMAP_MAX_CELLS = 50_000

#: Jacobi sweeps that relax the extended cells after the waves.
SMOOTHING_SWEEPS = 10


def choose_anchors(graph: sp.spmatrix, n_anchors: int, random_state: int = 0) -> np.ndarray:
    """Sorted indices of a seeded uniform sample of ``n_anchors`` cells, plus one cell of every
    connected component of ``graph`` that the sample missed."""
    n = graph.shape[0]
    rng = np.random.default_rng(random_state)
    anchors = np.sort(rng.choice(n, size=min(int(n_anchors), n), replace=False))
    _, comp = connected_components(graph, directed=False)
    covered = np.zeros(comp.max() + 1, dtype=bool)
    covered[comp[anchors]] = True
    if not covered.all():
        # first cell of each uncovered component
        order = np.argsort(comp, kind="stable")
        firsts = order[np.searchsorted(comp[order], np.flatnonzero(~covered))]
        anchors = np.union1d(anchors, firsts)
    return anchors


def extend_layout(graph: sp.spmatrix, anchors: np.ndarray, anchor_layout: np.ndarray, *,
                  smoothing_sweeps: int = SMOOTHING_SWEEPS) -> tuple[np.ndarray, int]:
    """Positions of all cells from the positions of ``anchors`` (harmonic extension along ``graph``).

    Returns the ``n x d`` layout and the number of waves needed to reach every cell.
    Raises ``ValueError`` when some cell cannot be reached from an anchor.
    """
    w = sp.csr_matrix(graph, dtype=np.float64)
    w = w.maximum(w.T).tocsr()  # undirected
    n = w.shape[0]
    layout = np.zeros((n, anchor_layout.shape[1]), dtype=np.float64)
    placed = np.zeros(n, dtype=bool)
    layout[anchors] = anchor_layout
    placed[anchors] = True
    waves = 0
    while not placed.all():
        mass = w @ placed.astype(np.float64)
        new = (~placed) & (mass > 0)
        if not new.any():
            raise ValueError(f"{int((~placed).sum())} cells are not connected to any anchor of the UMAP; "
                             "pass anchors covering every connected component (choose_anchors does).")
        sums = w[new] @ (layout * placed[:, None])
        layout[new] = sums / mass[new, None]
        placed |= new
        waves += 1
    free = np.setdiff1d(np.arange(n), anchors)
    if free.size and smoothing_sweeps > 0:
        w_free = w[free]
        degree = np.asarray(w_free.sum(axis=1)).ravel()
        for _ in range(int(smoothing_sweeps)):
            layout[free] = (w_free @ layout) / degree[:, None]
    return layout.astype(np.float32), waves


def umap(adata: Any, *, max_cells: int = UMAP_MAX_CELLS, n_neighbors: int = 15, random_state: int = 0,
         use_rep: str = "X_pca", smoothing_sweeps: int = SMOOTHING_SWEEPS) -> dict[str, Any]:
    """``obsm["X_umap"]`` of ``adata``, in place: a full UMAP up to ``max_cells`` cells, else the
    anchor UMAP extended along ``obsp["connectivities"]`` (see the module docstring).

    Parameters
    ----------
    adata
        AnnData with ``obsm[use_rep]`` and the kNN graph of :func:`noa_omics._knn.neighbors`
        (or ``scanpy.pp.neighbors``).
    max_cells
        Largest number of cells laid out by a full UMAP.
    n_neighbors
        Neighbours of the anchors' own kNN graph.
    random_state
        Seed of the anchor sample, the anchor graph and the UMAP.
    use_rep
        Representation the anchor graph is computed on.
    smoothing_sweeps
        Jacobi sweeps after the waves.

    Returns
    -------
    dict
        The parameters stored in ``uns["umap"]["params"]``.
    """
    import anndata as ad
    import scanpy as sc

    from . import _knn

    if "connectivities" not in adata.obsp:
        raise KeyError("no kNN graph at adata.obsp['connectivities']; build it first (noa_omics._knn.neighbors "
                       "or scanpy.pp.neighbors).")
    if int(max_cells) < 3:
        raise ValueError(f"`max_cells` must be at least 3, got {max_cells}.")
    n = adata.n_obs
    if n <= int(max_cells):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            sc.tl.umap(adata, random_state=random_state)
        params = {"method": "umap", "random_state": int(random_state), "n_cells_laid_out": int(n)}
        adata.uns.setdefault("umap", {})["params"] = {**adata.uns["umap"].get("params", {}), **params}
        return params
    if use_rep not in adata.obsm:
        raise KeyError(f"no representation at adata.obsm[{use_rep!r}] for the anchor graph; run PCA first.")
    graph = adata.obsp["connectivities"]
    anchors = choose_anchors(graph, int(max_cells), random_state)
    sub = ad.AnnData(obs=adata.obs.iloc[anchors][[]].copy(),
                     obsm={use_rep: np.asarray(adata.obsm[use_rep])[anchors]})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _knn.neighbors(sub, n_neighbors=n_neighbors, use_rep=use_rep, random_state=random_state)
        sc.tl.umap(sub, random_state=random_state)
    layout, waves = extend_layout(graph, anchors, np.asarray(sub.obsm["X_umap"]),
                                  smoothing_sweeps=smoothing_sweeps)
    adata.obsm["X_umap"] = layout
    params = {"method": "anchor_umap_extension", "random_state": int(random_state),
              "n_cells_laid_out": int(anchors.size), "max_cells": int(max_cells), "waves": int(waves),
              "smoothing_sweeps": int(smoothing_sweeps), "n_neighbors": int(n_neighbors), "use_rep": use_rep}
    adata.uns["umap"] = {"params": {**dict(sub.uns.get("umap", {}).get("params", {})), **params}}
    return params
