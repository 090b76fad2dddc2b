"""``method="ucell"`` against pyUCell (``pyucell.compute_ucell_scores``)."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pytest
from numpy.testing import assert_allclose

import noa_omics as noa

from .conftest import random_sets

pyucell = pytest.importorskip("pyucell")


def pyucell_scores(adata: ad.AnnData, sets: dict, max_rank: int = 1500) -> np.ndarray:
    adata = adata.copy()
    pyucell.compute_ucell_scores(adata, sets, max_rank=max_rank, missing_genes="skip", n_jobs=1)
    return adata.obs[[f"{s}_UCell" for s in sets]].to_numpy()


def _compare(adata, sets, **kwargs):
    ours = noa.tl.score(adata, sets, method="ucell", inplace=False, **kwargs)
    present = {k: [g for g in v if g in adata.var_names] for k, v in sets.items()}
    assert_allclose(ours.to_numpy(), pyucell_scores(adata, present, **kwargs), atol=1e-3, rtol=0)
    return ours


def test_equals_pyucell_lognormalised(lognorm, gene_sets):
    ours = _compare(lognorm, gene_sets)
    assert ours.to_numpy().std() > 0.01


@pytest.mark.parametrize("max_rank", [1500, 40])
def test_equals_pyucell_ties_and_rank_cap(counts, max_rank):
    """Integer counts: average ranks of large tie groups; max_rank=40 caps most ranks."""
    _compare(counts, random_sets(counts, 6, 15, seed=5), max_rank=max_rank)


def test_equals_pyucell_many_distinct_values(continuous):
    _compare(continuous, random_sets(continuous, 4, 300, seed=6), max_rank=400)


def test_equals_pyucell_dense(lognorm, gene_sets):
    _compare(ad.AnnData(lognorm.X.toarray(), obs=lognorm.obs, var=lognorm.var), gene_sets)


def test_undefined_when_set_too_large(counts):
    with pytest.raises(ValueError, match="max_rank"):
        noa.tl.score(counts, random_sets(counts, 1, 30, seed=1), method="ucell", max_rank=10, inplace=False)
