"""Atlas-scale path in CI: the approximate kNN graph (forced by a low threshold) against the exact
one on 20k demo cells, through the pipeline steps. Runtimes at 10^5-10^6 cells: benchmarks/bench_pipeline.py."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from anndata import AnnData

import noa_omics as noa
from noa_omics import _knn
from noa_omics.pipeline import _figures, steps


@pytest.fixture(scope="module")
def atlas():
    return steps.prepare_expression(noa.datasets.demo_testis(seed=3, n_cells=20_000))


def _recall(ann_dist, exact_idx) -> float:
    hits = [len(set(ann_dist.indices[ann_dist.indptr[i]:ann_dist.indptr[i + 1]]) & set(exact_idx[i, 1:]))
            for i in range(exact_idx.shape[0])]
    return float(np.sum(hits) / (exact_idx.shape[0] * (exact_idx.shape[1] - 1)))


@pytest.mark.slow
def test_ann_graph_and_labels_agree_with_exact(atlas):
    ann = atlas.copy()
    steps.embed(ann, umap=False, exact_max_cells=1_000)  # forces pynndescent on 20k cells
    info = ann.uns["noa_pipeline"]["embed"]
    assert info["knn_method"] == "pynndescent" and info["exact_max_cells"] == 1_000
    pcs = ann.obsm["X_pca"]
    exact_idx, _, used = _knn.knn(pcs, 15, method="exact")
    assert used == "exact"
    recall = _recall(ann.obsp["distances"], exact_idx)
    assert recall >= 0.9, recall
    # same seed, same graph
    again, _, _ = _knn.knn(pcs, 15, method="pynndescent", random_state=0)
    rows = np.split(ann.obsp["distances"].indices, ann.obsp["distances"].indptr[1:-1])
    assert all(set(r) == set(a[1:]) for r, a in zip(rows[:500], again[:500]))

    exact = atlas.copy()
    exact.obsm["X_pca"] = pcs
    conn, dist, _ = _knn.knn_graph(pcs, 15, method="exact")
    exact.obsp["connectivities"], exact.obsp["distances"] = conn, dist
    labels_ann = steps.annotate(ann).astype(str)
    labels_exact = steps.annotate(exact).astype(str)
    agreement = float((labels_ann.to_numpy() == labels_exact.to_numpy()).mean())
    assert agreement >= 0.98, agreement
    truth = ann.obs["truth_cell_type"].astype(str).to_numpy()
    acc_ann = float((labels_ann.to_numpy() == truth).mean())
    acc_exact = float((labels_exact.to_numpy() == truth).mean())
    assert acc_ann >= acc_exact - 0.01, (acc_ann, acc_exact)

    # the rest of the single-cell path on the ANN-annotated atlas
    steps.score(ann, methods=["score_genes"], species="human")
    prof = steps.profile(ann, sample_key="sample", condition_key="condition", reference="control")
    counts = prof.drop_duplicates(["sample", "cell_type"])["n_cells"].sum()
    assert counts == ann.n_obs
    effects = steps.compare(ann, sample_key="sample", condition_key="condition", reference="control")
    assert len(effects) and effects["n_reference_samples"].gt(0).any()
    assert effects["pvalue"].notna().any()
    table = steps.multihit(ann, sample_key="sample", reference="control", condition_key="condition")
    assert len(table) == ann.obs["sample"].nunique()


def test_embedding_reuses_what_the_atlas_carries():
    adata = steps.prepare_expression(noa.datasets.demo_testis(seed=0, n_cells=400))
    rng = np.random.default_rng(0)
    pca, umap = rng.normal(size=(adata.n_obs, 6)), rng.normal(size=(adata.n_obs, 2))
    adata.obsm["X_pca"], adata.obsm["X_umap"] = pca.copy(), umap.copy()
    steps.embed(adata, umap=False)
    assert adata.uns["noa_pipeline"]["embed"]["reused"] == ["X_pca"]
    conn = adata.obsp["connectivities"].copy()
    steps.embed(adata)  # second part: graph and UMAP already there
    np.testing.assert_array_equal(adata.obsm["X_pca"], pca)
    np.testing.assert_array_equal(adata.obsm["X_umap"], umap)
    assert (adata.obsp["connectivities"] != conn).nnz == 0
    assert adata.uns["noa_pipeline"]["embed"]["reused"] == ["X_pca", "X_umap"]


def test_embedding_figure_subsamples_large_data():
    n = 600
    obs = pd.DataFrame({"noa_cell_type": pd.Categorical(np.resize(["sertoli", "leydig", "SSC"], n))},
                       index=[f"c{i}" for i in range(n)])
    adata = AnnData(obs=obs, obsm={"X_umap": np.random.default_rng(0).normal(size=(n, 2))})
    fig = _figures.annotation_embedding(adata, max_cells=100)
    title = fig.axes[0].get_title()
    assert "100 of 600 cells" in title
    offsets = fig.axes[0].collections[0].get_offsets()
    assert len(offsets) == 100
    small = _figures.annotation_embedding(adata)
    assert "subsample" not in small.axes[0].get_title()
    assert len(small.axes[0].collections[0].get_offsets()) == n


def test_prepare_expression_share_counts_halves_the_copies():
    """The load stage's memory-lean mode: the counts layer *is* the input matrix, X shares its index
    arrays, and the values are scanpy's normalize_total + log1p; the default mode shares nothing with
    its input."""
    import scanpy as sc

    raw = noa.datasets.demo_testis(seed=0, n_cells=400)
    raw.X = raw.layers["counts"].copy()
    del raw.layers["counts"]
    ref = raw.copy()
    sc.pp.normalize_total(ref, target_sum=1e4)
    sc.pp.log1p(ref)
    lean = steps.prepare_expression(raw, counts_layer=None, share_counts=True)
    assert np.shares_memory(lean.layers["counts"].data, raw.X.data)
    assert np.shares_memory(lean.X.indices, lean.layers["counts"].indices)
    assert not np.shares_memory(lean.X.data, lean.layers["counts"].data)
    np.testing.assert_allclose(lean.X.toarray(), ref.X.toarray(), rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(lean.layers["counts"].toarray(), raw.X.toarray())  # counts untouched
    plain = steps.prepare_expression(raw, counts_layer=None)
    assert not np.shares_memory(plain.layers["counts"].data, raw.X.data)
    assert not np.shares_memory(plain.X.indices, raw.X.indices)
    np.testing.assert_array_equal(plain.X.toarray(), lean.X.toarray())
    assert plain.uns["log1p"] == {"base": None}  # what scanpy.pp.log1p records (read by HVG)
