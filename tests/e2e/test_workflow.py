"""The Snakemake workflow runs for real on the demo data and matches the command line."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from noa_omics.cli import app

from .conftest import REPO

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(importlib.util.find_spec("snakemake") is None,
                       reason="snakemake is not installed (pip install -e '.[test]')"),
]

SNAKEFILE = REPO / "workflows" / "Snakefile"


def _small_config(tmp_path: Path, output: Path) -> Path:
    data = yaml.safe_load((REPO / "workflows" / "config.example.yaml").read_text())
    data["output"] = str(output)
    data["demo"].update({"n_cells": 600, "sections": 1, "n_tubules": 12})
    data["enrichment"]["permutations"] = 20
    data["steps"]["embedding"] = False  # UMAP is tested by the CLI demo; keep this test short
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _snakemake(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "snakemake", "-s", str(SNAKEFILE), *args],
                          cwd=cwd, capture_output=True, text=True, timeout=900)


def test_workflow_runs_and_matches_the_cli(tmp_path):
    out = tmp_path / "wf-results"
    config = _small_config(tmp_path, out)
    dry = _snakemake("--configfile", str(config), "--cores", "2", "-n", cwd=tmp_path)
    assert dry.returncode == 0, dry.stderr[-3000:]
    for rule in ("load", "annotate", "score", "profile", "spatial", "multihit", "report"):
        assert rule in dry.stdout + dry.stderr

    proc = _snakemake("--configfile", str(config), "--cores", "2", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-5000:]
    for name in ("results.h5ad", "spatial.h5ad", "report.html", "manifest.json"):
        assert (out / name).is_file()
    # the workflow's temp() files (intermediate AnnData under work/) were planned and are removed
    from noa_omics.pipeline import config_from_dict, enabled_stages, stage_outputs

    cfg = config_from_dict(yaml.safe_load(config.read_text()))
    temporary = [out / f for st in enabled_stages(cfg) for f in stage_outputs(st.name, cfg) if f.startswith("work/")]
    assert any(f.suffix == ".h5ad" for f in temporary), temporary  # the check below is not vacuous
    assert [str(f) for f in temporary if f.exists()] == []
    assert list(out.rglob("work/*.h5ad")) == []

    # the command line on the same config writes the same tables and figures
    cli_out = tmp_path / "cli-results"
    result = CliRunner().invoke(app, ["run", str(config), "--out", str(cli_out)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    wf_tables = sorted(p.name for p in (out / "tables").glob("*.csv"))
    assert wf_tables == sorted(p.name for p in (cli_out / "tables").glob("*.csv"))
    assert len(wf_tables) >= 8
    for name in wf_tables:
        a = pd.read_csv(out / "tables" / name)
        b = pd.read_csv(cli_out / "tables" / name)
        pd.testing.assert_frame_equal(a, b, check_exact=False, rtol=1e-9, obj=name)
    assert sorted(p.name for p in (out / "figures").glob("*.png")) == sorted(
        p.name for p in (cli_out / "figures").glob("*.png"))


def test_workflow_rejects_a_bad_config(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"output": str(tmp_path / "o"), "demo": {"n_cells": 600}, "colour": "red"}))
    proc = _snakemake("--configfile", str(bad), "--cores", "1", "-n", cwd=tmp_path)
    assert proc.returncode != 0
    assert "colour" in proc.stdout + proc.stderr
    assert not (tmp_path / "o").exists()
