"""No public function changes its input unless asked to (GitHub issue 10).

Every function with ``inplace=False`` and every function that reads an AnnData without an
``inplace`` argument leaves ``X``, ``layers``, ``obs``, ``var``, ``obsm``, ``obsp``, ``varm``,
``uns`` and ``raw`` exactly as they were: values, dtypes, sparse structure (index order and
explicit zeros included), categories and column order. The input is built to tempt in-place
shortcuts: CSR ``X`` with unsorted indices and explicit zeros, integer counts in a layer,
categorical ``obs`` columns, a kNN graph in ``obsp`` and nested ``uns`` entries.

With ``inplace=True`` only the documented keys are added; nothing that was there before changes.
"""

from __future__ import annotations

import copy
import functools
import warnings

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

import noa_omics as noa

DONORS = [
    *({"donor": f"C{i}", "condition": "control", "n_cells": 60} for i in (1, 2, 3)),
    *({"donor": f"S{i}", "condition": "sertoli_cell_only", "histology": "sertoli_cell_only", "n_cells": 60}
      for i in (1, 2)),
    *({"donor": f"A{i}", "condition": "case", "n_cells": 60} for i in (1, 2)),
]


def _quiet(fn, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*args, **kwargs)


def _non_canonical(x: sp.csr_matrix, seed: int = 0) -> sp.csr_matrix:
    """Same matrix with the column indices of every row shuffled and a few explicit zeros."""
    rng = np.random.default_rng(seed)
    x = sp.csr_matrix(x, copy=True)
    for i in range(x.shape[0]):
        lo, hi = x.indptr[i], x.indptr[i + 1]
        order = rng.permutation(hi - lo)
        x.indices[lo:hi] = x.indices[lo:hi][order]
        x.data[lo:hi] = x.data[lo:hi][order]
    x.data[::97] = 0  # explicit zeros stay stored
    x.has_sorted_indices = False
    return x


@functools.lru_cache(maxsize=None)
def _single_cell() -> ad.AnnData:
    import scanpy as sc

    adata = noa.datasets.demo_testis(seed=0, donors=DONORS)
    adata.layers["counts"] = _non_canonical(sp.csr_matrix(adata.layers["counts"]).astype(np.int32), seed=3)
    sc.pp.normalize_total(adata, target_sum=1e4)
    sc.pp.log1p(adata)
    adata.X = _non_canonical(sp.csr_matrix(adata.X, dtype=np.float32))
    adata.obs["noa_cell_type"] = pd.Categorical(adata.obs["truth_cell_type"].astype(str))
    adata.obs["sample"] = adata.obs["sample"].astype("category")
    adata.obs["condition"] = adata.obs["condition"].astype("category")
    adata.obs["depth"] = np.asarray(adata.layers["counts"].sum(axis=1)).ravel().astype(float)
    rng = np.random.default_rng(1)
    adata.obsm["X_pca"] = rng.normal(size=(adata.n_obs, 5))
    graph = sp.random(adata.n_obs, adata.n_obs, density=0.02, random_state=2, format="csr")
    adata.obsp["connectivities"] = sp.csr_matrix(graph + graph.T)
    adata.varm["loadings"] = rng.normal(size=(adata.n_vars, 2))
    adata.uns["note"] = {"nested": {"values": np.arange(3), "text": "keep"}, "list": [1, 2]}
    _quiet(noa.tl.score, adata, method="score_genes")  # a score table for the downstream functions
    return adata


def single_cell() -> ad.AnnData:
    return _single_cell().copy()


@functools.lru_cache(maxsize=None)
def _spatial() -> ad.AnnData:
    adata = noa.datasets.demo_spatial(seed=0, n_tubules=8, expression=False)
    adata.obs["noa_cell_type"] = adata.obs["noa_cell_type"].astype("category")
    noa.spatial.assign_tubules(adata)
    adata.uns["note"] = {"nested": {"values": np.arange(3)}}
    return adata


def spatial() -> ad.AnnData:
    return _spatial().copy()


# --------------------------------------------------------------------------------------------
# deep comparison


def _same_matrix(a, b, where: str) -> None:
    assert type(a) is type(b), f"{where}: type {type(a).__name__} -> {type(b).__name__}"
    if a is None:
        return
    if sp.issparse(a):
        assert a.format == b.format and a.shape == b.shape and a.dtype == b.dtype, where
        np.testing.assert_array_equal(a.indptr, b.indptr, err_msg=where)
        np.testing.assert_array_equal(a.indices, b.indices, err_msg=f"{where} (index order)")
        np.testing.assert_array_equal(a.data, b.data, err_msg=where)
        return
    if isinstance(a, pd.DataFrame):
        pd.testing.assert_frame_equal(a, b, check_exact=True, obj=where)
        return
    a, b = np.asarray(a), np.asarray(b)
    assert a.dtype == b.dtype and a.shape == b.shape, where
    np.testing.assert_array_equal(a, b, err_msg=where)


def _same_value(a, b, where: str) -> None:
    if isinstance(a, dict):
        assert isinstance(b, dict) and list(a) == list(b), f"{where}: keys {list(a)} -> {list(b)}"
        for k in a:
            _same_value(a[k], b[k], f"{where}[{k!r}]")
    elif isinstance(a, (pd.DataFrame, np.ndarray)) or sp.issparse(a):
        _same_matrix(a, b, where)
    elif isinstance(a, pd.Series):
        pd.testing.assert_series_equal(a, b, check_exact=True, obj=where)
    elif isinstance(a, (list, tuple)):
        assert type(a) is type(b) and len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            _same_value(x, y, f"{where}[{i}]")
    else:
        assert a == b or (a != a and b != b), f"{where}: {a!r} -> {b!r}"


def assert_unchanged(before: ad.AnnData, after: ad.AnnData, *, added_obs=(), added_obsm=(), added_uns=()) -> None:
    """``after`` equals ``before`` except for the newly added keys listed."""
    assert after.shape == before.shape
    assert list(after.obs_names) == list(before.obs_names) and list(after.var_names) == list(before.var_names)
    _same_matrix(before.X, after.X, "X")
    for attr in ("layers", "obsm", "obsp", "varm", "varp"):
        old, new = getattr(before, attr), getattr(after, attr)
        allowed = set(added_obsm) if attr == "obsm" else set()
        assert set(new.keys()) - set(old.keys()) <= allowed, f"{attr}: new keys {set(new.keys()) - set(old.keys())}"
        assert set(old.keys()) <= set(new.keys()), f"{attr}: removed keys {set(old.keys()) - set(new.keys())}"
        for key in old.keys():
            _same_matrix(old[key], new[key], f"{attr}[{key!r}]")
    obs = after.obs.drop(columns=[c for c in added_obs if c in after.obs.columns and c not in before.obs.columns])
    pd.testing.assert_frame_equal(before.obs, obs, check_exact=True, obj="obs")
    pd.testing.assert_frame_equal(before.var, after.var, check_exact=True, obj="var")
    new_uns = set(after.uns.keys()) - set(before.uns.keys())
    assert new_uns <= set(added_uns), f"uns: new keys {new_uns}"
    _same_value(dict(before.uns), {k: after.uns[k] for k in before.uns.keys()}, "uns")
    assert (before.raw is None) == (after.raw is None)
    if before.raw is not None:
        _same_matrix(before.raw.X, after.raw.X, "raw.X")
        pd.testing.assert_frame_equal(before.raw.var, after.raw.var, obj="raw.var")


def _check(build, call, **added):
    adata = build()
    before = adata.copy()
    before.uns = copy.deepcopy(dict(adata.uns))
    _quiet(call, adata)
    assert_unchanged(before, adata, **added)
    return adata


# --------------------------------------------------------------------------------------------
# inplace=False and functions without inplace


def _with_raw() -> ad.AnnData:
    adata = single_cell()
    adata.raw = adata.copy()
    return adata


SETS = {"germ": ["DDX4", "SYCP3", "PRM1", "TNP1", "PIWIL1"], "sertoli": ["SOX9", "AMH", "CLDN11", "INHA"]}

READ_ONLY = {
    **{
        f"score-{m}": (single_cell, lambda a, m=m: noa.tl.score(a, method=m, inplace=False))
        for m in ("score_genes", "aucell", "ucell", "zmean")
    },
    "score-layer-counts": (single_cell, lambda a: noa.tl.score(a, SETS, layer="counts", method="aucell",
                                                               inplace=False)),
    "score-chunked": (single_cell, lambda a: noa.tl.score(a, SETS, method="zmean", chunk_size=17, inplace=False)),
    "score-use_raw": (_with_raw, lambda a: noa.tl.score(a, SETS, use_raw=True, method="ucell", inplace=False)),
    "annotate_testis-graph-in-obsp": (single_cell, lambda a: noa.tl.annotate_testis(a, inplace=False)),
    "annotate_testis-counts-layer": (
        single_cell, lambda a: noa.tl.annotate_testis(a, layer="counts", use_graph=False, inplace=False)),
    "apoptosis_profile": (single_cell, lambda a: noa.tl.apoptosis_profile(
        a, sample_key="sample", condition_key="condition", reference="control")),
    "apoptosis_profile-scores-here": (single_cell, lambda a: noa.tl.apoptosis_profile(
        a, sample_key="sample", method="ucell", layer="counts")),
    "compare_conditions": (single_cell, lambda a: noa.tl.compare_conditions(
        a, value_key=["apoptosis_intrinsic", "stress_heat"], sample_key="sample", condition_key="condition",
        reference="control", groupby="noa_cell_type")),
    "compare_conditions-mixed": (single_cell, lambda a: noa.tl.compare_conditions(
        a, value_key="apoptosis_intrinsic", sample_key="sample", condition_key="condition", reference="control",
        method="mixed", covariates=["depth"])),
    "enrichment": (single_cell, lambda a: noa.tl.enrichment(
        a, sample_key="sample", condition_key="condition", reference="control", cell_types=["sertoli"],
        permutation_num=20)),
    "multihit": (single_cell, lambda a: noa.tl.multihit(
        a, sample_key="sample", condition_key="condition", reference="control", allow_missing_axes=True,
        inplace=False)),
    "assign_tubules": (spatial, lambda a: noa.spatial.assign_tubules(a, key_added="other_tubule", inplace=False)),
    "tubule_metrics": (spatial, lambda a: noa.spatial.tubule_metrics(a, sample_key="sample")),
    "niche_summary": (spatial, lambda a: noa.spatial.niche_summary(a, sample_key="sample", n_perms=20)),
}


@pytest.mark.parametrize("name", list(READ_ONLY))
def test_function_leaves_its_input_unchanged(name):
    build, call = READ_ONLY[name]
    _check(build, call)


def test_compare_conditions_leaves_a_dataframe_unchanged():
    cells = _single_cell().obs[["sample", "condition", "noa_cell_type"]].copy()
    cells["score"] = _single_cell().obsm["noa_score_genes"]["apoptosis_intrinsic"].to_numpy()
    cells.loc[cells.index[:3], "score"] = np.nan
    before = cells.copy()
    _quiet(noa.tl.compare_conditions, cells, value_key="score", sample_key="sample", condition_key="condition",
           reference="control", groupby="noa_cell_type", method="permutation")
    pd.testing.assert_frame_equal(before, cells, check_exact=True)


def test_harmonize_labels_and_retrieval_model_leave_inputs_unchanged():
    labels = pd.Series(pd.Categorical(["Sertoli cells", "SPG", "blob"]), index=["a", "b", "c"])
    before = labels.copy()
    _quiet(noa.tl.harmonize_labels, labels)
    pd.testing.assert_series_equal(before, labels, check_exact=True)

    rng = np.random.default_rng(0)
    features = pd.DataFrame({"x": rng.normal(size=20), "histology": ["normal", "sertoli_cell_only"] * 10,
                             "tese": [1, 0] * 10}, index=[f"D{i}" for i in range(20)])
    features.loc["D0", "x"] = np.nan
    before = features.copy()
    _quiet(noa.tl.retrieval_model, features, "tese", n_permutations=0, n_bootstrap=20)
    pd.testing.assert_frame_equal(before, features, check_exact=True)


# --------------------------------------------------------------------------------------------
# inplace=True: only the documented keys are added


def test_score_inplace_adds_only_its_keys():
    _check(single_cell, lambda a: noa.tl.score(a, SETS, method="ucell", key_added="my_scores"),
           added_obsm=["my_scores"], added_uns=["my_scores"])


def test_annotate_inplace_adds_only_its_keys():
    _check(single_cell, lambda a: noa.tl.annotate_testis(a, key_added="cell_type_call", class_key="class_call"),
           added_obs=["cell_type_call", "class_call", "cell_type_call_confidence", "cell_type_call_germ_position"],
           added_uns=["cell_type_call"])


def test_assign_tubules_and_multihit_inplace_add_only_their_keys():
    _check(spatial, lambda a: noa.spatial.assign_tubules(a, key_added="tubule2"), added_obs=["tubule2"],
           added_uns=["tubule2"])
    _check(single_cell, lambda a: noa.tl.multihit(a, sample_key="sample", condition_key="condition",
                                                  reference="control", allow_missing_axes=True),
           added_uns=["noa_multihit"])


def test_the_comparison_catches_changes():
    """The checker itself: in-place sorting of indices, a new category and a changed uns leaf fail."""
    adata = single_cell()
    before = adata.copy()
    before.uns = copy.deepcopy(dict(adata.uns))
    adata.X.sort_indices()
    with pytest.raises(AssertionError, match="index order"):
        assert_unchanged(before, adata)
    adata = single_cell()
    adata.obs["sample"] = adata.obs["sample"].cat.add_categories(["new"])
    with pytest.raises(AssertionError):
        assert_unchanged(before, adata)
    adata = single_cell()
    adata.uns["note"]["nested"]["values"][0] = 99
    with pytest.raises(AssertionError):
        assert_unchanged(before, adata)
