"""Same seed, same result (GitHub issue 10).

- Simulators: ``demo_testis`` and ``demo_spatial`` give identical AnnData for one seed and
  different data for another.
- Scoring: every method gives the same scores whatever the storage (CSR, CSC, dense), the row
  block size (``chunk_size``) and the number of numba threads. The rank methods (``aucell``,
  ``ucell``) are bit-identical; the linear methods (``score_genes``, ``zmean``) sum in a different
  order for dense blocks (BLAS) and for the per-thread partial gene sums, so they agree to
  1e-12 (measured: < 1e-14); a rerun with the same settings is bit-identical.
- Seeded statistics: ``compare_conditions(method="permutation")`` (Monte Carlo), ``enrichment``
  (gseapy permutations), ``retrieval_model`` (folds, bootstrap, permutations), ``niche_summary``
  (squidpy permutations) and ``annotate_testis`` (temporary PCA graph).
"""

from __future__ import annotations

import functools
import warnings

import anndata as ad
import numba
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

import noa_omics as noa

METHODS = ("score_genes", "aucell", "ucell", "zmean")
EXACT = {"aucell", "ucell"}  # bit-identical across storage, blocks and threads
TOL = 1e-12


def _quiet(fn, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*args, **kwargs)


def _assert_same_anndata(a: ad.AnnData, b: ad.AnnData) -> None:
    assert a.shape == b.shape
    assert list(a.obs_names) == list(b.obs_names) and list(a.var_names) == list(b.var_names)
    for x, y in [(a.X, b.X), *((a.layers[k], b.layers[k]) for k in a.layers)]:
        x = x.toarray() if sp.issparse(x) else np.asarray(x)
        y = y.toarray() if sp.issparse(y) else np.asarray(y)
        np.testing.assert_array_equal(x, y)
    assert set(a.layers) == set(b.layers) and set(a.obsm) == set(b.obsm)
    for k in a.obsm:
        np.testing.assert_array_equal(np.asarray(a.obsm[k]), np.asarray(b.obsm[k]))
    pd.testing.assert_frame_equal(a.obs, b.obs, check_exact=True)
    pd.testing.assert_frame_equal(a.var, b.var, check_exact=True)


# --------------------------------------------------------------------------------------------
# simulators


def test_demo_testis_same_seed_same_data():
    a = noa.datasets.demo_testis(seed=3, n_cells=300)
    b = noa.datasets.demo_testis(seed=3, n_cells=300)
    _assert_same_anndata(a, b)
    c = noa.datasets.demo_testis(seed=4, n_cells=300)
    assert (a.layers["counts"] != c.layers["counts"]).nnz > 0


def test_demo_spatial_same_seed_same_data():
    a = noa.datasets.demo_spatial(seed=3, n_tubules=6)
    b = noa.datasets.demo_spatial(seed=3, n_tubules=6)
    _assert_same_anndata(a, b)
    c = noa.datasets.demo_spatial(seed=4, n_tubules=6)
    assert a.shape != c.shape or not np.array_equal(a.obsm["spatial"], c.obsm["spatial"])


# --------------------------------------------------------------------------------------------
# scoring across storage, blocks and threads


@functools.lru_cache(maxsize=None)
def _lognorm() -> ad.AnnData:
    import scanpy as sc

    adata = noa.datasets.demo_testis(seed=0, n_cells=250)
    sc.pp.normalize_total(adata, target_sum=1e4)
    sc.pp.log1p(adata)
    adata.X = sp.csr_matrix(adata.X, dtype=np.float32)
    return adata


def _score(x, method: str, *, chunk_size=None, threads=None, random_state=0) -> pd.DataFrame:
    src = _lognorm()
    adata = ad.AnnData(x, obs=src.obs[[]].copy(), var=src.var[[]].copy())
    previous = numba.get_num_threads()
    if threads is not None:
        numba.set_num_threads(threads)
    try:
        return _quiet(noa.tl.score, adata, method=method, chunk_size=chunk_size, random_state=random_state,
                      inplace=False)
    finally:
        numba.set_num_threads(previous)


def _storage(kind: str):
    x = _lognorm().X
    return {"csr": x, "csc": x.tocsc(), "dense": x.toarray(), "dense64": x.toarray().astype(np.float64)}[kind]


def _compare(method: str, ref: pd.DataFrame, other: pd.DataFrame) -> None:
    assert list(ref.columns) == list(other.columns) and list(ref.index) == list(other.index)
    if method in EXACT:
        np.testing.assert_array_equal(ref.to_numpy(), other.to_numpy())
    else:
        np.testing.assert_allclose(other.to_numpy(), ref.to_numpy(), rtol=0, atol=TOL)


@pytest.mark.parametrize("method", METHODS)
def test_score_rerun_is_bit_identical(method):
    a = _score(_storage("csr"), method)
    b = _score(_storage("csr"), method)
    np.testing.assert_array_equal(a.to_numpy(), b.to_numpy())
    assert np.isfinite(a.to_numpy()).all()


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("kind", ["csc", "dense", "dense64"])
def test_score_same_for_every_storage(method, kind):
    _compare(method, _score(_storage("csr"), method), _score(_storage(kind), method))


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("kind,chunk_size", [("csr", 5), ("csr", 37), ("csc", 64), ("dense", 13)])
def test_score_same_for_every_chunk_size(method, kind, chunk_size):
    _compare(method, _score(_storage("csr"), method), _score(_storage(kind), method, chunk_size=chunk_size))


@pytest.mark.parametrize("method", METHODS)
def test_score_same_with_one_or_two_numba_threads(method):
    if numba.config.NUMBA_NUM_THREADS < 2:
        pytest.skip("numba was started with one thread")
    for kind in ("csr", "dense"):
        one = _score(_storage(kind), method, threads=1)
        two = _score(_storage(kind), method, threads=2)
        _compare(method, one, two)


def test_score_seed_is_recorded_and_reproduces():
    """random_state=None draws a seed, records it in uns, and that seed reproduces the scores."""
    adata = _lognorm().copy()
    first = _quiet(noa.tl.score, adata, method="score_genes", random_state=None)
    seed = adata.uns["noa_score_genes"]["params"]["random_state"]
    assert isinstance(seed, int)
    again = _quiet(noa.tl.score, _lognorm().copy(), method="score_genes", random_state=seed, inplace=False)
    np.testing.assert_array_equal(first.to_numpy(), again.to_numpy())
    # a different seed draws other control genes: score_genes depends on the seed, as it should
    other = _quiet(noa.tl.score, _lognorm().copy(), method="score_genes", random_state=seed + 1, inplace=False)
    assert not np.array_equal(first.to_numpy(), other.to_numpy())


# --------------------------------------------------------------------------------------------
# seeded statistics


def _donor_cells(n_per_side: int = 10, cells: int = 20, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frames = []
    for condition in ("case", "control"):
        for d in range(n_per_side):
            frames.append(pd.DataFrame({"donor": f"{condition}{d}", "condition": condition,
                                        "score": rng.normal(rng.normal(0, 1), 1, cells)}))
    return pd.concat(frames, ignore_index=True)


def test_compare_conditions_permutation_same_seed_same_p():
    cells = _donor_cells()  # C(20, 10) = 184,756 relabellings > 10,000: Monte Carlo
    kw = dict(value_key="score", sample_key="donor", condition_key="condition", reference="control",
              method="permutation", n_permutations=2000)
    a = noa.tl.compare_conditions(cells, random_state=7, **kw)
    b = noa.tl.compare_conditions(cells, random_state=7, **kw)
    pd.testing.assert_frame_equal(a, b, check_exact=True)
    pvalues = {noa.tl.compare_conditions(cells, random_state=s, **kw)["pvalue"].iloc[0] for s in range(5)}
    assert len(pvalues) > 1  # the Monte Carlo p-value does depend on the seed
    assert all(1 / 2001 <= p <= 1 for p in pvalues)


def _features(n: int = 30, seed: int = 0) -> tuple[pd.DataFrame, pd.Series]:
    rng = np.random.default_rng(seed)
    features = pd.DataFrame({"a": rng.normal(size=n), "b": rng.normal(size=n), "c": rng.normal(size=n)},
                            index=[f"D{i:02d}" for i in range(n)])
    outcome = pd.Series((features["a"] + rng.normal(0, 0.7, n) > 0).astype(int), index=features.index)
    return features, outcome


def test_retrieval_model_same_seed_same_result():
    features, outcome = _features()
    kw = dict(n_permutations=3, n_bootstrap=100, importance_rounds=3)
    a = _quiet(noa.tl.retrieval_model, features, outcome, random_state=5, **kw)
    b = _quiet(noa.tl.retrieval_model, features, outcome, random_state=5, **kw)
    assert a.auroc == b.auroc and a.auroc_ci == b.auroc_ci and a.brier == b.brier
    assert a.permutation_pvalue == b.permutation_pvalue
    pd.testing.assert_series_equal(a.predictions, b.predictions, check_exact=True)
    pd.testing.assert_frame_equal(a.importances, b.importances, check_exact=True)
    pd.testing.assert_frame_equal(a.calibration, b.calibration, check_exact=True)
    np.testing.assert_array_equal(a.null_aurocs, b.null_aurocs)
    c = _quiet(noa.tl.retrieval_model, features, outcome, random_state=6, **kw)
    assert not a.predictions.equals(c.predictions)  # other folds


@functools.lru_cache(maxsize=None)
def _cohort() -> ad.AnnData:
    donors = [
        *({"donor": f"C{i}", "condition": "control", "n_cells": 80} for i in (1, 2, 3)),
        *({"donor": f"A{i}", "condition": "case", "n_cells": 80, "hits": {"oxidative": 1.5}} for i in (1, 2)),
    ]
    adata = noa.datasets.demo_testis(seed=2, donors=donors)
    adata.obs["noa_cell_type"] = adata.obs["truth_cell_type"].astype(str)
    return adata


def test_enrichment_same_seed_same_result():
    kw = dict(sample_key="sample", condition_key="condition", reference="control", cell_types=["sertoli"],
              permutation_num=30, min_cells=5)
    a = _quiet(noa.tl.enrichment, _cohort(), seed=11, **kw)
    b = _quiet(noa.tl.enrichment, _cohort(), seed=11, **kw)
    assert len(a) > 0
    pd.testing.assert_frame_equal(a, b, check_exact=True)


def test_annotate_testis_same_seed_same_labels():
    a = _quiet(noa.tl.annotate_testis, _cohort(), random_state=1, inplace=False)
    b = _quiet(noa.tl.annotate_testis, _cohort(), random_state=1, inplace=False)
    pd.testing.assert_series_equal(a, b, check_exact=True)


def test_spatial_same_input_same_tubules_and_seeded_summary():
    adata = noa.datasets.demo_spatial(seed=1, n_tubules=8, expression=False)
    first = noa.spatial.assign_tubules(adata.copy(), inplace=False)
    second = noa.spatial.assign_tubules(adata.copy(), inplace=False)
    pd.testing.assert_series_equal(first, second, check_exact=True)
    noa.spatial.assign_tubules(adata)
    a = _quiet(noa.spatial.niche_summary, adata, sample_key="sample", n_perms=20, seed=3)
    b = _quiet(noa.spatial.niche_summary, adata, sample_key="sample", n_perms=20, seed=3)
    pd.testing.assert_frame_equal(a, b, check_exact=True)
