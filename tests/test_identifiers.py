"""The one gene-identifier rule and the matrix layouts (noa_omics._identifiers)."""

from __future__ import annotations

import warnings

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from noa_omics._identifiers import (
    GeneIdentifierWarning,
    counts_layout,
    expression_layout,
    known_symbol_column,
    resolve_genes,
    symbol_view,
)

SYMBOLS = ["TP53", "BAX", "CASP3", "BCL2", "XIST", "SOX9", "DDX4", "GAPDH"]
MOUSE = ["Trp53", "Bax", "Casp3", "Bcl2", "Xist", "Sox9", "Ddx4", "Gapdh"]


def _ids(prefix="ENSG", n=8, version=True):
    return [f"{prefix}{i:011d}" + (f".{i % 3 + 1}" if version else "") for i in range(n)]


def _identifier_warnings(record) -> list[str]:
    return [str(w.message) for w in record if issubclass(w.category, GeneIdentifierWarning)]


@pytest.mark.parametrize("prefix,symbols", [("ENSG", SYMBOLS), ("ENSMUSG", MOUSE)])
@pytest.mark.parametrize("version", [True, False])
def test_ensembl_var_names_use_the_known_symbol_column_and_say_so_once(prefix, symbols, version):
    var = pd.DataFrame({"feature_name": pd.Categorical(symbols), "feature_biotype": "gene"},
                       index=_ids(prefix, version=version))
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        ids = resolve_genes(var, var.index)
    assert list(ids.names) == symbols and ids.column == "feature_name" and ids.auto
    messages = _identifier_warnings(record)
    assert len(messages) == 1 and "var['feature_name']" in messages[0] and "Ensembl" in messages[0]


@pytest.mark.parametrize("column", ["gene_symbols", "gene_symbol", "gene_name", "symbol"])
def test_each_well_known_column_is_found(column):
    var = pd.DataFrame({"other": "x", column: SYMBOLS}, index=_ids())
    assert known_symbol_column(var) == column
    with pytest.warns(GeneIdentifierWarning, match=column):
        assert list(resolve_genes(var, var.index).names) == SYMBOLS


def test_feature_name_is_preferred_and_explicit_column_wins():
    var = pd.DataFrame({"gene_name": [s.lower() + "x" for s in SYMBOLS], "feature_name": SYMBOLS,
                        "mine": MOUSE}, index=_ids())
    with pytest.warns(GeneIdentifierWarning):
        assert resolve_genes(var, var.index).column == "feature_name"
    with warnings.catch_warnings():
        warnings.simplefilter("error", GeneIdentifierWarning)  # explicit: no message
        ids = resolve_genes(var, var.index, "mine")
    assert list(ids.names) == MOUSE and not ids.auto


def test_a_known_name_holding_ids_is_not_taken_as_symbols():
    var = pd.DataFrame({"gene_name": _ids()}, index=_ids(version=False))
    assert known_symbol_column(var) is None
    with pytest.raises(ValueError, match="Ensembl"):
        resolve_genes(var, var.index)


def test_10x_layout_is_left_alone():
    var = pd.DataFrame({"gene_ids": _ids(version=False), "feature_types": "Gene Expression"}, index=SYMBOLS)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ids = resolve_genes(var, var.index)
    assert list(ids.names) == SYMBOLS and ids.column is None and ids.source == "var_names"


def test_ensembl_without_a_symbol_column_names_the_fix():
    var = pd.DataFrame({"hgnc": SYMBOLS}, index=_ids())
    with pytest.raises(ValueError, match=r"Ensembl.*gene_symbols='hgnc'"):
        resolve_genes(var, var.index)
    with pytest.raises(ValueError, match=r"add a column of gene symbols"):
        resolve_genes(pd.DataFrame(index=_ids()), _ids())
    ids = resolve_genes(pd.DataFrame(index=_ids()), _ids(), require_symbols=False)
    assert ids.column is None


def test_duplicated_symbols_first_occurrence_reported():
    symbols = ["TP53", "BAX", "TP53", "CASP3", "BAX", "BAX"]
    var = pd.DataFrame({"feature_name": symbols}, index=_ids(n=6))
    with pytest.warns(GeneIdentifierWarning, match=r"3 column\(s\).*2 symbol\(s\).*'TP53', 'BAX'.*first column") :
        ids = resolve_genes(var, var.index, "feature_name")
    assert ids.n_duplicated == 3 and list(ids.symbols) == symbols
    assert ids.names.is_unique
    assert list(ids.names.get_indexer(["TP53", "BAX", "CASP3"])) == [0, 1, 3]  # the first columns
    with pytest.warns(GeneIdentifierWarning, match="summed"):
        resolve_genes(var, var.index, "feature_name", duplicates="sum")


def test_missing_and_nan_columns():
    var = pd.DataFrame({"feature_name": SYMBOLS[:-1] + [None]}, index=_ids())
    with pytest.raises(KeyError, match=r"gene_symbols='nope'.*feature_name"):
        resolve_genes(var, var.index, "nope")
    with pytest.raises(ValueError, match="1 missing value"):
        resolve_genes(var, var.index, "feature_name")


def _cellxgene(n_obs=6) -> ad.AnnData:
    rng = np.random.default_rng(0)
    counts = sp.csr_matrix(rng.poisson(2.0, size=(n_obs, len(SYMBOLS))).astype(np.float32))
    lognorm = counts.copy()
    lognorm.data = np.log1p(lognorm.data / 3.0)
    adata = ad.AnnData(lognorm, var=pd.DataFrame({"feature_name": pd.Categorical(SYMBOLS)}, index=_ids()))
    adata.raw = ad.AnnData(counts, var=pd.DataFrame(index=_ids()))  # raw.var without feature_name
    return adata


def test_layouts_raw_layer_and_x():
    adata = _cellxgene()
    adata.layers["spliced"] = adata.raw.X.copy()
    raw = expression_layout(adata, "raw")
    assert raw.use_raw and raw.where == "adata.raw.X" and raw.matrix is adata.raw.X
    assert expression_layout(adata, None, use_raw=True).where == "adata.raw.X"
    assert expression_layout(adata, "spliced").where == "adata.layers['spliced']"
    assert expression_layout(adata).matrix is adata.X
    with pytest.raises(KeyError, match=r"layer 'counts' not found.*layer='raw'"):
        expression_layout(adata, "counts")
    adata.layers["raw"] = adata.X.copy()  # a layer literally named 'raw' wins
    assert expression_layout(adata, "raw").where == "adata.layers['raw']"


def test_counts_layout_names_where_counts_are():
    adata = _cellxgene()
    assert counts_layout(adata, "raw").use_raw
    with pytest.raises(ValueError, match=r"`adata.X` does not hold raw counts.*layer='raw' \(adata.raw.X\)"):
        counts_layout(adata, None)
    with pytest.raises(KeyError, match=r"Raw counts were found: pass layer='raw'"):
        counts_layout(adata, "counts")
    with pytest.raises(KeyError, match=r"counts_layer='raw'"):
        counts_layout(adata, "counts", option="counts_layer")


def test_symbol_view_of_raw_uses_var_symbols_and_shares_the_matrix():
    adata = _cellxgene()
    before = adata.raw.X.copy()
    with pytest.warns(GeneIdentifierWarning):
        view, ids, layout = symbol_view(adata, layer="raw")
    assert list(view.var_names) == SYMBOLS and ids.column == "feature_name"
    assert view.X is adata.raw.X and (adata.raw.X != before).nnz == 0
    view, ids, _ = symbol_view(adata, layer="raw", gene_symbols="feature_name")  # raw.var lacks it: var used
    assert list(view.var_names) == SYMBOLS


def test_every_public_function_that_reads_genes_takes_gene_symbols():
    import inspect

    import noa_omics as noa
    from noa_omics.pipeline import score_file, steps

    readers = [noa.tl.score, noa.tl.annotate_testis, noa.tl.apoptosis_profile, noa.tl.compare_conditions,
               noa.tl.enrichment, noa.tl.multihit, steps.annotate, steps.score, steps.profile, steps.compare,
               steps.enrichment, steps.multihit, score_file]
    lacking = [f.__qualname__ for f in readers if "gene_symbols" not in inspect.signature(f).parameters]
    assert not lacking
    from noa_omics.pipeline._config import SingleCellSection, SpatialSection

    assert SingleCellSection().gene_symbols is None and SpatialSection().gene_symbols is None
