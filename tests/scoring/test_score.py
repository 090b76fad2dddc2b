"""``noa.tl.score``: storage types, records, set independence, inplace, and bad input."""

from __future__ import annotations

import copy
import warnings

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from numpy.testing import assert_allclose

import noa_omics as noa
from noa_omics.scoring import methods

from .conftest import STORAGES, as_storage, log_normalise, nb_counts

METHODS = ["score_genes", "aucell", "ucell", "zmean"]


@pytest.fixture(scope="module")
def small(lognorm):
    """120 cells of the log-normalised fixture, without the set holding absent genes."""
    return lognorm[:120].copy()


@pytest.fixture(scope="module")
def sets(gene_sets):
    return {k: v for k, v in gene_sets.items() if k != "with_missing"}


@pytest.mark.parametrize("storage", STORAGES)
@pytest.mark.parametrize("method", METHODS)
def test_storage_and_chunks_do_not_change_scores(small, sets, method, storage, tmp_path):
    expected = noa.tl.score(small, sets, method=method, inplace=False)
    data = as_storage(small, storage, tmp_path)
    got = noa.tl.score(data, sets, method=method, inplace=False, chunk_size=37)
    assert list(got.index) == list(small.obs_names)
    assert list(got.columns) == list(sets)
    assert_allclose(got.to_numpy(), expected.to_numpy(), atol=1e-10, rtol=0)


def test_backed_inplace_records(small, sets, tmp_path):
    backed = as_storage(small, "backed", tmp_path)
    noa.tl.score(backed, sets, method="ucell", chunk_size=50)
    assert list(backed.obsm["noa_ucell"].columns) == list(sets)


@pytest.mark.parametrize("method", METHODS)
def test_a_set_does_not_depend_on_the_others(small, sets, method):
    together = noa.tl.score(small, sets, method=method, inplace=False)
    for name, genes in list(sets.items())[:3]:
        alone = noa.tl.score(small, {name: genes}, method=method, inplace=False)
        assert_allclose(alone[name].to_numpy(), together[name].to_numpy(), atol=1e-12, rtol=0)


@pytest.mark.parametrize("method", METHODS)
def test_deterministic(small, sets, method):
    a = noa.tl.score(small, sets, method=method, inplace=False)
    b = noa.tl.score(small, sets, method=method, inplace=False)
    assert np.array_equal(a.to_numpy(), b.to_numpy())


def _snapshot(adata: ad.AnnData) -> dict:
    return {
        "X": adata.X.copy(),
        "obs": adata.obs.copy(),
        "var": adata.var.copy(),
        "uns": copy.deepcopy(dict(adata.uns)),
        "obsm": {k: np.asarray(v).copy() for k, v in adata.obsm.items()},
        "layers": {k: v.copy() for k, v in adata.layers.items()},
        "raw": None if adata.raw is None else adata.raw.X.copy(),
    }


def _same(before: dict, adata: ad.AnnData) -> None:
    assert (before["X"] != adata.X).nnz == 0
    assert before["X"].has_canonical_format == adata.X.has_canonical_format
    pd.testing.assert_frame_equal(before["obs"], adata.obs)
    pd.testing.assert_frame_equal(before["var"], adata.var)
    assert before["uns"] == dict(adata.uns)
    assert before["obsm"].keys() == adata.obsm.keys()
    for key, value in before["obsm"].items():
        assert np.array_equal(value, np.asarray(adata.obsm[key]))
    assert before["layers"].keys() == adata.layers.keys()
    for key, value in before["layers"].items():
        assert (value != adata.layers[key]).nnz == 0


@pytest.mark.parametrize("method", METHODS)
def test_inplace_false_leaves_input_untouched(small, sets, method):
    adata = small.copy()
    adata.layers["counts"] = adata.X.copy()
    adata.uns["keep"] = {"a": 1}
    adata.obsm["X_pca"] = np.ones((adata.n_obs, 2))
    before = _snapshot(adata)
    noa.tl.score(adata, sets, method=method, inplace=False)
    _same(before, adata)


def test_unsorted_csr_is_not_modified(small, sets):
    x = small.X.copy()
    rows = [np.random.default_rng(i).permutation(np.arange(x.indptr[i], x.indptr[i + 1])) for i in range(x.shape[0])]
    order = np.concatenate(rows)
    unsorted = sp.csr_matrix((x.data[order], x.indices[order], x.indptr), shape=x.shape)
    unsorted.has_sorted_indices = False
    adata = ad.AnnData(unsorted, obs=small.obs, var=small.var)
    indices_before = unsorted.indices.copy()
    got = noa.tl.score(adata, sets, method="aucell", inplace=False)
    assert np.array_equal(adata.X.indices, indices_before)
    assert_allclose(got.to_numpy(), noa.tl.score(small, sets, method="aucell", inplace=False).to_numpy())


def test_record(lognorm, gene_sets, tmp_path):
    adata = lognorm.copy()
    gene_sets = dict(gene_sets, tiny=["GENE1", "GENE2", "NOTAGENE9"])
    with pytest.warns(UserWarning, match=r"1 gene set\(s\).*'tiny' \(2\)"):
        result = noa.tl.score(adata, gene_sets, method="aucell", key_added="my_key", random_state=3, n_up=50)
    assert "tiny" not in result.columns
    assert adata.obsm["my_key"] is result
    assert list(result.index) == list(adata.obs_names)
    record = adata.uns["my_key"]
    assert record["method"] == "aucell"
    assert record["params"] == {
        "n_up": 50, "random_state": 3, "layer": None, "use_raw": False, "gene_symbols": None,
        "min_genes": 3, "chunk_size": None, "smooth_knn": False,
    }
    assert record["n_cells_unscored"] == 0 and record["smooth_knn"] is None
    assert record["geneset_version"] == "custom"
    assert record["species"] == "human"
    assert record["sets_dropped"] == ["tiny"]
    assert record["genes_missing"]["with_missing"] == ["NOTAGENE1", "NOTAGENE2"]
    assert record["genes_used"]["with_missing"] == gene_sets["with_missing"][:10]
    assert record["genes_missing"]["tiny"] == ["NOTAGENE9"]
    adata.write_h5ad(tmp_path / "scored.h5ad")  # the record is h5ad-writable
    back = ad.read_h5ad(tmp_path / "scored.h5ad")
    assert_allclose(back.obsm["my_key"].to_numpy(), result.to_numpy())


def test_score_genes_record_params(small, sets):
    adata = small.copy()
    noa.tl.score(adata, sets, ctrl_size=20)
    assert adata.uns["noa_score_genes"]["params"] == {
        "ctrl_size": 20, "n_bins": 25, "ctrl_as_ref": True, "gene_pool": None, "nan_policy": "raise",
        "random_state": 0, "layer": None, "use_raw": False, "gene_symbols": None, "min_genes": 3,
        "chunk_size": None, "smooth_knn": False,
    }


def test_layer_and_raw(small, sets):
    expected = noa.tl.score(small, sets, method="ucell", inplace=False)
    adata = small.copy()
    adata.layers["lognorm"] = adata.X.copy()
    adata.X = sp.csr_matrix(np.zeros(adata.shape, dtype=np.float32))
    assert_allclose(noa.tl.score(adata, sets, method="ucell", layer="lognorm", inplace=False), expected)
    adata.raw = ad.AnnData(adata.layers["lognorm"], obs=adata.obs, var=adata.var)
    assert_allclose(noa.tl.score(adata, sets, method="ucell", inplace=False), expected)  # raw by default
    record_adata = adata.copy()
    noa.tl.score(record_adata, sets, method="ucell")
    assert record_adata.uns["noa_ucell"]["params"]["use_raw"] is True


def test_gene_symbols_column(small, sets):
    expected = noa.tl.score(small, sets, method="zmean", inplace=False)
    adata = small.copy()
    adata.var["symbol"] = adata.var_names.to_numpy()
    adata.var_names = [f"ENSG{j:011d}" for j in range(adata.n_vars)]
    got = noa.tl.score(adata, sets, method="zmean", gene_symbols="symbol", inplace=False)
    assert_allclose(got.to_numpy(), expected.to_numpy())


def test_curated_sets_with_species_detection():
    collection = noa.genesets.load("human")
    genes = list(dict.fromkeys(collection.genes))
    x = log_normalise(nb_counts(80, len(genes) + 200, seed=5, scale=0.5))
    adata = ad.AnnData(x, var=pd.DataFrame(index=genes + [f"FILLER{i}" for i in range(200)]))
    adata.obs_names = [f"c{i}" for i in range(adata.n_obs)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = noa.tl.score(adata, method="ucell")
    record = adata.uns["noa_ucell"]
    assert record["species"] == "human"
    assert record["geneset_version"] == collection.version
    assert list(result.columns) == [n for n in collection.names if n not in record["sets_dropped"]]
    assert len(result.columns) > 20


def test_gmt_path(small, sets, tmp_path):
    path = tmp_path / "sets.gmt"
    path.write_text("".join(f"{k}\tdesc\t" + "\t".join(v) + "\n" for k, v in sets.items()))
    got = noa.tl.score(small, str(path), method="ucell", inplace=False)
    assert_allclose(got.to_numpy(), noa.tl.score(small, sets, method="ucell", inplace=False).to_numpy())


def test_methods_registry():
    table = methods()
    assert list(table["name"]) == METHODS
    assert table["reference"].str.contains("doi").all()


# ---------------------------------------------------------------- bad input


def test_unknown_method(small, sets):
    with pytest.raises(ValueError, match=r"unknown scoring method 'gsva'.*score_genes.*aucell.*ucell.*zmean"):
        noa.tl.score(small, sets, method="gsva")


def test_unknown_method_kwarg(small, sets):
    with pytest.raises(ValueError, match="unexpected keyword.*n_up"):
        noa.tl.score(small, sets, method="ucell", n_up=5)


def test_ensembl_without_gene_symbols(small, sets):
    # a symbol column under a name outside the well-known list: refused, the column suggested
    adata = small.copy()
    adata.var["approved_symbol"] = adata.var_names.to_numpy()
    adata.var["biotype"] = "protein_coding"
    adata.var_names = [f"ENSG{j:011d}" for j in range(adata.n_vars)]
    with pytest.raises(ValueError, match=r"Ensembl.*gene_symbols='approved_symbol'"):
        noa.tl.score(adata, sets)


def test_ensembl_with_known_symbol_column(small, sets):
    from noa_omics._identifiers import GeneIdentifierWarning

    expected = noa.tl.score(small, sets, method="zmean", inplace=False)
    adata = small.copy()
    adata.var["gene_name"] = adata.var_names.to_numpy()
    adata.var_names = [f"ENSG{j:011d}.{j % 3 + 1}" for j in range(adata.n_vars)]
    with pytest.warns(GeneIdentifierWarning, match=r"Ensembl.*var\['gene_name'\]") as record:
        got = noa.tl.score(adata, sets, method="zmean")
    assert len([w for w in record if issubclass(w.category, GeneIdentifierWarning)]) == 1
    assert_allclose(got.to_numpy(), expected.to_numpy())
    assert adata.uns["noa_zmean"]["params"]["gene_symbols"] == "gene_name"


def _mouse(adata: ad.AnnData) -> ad.AnnData:
    mouse = adata.copy()
    mouse.var_names = [f"Gm{j}" for j in range(mouse.n_vars)]
    return mouse


def test_mouse_data_human_sets(small, sets):
    with pytest.raises(ValueError, match="look mouse.*species='mouse'"):
        noa.tl.score(_mouse(small), sets)
    with pytest.raises(ValueError, match="look mouse.*species='mouse'"):
        noa.tl.score(_mouse(small), species="human")


def test_no_overlap(small):
    with pytest.raises(ValueError, match=r"none of the 1 gene set.*min_genes=3.*human symbols"):
        noa.tl.score(small, {"x": ["ABC1", "ABC2", "ABC3"]})


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_nonfinite(small, sets, method, bad):
    adata = small.copy()
    adata.X = adata.X.copy()
    adata.X.data[5] = bad
    with pytest.raises(ValueError, match="NaN or infinite"):
        noa.tl.score(adata, sets, method=method)
    assert "noa_" + method not in adata.obsm


@pytest.mark.parametrize("method", ["aucell", "ucell"])
def test_negative_values_for_rank_methods(small, sets, method):
    adata = small.copy()
    adata.X = adata.X.copy()
    adata.X.data[3] = -1.0
    with pytest.raises(ValueError, match="negative values.*score_genes"):
        noa.tl.score(adata, sets, method=method)


def test_negative_values_fine_for_zmean_and_shift_invariant(small, sets):
    """zmean accepts negative values, and a z-score does not see a constant shift: scores of
    X - 1 equal those of X and the hand formula mean_g((x - mu_g) / sigma_g) (population SD)."""
    adata = small.copy()
    dense = small.X.toarray().astype(np.float64)
    adata.X = dense - 1.0
    shifted = noa.tl.score(adata, sets, method="zmean")
    assert "noa_zmean" in adata.obsm
    plain = noa.tl.score(small, sets, method="zmean", inplace=False)
    assert_allclose(shifted.to_numpy(), plain.to_numpy(), atol=1e-9, rtol=0)
    name, genes = next(iter(sets.items()))
    cols = [small.var_names.get_loc(g) for g in genes]
    block = dense[:, cols]
    keep = block.std(axis=0) > 0
    z = (block[:, keep] - block[:, keep].mean(axis=0)) / block[:, keep].std(axis=0)
    assert_allclose(shifted[name].to_numpy(), z.mean(axis=1), atol=1e-9, rtol=0)


def test_zero_cells(small, sets):
    with pytest.raises(ValueError, match="0 cells"):
        noa.tl.score(small[:0].copy(), sets)


def test_duplicated_gene_names(small, sets):
    adata = small.copy()
    names = adata.var_names.to_numpy().copy()
    names[1] = names[0]
    adata.var_names = names
    with pytest.raises(ValueError, match="duplicated gene name"):
        noa.tl.score(adata, sets)


def test_missing_layer(small, sets):
    with pytest.raises(KeyError, match="layer 'counts' not found"):
        noa.tl.score(small, sets, layer="counts")


def test_use_raw_without_raw(small, sets):
    with pytest.raises(ValueError, match=r"adata.raw. is None"):
        noa.tl.score(small, sets, use_raw=True)


def test_layer_and_use_raw(small, sets):
    adata = small.copy()
    adata.layers["x"] = adata.X
    with pytest.raises(ValueError, match="only one"):
        noa.tl.score(adata, sets, layer="x", use_raw=True)


def test_missing_gene_symbols_column(small, sets):
    with pytest.raises(KeyError, match="gene_symbols='symbol'"):
        noa.tl.score(small, sets, gene_symbols="symbol")


@pytest.mark.parametrize("kwargs", [{"min_genes": 0}, {"chunk_size": 0}, {"random_state": -1}, {"key_added": ""}])
def test_bad_arguments(small, sets, kwargs):
    with pytest.raises(ValueError):
        noa.tl.score(small, sets, **kwargs)


def test_aucell_needs_two_expressed_genes():
    adata = ad.AnnData(sp.csr_matrix(np.array([[1.0, 0, 0], [2.0, 0, 0]])), var=pd.DataFrame(index=["AAA", "BBB", "CCC"]))
    with pytest.raises(ValueError, match="expressed gene"):
        noa.tl.score(adata, {"s": ["AAA", "BBB"]}, method="aucell", min_genes=1)


def test_non_numeric_matrix():
    adata = ad.AnnData(np.zeros((2, 3)), var=pd.DataFrame(index=["AAA", "BBB", "CCC"]))
    adata.X = np.array([[1, 0, 2], [0, 1, 0]], dtype=object)
    with pytest.raises(TypeError, match="dtype object"):
        noa.tl.score(adata, {"s": ["AAA", "BBB"]}, method="ucell", min_genes=1)
