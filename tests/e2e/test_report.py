"""The HTML report: self-contained, complete, and rendered by a headless browser."""

from __future__ import annotations

import base64
import json
import re
import subprocess
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd
import pytest

from noa_omics.report import render_report, write_report

from .conftest import chromium_binary, png_is_blank

pytestmark = pytest.mark.slow

NETWORK_REF = re.compile(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", re.IGNORECASE)


def _results_dir(root: Path, n_figures: int = 6, n_rows: int = 60) -> Path:
    (root / "figures").mkdir(parents=True)
    (root / "tables").mkdir()
    figures = []
    for i in range(n_figures):
        fig, ax = plt.subplots(figsize=(3, 2))
        ax.plot([0, 1, 2], [i, i + 1, i * 2])
        fig.savefig(root / "figures" / f"fig{i}.png")
        plt.close(fig)
        figures.append({"path": f"figures/fig{i}.png", "title": f"Figure <{i}>", "caption": "a & b"})
    pd.DataFrame({"cell_type": [f"t{i}" for i in range(n_rows)], "qvalue": [1 - i / n_rows for i in range(n_rows)]}
                 ).to_csv(root / "tables" / "effects.csv", index=False)
    manifest = {
        "title": "test report",
        "noa_omics_version": "0.0.test",
        "created": "2026-01-01T00:00:00+00:00",
        "command": "noa-omics demo --out x",
        "parameters": {"seed": 0, "note": "<script>alert(1)</script>"},
        "inputs": [{"name": "single-cell", "path": "/data/a.h5ad", "bytes": 10, "sha256": "ab" * 32}],
        "summary": {"cells": 100, "conditions": ["control", "NOA"]},
        "provenance": {"python": "3.11", "platform": "linux", "packages": {"scanpy": "1.11"},
                       "genesets": [{"species": "human", "version": "2026.1"}]},
        "figures": figures,
        "tables": [{"path": "tables/effects.csv", "title": "Effects", "caption": "", "sort_by": "qvalue"}],
    }
    (root / "manifest.json").write_text(json.dumps(manifest))
    return root


def test_report_is_self_contained_and_complete(tmp_path):
    root = _results_dir(tmp_path / "res")
    html = render_report(root, max_rows=10)
    imgs = re.findall(r'<img [^>]*src="data:image/png;base64,([A-Za-z0-9+/=]+)"', html)
    assert len(imgs) == 6
    # the embedded bytes are the PNG files
    assert base64.b64decode(imgs[0]) == (root / "figures" / "fig0.png").read_bytes()
    assert not NETWORK_REF.search(html)
    assert "<script" not in html.lower()  # parameters are escaped, no script at all
    assert "&lt;script&gt;" in html
    assert "Figure &lt;0&gt;" in html
    # table truncated to 10 rows, sorted by q-value (smallest first)
    table = html[html.index("<h3>Effects</h3>"):html.index('id="provenance"')]
    assert table.count("<tr") == 11  # header + 10 rows
    assert "60 rows x 2 columns; showing the first 10 rows" in html
    assert html.index("t59") < html.index("t50")
    # provenance: versions, gene-set library version, inputs with checksum, date
    for text in ("0.0.test", "scanpy", "2026.1", "ab" * 32, "2026-01-01"):
        assert text in html


def test_report_without_manifest_is_refused(tmp_path):
    with pytest.raises(FileNotFoundError, match="manifest.json"):
        render_report(tmp_path)


@pytest.mark.skipif(chromium_binary() is None, reason="chromium is not installed (CI installs it via apt)")
def test_report_renders_in_headless_chromium(tmp_path):
    root = _results_dir(tmp_path / "res")
    html_path = write_report(root, tmp_path / "report.html")
    png = tmp_path / "shot.png"
    cmd = [chromium_binary(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           "--disable-dev-shm-usage", f"--user-data-dir={tmp_path / 'profile'}", f"--screenshot={png}",
           "--window-size=1280,2000", html_path.resolve().as_uri()]
    subprocess.run(cmd, check=False, capture_output=True, timeout=120)
    assert png.is_file() and png.stat().st_size > 0
    assert not png_is_blank(png)


def test_report_leads_with_the_donors(tmp_path):
    """Findings first (issue 17 item 20): a per-donor summary before the figures."""
    root = _results_dir(tmp_path / "res", n_figures=2)
    pd.DataFrame({
        "sample": ["D01", "D10"], "genetic": [0.3, 36.1], "niche": [-0.5, 7.9], "germ_apoptosis": [0.0, float("nan")],
        "histology": ["normal", "sertoli_cell_only"], "apoptosis_context": ["indeterminate", "irreversible"],
        "evidence": ["D01: indeterminate (no rule matched).", "D10: irreversible - no germ cells left."],
        "condition": ["control", "klinefelter"],
    }).to_csv(root / "tables" / "multihit.csv", index=False)
    html = render_report(root)
    donors = html.index('id="donors"')
    assert html.index('id="summary"') < donors < html.index('id="figures"') < html.index('id="tables"')
    block = html[donors:html.index('id="figures"')]
    for text in ("D10", "klinefelter", "sertoli cell only", "irreversible", "no germ cells left",
                 "genetic z=+36.1, niche z=+7.9", "none (all |z| &lt; 2)"):
        assert text in block, text
    # without a multi-hit table the section is left out, not empty
    (root / "tables" / "multihit.csv").unlink()
    assert 'id="donors"' not in render_report(root)


def test_wide_tables_wrap_instead_of_clipping(tmp_path):
    root = _results_dir(tmp_path / "res", n_figures=1)
    wide = pd.DataFrame({f"column_{i}": [f"value {i} " * 6] for i in range(21)})
    wide.to_csv(root / "tables" / "multihit.csv", index=False)
    html = render_report(root)
    table = html[html.index("<h3>Multihit</h3>"):]
    assert "column_20" in table  # all 21 columns of the multi-hit table are shown
    assert "overflow-wrap: anywhere" in html and "white-space: normal" in html
