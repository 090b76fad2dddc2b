"""Atomic file writes shared by every module that writes files (gene-set export, results, report).

A file is written to a temporary file in the destination folder and moved into place with
:func:`os.replace` (atomic on POSIX when both are on one file system), so a reader never sees a
half-written file and an interrupted write leaves the previous file, or nothing, behind.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path


def _tmp_path(path: Path) -> Path:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.tmp-", dir=path.parent)
    os.close(fd)
    return Path(tmp)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str], *, create_parent: bool = True) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; move it onto ``path`` on success.

    The caller writes the complete file to the yielded path (any writer that takes a path:
    ``AnnData.write_h5ad``, ``Figure.savefig``, ...). On an exception the temporary file is
    removed and ``path`` is left untouched. With ``create_parent=False`` a missing destination
    folder is an error instead of being created.
    """
    path = Path(path)
    if create_parent:
        path.parent.mkdir(parents=True, exist_ok=True)
    elif not path.parent.exists():
        raise FileNotFoundError(f"folder {str(path.parent)!r} does not exist; create it first.")
    tmp = _tmp_path(path)
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


def write_bytes(path: str | os.PathLike[str], data: bytes, *, create_parent: bool = True) -> Path:
    """Write ``data`` to ``path`` atomically (flushed and fsynced before the rename)."""
    with atomic_path(path, create_parent=create_parent) as tmp:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
    return Path(path)


def write_text(path: str | os.PathLike[str], text: str, *, create_parent: bool = True) -> Path:
    """Write UTF-8 ``text`` to ``path`` atomically."""
    return write_bytes(path, text.encode("utf-8"), create_parent=create_parent)
