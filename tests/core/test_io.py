"""The one atomic writer: umask-honouring permissions, one "not writable" message (issue 17 items 1, 4)."""

from __future__ import annotations

import os
import stat
import tempfile

import pytest

from noa_omics import _io
from noa_omics.pipeline import _io as pipeline_io


@pytest.fixture
def umask():
    """Set a umask for one test and restore the previous one."""
    previous = os.umask(0o022)
    os.umask(previous)

    def set_mask(mask: int) -> None:
        os.umask(mask)

    yield set_mask
    os.umask(previous)


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.mark.parametrize(("mask", "file_mode", "dir_mode"), [(0o022, 0o644, 0o755), (0o077, 0o600, 0o700),
                                                            (0o002, 0o664, 0o775)])
def test_files_and_folders_get_the_umask_permissions(tmp_path, umask, mask, file_mode, dir_mode):
    umask(mask)
    target = _io.write_text(tmp_path / "report.html", "<html></html>")
    assert _mode(target) == file_mode  # mkstemp alone gives 0600 whatever the umask
    with pipeline_io.staged_directory(tmp_path / "results") as stage:
        pipeline_io.write_csv(stage / "tables" / "t.csv", __import__("pandas").DataFrame({"a": [1]}))
        (stage / pipeline_io.MANIFEST_NAME).write_text("{}")
    assert _mode(tmp_path / "results") == dir_mode  # mkdtemp alone gives 0700
    assert _mode(tmp_path / "results" / "tables") == dir_mode
    assert _mode(tmp_path / "results" / "tables" / "t.csv") == file_mode


def test_umask_is_left_as_it_was(umask):
    umask(0o027)
    assert _io.default_mode() == 0o640 and _io.default_mode(directory=True) == 0o750
    assert _io.current_umask() == 0o027


def _refuse_temp_files(monkeypatch):
    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied", os.path.join(kwargs.get("dir", "."), ".x.gmt.tmp-8z9fgfm6"))

    monkeypatch.setattr(tempfile, "mkstemp", refuse)
    monkeypatch.setattr(tempfile, "mkdtemp", refuse)


def test_read_only_folder_gives_one_message_without_the_temp_name(tmp_path, monkeypatch):
    # running as root, a chmod-ed folder stays writable: simulate the refusal where it happens
    _refuse_temp_files(monkeypatch)
    with pytest.raises(PermissionError) as info:
        _io.write_text(tmp_path / "x.gmt", "a\n")
    message = str(info.value)
    assert f"directory {str(tmp_path)!r} is not writable" in message
    assert "x.gmt" in message and ".tmp-" not in message
    with pytest.raises(PermissionError) as info_dir:
        with pipeline_io.staged_directory(tmp_path / "results"):
            pass
    # the same sentence as check_writable_dir (score, report) and the file writer
    assert "is not writable; choose another output location." in str(info_dir.value)
    assert str(pipeline_io.not_writable_error("a", "b")) == str(_io.not_writable_error("a", "b"))
    assert not list(tmp_path.iterdir())
