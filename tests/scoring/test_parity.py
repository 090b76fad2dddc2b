"""Behaviours shared with the peers (issue 18): each test runs the peer on the same data.

decoupler 2.x (``dc.mt.aucell``), pyUCell (``compute_ucell_scores``, ``smooth_knn_scores``) and
scanpy (``sc.tl.score_genes``) define the expected answers; where the peer has no such behaviour
(AUCell of a cell without expressed genes) the test states the rule.
"""

from __future__ import annotations

import warnings

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from numpy.testing import assert_allclose

import noa_omics as noa
from noa_omics.scoring import ScoringError, smooth_scores

dc = pytest.importorskip("decoupler")
pyucell = pytest.importorskip("pyucell")
sc = pytest.importorskip("scanpy")


def _adata(x, n_genes=None) -> ad.AnnData:
    n, m = x.shape
    return ad.AnnData(
        x, obs=pd.DataFrame(index=[f"c{i}" for i in range(n)]), var=pd.DataFrame(index=[f"G{j}" for j in range(m)])
    )


@pytest.fixture(scope="module")
def data() -> ad.AnnData:
    """150 cells x 400 genes of log-normalised values (float32 CSR), cells 5 and 17 empty."""
    x = sp.random(150, 400, density=0.15, format="lil", random_state=3, dtype=np.float32)
    x[5, :] = 0
    x[17, :] = 0
    x = x.tocsr()
    x.eliminate_zeros()
    x.data = np.log1p(x.data * 20).astype(np.float32)
    return _adata(x)


def _quiet(func, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return func(*args, **kwargs)


def _pyucell(adata, sets, **kwargs) -> np.ndarray:
    adata = adata.copy()
    _quiet(pyucell.compute_ucell_scores, adata, sets, n_jobs=1, **kwargs)
    return adata.obs[[f"{s}_UCell" for s in sets]].to_numpy()


def _scanpy(adata, genes, **kwargs) -> np.ndarray:
    adata = adata.copy()
    _quiet(sc.tl.score_genes, adata, genes, random_state=0, use_raw=False, **kwargs)
    return adata.obs["score"].to_numpy()


SETS = {"a": [f"G{j}" for j in range(20)], "b": [f"G{j}" for j in range(50, 90)]}


# 1. AUCell: a cell without an expressed gene has no ranking -> NaN, one warning


def test_aucell_cells_without_expressed_genes_are_nan_and_counted(data):
    with pytest.warns(UserWarning, match=r"aucell: 2 cell\(s\) have no expressed gene.*NaN") as caught:
        ours = noa.tl.score(data, SETS, method="aucell", key_added="auc")
    assert sum("no expressed gene" in str(w.message) for w in caught) == 1
    assert np.isnan(ours.loc[["c5", "c17"]].to_numpy()).all()
    assert not np.isnan(ours.drop(index=["c5", "c17"]).to_numpy()).any()
    assert data.uns["auc"]["n_cells_unscored"] == 2
    net = pd.DataFrame([(s, g) for s, genes in SETS.items() for g in genes], columns=["source", "target"])
    ref = _quiet(dc.mt.aucell, data.to_df(), net, tmin=1)[0]  # decoupler drops the two empty cells
    assert list(ref.index) == [c for c in data.obs_names if c not in ("c5", "c17")]
    assert_allclose(ours.loc[ref.index, list(SETS)].to_numpy(), ref[list(SETS)].to_numpy(), atol=1e-6, rtol=0)


def test_rank_methods_without_empty_cells_give_no_warning(data):
    full = data[[c for c in data.obs_names if c not in ("c5", "c17")]].copy()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = noa.tl.score(full, SETS, method="aucell", inplace=False)
    assert not np.isnan(out.to_numpy()).any()


# 2. signed signatures


SIGNED = {
    "mixed": ["G1+", "G2+", "G3", "G4", "G60-", "G61-", "G62-"],
    "with_absent": ["G5+", "G6", "G7", "ABSENT1+", "G70-", "ABSENT2-"],
    "negative_only": ["G8-", "G9-", "G10-"],
}


@pytest.mark.parametrize("w_neg", [1.0, 0.5])
def test_ucell_signed_signatures_equal_pyucell(data, w_neg):
    ours = noa.tl.score(data, SIGNED, method="ucell", w_neg=w_neg, key_added="u")
    ref = _pyucell(data, SIGNED, w_neg=w_neg, missing_genes="skip")
    assert_allclose(ours.to_numpy(), ref, atol=1e-6, rtol=0)
    assert ours["mixed"].std() > 0.01
    # the negative part matters: without it the scores are those of the positive genes alone
    positive = noa.tl.score(data, {"p": ["G1", "G2", "G3", "G4"]}, method="ucell", inplace=False)["p"]
    assert np.abs(positive.to_numpy() - ours["mixed"].to_numpy()).max() > 0.05
    assert (ours["negative_only"] == 0).all()  # max(0, 0 - U-)
    assert data.uns["u"]["genes_used"]["mixed"][-3:] == ["G60-", "G61-", "G62-"]
    assert data.uns["u"]["params"]["w_neg"] == w_neg


@pytest.mark.parametrize("method", ["score_genes", "aucell", "zmean"])
def test_other_methods_warn_that_signs_are_not_parsed(data, method):
    with pytest.warns(UserWarning, match=r"end in '\+' or '-'.*matched as written"):
        _ = noa.tl.score(data, SIGNED, method=method, min_genes=1, inplace=False)


def test_ucell_signed_false_warns_and_reads_names_as_written(data):
    with pytest.warns(UserWarning, match=r"signed=False"):
        ours = noa.tl.score(data, SIGNED, method="ucell", signed=False, min_genes=1, inplace=False)
    assert list(ours.columns) == ["mixed", "with_absent"]  # only unsuffixed genes are in the data
    assert_allclose(ours["mixed"], _pyucell(data, {"m": ["G3", "G4"]})[:, 0], atol=1e-6)


# 3. UCell missing genes: skip (default) or pyUCell's impute


@pytest.mark.parametrize("rule", ["skip", "impute"])
def test_ucell_missing_genes_rules_equal_pyucell(data, rule):
    sets = {"one_absent": ["G11", "G12", "G13", "NOTAGENE"], "signed": SIGNED["with_absent"], "full": SETS["a"]}
    ours = noa.tl.score(data, sets, method="ucell", missing_genes=rule, inplace=False)
    assert_allclose(ours.to_numpy(), _pyucell(data, sets, missing_genes=rule), atol=1e-6, rtol=0)


def test_ucell_default_skips_missing_genes(data):
    sets = {"s": ["G11", "G12", "G13", "NOTAGENE"]}
    default = noa.tl.score(data, sets, method="ucell", inplace=False)
    imputed = noa.tl.score(data, sets, method="ucell", missing_genes="impute", inplace=False)
    assert_allclose(default, noa.tl.score(data, {"s": sets["s"][:3]}, method="ucell", inplace=False))
    assert (imputed.to_numpy() <= default.to_numpy() + 1e-12).all() and (imputed != default).any().any()
    with pytest.raises(ValueError, match="missing_genes"):
        noa.tl.score(data, sets, method="ucell", missing_genes="zero", inplace=False)


# 4. small gene pools: fewer bins, as scanpy


@pytest.mark.parametrize("n_pool", [4, 8, 12])
def test_score_genes_small_pool_equals_scanpy(data, n_pool):
    pool = [f"G{j}" for j in range(n_pool)]
    genes = ["G1", "G2", "G3"]
    ours = noa.tl.score(data, {"s": genes}, method="score_genes", gene_pool=pool, inplace=False)["s"]
    assert_allclose(ours.to_numpy(), _scanpy(data, genes, gene_pool=pool), atol=1e-6, rtol=0)


# 5. exception types: scanpy raises RuntimeError where there is no control gene


@pytest.mark.parametrize("ctrl_as_ref", [True, False])
def test_no_control_genes_raises_value_and_runtime_error_like_scanpy(data, ctrl_as_ref):
    genes = ["G1", "G2", "G3"]
    with pytest.raises(RuntimeError, match="No control genes"):
        _scanpy(data, genes, gene_pool=genes, ctrl_as_ref=ctrl_as_ref)
    for kind in (ValueError, RuntimeError, ScoringError):
        with pytest.raises(kind, match="no control genes found for set 's'"):
            _quiet(noa.tl.score, data, {"s": genes}, method="score_genes", gene_pool=genes,
                   ctrl_as_ref=ctrl_as_ref, inplace=False)


# 6. NaN values: refused by default; nan_policy="omit" = scanpy's nan-means


@pytest.mark.parametrize("storage", ["dense", "csr"])
def test_nan_policy_omit_equals_scanpy(data, storage):
    x = data.X.toarray()
    x[3, 1] = x[4, 55] = x[9, 2] = np.nan
    x[:, 300] = np.nan  # a gene of NaN only: no mean, outside every bin
    nan_data = _adata(sp.csr_matrix(x) if storage == "csr" else x)
    genes = ["G1", "G2", "G3", "G55"]
    with pytest.raises(ValueError, match=r"NaN.*nan_policy='omit'"):
        noa.tl.score(nan_data, {"s": genes}, method="score_genes", inplace=False)
    ours = noa.tl.score(nan_data, {"s": genes}, method="score_genes", nan_policy="omit", key_added="k")["s"]
    assert_allclose(ours.to_numpy(), _scanpy(nan_data, genes), atol=1e-6, rtol=0)
    assert np.isfinite(ours).all() and nan_data.uns["k"]["params"]["nan_policy"] == "omit"


def test_nan_policy_omit_still_refuses_infinity(data):
    x = data.X.toarray()
    x[3, 1] = np.inf
    with pytest.raises(ValueError, match="infinite"):
        noa.tl.score(_adata(x), {"s": ["G1", "G2", "G3"]}, method="score_genes", nan_policy="omit")


# 7. kNN smoothing


@pytest.fixture(scope="module")
def with_graph(data) -> ad.AnnData:
    adata = data[[c for c in data.obs_names if c not in ("c5", "c17")]].copy()
    sc.pp.pca(adata, n_comps=10, random_state=0)
    sc.pp.neighbors(adata, n_neighbors=8, random_state=0)
    return adata


@pytest.mark.parametrize("up_only", [False, True])
def test_smooth_knn_on_connectivities_equals_pyucell(with_graph, up_only, tmp_path):
    ours = noa.tl.score(with_graph, SETS, method="ucell", smooth_knn={"up_only": up_only, "decay": 0.2},
                        key_added="sm")
    ref = with_graph.copy()
    _quiet(pyucell.compute_ucell_scores, ref, SETS, n_jobs=1, missing_genes="skip")
    pyucell.smooth_knn_scores(ref, ["a_UCell", "b_UCell"], graph_key="connectivities", decay=0.2, up_only=up_only)
    assert_allclose(ours.to_numpy(), ref.obs[["a_UCell_kNN", "b_UCell_kNN"]].to_numpy(), atol=1e-6, rtol=0)
    raw = noa.tl.score(with_graph, SETS, method="ucell", inplace=False)
    assert np.abs(ours.to_numpy() - raw.to_numpy()).max() > 0.01
    assert with_graph.uns["sm"]["smooth_knn"]["graph"] == "obsp['connectivities']"
    with_graph.write_h5ad(tmp_path / "smoothed.h5ad")  # the record is h5ad-writable
    assert ad.read_h5ad(tmp_path / "smoothed.h5ad").uns["sm"]["smooth_knn"]["decay"] == 0.2


@pytest.mark.parametrize("method", ["score_genes", "aucell", "zmean"])
def test_smooth_knn_builds_the_graph_like_pyucell_for_every_method(with_graph, method):
    adata = with_graph.copy()
    del adata.obsp["connectivities"]
    before = set(adata.obsp.keys())
    ours = noa.tl.score(adata, SETS, method=method, smooth_knn={"k": 6}, inplace=False)
    assert set(adata.obsp.keys()) == before  # the graph is built aside
    raw = noa.tl.score(adata, SETS, method=method, inplace=False)
    ref = adata.copy()
    for s in SETS:
        ref.obs[s] = raw[s].to_numpy()
    pyucell.smooth_knn_scores(ref, list(SETS), k=6, use_rep="X_pca")
    assert_allclose(ours.to_numpy(), ref.obs[[f"{s}_kNN" for s in SETS]].to_numpy(), atol=1e-5, rtol=1e-5)


def test_smooth_scores_formula_by_hand_and_nan():
    # cell 0 has neighbours 1 (0.9) and 2 (0.5); decay 0.5 -> weights 1, 0.5, 0.25
    graph = sp.csr_matrix(np.array([[0, 0.9, 0.5], [0.9, 0, 0], [0.5, 0, 0]]))
    values = np.array([[1.0], [2.0], [np.nan]])
    got = smooth_scores(values, graph, decay=0.5)
    assert got[0, 0] == pytest.approx((1 + 0.5 * 2) / 1.5)  # NaN neighbour left out
    assert got[1, 0] == pytest.approx((2 + 0.5 * 1) / 1.5)
    assert got[2, 0] == pytest.approx(1.0)  # own NaN left out, the neighbour's 1 remains


def test_smooth_knn_refuses_without_graph_or_representation(data):
    with pytest.raises(ValueError, match="sc.pp.neighbors"):
        noa.tl.score(data, SETS, method="ucell", smooth_knn=True, inplace=False)
    with pytest.raises(ValueError, match="decay"):
        noa.tl.score(data, SETS, method="ucell", smooth_knn={"decay": 1.0}, inplace=False)
    with pytest.raises(KeyError, match="mygraph"):
        noa.tl.score(data, SETS, method="ucell", smooth_knn={"graph_key": "mygraph"}, inplace=False)


# 8. sets below min_genes: min_genes=1 gives the peers' results


def test_min_genes_1_scores_small_sets_as_the_peers(data):
    sets = {"one": ["G20"], "two": ["G21", "G22"], "three": ["G23", "G24", "G25"]}
    with pytest.warns(UserWarning, match=r"2 gene set\(s\) have fewer than min_genes=3"):
        default = noa.tl.score(data, sets, method="ucell", inplace=False)
    assert list(default.columns) == ["three"]
    ucell = noa.tl.score(data, sets, method="ucell", min_genes=1, inplace=False)
    assert_allclose(ucell.to_numpy(), _pyucell(data, sets), atol=1e-6, rtol=0)
    full = data[[c for c in data.obs_names if c not in ("c5", "c17")]].copy()
    auc = noa.tl.score(full, sets, method="aucell", min_genes=1, inplace=False)
    net = pd.DataFrame([(s, g) for s, genes in sets.items() for g in genes], columns=["source", "target"])
    ref = _quiet(dc.mt.aucell, full.to_df(), net, tmin=1)[0]
    assert_allclose(auc.to_numpy(), ref[list(sets)].to_numpy(), atol=1e-6, rtol=0)
    genes_scores = noa.tl.score(data, sets, method="score_genes", min_genes=1, inplace=False)
    for name, genes in sets.items():
        assert_allclose(genes_scores[name].to_numpy(), _scanpy(data, genes), atol=1e-6, rtol=0)


# issue 17 item 8: zmean warns on raw counts like score_genes


def test_zmean_warns_on_raw_counts_but_not_on_lognormalised(data):
    counts = _adata(sp.csr_matrix(np.random.default_rng(0).poisson(3.0, (60, 50)).astype(np.float32) * 30))
    sets = {"s": ["G1", "G2", "G3", "G4"]}
    with pytest.warns(UserWarning, match=r"looks like raw counts.*'zmean' expects log-normalised"):
        noa.tl.score(counts, sets, method="zmean", inplace=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        noa.tl.score(data, sets, method="zmean", inplace=False)
        noa.tl.score(counts, sets, method="ucell", inplace=False)  # rank methods: no warning
