"""Atomic file writes shared by every module that writes files (gene-set export, results, report).

A file is written to a temporary file in the destination folder and moved into place with
:func:`os.replace` (atomic on POSIX when both are on one file system), so a reader never sees a
half-written file and an interrupted write leaves the previous file, or nothing, behind.

:func:`tempfile.mkstemp` and :func:`tempfile.mkdtemp` create private files (0600) and folders
(0700) whatever the umask; the writer gives them the permissions an ordinary ``open``/``mkdir``
would have given (0644 / 0755 under the usual umask 022), so colleagues on a shared cluster or a
web server can read a report, as they could read any other file the user writes.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path


def current_umask() -> int:
    """The process umask (read by setting and restoring it; :mod:`os` has no getter)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def default_mode(*, directory: bool = False) -> int:
    """Permission bits of a new file (``0o666``) or folder (``0o777``) under the current umask."""
    return (0o777 if directory else 0o666) & ~current_umask()


def not_writable_error(path: str | os.PathLike[str], folder: str | os.PathLike[str], *,
                       what: str = "output") -> PermissionError:
    """The one message for an output that cannot be written because its folder refuses writes.

    Every writer (gene-set export, ``score``, ``demo``/``run``, ``report``) raises this, so the
    user always reads the same sentence, naming the file they asked for (never a temporary name).
    """
    return PermissionError(
        f"cannot write {what} {str(path)!r}: directory {str(folder)!r} is not writable; "
        "choose another output location."
    )


def _tmp_path(path: Path) -> Path:
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.tmp-", dir=path.parent)
    except PermissionError:
        raise not_writable_error(path, path.parent) from None
    os.close(fd)
    return Path(tmp)


def make_temp_dir(final: Path, *, infix: str = "tmp") -> Path:
    """A new folder ``FINAL.<infix>-XXXX`` beside ``final``, with the umask's permissions."""
    try:
        tmp = Path(tempfile.mkdtemp(prefix=f"{final.name}.{infix}-", dir=final.parent))
    except PermissionError:
        raise not_writable_error(final, final.parent, what="output directory") from None
    os.chmod(tmp, default_mode(directory=True))
    return tmp


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str], *, create_parent: bool = True) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; move it onto ``path`` on success.

    The caller writes the complete file to the yielded path (any writer that takes a path:
    ``AnnData.write_h5ad``, ``Figure.savefig``, ...). On an exception the temporary file is
    removed and ``path`` is left untouched. With ``create_parent=False`` a missing destination
    folder is an error instead of being created. The file gets the umask's permissions.
    """
    path = Path(path)
    if create_parent:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except PermissionError:
            existing = path.parent
            while not existing.exists() and existing != existing.parent:
                existing = existing.parent
            raise not_writable_error(path, existing) from None
    elif not path.parent.exists():
        raise FileNotFoundError(f"folder {str(path.parent)!r} does not exist; create it first.")
    tmp = _tmp_path(path)
    try:
        yield tmp
        os.chmod(tmp, default_mode())
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
