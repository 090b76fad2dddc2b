"""Every public step, twice: on symbol-named data and on the same data in CELLxGENE layout
(Ensembl ids as var_names, categorical var['feature_name'], counts in raw.X, log-normalised X,
donors in obs['donor_id']). The results must be identical."""

from __future__ import annotations

import warnings

import pandas as pd
import pytest
from numpy.testing import assert_allclose

import noa_omics as noa
from noa_omics._identifiers import GeneIdentifierWarning
from noa_omics._vocabulary import AXES

PERMS = 50


def _quiet(func, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return func(*args, **kwargs)


def _labelled(pair):
    sym, cxg = (a.copy() for a in pair)
    for a in (sym, cxg):
        a.obs["noa_cell_type"] = a.obs["truth_cell_type"].astype(str)
    return sym, cxg


@pytest.mark.parametrize("method,sym_kw,cxg_kw", [
    ("score_genes", {}, {"use_raw": False}),                     # log-normalised X
    ("zmean", {}, {"layer": None, "use_raw": False}),
    ("aucell", {"layer": "counts"}, {"layer": "raw"}),           # counts in raw.X
    ("ucell", {"layer": "counts"}, {"use_raw": True}),
])
def test_scores_identical(human_pair, method, sym_kw, cxg_kw):
    sym, cxg = human_pair
    expected = _quiet(noa.tl.score, sym, method=method, inplace=False, **sym_kw)
    explicit = _quiet(noa.tl.score, cxg, method=method, gene_symbols="feature_name", inplace=False, **cxg_kw)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        auto = noa.tl.score(cxg, method=method, inplace=False, **cxg_kw)
    assert [issubclass(w.category, GeneIdentifierWarning) for w in record].count(True) == 1
    assert list(expected.columns) == list(explicit.columns) == list(auto.columns)
    assert_allclose(explicit.to_numpy(), expected.to_numpy())
    assert_allclose(auto.to_numpy(), expected.to_numpy())


def test_annotation_identical(human_pair):
    sym, cxg = human_pair
    expected = _quiet(noa.tl.annotate_testis, sym, inplace=False)
    got = _quiet(noa.tl.annotate_testis, cxg, gene_symbols="feature_name", inplace=False)
    # counts in raw.X, normalised on a copy (no graph: the smoothing was checked above)
    from_raw = _quiet(noa.tl.annotate_testis, cxg, layer="raw", use_graph=False, inplace=False)
    from_counts = _quiet(noa.tl.annotate_testis, sym, layer="counts", use_graph=False, inplace=False)
    assert (got.astype(str).to_numpy() == expected.astype(str).to_numpy()).all()
    assert (from_raw.astype(str).to_numpy() == from_counts.astype(str).to_numpy()).all()
    assert (expected.astype(str) != "other").mean() > 0.5  # a real annotation, not all 'other'


def test_cellxgene_labels_harmonised(human_pair):
    _, cxg = human_pair
    by_name = _quiet(noa.tl.harmonize_labels, cxg.obs["cell_type"])
    by_id = _quiet(noa.tl.harmonize_labels, cxg.obs["cell_type_ontology_term_id"])
    assert (by_name.astype(str).to_numpy() == by_id.astype(str).to_numpy()).all()
    truth = cxg.obs["truth_cell_type"].astype(str)
    somatic = truth.isin(["sertoli", "leydig", "endothelial", "macrophage", "t_cell", "peritubular_myoid"])
    assert (by_name.astype(str)[somatic.to_numpy()].to_numpy() == truth[somatic].to_numpy()).all()


def test_profiles_identical(human_pair):
    sym, cxg = _labelled(human_pair)
    kw = dict(condition_key="condition", reference="control")
    expected = _quiet(noa.tl.apoptosis_profile, sym, sample_key="donor", **kw)
    got = _quiet(noa.tl.apoptosis_profile, cxg, sample_key="donor_id", gene_symbols="feature_name", **kw)
    auto_raw = _quiet(noa.tl.apoptosis_profile, cxg, sample_key="donor_id", layer="raw", **kw)
    from_counts = _quiet(noa.tl.apoptosis_profile, sym, sample_key="donor", layer="counts", **kw)
    cols = ["n_cells", "mean", "median", "frac_high"]
    assert len(expected) > 100
    assert (got[["sample", "cell_type", "gene_set"]].to_numpy() == expected[["sample", "cell_type", "gene_set"]].to_numpy()).all()
    assert_allclose(got[cols].to_numpy(float), expected[cols].to_numpy(float))
    assert_allclose(auto_raw[cols].to_numpy(float), from_counts[cols].to_numpy(float))


def test_comparisons_identical_when_compare_conditions_scores(human_pair):
    sym, cxg = _labelled(human_pair)
    kw = dict(value_key=["apoptosis_intrinsic", "stress_heat"], condition_key="condition", reference="control",
              groupby="noa_cell_type", min_cells=1)  # small fixture: few cells per donor and type
    expected = _quiet(noa.tl.compare_conditions, sym, sample_key="donor", **kw)
    got = _quiet(noa.tl.compare_conditions, cxg, sample_key="donor_id", gene_symbols="feature_name", **kw)
    cols = ["effect", "ci_low", "ci_high", "pvalue", "qvalue", "n_samples"]
    assert expected["effect"].notna().sum() > 10
    assert (got[["variable", "group", "condition"]].to_numpy() == expected[["variable", "group", "condition"]].to_numpy()).all()
    assert_allclose(got[cols].to_numpy(float), expected[cols].to_numpy(float))
    # and the scores equal those of noa.tl.score, not merely each other
    scored = _quiet(noa.tl.score, sym, inplace=False)
    sym.obsm["noa_score_genes"] = scored
    from_table = _quiet(noa.tl.compare_conditions, sym, sample_key="donor", **kw)
    assert_allclose(from_table[cols].to_numpy(float), expected[cols].to_numpy(float))
    assert "noa_score_genes" not in cxg.obsm  # the input was not modified


def test_enrichment_identical(human_pair):
    sym, cxg = _labelled(human_pair)
    kw = dict(condition_key="condition", reference="control", permutation_num=PERMS, min_cells=3,
              cell_types=["sertoli", "leydig"])
    expected = _quiet(noa.tl.enrichment, sym, sample_key="donor", layer="counts", **kw)
    got = _quiet(noa.tl.enrichment, cxg, sample_key="donor_id", layer="raw", gene_symbols="feature_name", **kw)
    auto = _quiet(noa.tl.enrichment, cxg, sample_key="donor_id", layer="raw", **kw)
    assert len(expected) > 10
    for other in (got, auto):
        pd.testing.assert_frame_equal(other.reset_index(drop=True), expected.reset_index(drop=True))


def test_multihit_identical_including_the_xist_ingredient(human_pair):
    sym, cxg = _labelled(human_pair)
    kw = dict(reference="control", condition_key="condition", allow_missing_axes=True)
    expected = _quiet(noa.tl.multihit, sym, sample_key="donor", **kw)
    got = _quiet(noa.tl.multihit, cxg, sample_key="donor_id", gene_symbols="feature_name", **kw)
    # precomputed scores (score_key=) and the XIST gene read through feature_name
    cxg.obsm["noa_score_genes"] = _quiet(noa.tl.score, cxg, use_raw=False, inplace=False)
    keyed = _quiet(noa.tl.multihit, cxg, sample_key="donor_id", score_key="noa_score_genes", **kw)
    for other in (got, keyed):
        assert_allclose(other[list(AXES)].to_numpy(float), expected[list(AXES)].to_numpy(float))
        assert list(other["apoptosis_context"]) == list(expected["apoptosis_context"])
        assert list(other["histology"]) == list(expected["histology"])
    klinefelter = sym.obs.loc[sym.obs["condition"].astype(str) == "klinefelter", "donor"].astype(str).unique()
    assert len(klinefelter) and (expected.loc[klinefelter, "genetic"] > 5).all()


# ------------------------------------------------------------------------ mouse (ENSMUSG ids)


def test_mouse_ensmusg_identical(mouse_pair):
    sym, cxg = mouse_pair
    assert cxg.var_names[0].startswith("ENSMUSG")
    expected = _quiet(noa.tl.score, sym, method="zmean", inplace=False)
    got = _quiet(noa.tl.score, cxg, method="zmean", use_raw=False, inplace=False)
    assert_allclose(got.to_numpy(), expected.to_numpy())
    a = _quiet(noa.tl.annotate_testis, sym, use_graph=False, inplace=False)
    b = _quiet(noa.tl.annotate_testis, cxg, use_graph=False, inplace=False)
    assert (a.astype(str).to_numpy() == b.astype(str).to_numpy()).all()
    sym, cxg = _labelled(mouse_pair)
    kw = dict(reference="control", condition_key="condition", allow_missing_axes=True)
    m1 = _quiet(noa.tl.multihit, sym, sample_key="donor", **kw)
    m2 = _quiet(noa.tl.multihit, cxg, sample_key="donor_id", **kw)
    assert_allclose(m2[list(AXES)].to_numpy(float), m1[list(AXES)].to_numpy(float))
    assert cxg.uns["noa_multihit"]["params"]["gene_symbols"] == "feature_name"
    assert cxg.uns["noa_multihit"]["params"]["species"] == "mouse"
