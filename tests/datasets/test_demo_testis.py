"""Tests of the simulated single-cell cohort (noa.datasets.demo_testis) against its planted truth."""

from __future__ import annotations

import anndata
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

import noa_omics as noa
from noa_omics._vocabulary import CELL_TYPE_TO_CLASS, CELL_TYPES, GERM_STAGES
from noa_omics.datasets import DonorSpec, default_cohort, demo_testis
from noa_omics.datasets._demo_testis import STAGE_EDGES, _sample_nb
from noa_omics.datasets._programmes import load_programmes

N = 2000


@pytest.fixture(scope="module")
def adata():
    return demo_testis(seed=0, n_cells=N)


@pytest.fixture(scope="module")
def programmes():
    return load_programmes("human")


def _dense(adata, genes=None):
    X = adata.X if genes is None else adata[:, genes].X
    return X.toarray() if sp.issparse(X) else np.asarray(X)


def _donors_of(adata, condition):
    return set(adata.obs.loc[adata.obs["condition"] == condition, "donor"].astype(str))


def test_same_seed_identical_and_different_seed_differs(adata):
    again = demo_testis(seed=0, n_cells=N)
    assert (adata.X != again.X).nnz == 0
    pd.testing.assert_frame_equal(adata.obs, again.obs)
    other = demo_testis(seed=1, n_cells=N)
    assert other.shape == adata.shape
    assert (adata.X != other.X).nnz > 0


def test_layout_and_truth_columns(adata):
    assert adata.n_obs == N
    assert adata.X.dtype == np.float32 and sp.isspmatrix_csr(adata.X)
    assert (adata.layers["counts"] != adata.X).nnz == 0
    assert np.all(adata.X.data == np.round(adata.X.data)) and adata.X.data.min() > 0
    for key in ("sample", "donor", "condition", "histology", "truth_cell_type", "truth_cell_class",
                "truth_apoptosis", "truth_pseudotime"):
        assert key in adata.obs
    assert (adata.obs["sample"].astype(str) == adata.obs["donor"].astype(str)).all()
    assert set(adata.obs["truth_cell_type"].cat.categories) == set(CELL_TYPES)
    assert set(adata.obs["truth_cell_type"]) == set(CELL_TYPES)  # every type occurs
    expected_class = adata.obs["truth_cell_type"].astype(str).map(dict(CELL_TYPE_TO_CLASS))
    assert (adata.obs["truth_cell_class"].astype(str) == expected_class).all()
    germ = adata.obs["truth_cell_class"] == "germ"
    assert adata.obs.loc[~germ, "truth_pseudotime"].isna().all()
    t = adata.obs.loc[germ, "truth_pseudotime"].to_numpy()
    assert np.all((t >= 0) & (t <= 1))
    # germ stage = bin of the pseudotime
    stage = np.array(GERM_STAGES)[np.searchsorted(STAGE_EDGES[1:-1], t, side="right")]
    assert (adata.obs.loc[germ, "truth_cell_type"].astype(str).to_numpy() == stage).all()
    assert not adata.obs.loc[~germ, "truth_apoptosis"].any()
    table = adata.uns["demo"]["donors"]
    assert list(table["donor"]) == [s.donor for s in default_cohort()]
    assert table["n_cells"].sum() == N
    assert adata.var_names.is_unique


def test_gene_universe_contains_library_and_background(adata, programmes):
    genes = set(adata.var_names)
    for name, members in programmes.sets.items():
        assert set(members) <= genes, name
    assert {"XIST", "DDX3Y", "RPS4Y1", "DAZ1"} <= genes
    assert (adata.var["gene_class"] == "background").sum() > 1000
    assert noa.genesets.detect_species(adata.var_names) == "human"


def test_library_size_range(adata):
    lib = np.asarray(adata.X.sum(axis=1)).ravel()
    assert 2000 <= np.median(lib) <= 4000
    assert np.quantile(lib, 0.02) < 1000  # some small cells
    mt = adata.var_names.str.startswith("MT-")
    frac = np.asarray(adata[:, mt].X.sum(axis=1)).ravel() / lib
    assert 0.01 < np.median(frac) < 0.15


def test_histology_truth(adata):
    obs = adata.obs
    germ = obs["truth_cell_class"] == "germ"
    sco = obs["histology"] == "sertoli_cell_only"
    assert sco.any() and not (germ & sco).any()
    ma = obs["histology"] == "maturation_arrest"
    beyond = obs["truth_cell_type"].isin(["round_spermatid", "elongating_spermatid"])
    assert (ma & germ).sum() > 20 and not (ma & beyond).any()
    normal = obs["condition"] == "control"
    hypo = obs["histology"] == "hypospermatogenesis"
    assert germ[hypo].mean() < 0.5 * germ[normal].mean()
    assert set(obs.loc[hypo & germ, "truth_cell_type"]) == set(GERM_STAGES)


def test_genetic_hits(adata):
    obs = adata.obs
    xist = _dense(adata, ["XIST"]).ravel()
    ks = (obs["condition"] == "klinefelter").to_numpy()
    assert np.all(xist[~ks] == 0)
    assert np.mean(xist[ks] > 0) > 0.9
    azfc = ["DAZ1", "DAZ2", "DAZ3", "DAZ4", "BPY2", "CDY1"]
    azf = _dense(adata, azfc)
    deleted = (obs["condition"] == "azfc_deletion").to_numpy()
    germ = (obs["truth_cell_class"] == "germ").to_numpy()
    assert (deleted & germ).sum() > 0
    assert azf[deleted].sum() == 0
    assert azf[~deleted & germ].sum() > 100  # expressed in germ cells of the other donors
    leydig = (obs["truth_cell_type"] == "leydig").to_numpy()
    assert leydig[ks].mean() > 1.5 * leydig[obs["condition"] == "control"].mean()


def _set_mean(adata, genes, rows):
    """Mean library-normalised expression of a gene set in ``rows`` (per-cell mean of CP10k)."""
    lib = np.asarray(adata.X.sum(axis=1)).ravel()
    X = _dense(adata, [g for g in genes if g in adata.var_names])
    return float((X[rows] / lib[rows, None] * 1e4).mean())


def test_apoptosis_truth(adata, programmes):
    obs = adata.obs
    apo = obs["truth_apoptosis"].to_numpy()
    germ = (obs["truth_cell_class"] == "germ").to_numpy()
    genes = programmes.get("apoptosis_intrinsic")
    assert apo.sum() > 30
    assert _set_mean(adata, genes, apo & germ) > 1.8 * _set_mean(adata, genes, ~apo & germ)
    table = adata.uns["demo"]["donors"].set_index("donor")
    realised = obs.groupby("donor", observed=True)["truth_apoptosis"].sum()
    assert (realised == table.loc[realised.index, "n_apoptotic"]).all()
    ma = (obs["histology"] == "maturation_arrest").to_numpy()
    assert set(obs.loc[apo & ma, "truth_cell_type"]) == {"spermatocyte"}
    stress = obs["condition"] == "apoptosis_stress"
    control = obs["condition"] == "control"
    assert apo[(stress & germ).to_numpy()].mean() > 3 * apo[(control & germ).to_numpy()].mean()


def test_expression_hits(adata, programmes):
    obs = adata.obs
    cond = obs["condition"].astype(str).to_numpy()
    ctype = obs["truth_cell_type"].astype(str).to_numpy()
    germ = (obs["truth_cell_class"] == "germ").to_numpy()
    control = cond == "control"
    # oxidative stress in germ cells of the stress donors
    ox = programmes.get("stress_oxidative") + programmes.get("stress_heat")
    assert _set_mean(adata, ox, germ & (cond == "apoptosis_stress")) > 1.5 * _set_mean(adata, ox, germ & control)
    # endocrine: Leydig steroidogenesis down in the hypospermatogenesis donors (hit 0.7-1.0)
    steroid = programmes.get("endocrine_leydig_steroidogenesis")
    leydig = ctype == "leydig"
    hypo = cond == "hypospermatogenesis"
    assert _set_mean(adata, steroid, leydig & hypo) < 0.8 * _set_mean(adata, steroid, leydig & control)
    # niche: Sertoli immaturity up in SCO donors
    imm = programmes.get("sertoli_immaturity")
    sertoli = ctype == "sertoli"
    sco = cond == "sertoli_cell_only"
    assert _set_mean(adata, imm, sertoli & sco) > 1.8 * _set_mean(adata, imm, sertoli & control)
    # markers: a stage's markers peak in that stage and are lower but present in the next one
    sc_markers = programmes.marker("spermatocyte")
    spc = _set_mean(adata, sc_markers, ctype == "spermatocyte")
    rs = _set_mean(adata, sc_markers, ctype == "round_spermatid")
    som = _set_mean(adata, sc_markers, ctype == "sertoli")
    assert spc > 2 * rs > 2 * som


def test_negative_binomial_mean_variance():
    rng = np.random.default_rng(0)
    mu = np.tile(np.array([0.5, 2.0, 10.0, 50.0]), (40000, 1))
    phi = np.array([0.2, 0.3, 0.4, 0.5])
    y = _sample_nb(mu, phi, rng)
    np.testing.assert_allclose(y.mean(axis=0), mu[0], rtol=0.03)
    np.testing.assert_allclose(y.var(axis=0), mu[0] + phi * mu[0] ** 2, rtol=0.08)


def test_demo_counts_overdispersed(adata):
    """Within one cell type and donor, counts scaled to a common depth are over-dispersed."""
    obs = adata.obs
    rows = ((obs["truth_cell_type"] == "sertoli") & obs["condition"].isin(["sertoli_cell_only"])).to_numpy()
    X = _dense(adata)[rows]
    mean = X.mean(axis=0)
    keep = mean > 3
    var = X[:, keep].var(axis=0)
    excess = (var - mean[keep]) / mean[keep] ** 2  # phi estimate (includes library-size variation)
    assert keep.sum() > 50
    assert np.all(var > mean[keep] * 0.9)
    assert 0.15 < np.median(excess) < 1.5


def test_h5ad_roundtrip(adata, tmp_path):
    path = tmp_path / "demo.h5ad"
    adata.write_h5ad(path)
    back = anndata.read_h5ad(path)
    assert back.uns["demo"]["seed"] == 0
    pd.testing.assert_frame_equal(back.uns["demo"]["donors"], adata.uns["demo"]["donors"], check_dtype=False)


def test_custom_donors_and_scaling():
    donors = [
        {"donor": "A", "condition": "control", "histology": "normal", "n_cells": 300},
        {"donor": "B", "condition": "ma", "histology": "maturation_arrest", "arrest_stage": "spermatogonia",
         "germ_fraction": 0.5, "apoptosis": {"set": "apoptosis_checkpoint", "cell_types": ["spermatogonia"],
                                             "fraction": 0.5, "fold": 4.0}},
        {"donor": "C", "condition": "azf", "histology": "normal", "hits": {"genetic_azf_loss": "a"}},
    ]
    ad = demo_testis(seed=3, n_cells=900, donors=donors)
    counts = ad.obs["donor"].value_counts()
    assert counts["A"] == 300 and counts["B"] == 300 and counts["C"] == 300
    b = ad.obs["donor"] == "B"
    assert set(ad.obs.loc[b & (ad.obs["truth_cell_class"] == "germ"), "truth_cell_type"]) <= {"SSC", "spermatogonia"}
    assert ad.obs.loc[b, "truth_apoptosis"].sum() > 10
    azfa = _dense(ad, ["USP9Y", "DDX3Y", "UTY"])
    c = (ad.obs["donor"] == "C").to_numpy()
    assert azfa[c].sum() == 0 and azfa[~c].sum() > 0


def test_mouse_species():
    ad = demo_testis(seed=0, n_cells=600, species="mouse")
    assert noa.genesets.detect_species(ad.var_names) == "mouse"
    assert "Xist" in ad.var_names and "XIST" not in ad.var_names
    assert ad.var_names[ad.var["gene_class"] == "background"][0].startswith("Bg")


@pytest.mark.parametrize(
    ("spec", "match"),
    [
        ({"donor": "X", "histology": "bad"}, "unknown histology"),
        ({"donor": "X", "histology": "sertoli_cell_only", "germ_fraction": 0.3}, "no germ cells"),
        ({"donor": "X", "histology": "normal", "arrest_stage": "spermatocyte"}, "only used with"),
        ({"donor": "X", "hits": {"oxidative": -1}}, "hits.oxidative"),
        ({"donor": "X", "hits": {"stress": 1}}, "unknown key"),
        ({"donor": "X", "apoptosis": {"cell_types": ["sertoli"]}}, "germ stages"),
        ({"donor": "X", "colour": "red"}, "unknown key"),
        ({"donor": "X", "hits": {"genetic_azf_loss": "d"}}, "genetic_azf_loss"),
        ({"condition": "control"}, "donor"),
    ],
)
def test_donor_spec_validation(spec, match):
    with pytest.raises(ValueError, match=match):
        DonorSpec.from_dict(spec)


def test_bad_arguments():
    with pytest.raises(ValueError, match="species"):
        demo_testis(species="rat")
    with pytest.raises(ValueError, match="unique"):
        demo_testis(n_cells=100, donors=[{"donor": "A"}, {"donor": "A"}])
    with pytest.raises(ValueError, match="n_cells"):
        demo_testis(n_cells=0)
    with pytest.raises(ValueError, match="not in the gene-set library"):
        demo_testis(n_cells=200, donors=[{"donor": "A", "apoptosis": {"set": "no_such_set"}}])


def test_spec_roundtrip():
    for spec in default_cohort():
        assert DonorSpec.from_dict(spec.to_dict()) == spec


def test_log_profile_rows_of_doublets_are_initialised():
    """eta of `other` (doublet) cells was np.empty garbage (issue 17 item 10)."""
    import warnings as _w

    import noa_omics as noa
    from noa_omics.datasets import _demo_testis as mod

    with _w.catch_warnings():
        _w.simplefilter("error", RuntimeWarning)  # garbage in np.empty overflowed in exp()
        adata = noa.datasets.demo_testis(seed=1, n_cells=400)
    assert (adata.obs["truth_cell_type"] == "other").any()
    u = mod._Universe(load_programmes("human"), np.random.default_rng(0), int(mod.PARAMS["n_background"]))
    types = np.array(["sertoli", "other", "SSC"], dtype=object)
    eta = mod._log_profile(types, np.array([np.nan, np.nan, 0.1]), u)
    assert np.array_equal(eta[1], np.zeros(u.n))  # defined, not whatever the memory held
    assert np.isfinite(eta).all()
