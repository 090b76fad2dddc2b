"""``method="score_genes"`` against ``scanpy.tl.score_genes`` (the peer defines the answer)."""

from __future__ import annotations

import warnings

import anndata as ad
import numpy as np
import pytest
import scanpy as sc
import scipy.sparse as sp
from numpy.testing import assert_allclose

import noa_omics as noa

from .conftest import _adata, random_sets


def scanpy_scores(adata: ad.AnnData, sets: dict, **kwargs) -> np.ndarray:
    """scanpy, one set per call (as users run it), same random_state."""
    adata = adata.copy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name, genes in sets.items():
            sc.tl.score_genes(adata, genes, score_name=name, **kwargs)
    return adata.obs[list(sets)].to_numpy()


@pytest.mark.parametrize("storage", ["csr", "csc", "dense32", "dense64"])
def test_equals_scanpy(lognorm, gene_sets, storage):
    x = {"csr": lognorm.X, "csc": lognorm.X.tocsc(), "dense32": lognorm.X.toarray(),
         "dense64": lognorm.X.toarray().astype(np.float64)}[storage]
    adata = ad.AnnData(x, obs=lognorm.obs, var=lognorm.var)
    ours = noa.tl.score(adata, gene_sets, method="score_genes", inplace=False)
    assert list(ours.columns) == list(gene_sets)
    # scipy sums a float32 CSC row in float32 (scanpy's per-cell means then carry ~1e-6 error)
    atol = 1e-5 if storage == "csc" else 1e-6
    assert_allclose(ours.to_numpy(), scanpy_scores(adata, gene_sets, random_state=0), atol=atol, rtol=0)


def _permuted_columns(n_cells=400, n_genes=600, seed=3) -> ad.AnnData:
    """Genes that are cell permutations of a few columns: equal means up to float rounding, so the
    expression bins depend on how the column sums are rounded (the order scipy/numpy sum in)."""
    rng = np.random.default_rng(seed)
    base = [np.where(rng.random(n_cells) < 0.6, rng.lognormal(0, 1, n_cells), 0.0) for _ in range(5)]
    cols = [rng.permutation(base[j % 5]) for j in range(n_genes)]
    x = np.column_stack(cols).astype(np.float32)
    return _adata(sp.csr_matrix(x))


@pytest.mark.parametrize("storage", ["csr", "csc", "dense32"])
def test_equals_scanpy_when_bins_hinge_on_rounding(storage):
    adata = _permuted_columns()
    x = {"csr": adata.X, "csc": adata.X.tocsc(), "dense32": adata.X.toarray()}[storage]
    adata = ad.AnnData(x, obs=adata.obs, var=adata.var)
    sets = random_sets(adata, 4, 20, seed=11)
    ours = noa.tl.score(adata, sets, inplace=False, ctrl_size=30, n_bins=40)
    atol = 1e-5 if storage == "csc" else 1e-6  # see test_equals_scanpy
    assert_allclose(ours.to_numpy(), scanpy_scores(adata, sets, random_state=0, ctrl_size=30, n_bins=40), atol=atol)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"ctrl_size": 20, "n_bins": 10},
        {"ctrl_as_ref": False},
        {"random_state": 42},
    ],
)
def test_parameters_as_scanpy(lognorm, gene_sets, kwargs):
    ours = noa.tl.score(lognorm, gene_sets, inplace=False, **kwargs)
    assert_allclose(ours.to_numpy(), scanpy_scores(lognorm, gene_sets, **kwargs), atol=1e-6)


def test_gene_pool_as_scanpy(lognorm, gene_sets):
    pool = list(lognorm.var_names[::2]) + [g for genes in gene_sets.values() for g in genes if g in lognorm.var_names]
    pool = list(dict.fromkeys(pool))
    ours = noa.tl.score(lognorm, gene_sets, inplace=False, gene_pool=pool)
    assert_allclose(ours.to_numpy(), scanpy_scores(lognorm, gene_sets, gene_pool=pool), atol=1e-6)


def test_seed_changes_controls_only(lognorm, gene_sets):
    a = noa.tl.score(lognorm, gene_sets, inplace=False, random_state=0)
    b = noa.tl.score(lognorm, gene_sets, inplace=False, random_state=1)
    assert not np.allclose(a.to_numpy(), b.to_numpy())
    # the set mean is the same; only the control mean moves: the correlation stays high
    assert min(np.corrcoef(a[c], b[c])[0, 1] for c in a.columns) > 0.8


def test_warns_on_raw_counts(counts):
    adata = counts.copy()
    adata.X = adata.X.copy()
    adata.X.data[0] = 80.0  # integer counts above the threshold
    sets = random_sets(adata, 2, 20, seed=1)
    with pytest.warns(UserWarning, match="raw counts"):
        noa.tl.score(adata, sets, inplace=False)


def test_no_warning_on_lognormalised_and_scores_equal_scanpy(lognorm, gene_sets):
    """No warning on log-normalised data, and the silent run still scores correctly (the same
    values as scanpy): a run that warned nothing because it did nothing must fail."""
    sets = {k: v for k, v in gene_sets.items() if k != "with_missing"}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ours = noa.tl.score(lognorm, sets, inplace=False)
    assert list(ours.columns) == list(sets) and list(ours.index) == list(lognorm.obs_names)
    assert_allclose(ours.to_numpy(), scanpy_scores(lognorm, sets, random_state=0), atol=1e-6, rtol=0)


@pytest.mark.parametrize("storage", ["csr", "dense"])
def test_nan_policy_omit_equals_scanpy_nan_means(lognorm, gene_sets, storage):
    """``nan_policy="omit"``: the set and control means ignore NaN, as scanpy's nan-means do
    (kills the NaN plan's lost set layout, the lost control layout and the CSR NaN filling)."""
    x = lognorm.X.toarray()
    rng = np.random.default_rng(5)
    cols = lognorm.var_names.get_indexer(gene_sets["set0"] + gene_sets["set1"])
    rows = rng.integers(0, x.shape[0], size=60)
    x[rows, rng.choice(cols, size=60)] = np.nan  # NaN in set genes (and in controls shared with them)
    x[rng.integers(0, x.shape[0], size=40), rng.integers(0, x.shape[1], size=40)] = np.nan
    adata = ad.AnnData(sp.csr_matrix(x) if storage == "csr" else x, obs=lognorm.obs, var=lognorm.var)
    sets = {k: gene_sets[k] for k in ("set0", "set1", "set2")}
    with pytest.raises(ValueError, match="NaN"):
        noa.tl.score(adata, sets, method="score_genes", inplace=False)
    ours = noa.tl.score(adata, sets, method="score_genes", nan_policy="omit", inplace=False)
    assert np.isfinite(ours.to_numpy()).all()
    assert_allclose(ours.to_numpy(), scanpy_scores(adata, sets, random_state=0), atol=1e-6, rtol=0)


def test_ctrl_as_ref_is_recorded_as_a_bool(lognorm, gene_sets):
    """``ctrl_as_ref`` is recorded under its own name as a bool (kills a renamed key, which left
    the 0 given and added an unknown parameter)."""
    adata = lognorm.copy()
    noa.tl.score(adata, {"set0": gene_sets["set0"]}, method="score_genes", ctrl_as_ref=0, key_added="sg")
    params = adata.uns["sg"]["params"]
    assert params["ctrl_as_ref"] is False
    assert {"ctrl_size", "n_bins", "ctrl_as_ref", "gene_pool", "nan_policy"} <= set(params)
    assert not [k for k in params if "ctrl_as_ref" in k and k != "ctrl_as_ref"]
