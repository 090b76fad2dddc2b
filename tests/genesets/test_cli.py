"""``noa-omics genesets`` command line."""

from __future__ import annotations

import pandas as pd
import pytest
from typer.testing import CliRunner

from noa_omics.cli._genesets import app
from noa_omics.genesets import read_gmt

try:
    runner = CliRunner(mix_stderr=False)
except TypeError:  # click >= 8.2 always keeps stderr apart
    runner = CliRunner()


def test_list(human):
    result = runner.invoke(app, ["list"])
    assert result.exit_code == 0, result.output
    for name in human.names:
        assert name in result.stdout
    assert human.version in result.stdout


def test_list_category_mouse():
    result = runner.invoke(app, ["list", "--species", "mouse", "--category", "marker"])
    assert result.exit_code == 0
    assert "marker_sertoli" in result.stdout and "apoptosis_intrinsic" not in result.stdout


def test_show_mouse():
    result = runner.invoke(app, ["show", "genetic_azf", "--species", "mouse"])
    assert result.exit_code == 0
    assert "Usp9y" in result.stdout and "DAZ1" in result.stdout  # kept and dropped genes


def test_show_unknown_name_one_line_exit_1():
    result = runner.invoke(app, ["show", "apoptosis_everything"])
    assert result.exit_code == 1
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "apoptosis_everything" in lines[0] and "Traceback" not in result.stderr


@pytest.mark.parametrize("species", ["human", "mouse"])
def test_export_gmt(tmp_path, species):
    from noa_omics.genesets import load

    out = tmp_path / "lib.gmt"
    result = runner.invoke(app, ["export", "--format", "gmt", "--species", species, "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert read_gmt(out).to_dict() == load(species).to_dict()
    assert [p.name for p in tmp_path.iterdir()] == ["lib.gmt"]  # no temp file left


def test_export_network(tmp_path, human):
    out = tmp_path / "net.tsv"
    result = runner.invoke(app, ["export", "--format", "network", "--out", str(out)])
    assert result.exit_code == 0
    net = pd.read_csv(out, sep="\t")
    pd.testing.assert_frame_equal(net, human.to_network())


def test_export_bad_folder_writes_nothing(tmp_path):
    out = tmp_path / "missing" / "x.gmt"
    result = runner.invoke(app, ["export", "--out", str(out)])
    assert result.exit_code == 1
    assert "does not exist" in result.stderr and not out.exists()


def test_bad_format_rejected(tmp_path):
    result = runner.invoke(app, ["export", "--format", "xlsx", "--out", str(tmp_path / "x")])
    assert result.exit_code != 0
    assert not (tmp_path / "x").exists()


def test_mounted_on_main_app():
    from noa_omics.cli import app as main_app

    result = runner.invoke(main_app, ["genesets", "show", "marker_sertoli"])
    assert result.exit_code == 0 and "SOX9" in result.stdout
