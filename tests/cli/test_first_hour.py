"""The command line of a new user's first hour (issue 17 items 2-6): one error line, stdout
export, demo sizes, readable help, the workflow shipped with the package."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

from noa_omics.cli import app
from noa_omics.cli._errors import cli_wording

REPO = Path(__file__).resolve().parents[2]
runner = CliRunner()


def _invoke(*args):
    return runner.invoke(app, [str(a) for a in args], catch_exceptions=False)


def _one_error_line(result, *, contains: str = "") -> str:
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("noa-omics: error: "), lines[0]
    assert "╭" not in result.output and "Usage:" not in result.stderr
    assert contains in lines[0], lines[0]
    return lines[0]


@pytest.mark.parametrize("n_cells", ["0", "-5", "50"])
def test_demo_refuses_zero_negative_and_tiny_cohorts(tmp_path, n_cells):
    out = tmp_path / "demo"
    result = _invoke("demo", "--out", out, "--n-cells", n_cells)
    assert result.exit_code == 2
    _one_error_line(result, contains=f"--n-cells must be at least 200")
    assert not out.exists()


def test_demo_config_uses_the_default_only_for_none(tmp_path):
    from noa_omics.pipeline import ConfigError, demo_config

    assert demo_config(tmp_path / "a").demo.n_cells == 4000
    assert demo_config(tmp_path / "a", quick=True).demo.n_cells == 1500
    with pytest.raises(ConfigError, match="demo.n_cells is 0; use at least 200"):
        demo_config(tmp_path / "a", n_cells=0)  # `n_cells or 4000` silently ran 4000 cells


def test_export_to_stdout(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = _invoke("genesets", "export", "-o", "-")
    assert result.exit_code == 0, result.output
    first = result.stdout.splitlines()[0].split("\t")
    assert first[0] == "apoptosis_intrinsic" and len(first) > 5
    assert "wrote 29 gene sets" not in result.stdout  # the status line goes to stderr
    assert not (tmp_path / "-").exists()
    net = _invoke("genesets", "export", "--format", "network", "-o", "-")
    assert net.stdout.startswith("source\ttarget\tweight")


def test_export_to_read_only_folder_names_the_folder_not_the_temp_file(tmp_path, monkeypatch):
    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied", str(tmp_path / ".x.gmt.tmp-8z9fgfm6"))

    monkeypatch.setattr(tempfile, "mkstemp", refuse)
    result = _invoke("genesets", "export", "-o", tmp_path / "x.gmt")
    line = _one_error_line(result, contains=f"directory {str(tmp_path)!r} is not writable")
    assert ".tmp-" not in line


@pytest.mark.parametrize(
    ("args", "contains"),
    [
        (["genesets", "export", "--format", "csv", "-o", "x"], "'csv' is not one of 'gmt', 'network'"),
        (["demo"], "Missing option '--out'"),
        (["score", "a.h5ad", "--bogus"], "No such option: --bogus"),
        (["frobnicate"], "No such command 'frobnicate'"),
    ],
)
def test_usage_errors_are_one_line(tmp_path, monkeypatch, args, contains):
    monkeypatch.chdir(tmp_path)
    result = _invoke(*args)
    assert result.exit_code == 2
    _one_error_line(result, contains=contains)
    assert not (tmp_path / "x").exists()


def test_usage_error_from_the_installed_entry_point(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "noa_omics.cli", "genesets", "export", "--format", "csv",
                           "-o", str(tmp_path / "x")], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(REPO / "src")})
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("noa-omics: error: ")


def test_messages_use_command_line_options_not_python_syntax():
    assert cli_wording("pass species='human' or 'mouse', or gene_sets=.") == \
        "pass --species human or --species mouse, or --genesets ."
    assert cli_wording("pass species='human' or species='mouse'.") == "pass --species human or --species mouse."
    assert cli_wording("pass species='mouse' (or leave species=None to detect it)") == \
        "pass --species mouse (or leave --species None to detect it)"


@pytest.mark.parametrize("command", [[], ["demo"], ["score"], ["genesets", "export"], ["workflow", "init"]])
def test_help_has_no_bool_placeholders(command):
    result = _invoke(*command, "--help")
    assert result.exit_code == 0
    assert "<bool>" not in result.output and "╭" not in result.output
    assert "--help" in result.output


def test_workflow_init_copies_the_shipped_workflow(tmp_path):
    dest = tmp_path / "wf"
    result = _invoke("workflow", "init", dest)
    assert result.exit_code == 0, result.output
    for name in ("Snakefile", "config.schema.yaml", "config.example.yaml"):
        assert (dest / name).read_bytes() == (REPO / "workflows" / name).read_bytes()
    again = _invoke("workflow", "init", dest)
    assert again.exit_code == 2
    _one_error_line(again, contains="already holds Snakefile")
    assert _invoke("workflow", "init", dest, "--force").exit_code == 0


def test_run_help_points_to_workflow_init():
    assert "noa-omics workflow init" in _invoke("run", "--help").output


def test_readme_names_the_workflow_extra_and_init():
    readme = (REPO / "README.md").read_text()
    assert "noa-omics[workflow]" in readme and "noa-omics workflow init" in readme
    pyproject = (REPO / "pyproject.toml").read_text()
    assert 'workflow = [\n  "snakemake' in pyproject
    assert '"workflows" = "noa_omics/_library/workflows"' in pyproject
