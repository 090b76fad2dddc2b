"""Shared fixtures of the end-to-end tests (small sizes: these are the slow tests)."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]

#: Small demo used by the CLI / report tests.
DEMO_ARGS = ["--quick", "--n-cells", "1000"]


def chromium_binary() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        path = shutil.which(name)
        if path:
            return path
    return None


def png_is_blank(path: Path) -> bool:
    """True when every pixel of the PNG has the same colour."""
    import matplotlib.image as mpimg

    img = mpimg.imread(path)
    flat = img.reshape(-1, img.shape[-1]) if img.ndim == 3 else img.reshape(-1, 1)
    return bool(np.all(flat == flat[0]))


def shared_once(tmp_path_factory, name: str, build) -> Path:
    """Build ``name`` once for all pytest-xdist workers (file lock in the shared temp root).

    ``build(path)`` must create ``path``. Workers that lose the race wait for it.
    """
    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent  # shared by the workers of one run
    target = root / name
    done = root / f"{name}.done"
    lock = root / f"{name}.lock"
    try:
        fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        deadline = time.monotonic() + 900
        while not done.exists():
            if time.monotonic() > deadline:
                raise TimeoutError(f"another worker did not finish building {name}")
            time.sleep(0.5)
        if done.read_text() != "ok":
            pytest.fail(f"building {name} failed in another worker: {done.read_text()}")
        return target
    os.close(fd)
    try:
        build(target)
    except BaseException as err:
        done.write_text(f"error: {err!r}")
        raise
    done.write_text("ok")
    return target


@pytest.fixture(scope="session")
def small_h5ad(tmp_path_factory) -> Path:
    """A small single-cell .h5ad (raw counts in X and layers['counts']) from the demo generator."""
    import noa_omics as noa

    path = tmp_path_factory.mktemp("inputs") / "small.h5ad"
    adata = noa.datasets.demo_testis(seed=1, n_cells=400)
    adata.write_h5ad(path)
    return path
