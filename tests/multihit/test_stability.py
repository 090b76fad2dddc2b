"""multihit_stability: per-donor call stability from cell bootstrap and reference leave-one-out."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import noa_omics as noa
from noa_omics._vocabulary import APOPTOSIS_CONTEXTS
from noa_omics.multihit._stability import _light_adata

from .conftest import make_handmade

KW = dict(sample_key="sample", reference="control", condition_key="condition", score_key="scores")
APOPTOSIS_SETS = ["apoptosis_intrinsic", "apoptosis_checkpoint", "apoptosis_execution"]


def _noisy(seed: int = 0, shift: float = 0.0) -> "AnnData":
    """Hand-made cohort with per-cell noise; P5's germ cells get ``shift`` on a random 40% of cells."""
    adata = make_handmade()
    rng = np.random.default_rng(seed)
    scores = adata.obsm["scores"]
    scores[:] = scores.to_numpy() + rng.normal(0, 0.05, scores.shape)
    germ = adata.obs["noa_cell_type"].isin(noa._vocabulary.GERM_STAGES).to_numpy()
    hit = (adata.obs["sample"] == "P5").to_numpy() & germ & (rng.random(adata.n_obs) < 0.4)
    for s in APOPTOSIS_SETS:
        scores.loc[hit, s] += shift
    adata.obsm["scores"] = scores
    return adata


def _run(adata, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return noa.tl.multihit_stability(adata, **KW, **kwargs)


def test_columns_fractions_and_full_call():
    adata = _noisy(shift=0.5)
    res = _run(adata, n_boot=4)
    full = noa.tl.multihit(adata, inplace=False, **KW)
    pd.testing.assert_series_equal(res["apoptosis_context"], full["apoptosis_context"])
    fr = res[[f"frac_{c}" for c in APOPTOSIS_CONTEXTS]]
    np.testing.assert_allclose(fr.sum(axis=1), 1.0)
    assert (res["n_resamples"] == 4 + 4).all()  # 4 bootstraps + 4 reference donors left out in turn
    np.testing.assert_allclose(res["context_stability"], fr.max(axis=1))
    ok = res["germ_apoptosis_low"].notna()
    assert (res.loc[ok, "germ_apoptosis_low"] <= res.loc[ok, "germ_apoptosis_high"]).all()
    assert np.isnan(res.loc["P6", "germ_apoptosis_low"])  # no germ cells
    # the strongly hit donor is called elevated in every resample
    assert res.loc["P5", "context_modal"] == "indeterminate"
    assert res.loc["P5", "context_stability"] == 1.0 and not res.loc["P5", "unstable"]
    assert res.loc["P5", "germ_apoptosis_low"] > 3.0
    long = adata.uns["noa_multihit_stability"]["resamples"]
    assert len(long) == 8 * 6 and set(long["resample"]) >= {"boot0", "loo_P1"}


def test_same_seed_same_table_other_seed_other_intervals():
    adata = _noisy(shift=0.3)
    a = _run(adata, n_boot=3, leave_one_out=False, random_state=1, key_added=None)
    b = _run(adata, n_boot=3, leave_one_out=False, random_state=1, key_added=None)
    c = _run(adata, n_boot=3, leave_one_out=False, random_state=2, key_added=None)
    pd.testing.assert_frame_equal(a, b)
    assert not np.allclose(a["oxidative_low"].to_numpy(), c["oxidative_low"].to_numpy())


def test_borderline_donor_is_flagged_unstable():
    """Threshold put at the median of P5's resampled germ-apoptosis z: about half the resamples flip."""
    adata = _noisy(shift=0.3)
    first = _run(adata, n_boot=8, leave_one_out=False)
    z = adata.uns["noa_multihit_stability"]["resamples"].query("sample == 'P5'")["germ_apoptosis"]
    assert z.std() > 0  # the bootstrap moves the donor's value
    rules = {"thresholds": {"apoptosis_high": float(np.median(z))}}
    second = _run(adata, n_boot=8, leave_one_out=False, rules=rules)
    assert 0.3 <= second.loc["P5", "context_stability"] < 0.8
    assert second.loc["P5", "unstable"]
    assert set(second.loc["P5", ["frac_indeterminate", "frac_not_elevated"]]) != {0.0}
    # controls far from every threshold stay stable
    assert not first.loc[["P1", "P2", "P3", "P4"], "unstable"].any()


def test_light_adata_reproduces_multihit():
    adata = _noisy(shift=0.3)
    from noa_omics._identifiers import symbol_view

    symbols, _, _ = symbol_view(adata)
    light = _light_adata(adata, symbols, sample_key="sample", condition_key="condition",
                         cell_type_key="noa_cell_type", score_key="scores", method="score_genes", layer=None,
                         gene_symbols=None, axes=None, species="human")
    assert light.n_vars <= 2 and "XIST" in light.var_names  # only the single-gene ingredients
    full = noa.tl.multihit(adata, inplace=False, **KW)
    again = noa.tl.multihit(light, inplace=False, **{**KW, "score_key": "noa_stability_scores"}, species="human")
    pd.testing.assert_frame_equal(full.drop(columns=["evidence"]), again.drop(columns=["evidence"]))


def test_leave_one_out_needs_three_references_and_bad_input():
    adata = _noisy()
    with pytest.warns(UserWarning, match="leave-one-out"):
        res = noa.tl.multihit_stability(adata, **{**KW, "reference": ["P1", "P2"]}, n_boot=2)
    assert (res["n_resamples"] == 2).all()
    with pytest.raises(ValueError, match="n_boot"):
        noa.tl.multihit_stability(adata, **KW, n_boot=-1)
    with pytest.raises(ValueError, match="unstable_below"):
        noa.tl.multihit_stability(adata, **KW, unstable_below=0)
    with pytest.raises(ValueError, match="no resample"):
        noa.tl.multihit_stability(adata, **KW, n_boot=0, leave_one_out=False)
