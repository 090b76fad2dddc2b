"""The ``noa-omics`` command: demo outputs, bad input, atomic outputs, score, report."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from noa_omics.cli import app
from noa_omics.pipeline import _io

from .conftest import DEMO_ARGS, REPO, chromium_binary, png_is_blank, shared_once

pytestmark = pytest.mark.slow

runner = CliRunner()
NETWORK_REF = re.compile(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", re.IGNORECASE)


def _invoke(*args: str):
    return runner.invoke(app, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture(scope="session")
def demo_dir(tmp_path_factory) -> Path:
    """One small demo run shared by all tests (and xdist workers) that read its outputs."""

    def build(out: Path) -> None:
        result = _invoke("demo", "--out", out, *DEMO_ARGS)
        assert result.exit_code == 0, result.output

    return shared_once(tmp_path_factory, "noa-demo", build)


# --------------------------------------------------------------------------------------------
# demo


def test_demo_writes_every_output(demo_dir):
    for name in ("results.h5ad", "spatial.h5ad", "report.html", "manifest.json"):
        assert (demo_dir / name).is_file(), name
    tables = {p.stem for p in (demo_dir / "tables").glob("*.csv")}
    assert {"cell_type_counts", "cell_type_scores", "apoptosis_profile", "condition_effects", "enrichment",
            "tubule_metrics", "niche_summary", "multihit", "annotation_confusion", "composition"} <= tables
    figures = {p.stem for p in (demo_dir / "figures").glob("*.png")}
    assert {"annotation_embedding", "celltype_heatmap", "donor_scores", "forest", "tubules",
            "multihit_heatmap", "composition"} <= figures
    assert not (demo_dir / "work").exists()  # intermediates stay in memory on the command line
    leftovers = [p.name for p in demo_dir.parent.iterdir() if p.name.startswith("noa-demo.tmp-")]
    assert leftovers == []


def test_demo_results_content(demo_dir):
    adata = ad.read_h5ad(demo_dir / "results.h5ad")
    assert adata.n_obs == 1000
    assert "noa_score_genes" in adata.obsm and "X_umap" in adata.obsm
    assert {"noa_cell_type", "noa_cell_class"} <= set(adata.obs.columns)
    assert "counts" in adata.layers
    # X is log-normalised counts: log1p(1e4 * counts / library size)
    counts = adata.layers["counts"][:5].toarray()
    expected = np.log1p(1e4 * counts / counts.sum(axis=1, keepdims=True))
    np.testing.assert_allclose(adata.X[:5].toarray(), expected, rtol=1e-4, atol=1e-5)
    multihit = pd.read_csv(demo_dir / "tables" / "multihit.csv")
    assert multihit.shape[0] == adata.obs["sample"].nunique()
    assert "apoptosis_context" in multihit.columns
    assert {"context_stability", "unstable", "germ_apoptosis_low", "germ_apoptosis_high"} <= set(multihit.columns)
    composition = pd.read_csv(demo_dir / "tables" / "composition.csv")
    assert set(composition["level"]) == {"broad", "fine", "germ_stage"}
    assert {"cell_type", "n_samples", "n_reference_samples", "effect", "ci_low", "ci_high", "qvalue"} <= set(
        composition.columns)
    effects = pd.read_csv(demo_dir / "tables" / "condition_effects.csv")
    assert {"condition", "effect", "ci_low", "ci_high", "pvalue", "qvalue"} <= set(effects.columns)
    assert "control" not in set(effects["condition"])  # the reference is not compared with itself


def test_demo_manifest_checksums_and_parameters(demo_dir):
    manifest = json.loads((demo_dir / "manifest.json").read_text())
    assert manifest["parameters"]["demo"]["n_cells"] == 1000
    assert manifest["parameters"]["seed"] == 0
    paths = {f["path"] for f in manifest["files"]}
    assert {"results.h5ad", "report.html", "tables/multihit.csv", "figures/forest.png"} <= paths
    for record in manifest["files"]:
        assert _io.sha256sum(demo_dir / record["path"]) == record["sha256"], record["path"]
    assert manifest["provenance"]["genesets"][0]["version"]
    assert manifest["provenance"]["packages"]["scanpy"]


def test_demo_report_has_figures_tables_provenance(demo_dir):
    html = (demo_dir / "report.html").read_text()
    n_img = len(re.findall(r'<img [^>]*src="data:image/png;base64,', html))
    assert n_img >= 6
    assert n_img == len(list((demo_dir / "figures").glob("*.png")))
    assert not NETWORK_REF.search(html)
    assert "<table" in html and 'id="provenance"' in html
    manifest = json.loads((demo_dir / "manifest.json").read_text())
    assert manifest["provenance"]["genesets"][0]["version"] in html


def test_report_command_rerenders(demo_dir, tmp_path):
    out = tmp_path / "again.html"
    result = _invoke("report", demo_dir, "--out", out)
    assert result.exit_code == 0, result.output
    html = out.read_text()
    assert len(re.findall(r"<img ", html)) == len(list((demo_dir / "figures").glob("*.png")))
    assert "Output files" in html  # the final manifest lists the files and checksums


@pytest.mark.skipif(chromium_binary() is None, reason="chromium is not installed (CI installs it via apt)")
def test_demo_report_in_chromium(demo_dir, tmp_path):
    png = tmp_path / "demo.png"
    cmd = [chromium_binary(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           "--disable-dev-shm-usage", f"--user-data-dir={tmp_path / 'profile'}", f"--screenshot={png}",
           "--window-size=1280,2000", (demo_dir / "report.html").resolve().as_uri()]
    subprocess.run(cmd, check=False, capture_output=True, timeout=120)
    assert png.is_file() and not png_is_blank(png)


# --------------------------------------------------------------------------------------------
# bad input: one line on stderr, non-zero exit, no traceback, no output


def _assert_clean_failure(result, out: Path, *, contains: str) -> None:
    assert result.exit_code in (1, 2), result.output
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("noa-omics: error: ")
    assert contains in lines[0]
    assert "Traceback" not in result.output
    assert not out.exists()
    parent = out.parent
    if parent.exists():
        assert not [p for p in parent.iterdir() if ".tmp-" in p.name]


def _config(tmp_path: Path, h5ad: Path, out: Path, **singlecell) -> Path:
    section = {"path": str(h5ad), "sample_key": "sample", "condition_key": "condition", "reference": "control"}
    section.update(singlecell)
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump({"output": str(out), "singlecell": section}))
    return path


def test_missing_file(tmp_path):
    out = tmp_path / "scored.h5ad"
    result = _invoke("score", tmp_path / "nope.h5ad", "--out", out)
    _assert_clean_failure(result, out, contains="not found")


def test_not_an_h5ad(tmp_path):
    fake = tmp_path / "counts.h5ad"
    fake.write_text("gene,cell1\nTP53,3\n")
    out = tmp_path / "scored.h5ad"
    _assert_clean_failure(_invoke("score", fake, "--out", out), out, contains="not an .h5ad")


def test_missing_column(tmp_path, small_h5ad):
    out = tmp_path / "results"
    cfg = _config(tmp_path, small_h5ad, out, sample_key="patient_id")
    _assert_clean_failure(_invoke("run", cfg), out, contains="'patient_id'")


def test_unknown_reference(tmp_path, small_h5ad):
    out = tmp_path / "results"
    cfg = _config(tmp_path, small_h5ad, out, reference="healthy")
    _assert_clean_failure(_invoke("run", cfg), out, contains="reference condition 'healthy'")


def test_unknown_config_key(tmp_path, small_h5ad):
    out = tmp_path / "results"
    cfg = _config(tmp_path, small_h5ad, out, sample="x")
    _assert_clean_failure(_invoke("run", cfg), out, contains="unknown key 'sample'")


def test_unwritable_output(tmp_path, small_h5ad):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    out = blocker / "scored.h5ad"
    result = _invoke("score", small_h5ad, "--out", out)
    assert result.exit_code in (1, 2)
    assert len(result.stderr.strip().splitlines()) == 1 and "not a directory" in result.stderr
    assert blocker.read_text() == "not a directory"
    out_dir = blocker / "results"
    result = _invoke("demo", "--out", out_dir, "--quick")
    assert result.exit_code in (1, 2) and len(result.stderr.strip().splitlines()) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file"]


def test_unknown_method_and_species(tmp_path, small_h5ad):
    out = tmp_path / "scored.h5ad"
    _assert_clean_failure(_invoke("score", small_h5ad, "--out", out, "--method", "gsva"), out,
                          contains="unknown scoring method 'gsva'")
    _assert_clean_failure(_invoke("score", small_h5ad, "--out", out, "--species", "rat"), out,
                          contains="unknown species 'rat'")


def test_verbose_shows_traceback(tmp_path):
    result = _invoke("score", tmp_path / "nope.h5ad", "--out", tmp_path / "o.h5ad", "--verbose")
    assert result.exit_code == 2
    assert "Traceback" in result.stderr and "noa-omics: error:" in result.stderr


def test_error_from_installed_entry_point(tmp_path):
    """The real console script: exit code and a single stderr line, outside CliRunner."""
    out = tmp_path / "o.h5ad"
    proc = subprocess.run([sys.executable, "-m", "noa_omics.cli", "score", str(tmp_path / "x.h5ad"),
                           "--out", str(out)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and proc.stderr.startswith("noa-omics: error:")
    assert not out.exists()


# --------------------------------------------------------------------------------------------
# interrupted runs leave no partial output


def test_sigkill_mid_run_leaves_no_results_dir(tmp_path):
    out = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "-m", "noa_omics.cli", "demo", "--out", str(out), "--quick",
                             "--n-cells", "600"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 240
        staged = []
        while time.monotonic() < deadline and proc.poll() is None:
            staged = [p for p in tmp_path.glob("killed.tmp-*") if (p / "tables").is_dir()]
            if staged:
                break
            time.sleep(0.05)
        assert staged, "the run never reached its first table"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL
    assert not out.exists()  # only the hidden staging directory can remain after SIGKILL
    assert not any((p / _io.MANIFEST_NAME).exists() for p in tmp_path.iterdir())


def test_writer_failure_mid_run_cleans_up(tmp_path, monkeypatch):
    import noa_omics.pipeline._stages as stages

    real = stages._io.write_h5ad

    def crash_mid_write(path, adata):
        if Path(path).name == "results.h5ad":
            with _io.atomic_path(path) as tmp:
                tmp.write_bytes(b"\x89HDF partial")
                raise OSError(28, "No space left on device")
        return real(path, adata)

    monkeypatch.setattr(stages._io, "write_h5ad", crash_mid_write)
    out = tmp_path / "results"
    result = _invoke("demo", "--out", out, "--quick", "--n-cells", "400")
    assert result.exit_code == 2
    assert "No space left on device" in result.stderr
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------------------------
# score


def test_score_command_matches_the_python_api(tmp_path, small_h5ad):
    import noa_omics as noa
    from noa_omics.pipeline import steps

    out = tmp_path / "scored.h5ad"
    result = _invoke("score", small_h5ad, "--out", out, "--method", "score_genes", "--method", "zmean")
    assert result.exit_code == 0, result.output
    assert "after log-normalising counts" in result.stdout
    scored = ad.read_h5ad(out)
    ref = steps.prepare_expression(ad.read_h5ad(small_h5ad))
    expected = noa.tl.score(ref, method="zmean", species="human")
    pd.testing.assert_frame_equal(pd.DataFrame(scored.obsm["noa_zmean"]), expected, check_dtype=False,
                                  check_names=False, rtol=1e-6)
    assert "noa_score_genes" in scored.obsm
    assert [p.name for p in tmp_path.iterdir()] == ["scored.h5ad"]


def test_score_command_with_gmt(tmp_path, small_h5ad):
    gmt = tmp_path / "sets.gmt"
    gmt.write_text("my_apoptosis\tdesc\tBAX\tBAK1\tCASP3\tCASP9\tBCL2\tFAS\n")
    out = tmp_path / "scored.h5ad"
    result = _invoke("score", small_h5ad, "--out", out, "--genesets", gmt, "--method", "ucell")
    assert result.exit_code == 0, result.output
    scores = ad.read_h5ad(out).obsm["noa_ucell"]
    assert list(scores.columns) == ["my_apoptosis"]
    assert ((scores.to_numpy() >= 0) & (scores.to_numpy() <= 1)).all()


def test_version():
    result = _invoke("--version")
    assert result.exit_code == 0 and result.stdout.startswith("noa-omics ")


def test_readme_starts_with_the_two_setup_commands():
    text = (REPO / "README.md").read_text()
    block = re.search(r"```(?:bash|sh|console)?\n(.*?)```", text, re.S).group(1).strip().splitlines()
    assert block == ['pip install . && noa-omics demo --out noa-demo',
                     'pip install -e ".[test]" && python -m pytest -n 2 tests']
    assert 'pip install -e ".[test]" && python -m pytest -n 2 tests' in (REPO / ".ci" / "run").read_text()


# --------------------------------------------------------------------------------------------
# run on the user's own files


def test_run_on_own_files(tmp_path, small_h5ad):
    import noa_omics as noa

    spatial_path = tmp_path / "section.h5ad"
    noa.datasets.demo_spatial(seed=2, n_tubules=12).write_h5ad(spatial_path)
    out = tmp_path / "own-results"
    config = {
        "output": str(out),
        "species": "human",
        "singlecell": {"path": str(small_h5ad), "counts_layer": "counts", "sample_key": "sample",
                       "condition_key": "condition", "reference": "control", "cell_type_key": "truth_cell_type"},
        "spatial": {"path": str(spatial_path), "sample_key": "sample", "cell_type_key": "noa_cell_type"},
        "scoring": {"methods": ["score_genes", "zmean"]},
        "steps": {"embedding": False, "enrichment": False, "multihit": True},
    }
    path = tmp_path / "own.yaml"
    path.write_text(yaml.safe_dump(config))
    result = _invoke("run", path)
    assert result.exit_code == 0, result.output
    manifest = json.loads((out / "manifest.json").read_text())
    inputs = {Path(i["path"]).name: i["sha256"] for i in manifest["inputs"]}
    assert inputs == {"small.h5ad": _io.sha256sum(small_h5ad), "section.h5ad": _io.sha256sum(spatial_path)}
    adata = ad.read_h5ad(out / "results.h5ad")
    # given labels are harmonised, not re-annotated
    assert (adata.obs["noa_cell_type"].astype(str) == adata.obs["truth_cell_type"].astype(str)).all()
    assert {"noa_score_genes", "noa_zmean"} <= set(adata.obsm)
    assert set(pd.read_csv(out / "tables" / "cell_type_scores.csv")["method"]) == {"score_genes", "zmean"}
    assert not (out / "tables" / "enrichment.csv").exists()
    assert (out / "figures" / "tubules.png").is_file()
    assert len(re.findall(r"<img ", (out / "report.html").read_text())) >= 6


def test_run_report_and_report_command_have_the_same_output_files(demo_dir, tmp_path):
    """The report written by demo/run lists the output files as `noa-omics report` does (issue 17 item 19)."""
    out = tmp_path / "again.html"
    assert _invoke("report", demo_dir, "--out", out).exit_code == 0

    def files_section(html: str) -> str:
        start = html.index("<h3>Output files</h3>")
        return html[start:html.index("</table>", start)]

    assert files_section((demo_dir / "report.html").read_text()) == files_section(out.read_text())
    html = (demo_dir / "report.html").read_text()
    assert html.index('id="donors"') < html.index('id="figures"')  # findings first


def test_results_are_readable_by_colleagues(demo_dir):
    """Files 0644 and folders 0755 under umask 022 (issue 17 item 1), not mkstemp's 0600."""
    import stat

    mask = os.umask(0o022)
    os.umask(mask)
    assert stat.S_IMODE(demo_dir.stat().st_mode) == 0o777 & ~mask
    for name in ("report.html", "manifest.json", "tables/multihit.csv", "figures/forest.png"):
        assert stat.S_IMODE((demo_dir / name).stat().st_mode) == 0o666 & ~mask, name
