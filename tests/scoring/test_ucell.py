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


@pytest.mark.parametrize("w_neg", [1.0, 0.5])
def test_signed_set_is_positive_part_minus_weighted_negative_part(lognorm, w_neg):
    """A signed signature ``GENE+``/``GENE-`` scores max(0, U+ - w_neg U-), with U+ and U- the
    UCell scores of its two parts as plain sets (the definition of Andreatta & Carmona 2021;
    kills the combination step losing its negative part)."""
    rng = np.random.default_rng(3)
    by_mean = lognorm.var_names[np.argsort(-np.asarray(lognorm.X.mean(axis=0)).ravel())]
    up = list(rng.choice(by_mean[:300], 20, replace=False))  # well expressed: U+ > U- in most cells
    down = list(rng.choice(by_mean[300:], 20, replace=False))
    signature = {"sig": [f"{g}+" for g in up] + [f"{g}-" for g in down]}
    signed = noa.tl.score(lognorm, signature, method="ucell", w_neg=w_neg, inplace=False)["sig"].to_numpy()
    parts = noa.tl.score(lognorm, {"up": up, "down": down}, method="ucell", inplace=False)
    expected = np.maximum(parts["up"].to_numpy() - w_neg * parts["down"].to_numpy(), 0.0)
    assert (expected > 0).sum() > 10 and (parts["down"] > 0).sum() > 10  # both parts count
    assert_allclose(signed, expected, atol=1e-12, rtol=0)
