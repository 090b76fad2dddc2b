"""noa_omics._embedding: full UMAP for small data, anchor UMAP + harmonic extension for large data."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from anndata import AnnData

from noa_omics import _embedding, _knn


def _blobs(n: int, dim: int = 10, seed: int = 0, n_clusters: int = 8) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=8.0, size=(n_clusters, dim))
    label = rng.integers(0, n_clusters, n)
    return (centres[label] + rng.normal(size=(n, dim))).astype(np.float32), label


def _adata(n: int, seed: int = 0) -> tuple[AnnData, np.ndarray]:
    x, label = _blobs(n, seed=seed)
    adata = AnnData(obsm={"X_pca": x}, obs={"cell": np.arange(n).astype(str)})
    adata.obs_names = adata.obs["cell"].to_numpy()
    _knn.neighbors(adata, n_neighbors=15, method="exact")
    return adata, label


def test_extension_is_the_weighted_mean_by_hand():
    # path 0 - 1 - 2, anchors 0 at (0, 0) and 2 at (2, 4); w01 = 3, w12 = 1
    w = sp.csr_matrix(np.array([[0, 3, 0], [3, 0, 1], [0, 1, 0]], dtype=float))
    layout, waves = _embedding.extend_layout(w, np.array([0, 2]), np.array([[0.0, 0.0], [2.0, 4.0]]))
    np.testing.assert_allclose(layout[1], [(3 * 0 + 1 * 2) / 4, (3 * 0 + 1 * 4) / 4], rtol=1e-6)
    np.testing.assert_allclose(layout[[0, 2]], [[0, 0], [2, 4]])  # anchors stay where they were
    assert waves == 1


def test_waves_reach_cells_two_hops_away_and_sweeps_relax_them():
    # chain 0 - 1 - 2 - 3 with anchors at both ends: the harmonic solution is the straight line
    w = sp.csr_matrix(np.array([[0, 1, 0, 0], [1, 0, 1, 0], [0, 1, 0, 1], [0, 0, 1, 0]], dtype=float))
    layout, waves = _embedding.extend_layout(w, np.array([0, 3]), np.array([[0.0, 0.0], [3.0, 0.0]]),
                                             smoothing_sweeps=200)
    assert waves == 1  # cells 1 and 2 both touch an anchor
    np.testing.assert_allclose(layout[:, 0], [0, 1, 2, 3], atol=1e-4)
    # one anchor only: the wave needs two steps to reach cell 2 and 3
    _, waves = _embedding.extend_layout(w, np.array([0]), np.array([[0.0, 0.0]]), smoothing_sweeps=0)
    assert waves == 3


def test_unreachable_cells_raise_and_choose_anchors_covers_every_component():
    block = np.ones((3, 3)) - np.eye(3)
    w = sp.csr_matrix(sp.block_diag([block, block]))
    with pytest.raises(ValueError, match="not connected to any anchor"):
        _embedding.extend_layout(w, np.array([0]), np.zeros((1, 2)))
    for seed in range(10):
        anchors = _embedding.choose_anchors(w, 1, random_state=seed)
        assert {int(a) // 3 for a in anchors} == {0, 1}  # one sampled + the first cell of the other block


def test_small_data_is_plain_scanpy_umap():
    import scanpy as sc

    adata, _ = _adata(400)
    ref = adata.copy()
    params = _embedding.umap(adata, max_cells=400, random_state=3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sc.tl.umap(ref, random_state=3)
    np.testing.assert_array_equal(adata.obsm["X_umap"], ref.obsm["X_umap"])
    assert params["method"] == "umap" and params["n_cells_laid_out"] == 400


def test_anchor_umap_keeps_clusters_apart():
    from sklearn.neighbors import KNeighborsClassifier

    adata, label = _adata(4000)
    params = _embedding.umap(adata, max_cells=600, random_state=0)
    layout = adata.obsm["X_umap"]
    assert layout.shape == (4000, 2) and np.isfinite(layout).all()
    assert params["method"] == "anchor_umap_extension" and params["n_cells_laid_out"] >= 600
    assert adata.uns["umap"]["params"]["max_cells"] == 600
    # every extended cell is drawn among the anchors of its own cluster
    anchors = _embedding.choose_anchors(adata.obsp["connectivities"], 600, 0)
    free = np.setdiff1d(np.arange(4000), anchors)
    clf = KNeighborsClassifier(n_neighbors=5).fit(layout[anchors], label[anchors])
    assert (clf.predict(layout[free]) == label[free]).mean() > 0.97
    # clusters stay apart: each cluster's centroid is nearer its own cells than any other centroid
    centroids = np.array([layout[label == c].mean(axis=0) for c in range(8)])
    nearest = np.argmin(((layout[:, None, :] - centroids[None]) ** 2).sum(-1), axis=1)
    assert (nearest == label).mean() > 0.95


def test_anchor_layout_is_the_umap_of_the_anchors_alone():
    import scanpy as sc

    adata, _ = _adata(1500)
    _embedding.umap(adata, max_cells=300, random_state=1)
    anchors = _embedding.choose_anchors(adata.obsp["connectivities"], 300, 1)
    sub = AnnData(obsm={"X_pca": adata.obsm["X_pca"][anchors]})
    sub.obs_names = adata.obs_names[anchors]
    _knn.neighbors(sub, n_neighbors=15, random_state=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sc.tl.umap(sub, random_state=1)
    np.testing.assert_allclose(adata.obsm["X_umap"][anchors], sub.obsm["X_umap"], rtol=1e-6)


def test_same_seed_same_layout_and_bad_input():
    a, _ = _adata(1200, seed=2)
    b = a.copy()
    _embedding.umap(a, max_cells=200, random_state=5)
    _embedding.umap(b, max_cells=200, random_state=5)
    np.testing.assert_array_equal(a.obsm["X_umap"], b.obsm["X_umap"])
    bare = AnnData(obsm={"X_pca": np.zeros((10, 2), dtype=np.float32)})
    with pytest.raises(KeyError, match="connectivities"):
        _embedding.umap(bare)
    with pytest.raises(ValueError, match="max_cells"):
        _embedding.umap(a, max_cells=1)
