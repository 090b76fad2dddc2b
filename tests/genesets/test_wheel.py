"""The built wheel ships the library and loads it from inside the installed package."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

CHECK = r"""
import json, noa_omics
from noa_omics import genesets
out = {"module": noa_omics.__file__, "data_dir": str(genesets.data_dir())}
for species in ("human", "mouse"):
    gs = genesets.load(species)
    out[species] = [len(gs), gs.version, gs["apoptosis_checkpoint"].genes[0]]
out["n_orthologs"] = len(genesets.orthologs())
print(json.dumps(out))
"""


def test_wheel_ships_and_loads_gene_sets(tmp_path):
    pytest.importorskip("build")
    pytest.importorskip("hatchling")
    dist = tmp_path / "dist"
    subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(dist), str(REPO)],
        check=True, capture_output=True, cwd=tmp_path,
    )
    (wheel,) = dist.glob("noa_omics-*.whl")
    unpacked = tmp_path / "site"
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        zf.extractall(unpacked)
    assert "noa_omics/_library/genesets/library.yaml" in names
    assert "noa_omics/_library/genesets/orthologs_human_mouse.tsv" in names
    assert "noa_omics/_library/genesets/apoptosis_intrinsic.yaml" in names
    for name in ("Snakefile", "config.schema.yaml", "config.example.yaml"):  # the workflow ships too
        assert f"noa_omics/_library/workflows/{name}" in names

    env = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "PYTHONHOME"}}
    env["PYTHONPATH"] = str(unpacked)
    run_dir = tmp_path / "elsewhere"
    run_dir.mkdir()
    result = subprocess.run([sys.executable, "-c", CHECK], capture_output=True, text=True, env=env,
                            cwd=run_dir, check=True)
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert Path(out["module"]).resolve().is_relative_to(unpacked.resolve())
    assert Path(out["data_dir"]).resolve() == (unpacked / "noa_omics" / "_library" / "genesets").resolve()
    assert out["human"][0] == out["mouse"][0] >= 29
    assert out["human"][2] == "TP53" and out["mouse"][2] == "Trp53"
    assert out["n_orthologs"] > 300
