"""Atomic writes of results: a reader never sees a half-written result.

Single files go through :mod:`noa_omics._io` (temporary file, then :func:`os.replace`). A results *directory* is built in a sibling staging directory ``DIR.tmp-XXXX`` and renamed
to ``DIR`` only when every file in it is complete; on error the staging directory is
removed, so a failed run leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pandas as pd

from .._io import atomic_path, make_temp_dir, not_writable_error, write_text  # noqa: F401  (write_text is re-exported for the pipeline)

#: Name of the file that marks a directory as a complete noa-omics results directory.
MANIFEST_NAME = "manifest.json"


def write_json(path: str | os.PathLike[str], obj: Any) -> Path:
    """Write ``obj`` as indented JSON to ``path`` atomically."""
    return write_text(path, json.dumps(obj, indent=2, sort_keys=False, default=str) + "\n")


def write_csv(path: str | os.PathLike[str], frame: pd.DataFrame, *, index: bool = False) -> Path:
    """Write a DataFrame as CSV to ``path`` atomically."""
    return write_text(path, frame.to_csv(index=index))


def write_h5ad(path: str | os.PathLike[str], adata: Any) -> Path:
    """Write an AnnData to ``path`` atomically (``.h5ad`` suffix kept for the temporary file)."""
    path = Path(path)
    with atomic_path(path) as tmp:
        # anndata checks the suffix; write to TMP.h5ad then move it onto the reserved temp name
        tmp_h5ad = tmp.with_name(tmp.name + ".h5ad")
        try:
            adata.write_h5ad(tmp_h5ad)
            os.replace(tmp_h5ad, tmp)
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp_h5ad.unlink()
    return path


def write_figure(path: str | os.PathLike[str], fig: Any, *, dpi: int = 110) -> Path:
    """Save a matplotlib figure as PNG to ``path`` atomically and close it."""
    import matplotlib.pyplot as plt

    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    return Path(path)


def sha256sum(path: str | os.PathLike[str], *, chunk: int = 1 << 20) -> str:
    """SHA-256 hex digest of a file."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()


def check_writable_dir(path: str | os.PathLike[str], *, what: str = "output") -> Path:
    """Check that ``path`` (a file or directory to be created) can be written.

    Raises
    ------
    PermissionError
        If the nearest existing parent directory is not writable.
    """
    path = Path(path).expanduser().absolute()
    parent = path.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise NotADirectoryError(f"cannot write {what} {str(path)!r}: {str(parent)!r} is not a directory.")
    writable = os.access(parent, os.W_OK | os.X_OK)
    if writable:
        # os.access trusts the permission bits: root, read-only mounts, ACLs and pseudo file systems
        # (/proc) can still refuse the write, so try one (the probe file is removed at once)
        try:
            with tempfile.TemporaryFile(dir=parent):
                pass
        except OSError:
            writable = False
    if not writable:
        raise not_writable_error(path, parent, what=what)
    return path


def is_results_dir(path: str | os.PathLike[str]) -> bool:
    """True when ``path`` is a directory holding a noa-omics ``manifest.json``."""
    return (Path(path) / MANIFEST_NAME).is_file()


@contextlib.contextmanager
def staged_directory(path: str | os.PathLike[str], *, overwrite: bool = True) -> Iterator[Path]:
    """Build a results directory in ``DIR.tmp-XXXX`` and rename it to ``DIR`` on success.

    Parameters
    ----------
    path
        Final directory.
    overwrite
        Replace an existing *results* directory (one that holds a ``manifest.json``). An
        existing non-empty directory without a manifest is never replaced.

    Raises
    ------
    FileExistsError
        If ``path`` exists and is a file, or a non-empty directory that is not a results
        directory (or ``overwrite=False``).
    """
    final = Path(path).expanduser().absolute()
    _check_replaceable(final, overwrite=overwrite)
    check_writable_dir(final, what="output directory")
    final.parent.mkdir(parents=True, exist_ok=True)
    staging = make_temp_dir(final)
    try:
        yield staging
        _check_replaceable(final, overwrite=overwrite)
        _swap_into_place(staging, final)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def _check_replaceable(final: Path, *, overwrite: bool) -> None:
    if not final.exists():
        return
    if not final.is_dir():
        raise FileExistsError(f"output {str(final)!r} exists and is not a directory; choose another --out.")
    if not any(final.iterdir()):
        return
    if not is_results_dir(final):
        raise FileExistsError(
            f"output directory {str(final)!r} exists, is not empty and is not a noa-omics results "
            "directory (no manifest.json); choose another --out or remove it."
        )
    if not overwrite:
        raise FileExistsError(f"output directory {str(final)!r} exists; remove it or allow overwriting.")


def _swap_into_place(staging: Path, final: Path) -> None:
    """Rename ``staging`` to ``final``; an existing ``final`` is moved aside first, then removed."""
    old: Path | None = None
    if final.exists():
        old = Path(tempfile.mkdtemp(prefix=f"{final.name}.old-", dir=final.parent))
        os.rmdir(old)
        os.replace(final, old)
    try:
        os.replace(staging, final)
    except BaseException:
        if old is not None:
            os.replace(old, final)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def file_records(root: str | os.PathLike[str], *, exclude: Callable[[str], bool] | None = None) -> list[dict[str, Any]]:
    """List every file under ``root`` (relative POSIX path, size in bytes, sha256), sorted by path."""
    root = Path(root)
    records = []
    for file in sorted(p for p in root.rglob("*") if p.is_file()):
        rel = file.relative_to(root).as_posix()
        if rel.startswith(".") or "/." in rel or (exclude is not None and exclude(rel)):
            continue
        records.append({"path": rel, "bytes": file.stat().st_size, "sha256": sha256sum(file)})
    return records
