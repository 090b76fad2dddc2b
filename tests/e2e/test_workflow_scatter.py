"""Cluster workflow: one job per sample / section (scatter), then gather; same tables as the CLI."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import yaml
from typer.testing import CliRunner

from noa_omics.cli import app

from .conftest import REPO

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(importlib.util.find_spec("snakemake") is None, reason="snakemake is not installed"),
]

SNAKEFILE = REPO / "workflows" / "Snakefile"


def _snakemake(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    # this checkout's package first (the installed one may point elsewhere)
    path = os.pathsep.join([str(REPO / "src"), os.environ.get("PYTHONPATH", "")])
    return subprocess.run([sys.executable, "-m", "snakemake", "-s", str(SNAKEFILE), *args],
                          cwd=cwd, capture_output=True, text=True, timeout=2400, env={**os.environ, "PYTHONPATH": path})


def _config(tmp_path: Path, out: Path, sc_path: Path, sp_path: Path | None, *, embedding: bool = False) -> Path:
    data = {
        "output": str(out), "seed": 0, "species": "human",
        "singlecell": {"path": str(sc_path), "counts_layer": "counts", "sample_key": "sample",
                       "condition_key": "condition", "reference": "control"},
        "scoring": {"methods": ["score_genes", "zmean"]},
        "steps": {"embedding": embedding, "enrichment": True, "multihit": True},
        "enrichment": {"permutations": 20, "min_size": 5},
    }
    if sp_path is not None:
        data["spatial"] = {"path": str(sp_path), "sample_key": "sample", "cell_type_key": "truth_cell_type",
                           "spatial_key": "spatial"}
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _job_counts(text: str) -> dict[str, int]:
    """Rule -> job count from snakemake's dry-run summary table."""
    counts = {}
    for line in text.splitlines():
        m = re.match(r"^\s*([A-Za-z_]+)\s+(\d+)\s*$", line)
        if m:
            counts[m.group(1)] = int(m.group(2))
    return counts


def test_dry_run_scatters_one_job_per_sample_and_section(tmp_path):
    rng = np.random.default_rng(0)
    n_samples, per = 50, 8
    genes = [f"G{i}" for i in range(30)]
    samples = np.repeat([f"donor {i:02d}" for i in range(n_samples)], per)  # a space: ids are made file-safe
    obs = pd.DataFrame({"sample": samples, "condition": np.where(np.arange(len(samples)) % (2 * per) < per,
                                                                 "control", "NOA")},
                       index=[f"c{i}" for i in range(len(samples))])
    counts = sp.csr_matrix(rng.poisson(1.0, (len(samples), len(genes))).astype(np.float32))
    sc_path = tmp_path / "cohort.h5ad"
    ad.AnnData(X=counts, obs=obs, var=pd.DataFrame(index=genes), layers={"counts": counts}).write_h5ad(sc_path)
    sp_obs = obs.copy()
    sp_obs["truth_cell_type"] = "sertoli"
    sp_path = tmp_path / "sections.h5ad"
    ad.AnnData(X=counts, obs=sp_obs, var=pd.DataFrame(index=genes),
               obsm={"spatial": rng.uniform(0, 100, (len(samples), 2))}).write_h5ad(sp_path)
    config = _config(tmp_path, tmp_path / "out", sc_path, sp_path)
    dry = _snakemake("--configfile", str(config), "--cores", "2", "-n", "--quiet", "rules", cwd=tmp_path)
    assert dry.returncode == 0, dry.stderr[-3000:]
    counts_by_rule = _job_counts(dry.stdout + dry.stderr)
    assert counts_by_rule.get("sample") == n_samples, dry.stdout[-3000:]
    assert counts_by_rule.get("section") == n_samples
    for rule in ("gather_singlecell", "gather_spatial", "profile", "multihit", "report"):
        assert counts_by_rule.get(rule) == 1, (rule, counts_by_rule)
    assert not (tmp_path / "out").exists()  # a dry run writes nothing


@pytest.fixture(scope="module")
def four_samples(tmp_path_factory):
    import noa_omics as noa

    root = tmp_path_factory.mktemp("four")
    keep = ["D01", "D02", "D04", "D06"]  # two controls, Sertoli-cell-only, maturation arrest
    sc_data = noa.datasets.demo_testis(seed=0, n_cells=1300)
    sc_data = sc_data[sc_data.obs["sample"].isin(keep).to_numpy()].copy()
    sc_data.uns = {}
    sc_path = root / "sc.h5ad"
    sc_data.write_h5ad(sc_path)
    sp_data = noa.datasets.demo_spatial(seed=0, sections=2, n_tubules=12)
    sp_path = root / "sp.h5ad"
    sp_data.write_h5ad(sp_path)
    return root, sc_path, sp_path


def test_four_sample_workflow_matches_the_cli(four_samples, tmp_path):
    _, sc_path, sp_path = four_samples
    out = tmp_path / "wf"
    config = _config(tmp_path, out, sc_path, sp_path)
    proc = _snakemake("--configfile", str(config), "--cores", "2", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-5000:]
    log = proc.stdout + proc.stderr
    assert len(re.findall(r"rule sample:", log)) == 4
    assert len(re.findall(r"rule section:", log)) == 2
    assert not list((out / "work").rglob("*.h5ad"))  # per-sample intermediates are temporary

    cli_out = tmp_path / "cli"
    result = CliRunner().invoke(app, ["run", str(config), "--out", str(cli_out)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    names = sorted(p.name for p in (out / "tables").glob("*.csv"))
    assert names == sorted(p.name for p in (cli_out / "tables").glob("*.csv"))
    assert {"apoptosis_profile.csv", "condition_effects.csv", "enrichment.csv", "multihit.csv",
            "tubule_metrics.csv", "niche_summary.csv", "cell_type_scores.csv"} <= set(names)
    for name in names:
        a = pd.read_csv(out / "tables" / name)
        b = pd.read_csv(cli_out / "tables" / name)
        # one donor per case condition here: pseudobulk enrichment needs two, so it may be empty
        assert len(a) or name == "enrichment.csv", name
        pd.testing.assert_frame_equal(a, b, check_exact=False, rtol=1e-9, obj=name)
    wf = ad.read_h5ad(out / "results.h5ad")
    cli = ad.read_h5ad(cli_out / "results.h5ad")
    assert list(wf.obs_names) == list(ad.read_h5ad(sc_path, backed="r").obs_names)  # input order kept
    assert (wf.obs["noa_cell_type"].astype(str) == cli.obs["noa_cell_type"].astype(str)).all()
    for key in ("noa_score_genes", "noa_zmean"):
        np.testing.assert_allclose(np.asarray(wf.obsm[key]), np.asarray(cli.obsm[key]), rtol=1e-6)
    per_sample = wf.uns["noa_pipeline"]["score"]["scored_per_sample"]
    assert "score_genes" not in list(per_sample) and "zmean" not in list(per_sample)  # pooled methods


def test_per_sample_scores_are_the_samples_own(four_samples):
    """ucell per sample equals scoring that sample alone; score_genes and zmean are pooled over all
    cells (one set of control genes and gene scales for every donor)."""
    from noa_omics import tl
    from noa_omics.pipeline import config_from_dict, scatter

    _, sc_path, _ = four_samples
    cfg = config_from_dict({"output": "x", "singlecell": {"path": str(sc_path)},
                            "scoring": {"methods": ["ucell", "score_genes", "zmean"]}})
    one = scatter.score_sample(scatter.load_sample(cfg, "D04"), cfg)
    alone = tl.score(ad.AnnData(X=one.X, var=one.var), method="ucell", species="human", inplace=False)
    np.testing.assert_allclose(one.obsm["noa_ucell"].to_numpy(), alone.to_numpy(), rtol=1e-6)
    assert "noa_zmean" not in one.obsm and "noa_score_genes" not in one.obsm  # pooled: the gather step
    parts = [scatter.score_sample(scatter.load_sample(cfg, s), cfg) for s in scatter.singlecell_samples(cfg)]
    gathered = scatter.gather_samples(parts, cfg, order=scatter.input_order(cfg), dtypes=scatter.input_dtypes(cfg))
    full = ad.read_h5ad(sc_path)
    for column in ("sample", "condition"):  # the file's categories, not the per-sample subsets'
        assert list(gathered.obs[column].cat.categories) == list(full.obs[column].cat.categories)
    for method in ("zmean", "score_genes"):
        pooled = tl.score(ad.AnnData(X=gathered.X, var=gathered.var), method=method, species="human", inplace=False)
        np.testing.assert_allclose(gathered.obsm[f"noa_{method}"].to_numpy(), pooled.to_numpy(), rtol=1e-6)
    with pytest.raises(ValueError, match="not found"):
        scatter.load_sample(cfg, "no-such-sample")
