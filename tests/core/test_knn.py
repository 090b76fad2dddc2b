"""noa_omics._knn: exact/approximate kNN graph, scanpy-compatible output."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from anndata import AnnData

from noa_omics import _knn


def _blobs(n: int, dim: int = 10, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=6.0, size=(8, dim))
    return (centres[rng.integers(0, 8, n)] + rng.normal(size=(n, dim))).astype(np.float32)


def test_exact_matches_brute_force():
    x = _blobs(300)
    idx, dist, used = _knn.knn(x, 6, method="exact")
    assert used == "exact"
    full = np.sqrt(((x[:, None, :] - x[None, :, :]) ** 2).sum(-1))
    brute = np.argsort(full, axis=1, kind="stable")[:, :6]
    assert (idx[:, 0] == np.arange(300)).all()
    np.testing.assert_allclose(dist, np.take_along_axis(full, brute, axis=1), rtol=1e-4, atol=1e-4)
    assert np.mean([len(set(a) & set(b)) / 6 for a, b in zip(idx, brute)]) > 0.99  # ties aside


def test_auto_threshold():
    assert _knn.resolve_method(_knn.EXACT_MAX_CELLS) == "exact"
    assert _knn.resolve_method(_knn.EXACT_MAX_CELLS + 1) == "pynndescent"
    assert _knn.resolve_method(50, exact_max_cells=10) == "pynndescent"
    assert _knn.resolve_method(50, "exact", exact_max_cells=10) == "exact"


def test_graph_is_scanpy_shaped():
    x = _blobs(400)
    conn, dist, params = _knn.knn_graph(x, 10, method="exact")
    assert isinstance(conn, sp.csr_matrix) and conn.shape == (400, 400)
    assert abs(conn - conn.T).max() < 1e-6  # fuzzy union is symmetric
    assert conn.diagonal().max() == 0
    assert (np.diff(dist.indptr) == 9).all()  # k - 1 neighbours, self excluded
    assert params["knn_method"] == "exact" and params["n_neighbors"] == 10
    # same weights as scanpy's own umap connectivities on exact neighbours
    import scanpy as sc

    ad = AnnData(X=x)
    sc.pp.neighbors(ad, n_neighbors=10, use_rep="X", transformer="sklearn")
    ref = sp.csr_matrix(ad.obsp["connectivities"])
    assert abs(ref - conn).max() < 1e-4


def test_neighbors_writes_what_umap_reads():
    import scanpy as sc

    ad = AnnData(X=_blobs(300), obsm={"X_pca": _blobs(300, dim=5)})
    params = _knn.neighbors(ad, n_neighbors=8)
    assert set(ad.obsp.keys()) >= {"connectivities", "distances"}
    assert ad.uns["neighbors"]["params"]["use_rep"] == "X_pca" and params["n_pcs"] == 5
    sc.tl.umap(ad, random_state=0, maxiter=20)
    assert ad.obsm["X_umap"].shape == (300, 2)


def test_self_first_with_duplicates():
    x = np.repeat(_blobs(50), 3, axis=0)  # every point three times
    idx, dist, _ = _knn.knn(x, 5, method="exact")
    assert (idx[:, 0] == np.arange(len(x))).all()
    assert (dist[:, 0] == 0).all()
    assert all(len(set(row)) == 5 for row in idx)


@pytest.mark.parametrize("bad, match", [
    (np.full((5, 2), np.nan), "NaN"),
    (np.zeros(5), "2-d"),
    (np.zeros((1, 3)), "at least 2 cells"),
])
def test_bad_input(bad, match):
    with pytest.raises(ValueError, match=match):
        _knn.knn(bad, 3)


def test_bad_method_and_k():
    with pytest.raises(ValueError, match="unknown kNN method"):
        _knn.knn(_blobs(20), 3, method="annoy")
    with pytest.raises(ValueError, match="n_neighbors"):
        _knn.knn(_blobs(20), 1)
    with pytest.raises(KeyError, match="X_pca"):
        _knn.neighbors(AnnData(X=_blobs(20)))
