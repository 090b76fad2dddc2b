"""apoptosis_profile: tidy per sample x cell type x gene-set summaries."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from anndata import AnnData

import noa_omics as noa


def _toy() -> AnnData:
    """6 cells, 2 samples, 2 cell types, hand-set scores."""
    obs = pd.DataFrame(
        {
            "donor": ["a", "a", "a", "b", "b", "b"],
            "condition": ["ctrl", "ctrl", "ctrl", "noa", "noa", "noa"],
            "noa_cell_type": ["sertoli", "sertoli", "spermatocyte", "sertoli", "sertoli", "sertoli"],
        },
        index=[f"c{i}" for i in range(6)],
    )
    adata = AnnData(X=np.ones((6, 2)), obs=obs)
    adata.obsm["noa_score_genes"] = pd.DataFrame(
        {"apoptosis_intrinsic": [0.0, 1.0, 5.0, 2.0, 3.0, 4.0], "marker_sertoli": [1.0] * 6}, index=obs.index
    )
    return adata


def test_hand_values_and_frac_high_with_reference():
    res = noa.tl.apoptosis_profile(_toy(), sample_key="donor", condition_key="condition", reference="ctrl",
                                   high_quantile=0.5)
    assert list(res.columns) == ["sample", "condition", "cell_type", "gene_set", "n_cells", "mean", "median",
                                 "frac_high"]
    assert set(res["gene_set"]) == {"apoptosis_intrinsic"}  # marker_* sets left out by default
    res = res.set_index(["sample", "cell_type"])
    # Sertoli threshold = median of the reference Sertoli cells (0, 1) = 0.5
    assert res.loc[("a", "sertoli"), "mean"] == 0.5 and res.loc[("a", "sertoli"), "frac_high"] == 0.5
    assert res.loc[("b", "sertoli"), "n_cells"] == 3 and res.loc[("b", "sertoli"), "median"] == 3.0
    assert res.loc[("b", "sertoli"), "frac_high"] == 1.0
    # sample b has no spermatocytes: a row with 0 cells and NaN statistics
    assert res.loc[("b", "spermatocyte"), "n_cells"] == 0
    assert np.isnan(res.loc[("b", "spermatocyte"), ["mean", "median", "frac_high"]].astype(float)).all()
    assert res.loc[("a", "spermatocyte"), "frac_high"] == 0.0  # the one reference cell is its own threshold


def test_frac_high_without_reference_uses_all_cells():
    res = noa.tl.apoptosis_profile(_toy(), sample_key="donor", high_quantile=0.5)
    assert "condition" not in res.columns
    res = res.set_index(["sample", "cell_type"])
    # Sertoli threshold = median of all Sertoli cells (0, 1, 2, 3, 4) = 2
    assert res.loc[("a", "sertoli"), "frac_high"] == 0.0
    assert res.loc[("b", "sertoli"), "frac_high"] == pytest.approx(2 / 3)


def test_on_cohort_with_planted_apoptosis(apoptosis_cohort):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a few cells called 'other' outside the controls
        res = noa.tl.apoptosis_profile(apoptosis_cohort, sample_key="donor", condition_key="condition",
                                       reference="control", sets=["apoptosis_intrinsic"])
    sc = res[res["cell_type"] == "spermatocyte"].set_index("sample")
    control = sc[sc["condition"] == "control"]
    switched = sc[sc["condition"] == "apoptotic"]
    assert switched["frac_high"].min() > control["frac_high"].max()
    assert control["frac_high"].mean() == pytest.approx(0.1, abs=0.05)  # by construction of the threshold
    counts = apoptosis_cohort.obs.groupby(["donor", "noa_cell_type"], observed=True).size()
    assert (sc["n_cells"] == counts.xs("spermatocyte", level="noa_cell_type").reindex(sc.index)).all()


def test_scores_computed_when_absent():
    adata = noa.datasets.demo_testis(seed=2, n_cells=600)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = noa.tl.apoptosis_profile(adata, sample_key="donor", cell_type_key="truth_cell_type",
                                       sets=["apoptosis_intrinsic", "stress_heat"])
    assert "noa_score_genes" not in adata.obsm  # computed, not stored
    assert set(res["gene_set"]) == {"apoptosis_intrinsic", "stress_heat"}
    assert res.loc[res["n_cells"] > 0, "mean"].notna().all()


def test_bad_input():
    adata = _toy()
    with pytest.raises(KeyError, match=r"patient.*available columns.*donor"):
        noa.tl.apoptosis_profile(adata, sample_key="patient")
    with pytest.raises(KeyError, match="not_a_set"):
        noa.tl.apoptosis_profile(adata, sample_key="donor", sets=["not_a_set"])
    with pytest.raises(ValueError, match=r"'healthy' not found.*ctrl"):
        noa.tl.apoptosis_profile(adata, sample_key="donor", condition_key="condition", reference="healthy")
    with pytest.raises(ValueError, match="high_quantile"):
        noa.tl.apoptosis_profile(adata, sample_key="donor", high_quantile=1.5)
    with pytest.raises(KeyError, match="noa_ucell"):
        noa.tl.apoptosis_profile(adata, sample_key="donor", score_key="noa_ucell")
    adata.obs["condition"] = ["ctrl", "noa", "ctrl", "noa", "noa", "noa"]
    with pytest.raises(ValueError, match="more than one condition"):
        noa.tl.apoptosis_profile(adata, sample_key="donor", condition_key="condition")


def test_reference_without_a_cell_type_warns():
    adata = _toy()
    adata.obs["noa_cell_type"] = ["sertoli", "sertoli", "sertoli", "sertoli", "leydig", "sertoli"]
    with pytest.warns(UserWarning, match="leydig"):
        res = noa.tl.apoptosis_profile(adata, sample_key="donor", condition_key="condition", reference="ctrl")
    leydig = res[(res["cell_type"] == "leydig") & (res["sample"] == "b")]
    assert leydig["n_cells"].iloc[0] == 1 and np.isnan(leydig["frac_high"].iloc[0])
