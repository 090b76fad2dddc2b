"""enrichment: donor-level pseudobulk ranking + gseapy prerank, offline."""

from __future__ import annotations

import socket
import warnings

import numpy as np
import pandas as pd
import pytest

import noa_omics as noa
from noa_omics.celltypes._enrichment import log_cpm, pseudobulk, rank_genes


@pytest.fixture(scope="module")
def no_network():
    """Refuse any socket connection while the enrichment runs (the gene sets are a dict)."""
    original = socket.socket.connect

    def refuse(self, address):  # pragma: no cover - only called on a regression
        raise AssertionError(f"network access attempted: {address}")

    socket.socket.connect = refuse
    yield
    socket.socket.connect = original


@pytest.fixture(scope="module")
def enriched(apoptosis_cohort, no_network):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return noa.tl.enrichment(
            apoptosis_cohort, sample_key="donor", condition_key="condition", reference="control",
            cell_type_key="noa_cell_type", permutation_num=200, seed=0,
            cell_types=["spermatocyte", "round_spermatid", "sertoli"],
        )


def test_planted_set_ranks_first_with_positive_nes(enriched):
    for cell_type in ("spermatocyte", "round_spermatid"):
        block = enriched[(enriched["cell_type"] == cell_type) & (enriched["condition"] == "apoptotic")]
        top = block.sort_values("nes", ascending=False).iloc[0]
        assert top["gene_set"] == "apoptosis_intrinsic"
        assert top["nes"] > 1.5 and top["fdr"] < 0.05
        assert (top["n_samples"], top["n_reference_samples"]) == (3, 4)
        assert isinstance(top["leading_edge"], str) and top["leading_edge"]


def test_unswitched_condition_not_enriched_for_intrinsic(enriched):
    rows = enriched[(enriched["condition"] == "endocrine") & (enriched["gene_set"] == "apoptosis_intrinsic")]
    assert len(rows) == 3
    assert (rows["fdr"] > 0.05).all()


def test_columns_markers_excluded_and_params(enriched):
    assert list(enriched.columns[:7]) == ["cell_type", "condition", "gene_set", "nes", "es", "pvalue", "fdr"]
    assert not enriched["gene_set"].str.startswith("marker_").any()
    assert enriched.attrs["params"]["geneset_version"] == noa.genesets.load("human").version


def test_same_seed_same_result(apoptosis_cohort, no_network):
    kwargs = dict(sample_key="donor", condition_key="condition", reference="control", permutation_num=100, seed=3,
                  cell_types=["round_spermatid"], gene_sets={"planted": list(noa.genesets.load("human")[
                      "apoptosis_intrinsic"].genes), "btb": list(noa.genesets.load("human")["niche_btb"].genes)})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        first = noa.tl.enrichment(apoptosis_cohort, **kwargs)
        second = noa.tl.enrichment(apoptosis_cohort, **kwargs)
    pd.testing.assert_frame_equal(first, second)
    assert set(first["gene_set"]) == {"planted", "btb"}


def test_pseudobulk_sums_and_ranking_ties():
    from anndata import AnnData

    counts = np.array([[1, 0, 2], [3, 1, 0], [0, 0, 5], [2, 2, 2]], dtype=float)
    adata = AnnData(X=counts, obs=pd.DataFrame({"s": ["a", "a", "b", "b"], "t": ["x", "x", "x", "y"]},
                                               index=[f"c{i}" for i in range(4)]))
    adata.var_names = ["G1", "G2", "G3"]
    summed, meta = pseudobulk(adata, sample_key="s", group_key="t", layer=None, min_cells=1)
    np.testing.assert_array_equal(summed.loc["a|x"].to_numpy(), [4, 1, 2])
    np.testing.assert_array_equal(summed.loc["b|x"].to_numpy(), [0, 0, 5])
    assert meta.loc["a|x", "n_cells"] == 2
    np.testing.assert_allclose(log_cpm(summed).loc["b|x"].to_numpy(), np.log1p([0, 0, 1e6]))
    ranking = rank_genes(np.zeros((3, 2)), np.zeros((3, 2)), pd.Index(["C", "A", "B"]), statistic="welch_t")
    assert list(ranking.index) == ["A", "B", "C"]  # ties ordered by gene name
    assert ranking.is_monotonic_decreasing and ranking.is_unique


def test_bad_input(apoptosis_cohort):
    kwargs = dict(sample_key="donor", condition_key="condition")
    with pytest.raises(ValueError, match=r"reference condition 'healthy' not found.*control"):
        noa.tl.enrichment(apoptosis_cohort, reference="healthy", **kwargs)
    with pytest.raises(KeyError, match="layer 'raw_counts' not found"):
        noa.tl.enrichment(apoptosis_cohort, reference="control", layer="raw_counts", **kwargs)
    with pytest.raises(KeyError, match="patient"):
        noa.tl.enrichment(apoptosis_cohort, reference="control", sample_key="patient", condition_key="condition")
    one = apoptosis_cohort[apoptosis_cohort.obs["donor"].isin(["C1", "C2", "A1"])].copy()
    with pytest.warns(UserWarning, match="skipped"):
        out = noa.tl.enrichment(one, reference="control", permutation_num=50, cell_types=["sertoli"], **kwargs)
    assert out.empty and "nes" in out.columns


def test_permutation_pvalues_never_below_one_over_b_plus_one(apoptosis_cohort, no_network):
    """With B permutations no p-value is below 1/(B+1) (Phipson & Smyth 2010); gseapy reports 0
    for a set that beats every permutation (issue 17 item 7)."""
    lib = noa.genesets.load("human")
    kwargs = dict(sample_key="donor", condition_key="condition", reference="control", n_permutations=20,
                  random_state=0, cell_types=["spermatocyte", "round_spermatid"],
                  gene_sets={"planted": list(lib["apoptosis_intrinsic"].genes), "btb": list(lib["niche_btb"].genes),
                             "stress": list(lib["stress_heat"].genes)})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = noa.tl.enrichment(apoptosis_cohort, **kwargs)
    floor = 1 / 21
    planted = out[(out["gene_set"] == "planted") & (out["condition"] == "apoptotic")]
    assert (planted["pvalue"] == floor).all()  # the planted set beats all 20 permutations: p = 1/21, not 0
    assert (out["pvalue"].dropna() >= floor).all() and (out["fdr"].dropna() >= floor).all()
    assert (out["fdr"].dropna() <= 1).all()
    assert out.attrs["params"]["pvalue_floor"] == pytest.approx(floor)


def test_old_keyword_names_still_work(apoptosis_cohort, no_network):
    kwargs = dict(sample_key="donor", condition_key="condition", reference="control", cell_types=["round_spermatid"],
                  gene_sets={"planted": list(noa.genesets.load("human")["apoptosis_intrinsic"].genes)})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        new = noa.tl.enrichment(apoptosis_cohort, n_permutations=20, random_state=4, **kwargs)
        with pytest.warns(FutureWarning, match="permutation_num"):
            old = noa.tl.enrichment(apoptosis_cohort, permutation_num=20, seed=4, **kwargs)
    pd.testing.assert_frame_equal(new, old)
