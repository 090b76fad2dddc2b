"""Atomic writes (``noa_omics._io`` and ``noa_omics.pipeline._io.write_h5ad``): a write that crashes
half-way leaves the previous file, or nothing, and no temporary file behind."""

from __future__ import annotations

from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import pytest

from noa_omics import _io
from noa_omics.pipeline import _io as pipeline_io

OLD = b"previous results, must survive a crashed write\n"


class Crash(RuntimeError):
    pass


def _tiny() -> ad.AnnData:
    return ad.AnnData(np.arange(12, dtype=np.float32).reshape(4, 3),
                      obs=pd.DataFrame(index=[f"c{i}" for i in range(4)]),
                      var=pd.DataFrame(index=["A", "B", "C"]))


def _half_write_then_crash(self, filename, *args, **kwargs):
    """Stand-in for AnnData.write_h5ad: writes half a file at the path it is given, then dies."""
    Path(filename).write_bytes(b"\x89HDF\r\n\x1a\n" + b"half-written" * 100)
    raise Crash("disk full half-way")


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name != "out.h5ad")


def test_write_h5ad_crash_keeps_the_previous_file(tmp_path, monkeypatch):
    """Kills a write_h5ad that writes straight to the target: the old file must be intact."""
    target = tmp_path / "out.h5ad"
    target.write_bytes(OLD)
    monkeypatch.setattr(ad.AnnData, "write_h5ad", _half_write_then_crash)
    with pytest.raises(Crash):
        pipeline_io.write_h5ad(target, _tiny())
    assert target.read_bytes() == OLD
    assert _leftovers(tmp_path) == []


def test_write_h5ad_crash_leaves_no_partial_file(tmp_path, monkeypatch):
    target = tmp_path / "out.h5ad"
    monkeypatch.setattr(ad.AnnData, "write_h5ad", _half_write_then_crash)
    with pytest.raises(Crash):
        pipeline_io.write_h5ad(target, _tiny())
    assert not target.exists()
    assert _leftovers(tmp_path) == []


def test_write_h5ad_success_replaces_the_file(tmp_path):
    target = tmp_path / "out.h5ad"
    target.write_bytes(OLD)
    pipeline_io.write_h5ad(target, _tiny())
    back = ad.read_h5ad(target)
    np.testing.assert_array_equal(back.X, _tiny().X)
    assert _leftovers(tmp_path) == []


def test_cli_score_crash_mid_write_keeps_the_previous_output(tmp_path, monkeypatch):
    """The output of ``noa-omics score``: a crash inside the writer leaves the old output as it was."""
    from typer.testing import CliRunner

    from noa_omics.cli import app

    src = tmp_path / "in.h5ad"
    import noa_omics as noa

    noa.datasets.demo_testis(seed=0, n_cells=120).write_h5ad(src)
    target = tmp_path / "out.h5ad"
    target.write_bytes(OLD)
    monkeypatch.setattr(ad.AnnData, "write_h5ad", _half_write_then_crash)
    result = CliRunner().invoke(app, ["score", str(src), "--out", str(target)])
    assert result.exit_code != 0
    assert target.read_bytes() == OLD
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.h5ad", "out.h5ad"]


def test_write_text_crash_mid_write_keeps_the_previous_file(tmp_path, monkeypatch):
    target = tmp_path / "out.h5ad"
    target.write_bytes(OLD)
    real_open = open

    class _Exploding:
        def __init__(self, fh):
            self.fh = fh

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.fh.close()
            return False

        def write(self, data):
            self.fh.write(data[: len(data) // 2])
            raise Crash("killed half-way")

    def fake_open(path, mode="r", *args, **kwargs):
        fh = real_open(path, mode, *args, **kwargs)
        return _Exploding(fh) if "w" in mode else fh

    monkeypatch.setattr("builtins.open", fake_open)
    with pytest.raises(Crash):
        _io.write_text(target, "new content " * 1000)
    monkeypatch.undo()
    assert target.read_bytes() == OLD
    assert _leftovers(tmp_path) == []
