"""``noa-omics run`` and ``noa-omics score`` on a CELLxGENE-layout file (Ensembl ids, symbols in
var['feature_name'], counts in raw.X, donors in obs['donor_id']) give the tables of the same data
in the symbol-named layout."""

from __future__ import annotations

import warnings
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

import noa_omics as noa
from noa_omics.cli import app

from atlas.layouts import cellxgene_layout, symbol_layout

pytestmark = pytest.mark.slow

TABLES = ("cell_type_counts", "apoptosis_profile", "condition_effects", "enrichment", "multihit")


@pytest.fixture(scope="module")
def atlas_files(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("atlas")
    # few donors with enough cells each, so that every table (enrichment included) has rows
    donors = [*({"donor": f"C{i}", "condition": "control", "n_cells": 110} for i in (1, 2, 3)),
              *({"donor": f"A{i}", "condition": "apoptotic", "n_cells": 110,
                 "apoptosis": {"sets": ["apoptosis_intrinsic"], "cell_types": ["spermatocyte"], "fraction": 0.4,
                               "fold": 3.0}} for i in (1, 2, 3))]
    sym = symbol_layout(noa.datasets.demo_testis(seed=1, donors=donors))
    cxg = cellxgene_layout(sym)
    sym.write_h5ad(root / "symbols.h5ad")
    cxg.write_h5ad(root / "cellxgene.h5ad")
    return root / "symbols.h5ad", root / "cellxgene.h5ad"


def _run(tmp_path: Path, name: str, singlecell: dict) -> Path:
    out = tmp_path / name
    config = {
        "output": str(out), "seed": 0,
        "singlecell": {"condition_key": "condition", "reference": "control", **singlecell},
        "scoring": {"methods": ["score_genes"]},
        "steps": {"embedding": False, "enrichment": True, "multihit": True},
        "enrichment": {"permutations": 20, "min_size": 5},
    }
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(config))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = CliRunner().invoke(app, ["run", str(path)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return out


def test_run_on_cellxgene_layout_matches_symbol_layout(tmp_path, atlas_files):
    sym_path, cxg_path = atlas_files
    expected = _run(tmp_path, "symbols", {"path": str(sym_path), "counts_layer": "counts", "sample_key": "donor"})
    got = _run(tmp_path, "cellxgene", {"path": str(cxg_path), "counts_layer": "raw", "gene_symbols": "feature_name",
                                       "sample_key": "donor_id"})
    for name in TABLES:
        a = pd.read_csv(expected / "tables" / f"{name}.csv")
        b = pd.read_csv(got / "tables" / f"{name}.csv")
        b.columns = a.columns  # the sample column is 'donor' vs 'donor_id'
        assert len(a) > 0, name
        pd.testing.assert_frame_equal(b, a, check_exact=False, rtol=1e-9, obj=name)
    results = ad.read_h5ad(got / "results.h5ad")
    steps = results.uns["noa_pipeline"]
    assert steps["annotate"]["gene_symbols"] == "feature_name" and steps["score"]["gene_symbols"] == "feature_name"
    assert steps["prepare"]["counts_from"] == "adata.raw.X"
    assert (results.obs["noa_cell_type"].astype(str) != "other").mean() > 0.5


def test_cli_score_gene_symbols_and_raw_layer(tmp_path, atlas_files):
    sym_path, cxg_path = atlas_files
    runner = CliRunner()
    a, b = tmp_path / "a.h5ad", tmp_path / "b.h5ad"
    for args in (["score", sym_path, "--out", a, "--layer", "counts"],
                 ["score", cxg_path, "--out", b, "--layer", "raw", "--gene-symbols", "feature_name"]):
        result = runner.invoke(app, [str(x) for x in args], catch_exceptions=False)
        assert result.exit_code == 0, result.output
    sa, sb = ad.read_h5ad(a).obsm["noa_score_genes"], ad.read_h5ad(b).obsm["noa_score_genes"]
    assert sa.shape[1] > 20
    np.testing.assert_allclose(sb.to_numpy(), sa.to_numpy())
    bad = runner.invoke(app, ["score", str(cxg_path), "--out", str(tmp_path / "c.h5ad"), "--gene-symbols", "nope"])
    assert bad.exit_code != 0 and "--gene-symbols 'nope'" in bad.output and not (tmp_path / "c.h5ad").exists()


def test_config_checks_counts_layer_raw_and_gene_symbols(atlas_files):
    from noa_omics.pipeline import ConfigError, config_from_dict, validate_inputs

    sym_path, cxg_path = atlas_files
    base = {"path": str(cxg_path), "sample_key": "donor_id", "counts_layer": "raw", "gene_symbols": "feature_name"}
    validate_inputs(config_from_dict({"singlecell": base}))
    with pytest.raises(ConfigError, match=r"layer 'counts'.*use counts_layer: raw for adata.raw.X"):
        validate_inputs(config_from_dict({"singlecell": {**base, "counts_layer": "counts"}}))
    with pytest.raises(ConfigError, match=r"'nope' \(singlecell.gene_symbols\) not found.*feature_name"):
        validate_inputs(config_from_dict({"singlecell": {**base, "gene_symbols": "nope"}}))
    with pytest.raises(ConfigError, match=r"layer 'raw'.*the file has no raw"):
        validate_inputs(config_from_dict({"singlecell": {"path": str(sym_path), "sample_key": "donor",
                                                         "counts_layer": "raw"}}))
