"""Per-sample summary ``noa.spatial.niche_summary`` and donor-level ``compare_tubules``."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import noa_omics as noa
from noa_omics._vocabulary import HISTOLOGIES

from .conftest import quiet_metrics


@pytest.fixture(scope="module")
def summary(cohort):
    metrics = quiet_metrics(cohort, sample_key="sample")
    return noa.spatial.niche_summary(cohort, sample_key="sample", metrics=metrics, n_perms=50), metrics


def test_one_row_per_sample_with_histology_fractions(cohort, summary):
    table, metrics = summary
    samples = sorted(cohort.obs["sample"].astype(str).unique())
    assert table.index.tolist() == samples
    fractions = table[[f"frac_{h}" for h in HISTOLOGIES]]
    np.testing.assert_allclose(fractions.sum(axis=1), 1.0)
    for s in samples:
        sub = metrics[metrics["sample"] == s]
        assert table.loc[s, "n_tubules"] == len(sub)
        assert table.loc[s, "frac_sertoli_cell_only"] == pytest.approx((sub["histology"] == "sertoli_cell_only").mean())
        assert table.loc[s, "median_niche_collapse_index"] == pytest.approx(sub["niche_collapse_index"].median())
        assert table.loc[s, "mean_johnsen_like"] == pytest.approx(sub["johnsen_like"].mean())
    # controls (mostly normal tubules) against NOA donors
    condition = cohort.obs.groupby("sample", observed=True)["condition"].first().astype(str)
    control = condition.index[condition == "control"]
    noa_ = condition.index[condition == "NOA"]
    assert (table.loc[control, "histology"] == "normal").all()
    assert table.loc[noa_, "median_niche_collapse_index"].min() > table.loc[control, "median_niche_collapse_index"].max()
    assert table.loc[control, "mean_johnsen_like"].min() > table.loc[noa_, "mean_johnsen_like"].max()


def test_nhood_enrichment_per_section(cohort, summary):
    import squidpy as sq
    from anndata import AnnData

    table, metrics = summary
    pairs = [c for c in table.columns if c.startswith("nhood_")]
    assert len(pairs) == 10 and "nhood_germ_sertoli" in pairs
    # same z-score as squidpy run on that section alone
    s = table.index[0]
    m = (cohort.obs["sample"].astype(str) == s).to_numpy()
    sub = AnnData(obs=pd.DataFrame({"cls": pd.Categorical(cohort.obs.loc[m, "noa_cell_class"].astype(str))},
                                   index=cohort.obs_names[m]))
    sub.obsm["spatial"] = cohort.obsm["spatial"][m]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # deprecated in squidpy 1.8, same kNN graph
        sq.gr.spatial_neighbors(sub, coord_type="generic", n_neighs=6)
    sq.gr.nhood_enrichment(sub, cluster_key="cls", n_perms=50, seed=0, show_progress_bar=False)
    cats = list(sub.obs["cls"].cat.categories)
    z = sub.uns["cls_nhood_enrichment"]["zscore"]
    assert table.loc[s, "nhood_germ_sertoli"] == pytest.approx(z[cats.index("germ"), cats.index("sertoli")])
    # germ cells cluster with germ cells, not with Leydig cells
    assert (table["nhood_germ_germ"] > 0).all() and (table["nhood_germ_leydig"] < 0).all()


def test_sections_are_never_pooled(cohort, summary):
    table, metrics = summary
    moved = cohort.copy()
    xy = moved.obsm["spatial"].copy()
    first = (moved.obs["sample"].astype(str) == table.index[0]).to_numpy()
    xy[first] += 1e6  # move one section far away: per-section statistics cannot change
    moved.obsm["spatial"] = xy
    again = noa.spatial.niche_summary(moved, sample_key="sample", metrics=metrics, n_perms=50)
    pd.testing.assert_frame_equal(again, table, check_exact=False, rtol=1e-10)


def test_section_key_averages_sections():
    adata = noa.datasets.demo_spatial(seed=6, n_tubules=12, sections=4, sections_per_donor=2, expression=False)
    noa.spatial.assign_tubules(adata, sample_key="sample")
    metrics = quiet_metrics(adata, sample_key="sample", obs_keys=["donor"])
    per_section = noa.spatial.niche_summary(adata, sample_key="sample", metrics=metrics, n_perms=30)
    metrics["sample"] = metrics["donor"]
    per_donor = noa.spatial.niche_summary(adata, sample_key="donor", section_key="sample", metrics=metrics,
                                          n_perms=30)
    assert per_donor["n_sections"].tolist() == [2, 2]
    donor_of = adata.obs.groupby("sample", observed=True)["donor"].first().astype(str)
    expected = per_section["nhood_germ_sertoli"].groupby(donor_of).mean()
    np.testing.assert_allclose(per_donor["nhood_germ_sertoli"], expected.reindex(per_donor.index))


def test_scores_add_germ_apoptosis_hand_computed(scored):
    """mean_germ_apoptosis is the mean over a sample's tubules of the mean apoptosis score of the
    tubule's germ cells (hand-computed from the cells, not only finite)."""
    table = noa.spatial.niche_summary(scored, sample_key="sample", score_key="scores", n_perms=20)
    obs = scored.obs.assign(score=scored.obsm["scores"]["apoptosis_intrinsic"].to_numpy())
    germ = obs[obs["noa_tubule"].notna() & obs["noa_cell_type"].astype(str).isin(noa._vocabulary.GERM_STAGES)]
    per_tubule = germ.groupby([germ["sample"].astype(str), germ["noa_tubule"].astype(str)])["score"].mean()
    expected = per_tubule.groupby(level=0).mean()
    assert len(expected) >= 1 and per_tubule.size >= 10
    np.testing.assert_allclose(table["mean_germ_apoptosis"].to_numpy(),
                               expected.reindex(table.index.astype(str)).to_numpy(), rtol=1e-10)
    # not a constant: tubules differ in germ apoptosis
    assert per_tubule.std() > 0


def test_compare_tubules_uses_donor_as_unit(cohort, summary, monkeypatch):
    _, _ = summary
    metrics = quiet_metrics(cohort, sample_key="sample", obs_keys=["donor", "condition"])
    per_donor = noa.spatial.tubules_per_donor(metrics, value_key="niche_collapse_index")
    assert len(per_donor) == cohort.obs["donor"].nunique()
    d0 = metrics[metrics["donor"] == per_donor.loc[0, "donor"]]
    assert per_donor.loc[0, "niche_collapse_index"] == pytest.approx(d0["niche_collapse_index"].mean())
    assert per_donor.loc[0, "n_tubules"] == len(d0)

    calls = []

    def fake_compare(data, *, value_key, sample_key, condition_key, reference, groupby=None, min_cells=10):
        assert min_cells == 1  # one row per donor: no cell threshold applies
        calls.append(dict(data=data, value_key=value_key, sample_key=sample_key, reference=reference))
        return pd.DataFrame({"condition": ["NOA"], "effect": [1.0], "n_samples": [data[sample_key].nunique()]})

    from noa_omics import celltypes

    monkeypatch.setattr(celltypes, "compare_conditions", fake_compare)
    out = noa.spatial.compare_tubules(metrics, value_key=["niche_collapse_index", "johnsen_like"],
                                      reference="control")
    assert out["metric"].tolist() == ["niche_collapse_index", "johnsen_like"]
    assert calls[0]["sample_key"] == "donor" and calls[0]["reference"] == "control"
    assert calls[0]["data"]["donor"].is_unique  # one row per donor reaches the statistics
    with pytest.raises(ValueError, match="reference"):
        noa.spatial.compare_tubules(metrics, reference="healthy")


def test_compare_tubules_with_the_real_statistics(cohort):
    metrics = quiet_metrics(cohort, sample_key="sample", obs_keys=["donor", "condition"])
    # compare_conditions is implemented: a regression raising NotImplementedError must fail, not skip
    out = noa.spatial.compare_tubules(metrics, value_key="niche_collapse_index", reference="control")
    row = out[out["condition"].astype(str) == "NOA"].iloc[0]
    assert row["effect"] > 0
    assert row["n_samples"] == 2 and row["n_reference_samples"] == 2


def test_bad_inputs(cohort):
    with pytest.raises(KeyError, match="sample"):
        noa.spatial.niche_summary(cohort, sample_key="patient")
    with pytest.raises(ValueError, match="cell class"):
        noa.spatial.niche_summary(cohort, sample_key="sample", nhood_classes=["germ", "fibroblast"])
    with pytest.raises(KeyError, match="histology"):
        noa.spatial.niche_summary(cohort, sample_key="sample", metrics=pd.DataFrame({"sample": ["a"]}))
    metrics = quiet_metrics(cohort, sample_key="sample", obs_keys=["sample", "condition"])
    with pytest.raises(KeyError, match="donor"):
        noa.spatial.tubules_per_donor(metrics, value_key="niche_collapse_index")
    mixed = metrics.assign(donor="d0")
    with pytest.raises(ValueError, match="single condition"):
        noa.spatial.tubules_per_donor(mixed, value_key="niche_collapse_index")
    with pytest.raises(ValueError, match="numeric"):
        noa.spatial.tubules_per_donor(mixed, value_key="histology", condition_key="sample")
