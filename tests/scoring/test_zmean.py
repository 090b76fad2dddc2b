"""``method="zmean"``: mean of per-gene z-scores, checked against a dense numpy computation."""

from __future__ import annotations

import anndata as ad
import numpy as np
import scipy.sparse as sp
from numpy.testing import assert_allclose

import noa_omics as noa


def test_equals_dense_definition(lognorm, gene_sets):
    ours = noa.tl.score(lognorm, gene_sets, method="zmean", inplace=False)
    x = lognorm.X.toarray().astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        z = (x - x.mean(axis=0)) / x.std(axis=0)  # population SD (ddof=0)
    for name, genes in gene_sets.items():
        idx = [lognorm.var_names.get_loc(g) for g in genes if g in lognorm.var_names]
        idx = [i for i in idx if x[:, i].std() > 0]
        assert_allclose(ours[name].to_numpy(), z[:, idx].mean(axis=1), atol=1e-10)


def test_hand_computed():
    x = np.array([[0.0, 1.0, 5.0], [2.0, 1.0, 5.0], [4.0, 4.0, 5.0], [2.0, 2.0, 5.0]])
    adata = ad.AnnData(sp.csr_matrix(x), var={"gene": ["AAA", "BBB", "CCC"]})
    adata.var_names = ["AAA", "BBB", "CCC"]
    scores = noa.tl.score(adata, {"s": ["AAA", "BBB", "CCC"]}, method="zmean", min_genes=2)
    # AAA: mean 2, sd sqrt(2); BBB: mean 2, sd sqrt(1.5); CCC constant -> left out
    expected = ((x[:, 0] - 2) / np.sqrt(2) + (x[:, 1] - 2) / np.sqrt(1.5)) / 2
    assert_allclose(scores["s"].to_numpy(), expected, atol=1e-12)
    record = adata.uns["noa_zmean"]
    assert record["genes_used"]["s"] == ["AAA", "BBB"]
    assert record["genes_missing"]["s"] == ["CCC"]
