"""Nothing dropped in silence on real layouts: each lost gene set / ingredient warns naming it, and a
result that would be empty raises a ValueError naming the fix."""

from __future__ import annotations

import warnings

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from numpy.testing import assert_allclose

import noa_omics as noa
from noa_omics._identifiers import GeneIdentifierWarning
from noa_omics._vocabulary import AXES

from .test_cellxgene_layout import _labelled, _quiet

ENR = dict(condition_key="condition", reference="control", permutation_num=20, min_cells=3, cell_types=["sertoli"])


def _without_symbols(adata: ad.AnnData) -> ad.AnnData:
    bare = adata.copy()
    bare.var = bare.var.drop(columns=["feature_name"])
    return bare


def test_enrichment_on_ensembl_ids_raises_naming_gene_symbols(human_pair):
    _, cxg = _labelled(human_pair)
    with pytest.raises(ValueError, match=r"Ensembl.*gene_symbols="):
        noa.tl.enrichment(_without_symbols(cxg), sample_key="donor_id", layer="raw", **ENR)


def test_enrichment_with_no_matching_set_raises_instead_of_zero_rows(human_pair):
    sym, _ = _labelled(human_pair)
    mouse_like = {"a": ["Trp53", "Bax", "Casp3", "Casp9", "Apaf1", "Cycs"]}
    with pytest.raises(ValueError, match=r"no gene set has between min_size=5.*'a' with 0.*gene_symbols="):
        noa.tl.enrichment(sym, sample_key="donor", layer="counts", gene_sets=mouse_like, **ENR)


def test_enrichment_default_layer_on_cellxgene_names_raw(human_pair):
    _, cxg = _labelled(human_pair)
    with pytest.raises(KeyError, match=r"layer 'counts' not found.*pass layer='raw'"):
        noa.tl.enrichment(cxg, sample_key="donor_id", **ENR)
    with pytest.raises(ValueError, match=r"adata.X` does not hold raw counts.*layer='raw'"):
        noa.tl.enrichment(cxg, sample_key="donor_id", layer=None, **ENR)


def test_enrichment_warns_naming_an_untested_set(human_pair):
    sym, _ = _labelled(human_pair)
    library = noa.genesets.load("human")
    sets = {"apoptosis_intrinsic": list(library["apoptosis_intrinsic"].genes), "too_small": ["TP53", "BAX"]}
    with pytest.warns(UserWarning, match=r"1 gene set\(s\) were not tested.*'too_small' \(2\)"):
        out = noa.tl.enrichment(sym, sample_key="donor", layer="counts", gene_sets=sets, **ENR)
    assert set(out["gene_set"]) == {"apoptosis_intrinsic"}


def test_enrichment_sums_counts_of_duplicated_symbols(human_pair):
    """A gene split over two Ensembl ids with one symbol gives the pseudobulk of the whole gene."""
    sym, cxg = _labelled(human_pair)
    gene = "BAX"
    j = int(np.flatnonzero(cxg.var["feature_name"].astype(str) == gene)[0])
    counts = sp.csr_matrix(cxg.raw.X).toarray()
    half = np.floor(counts[:, j] / 2)
    counts[:, j] -= half
    split = np.hstack([counts, half[:, None]])
    var = pd.DataFrame({"feature_name": list(cxg.var["feature_name"].astype(str)) + [gene]},
                       index=list(cxg.var_names) + ["ENSG99999999999.1"])
    dup = ad.AnnData(sp.csr_matrix(split), obs=cxg.obs.copy(), var=var)
    kw = dict(ENR, cell_types=["sertoli", "leydig"])
    expected = _quiet(noa.tl.enrichment, sym, sample_key="donor", layer="counts", **kw)
    with pytest.warns(GeneIdentifierWarning, match=r"1 column\(s\).*\['BAX'\].*summed"):
        got = noa.tl.enrichment(dup, sample_key="donor_id", layer=None, **kw)
    pd.testing.assert_frame_equal(got.reset_index(drop=True), expected.reset_index(drop=True))


def test_score_uses_the_first_column_of_a_duplicated_symbol(human_pair):
    sym, cxg = human_pair
    dup = cxg.copy()
    names = dup.var["feature_name"].astype(str).to_numpy().copy()
    first = int(np.flatnonzero(names == "BAX")[0])
    later = first + 1 + int(np.flatnonzero(~np.isin(names[first + 1:], ["BAX"]))[-1])  # a later column
    names[later] = "BAX"
    dup.var["feature_name"] = pd.Categorical(names)
    sets = {"s": ["BAX", "BAK1", "CASP9", "APAF1"]}
    expected = noa.tl.score(sym, sets, method="zmean", inplace=False)
    with pytest.warns(GeneIdentifierWarning, match=r"1 column\(s\).*'BAX'.*first column"):
        got = noa.tl.score(dup, sets, method="zmean", use_raw=False, gene_symbols="feature_name", inplace=False)
    assert_allclose(got.to_numpy(), expected.to_numpy())


def test_multihit_score_key_on_ensembl_ids_warns_naming_xist(human_pair):
    sym, cxg = _labelled(human_pair)
    kw = dict(reference="control", condition_key="condition", allow_missing_axes=True)
    expected = _quiet(noa.tl.multihit, sym, sample_key="donor", **kw)
    bare = _without_symbols(cxg)
    bare.obsm["noa_score_genes"] = _quiet(noa.tl.score, sym, inplace=False)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        got = noa.tl.multihit(bare, sample_key="donor_id", score_key="noa_score_genes", **kw)
    lost = [str(w.message) for w in record if "could not be measured" in str(w.message)]
    assert len(lost) == 1
    assert "genetic.xist_expression: gene 'XIST' not in adata.var_names" in lost[0]
    assert "gene_symbols=" in lost[0]
    klinefelter = sym.obs.loc[sym.obs["condition"].astype(str) == "klinefelter", "donor"].astype(str).unique()
    assert (expected.loc[klinefelter, "genetic"] > 5).all()
    assert (got.loc[klinefelter, "genetic"] < expected.loc[klinefelter, "genetic"]).all()  # what was lost


def test_multihit_scores_sets_missing_from_the_score_table(human_pair):
    sym, _ = _labelled(human_pair)
    kw = dict(reference="control", condition_key="condition", allow_missing_axes=True)
    expected = _quiet(noa.tl.multihit, sym, sample_key="donor", **kw)
    partial = sym.copy()
    partial.obsm["noa_score_genes"] = _quiet(noa.tl.score, sym, inplace=False).drop(columns=["stress_oxidative"])
    with pytest.warns(UserWarning, match=r"\['stress_oxidative'\].*not in `adata.obsm\['noa_score_genes'\]`.*scored here"):
        got = noa.tl.multihit(partial, sample_key="donor", score_key="noa_score_genes", **kw)
    assert_allclose(got[list(AXES)].to_numpy(float), expected[list(AXES)].to_numpy(float))


def test_prepare_expression_reads_raw_and_names_it(human_pair):
    from noa_omics.pipeline import steps

    sym, cxg = human_pair
    out = steps.prepare_expression(cxg, counts_layer="raw")
    ref = steps.prepare_expression(sym, counts_layer="counts")
    assert out.raw is None and list(out.var["feature_name"].astype(str)) == list(sym.var_names)
    assert_allclose(out.X.toarray(), ref.X.toarray())
    assert_allclose(out.layers["counts"].toarray(), ref.layers["counts"].toarray())
    with pytest.raises(KeyError, match=r"counts_layer='raw'"):
        steps.prepare_expression(cxg, counts_layer="counts")
