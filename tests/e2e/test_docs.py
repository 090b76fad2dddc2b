"""The documentation site builds in strict mode and the tutorial notebook executes."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import pytest

from .conftest import REPO

pytestmark = pytest.mark.slow


@pytest.mark.skipif(importlib.util.find_spec("mkdocs") is None or importlib.util.find_spec("mkdocstrings") is None,
                    reason="mkdocs / mkdocstrings are not installed (pip install -e '.[docs]')")
def test_mkdocs_build_strict(tmp_path):
    site = tmp_path / "site"
    proc = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(REPO / "mkdocs.yml"),
                           "-d", str(site)], cwd=REPO, capture_output=True, text=True, timeout=600,
                          env={**__import__("os").environ, "NO_MKDOCS_2_WARNING": "1"})
    assert proc.returncode == 0, proc.stderr[-4000:]
    for page in ("index.html", "getting-started/index.html", "cli/index.html", "workflow/index.html",
                 "formulas/index.html", "api/index.html", "tutorial/index.html"):
        assert (site / page).is_file(), page
    # the notebook is shipped as a download, not executed at build time
    assert (site / "tutorial.ipynb").is_file()
    api = (site / "api" / "index.html").read_text()
    for name in ("noa_omics.tl.score", "annotate_testis", "assign_tubules", "demo_testis", "multihit"):
        assert name in api, name


@pytest.mark.skipif(importlib.util.find_spec("nbclient") is None or importlib.util.find_spec("ipykernel") is None,
                    reason="nbclient / ipykernel are not installed (pip install -e '.[test]')")
def test_tutorial_notebook_executes(tmp_path):
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(REPO / "docs" / "tutorial.ipynb", as_version=4)
    NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.output_type == "error"]
    text = "\n".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    assert "annotation accuracy against the simulated truth" in text
    assert "self-contained HTML" in text


@pytest.mark.parametrize(("page", "header"), [("README.md", "## Quick start (Python)"),
                                               ("docs/getting-started.md", "Or in Python:")])
def test_python_examples_run(page, header):
    import re

    text = (REPO / page).read_text()
    code = re.search(re.escape(header) + r"\s*```python\n(.*?)```", text, re.S).group(1)
    code = re.sub(r"n_cells=\d+", "n_cells=1500", code)  # same code, smaller data
    namespace: dict = {}
    exec(compile(code, page, "exec"), namespace)
    assert "noa_cell_type" in namespace["adata"].obs
    assert "noa_score_genes" in namespace["adata"].obsm
    if page == "README.md":  # the score accessor of the quick start (issue 17 item 12)
        assert "apoptosis_intrinsic" in namespace["scores"].var_names
        assert "apoptosis_intrinsic" in namespace["adata"].obs
