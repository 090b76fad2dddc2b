"""``method="aucell"`` against ``decoupler.mt.aucell`` (decoupler 2.x defines the answer)."""

from __future__ import annotations

import warnings

import anndata as ad
import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose

import noa_omics as noa

from .conftest import random_sets

dc = pytest.importorskip("decoupler")


def decoupler_scores(adata: ad.AnnData, sets: dict, **kwargs) -> pd.DataFrame:
    net = pd.DataFrame([(s, g) for s, genes in sets.items() for g in genes], columns=["source", "target"])
    adata = adata.copy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dc.mt.aucell(adata, net, tmin=3, **kwargs)
    return adata.obsm["score_aucell"]


def _compare(adata, sets, **kwargs):
    ours = noa.tl.score(adata, sets, method="aucell", inplace=False, **kwargs)
    ref = decoupler_scores(adata, sets, **kwargs)
    assert list(ours.index) == list(ref.index)
    assert_allclose(ours.to_numpy(), ref[ours.columns].to_numpy(), atol=1e-4, rtol=0)
    return ours


def test_equals_decoupler_lognormalised(lognorm, gene_sets):
    ours = _compare(lognorm, gene_sets)
    assert ours.to_numpy().min() >= 0 and ours.to_numpy().max() <= 1
    assert ours.to_numpy().std() > 0.01  # not a degenerate case


@pytest.mark.parametrize("n_up", [None, 30, 300])
def test_equals_decoupler_sparse_cells_and_ties(counts, n_up):
    """Integer counts: large tie groups, and many cells with fewer than n_up expressed genes, so
    the zeros' ranks (decoupler's shuffled tie order) enter the score."""
    detected = np.diff(counts.X.indptr)
    assert (detected < 30).any()
    _compare(counts, random_sets(counts, 6, 25, seed=3), **({} if n_up is None else {"n_up": n_up}))


def test_equals_decoupler_many_distinct_values(continuous):
    """Many distinct expressed set values per cell (the binary-search counting path)."""
    _compare(continuous, random_sets(continuous, 4, 300, seed=4), n_up=200)


@pytest.mark.parametrize("storage", ["csc", "dense"])
def test_equals_decoupler_other_layouts(lognorm, gene_sets, storage):
    x = lognorm.X.tocsc() if storage == "csc" else lognorm.X.toarray()
    _compare(ad.AnnData(x, obs=lognorm.obs, var=lognorm.var), gene_sets)


def test_never_detected_genes_are_missing(counts):
    adata = counts.copy()
    detected = np.diff(adata.X.tocsc().indptr) > 0
    assert not detected[-5:].any()  # the fixture's last 5 genes are never detected
    sets = {"a": list(adata.var_names[:10]) + list(adata.var_names[-5:])}
    noa.tl.score(adata, sets, method="aucell", key_added="auc")
    record = adata.uns["auc"]
    assert record["genes_missing"]["a"] == [g for g in sets["a"] if not detected[adata.var_names.get_loc(g)]]
    assert record["genes_used"]["a"] == [g for g in sets["a"] if detected[adata.var_names.get_loc(g)]]
    assert record["params"]["n_up"] == int(np.ceil(0.05 * detected.sum()))


def test_bad_n_up(lognorm, gene_sets):
    with pytest.raises(ValueError, match="n_up"):
        noa.tl.score(lognorm, gene_sets, method="aucell", n_up=1, inplace=False)
