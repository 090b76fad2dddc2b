"""Streaming a TileDB-SOMA experiment in the Census layout: streamed results equal in-memory ones."""

from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

import noa_omics as noa
from noa_omics._stream import log1p_cp10k

soma = pytest.importorskip("tiledbsoma")
import tiledbsoma.io  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: the shared layout helpers
from atlas.layouts import CL, fake_ensembl  # noqa: E402  (CELLxGENE names and ids, Ensembl-like ids)


def census_layout(adata):
    """The demo cohort as the Census stores it: Ensembl var_names, feature_name, raw counts, CL ids."""
    import anndata as ad

    truth = adata.obs["truth_cell_type"].astype(str)
    obs = pd.DataFrame({
        "donor_id": adata.obs["sample"].astype(str).to_numpy(),
        "disease": np.where(adata.obs["condition"].astype(str) == "control", "normal",
                            adata.obs["condition"].astype(str)),
        "cell_type": [CL[t][0] for t in truth], "cell_type_ontology_term_id": [CL[t][1] for t in truth],
        "tissue_general": "testis", "assay": "10x 3' v3",
    }, index=adata.obs_names.to_numpy())
    ids = fake_ensembl(adata.var_names)
    var = pd.DataFrame({"feature_name": adata.var_names.to_numpy(), "feature_id": ids}, index=ids)
    return ad.AnnData(X=sp.csr_matrix(adata.layers["counts"], dtype=np.float32), obs=obs, var=var)


@pytest.fixture(scope="module")
def demo():
    return noa.datasets.demo_testis(seed=3, n_cells=1200)


@pytest.fixture(scope="module")
def experiment(tmp_path_factory, demo):
    uri = str(tmp_path_factory.mktemp("soma") / "testis")
    tiledbsoma.io.from_anndata(uri, census_layout(demo), measurement_name="RNA", X_layer_name="raw")
    return uri


def in_memory(demo, normalise=True):
    """The same cells in memory: symbols as var_names, the same log-normalisation."""
    import anndata as ad

    counts = sp.csr_matrix(demo.layers["counts"], dtype=np.float32)
    out = ad.AnnData(X=log1p_cp10k(counts) if normalise else counts, obs=demo.obs.copy(), var=demo.var.copy())
    return out


def test_log1p_cp10k_equals_scanpy(demo):
    import scanpy as sc

    ref = in_memory(demo, normalise=False)
    sc.pp.normalize_total(ref, target_sum=1e4)
    sc.pp.log1p(ref)
    np.testing.assert_allclose(log1p_cp10k(sp.csr_matrix(demo.layers["counts"], dtype=np.float32)).toarray(),
                               ref.X.toarray(), rtol=1e-6, atol=1e-6)


def test_log1p_cp10k_share_structure_needs_canonical_csr(demo):
    counts = sp.csr_matrix(demo.layers["counts"], dtype=np.float32)
    shared = log1p_cp10k(counts, share_structure=True)
    assert np.shares_memory(shared.indices, counts.indices) and not np.shares_memory(shared.data, counts.data)
    np.testing.assert_array_equal(shared.toarray(), log1p_cp10k(counts).toarray())
    unsorted = sp.csr_matrix((np.array([1.0, 2.0], dtype=np.float32), np.array([1, 0]), np.array([0, 2])),
                             shape=(1, 2))
    unsorted.has_sorted_indices = False
    with pytest.raises(ValueError, match="canonical"):
        log1p_cp10k(unsorted, share_structure=True)
    with pytest.raises(ValueError, match="canonical"):
        log1p_cp10k(counts.tocsc(), share_structure=True)


def test_open_reads_census_columns_and_harmonises_cl_ids(experiment, demo):
    with noa.datasets.open_soma(experiment, chunk_size=250) as cells:
        assert cells.shape == demo.shape
        assert list(cells.obs_names) == list(demo.obs_names)
        assert cells.var["feature_name"].astype(str).tolist() == demo.var_names.tolist()
        assert cells.var_names[0].startswith("ENSG")
        truth = demo.obs["truth_cell_type"].astype(str)
        expected = truth.replace({"SSC": "spermatogonia", "elongating_spermatid": "round_spermatid"})
        # CL has no SSC / elongating-spermatid term: the Census ids map to the nearest vocabulary type
        assert (cells.obs["noa_cell_type"].astype(str).to_numpy() == expected.to_numpy()).all()
        assert cells.uns["noa_soma"]["X_name"] == "raw"


def test_unknown_census_type_warns_with_its_name(tmp_path, demo):
    sub = census_layout(demo[:200].copy())
    sub.obs["cell_type"] = "odd cell"
    sub.obs["cell_type_ontology_term_id"] = "CL:9999999"
    uri = str(tmp_path / "odd")
    tiledbsoma.io.from_anndata(uri, sub, measurement_name="RNA", X_layer_name="raw")
    with pytest.warns(UserWarning, match="odd cell"):  # the label is named, not silently 'other'
        cells = noa.datasets.open_soma(uri)
    assert (cells.obs["noa_cell_type"] == "other").all()
    cells.close()


@pytest.mark.parametrize("method", ["score_genes", "aucell", "ucell", "zmean"])
def test_streamed_scores_equal_in_memory(experiment, demo, method):
    ref = noa.tl.score(in_memory(demo), method=method, inplace=False)
    with noa.datasets.open_soma(experiment, chunk_size=173) as cells:
        got = noa.tl.score(cells, method=method, gene_symbols="feature_name")
        assert f"noa_{method}" in cells.obsm and cells.uns[f"noa_{method}"]["method"] == method
    np.testing.assert_allclose(got.to_numpy(), ref.to_numpy(), rtol=1e-5, atol=1e-6)
    assert list(got.columns) == list(ref.columns) and list(got.index) == list(ref.index)


def test_query_filter_streams_only_matching_cells(experiment, demo):
    donor = str(demo.obs["sample"].iloc[0])
    with noa.datasets.open_soma(experiment, obs_value_filter=f"donor_id == '{donor}'", chunk_size=64) as cells:
        mask = (demo.obs["sample"].astype(str) == donor).to_numpy()
        assert cells.n_obs == int(mask.sum())
        got = noa.tl.score(cells, method="ucell", gene_symbols="feature_name", inplace=False)
    # UCell is per cell: the subset's scores are the full data's scores of those cells
    ref = noa.tl.score(in_memory(demo), method="ucell", inplace=False)
    np.testing.assert_allclose(got.to_numpy(), ref.to_numpy()[mask], atol=1e-6)
    assert cells.uns["noa_soma"]["obs_value_filter"] == f"donor_id == '{donor}'"


def test_empty_query_is_an_error(experiment):
    with pytest.raises(ValueError, match="matched no cells"):
        noa.datasets.open_soma(experiment, obs_value_filter="donor_id == 'nobody'")


def test_to_anndata_keeps_gene_subset_and_scores(experiment, demo):
    genes = list(noa.genesets.load("human")["apoptosis_intrinsic"].genes) + ["NOT_A_GENE"]
    with noa.datasets.open_soma(experiment, chunk_size=300) as cells:
        noa.tl.score(cells, method="ucell", gene_symbols="feature_name")
        compact = cells.to_anndata(genes, gene_symbols="feature_name")
    kept = compact.var["feature_name"].astype(str).tolist()
    assert "NOT_A_GENE" in compact.uns["noa_stream"]["genes_missing"]
    ref = demo[:, kept].layers["counts"]
    np.testing.assert_array_equal(compact.layers["counts"].toarray(), np.asarray(sp.csr_matrix(ref).toarray()))
    # X is log-normalised on each cell's total over all genes, not over the kept ones
    full = in_memory(demo)
    np.testing.assert_allclose(compact.X.toarray(), full[:, kept].X.toarray(), rtol=1e-6)
    np.testing.assert_allclose(compact.obs["total_counts"], np.asarray(demo.layers["counts"].sum(axis=1)).ravel())
    assert "noa_ucell" in compact.obsm and compact.obsm["noa_ucell"].shape[0] == demo.n_obs


def test_pseudobulk_equals_dense_group_sums(experiment, demo):
    with noa.datasets.open_soma(experiment, chunk_size=111) as cells:
        pb = cells.pseudobulk(["donor_id", "noa_cell_type"])
        groups = cells.obs["donor_id"].astype(str) + "|" + cells.obs["noa_cell_type"].astype(str)
    counts = sp.csr_matrix(demo.layers["counts"]).toarray()
    for name in pb.obs_names[:10]:
        expected = counts[(groups == name).to_numpy()].sum(axis=0)
        np.testing.assert_allclose(pb[name].X.toarray().ravel(), expected)
    assert pb.obs["n_cells"].sum() == demo.n_obs


def test_profile_from_streamed_scores_equals_in_memory(experiment, demo):
    ref = in_memory(demo)
    ref.obs["noa_cell_type"] = demo.obs["truth_cell_type"].astype(str).replace(
        {"SSC": "spermatogonia", "elongating_spermatid": "round_spermatid"}).astype("category")
    noa.tl.score(ref, method="ucell")
    expected = noa.tl.apoptosis_profile(ref, sample_key="sample", method="ucell")
    with noa.datasets.open_soma(experiment, chunk_size=400) as cells:
        noa.tl.score(cells, method="ucell", gene_symbols="feature_name")
        compact = cells.to_anndata(["XIST"], gene_symbols="feature_name")
    got = noa.tl.apoptosis_profile(compact, sample_key="donor_id", method="ucell")
    got = got.rename(columns={"sample": "sample"}).sort_values(["sample", "cell_type", "gene_set"])
    expected = expected.sort_values(["sample", "cell_type", "gene_set"])
    np.testing.assert_allclose(got["mean"].to_numpy(), expected["mean"].to_numpy(), atol=1e-6)
    np.testing.assert_array_equal(got["n_cells"].to_numpy(), expected["n_cells"].to_numpy())


def test_streamed_view_refused_by_in_memory_steps(experiment):
    with noa.datasets.open_soma(experiment) as cells:
        with pytest.raises(TypeError, match="to_anndata"):
            noa.tl.apoptosis_profile(cells, sample_key="donor_id")


def test_census_filter_text():
    assert noa.datasets.census_filter() == "tissue_general == 'testis'"
    text = noa.datasets.census_filter(disease=["normal", "azoospermia"], assay="10x 3' v3".replace("'", ""),
                                      extra_filter="is_primary_data == True")
    assert text == ("tissue_general == 'testis' and disease in ['normal', 'azoospermia'] and "
                    "assay == '10x 3 v3' and (is_primary_data == True)")
    with pytest.raises(ValueError, match="quote"):
        noa.datasets.census_filter(assay="10x 3' v3")


def test_census_testis_uses_the_census_experiment(monkeypatch, experiment):
    """The Census call is the only networked code: a stand-in module returns the local experiment."""
    import types

    calls = {}

    class FakeCensus(dict):
        def close(self):
            calls["closed"] = True

    def open_census(census_version):
        calls["version"] = census_version
        exp = soma.Experiment.open(experiment)
        return FakeCensus(census_data={"homo_sapiens": exp})

    monkeypatch.setitem(sys.modules, "cellxgene_census", types.SimpleNamespace(open_soma=open_census))
    cells = noa.datasets.census_testis(census_version="2025-01-30", disease="normal")
    assert calls["version"] == "2025-01-30"
    assert cells.uns["noa_census"]["obs_value_filter"] == "tissue_general == 'testis' and disease == 'normal'"
    assert (cells.obs["disease"] == "normal").all() and cells.n_obs > 0


@pytest.fixture(scope="module")
def big_experiment(tmp_path_factory, demo):
    """200,000 cells over the demo's genes (about 40 detected genes per cell), written block by block."""
    from soma_utils import random_count_blocks, write_experiment  # tests/datasets is on sys.path

    n_obs = 200_000
    rng = np.random.default_rng(1)
    obs = pd.DataFrame({"donor_id": rng.choice([f"D{i:02d}" for i in range(40)], n_obs),
                        "tissue_general": "testis"}, index=[f"cell{i}" for i in range(n_obs)])
    var = pd.DataFrame({"feature_name": demo.var_names.to_numpy()},
                       index=fake_ensembl(demo.var_names))
    uri = str(tmp_path_factory.mktemp("soma_big") / "cells")
    return write_experiment(uri, obs, var, random_count_blocks(n_obs, len(var), per_cell=40, seed=2))


def test_200k_cells_scored_in_blocks_with_bounded_memory(big_experiment, demo):
    """Streaming never reads more than one block of rows, and the Python-side memory peak while
    scoring stays a fraction of what the whole matrix takes in memory (CSR float32 + int32)."""
    import tracemalloc

    sets = {name: list(noa.genesets.load("human")[name].genes)
            for name in ("apoptosis_intrinsic", "stress_heat", "marker_sertoli")}
    with noa.datasets.open_soma(big_experiment, chunk_size=10_000, harmonize=False) as cells:
        reads = []
        original = cells.X.read_rows
        cells.X.read_rows = lambda a, b: reads.append(b - a) or original(a, b)
        scores = noa.tl.score(cells, sets, method="ucell", gene_symbols="feature_name", inplace=False)
        cells.X.read_rows = original
        tracemalloc.start()  # second call: one-time costs (library, compilation) are paid
        again = noa.tl.score(cells, sets, method="ucell", gene_symbols="feature_name", inplace=False)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        total_nnz = sum(cells.counts[a:a + 50_000].nnz for a in range(0, cells.n_obs, 50_000))
    assert scores.shape == (200_000, 3) and np.isfinite(scores.to_numpy()).all()
    assert max(reads) <= 10_000 and sum(reads) == 200_000  # one pass (UCell needs no gene statistics)
    np.testing.assert_array_equal(again.to_numpy(), scores.to_numpy())
    whole_bytes = total_nnz * 8 + 200_001 * 8
    assert peak < whole_bytes / 2, (peak, whole_bytes)


def harmonised_in_memory(demo):
    """In memory, with the cell types the Census ids harmonise to and the Census column names."""
    ref = in_memory(demo)
    ref.obs["noa_cell_type"] = demo.obs["truth_cell_type"].astype(str).replace(
        {"SSC": "spermatogonia", "elongating_spermatid": "round_spermatid", "other": "other"}).astype("category")
    ref.obs["donor_id"] = demo.obs["sample"].astype(str).to_numpy()
    ref.obs["disease"] = np.where(demo.obs["condition"].astype(str) == "control", "normal",
                                  demo.obs["condition"].astype(str))
    return ref


def test_census_command_tables_equal_in_memory_analysis(experiment, demo, tmp_path):
    """`noa-omics census` on the local experiment gives the in-memory profile and multi-hit tables."""
    from typer.testing import CliRunner

    from noa_omics.cli import app

    out = tmp_path / "res"
    result = CliRunner().invoke(app, ["census", experiment, "--out", str(out), "-m", "ucell", "--chunk-size", "250"])
    assert result.exit_code == 0, result.output
    ref = harmonised_in_memory(demo)
    noa.tl.score(ref, method="ucell")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = noa.tl.multihit(ref, sample_key="donor_id", condition_key="disease", reference="normal",
                                   score_key="noa_ucell", method="ucell", inplace=False)
    got = pd.read_csv(out / "multihit.csv", index_col=0)
    expected.index = expected.index.astype(str)
    for col in ("genetic", "endocrine", "oxidative", "niche", "germ_apoptosis"):
        np.testing.assert_allclose(got.loc[expected.index, col].to_numpy(dtype=float),
                                   expected[col].to_numpy(dtype=float), atol=1e-6, equal_nan=True)
    assert (got.loc[expected.index, "apoptosis_context"].to_numpy() == expected["apoptosis_context"].to_numpy()).all()
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["source"]["obs_value_filter"] == "tissue_general == 'testis'" and manifest["n_cells"] == demo.n_obs


def test_census_command_bad_filter_is_one_error_line(experiment, tmp_path):
    from typer.testing import CliRunner

    from noa_omics.cli import app

    result = CliRunner().invoke(app, ["census", experiment, "--out", str(tmp_path / "r"),
                                      "--filter", "donor_id == 'nobody'"])
    assert result.exit_code != 0
    assert "noa-omics: error: the obs query" in result.output and not (tmp_path / "r").exists()
