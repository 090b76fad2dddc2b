"""Plots of the cell-type module render to PNG files (Agg backend)."""

from __future__ import annotations

import warnings

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from anndata import AnnData  # noqa: E402

import noa_omics as noa  # noqa: E402

TYPES = ["SSC", "spermatocyte", "sertoli", "leydig"]


@pytest.fixture(scope="module")
def toy() -> AnnData:
    rng = np.random.default_rng(0)
    n = 240
    obs = pd.DataFrame(
        {
            "donor": [f"d{i % 6}" for i in range(n)],
            "condition": ["control" if i % 6 < 3 else "noa" for i in range(n)],
            "noa_cell_type": [TYPES[i % 4] for i in range(n)],
        },
        index=[f"c{i}" for i in range(n)],
    )
    adata = AnnData(X=rng.poisson(1.0, (n, 20)).astype(float), obs=obs)
    adata.obsm["X_umap"] = rng.normal(size=(n, 2))
    adata.obsm["noa_score_genes"] = pd.DataFrame(
        {
            "apoptosis_intrinsic": rng.normal(size=n) + (obs["condition"] == "noa").to_numpy(),
            "stress_heat": rng.normal(size=n),
            "marker_sertoli": rng.normal(size=n),
        },
        index=obs.index,
    )
    return adata


def _png(path) -> None:
    assert path.exists()
    assert path.stat().st_size > 5_000
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_score_embedding(toy, tmp_path):
    axes = noa.pl.score_embedding(toy, ["apoptosis_intrinsic", "stress_heat"], save=tmp_path / "emb.png", show=False)
    assert len(axes) == 2 and axes[0].get_title() == "apoptosis_intrinsic"
    _png(tmp_path / "emb.png")
    fig, ax = plt.subplots()
    assert noa.pl.score_embedding(toy, "stress_heat", ax=ax, show=False) is ax
    with pytest.raises(KeyError, match="tsne"):
        noa.pl.score_embedding(toy, "stress_heat", basis="tsne")
    plt.close("all")


def test_celltype_heatmap(toy, tmp_path):
    ax = noa.pl.celltype_heatmap(toy, save=tmp_path / "heat.png", show=False, annotate=True)
    assert [t.get_text() for t in ax.get_yticklabels()] == ["SSC", "spermatocyte", "sertoli", "leydig"]
    _png(tmp_path / "heat.png")
    with pytest.raises(KeyError, match="noa_ucell"):
        noa.pl.celltype_heatmap(toy, score_key="noa_ucell")
    plt.close("all")


def test_donor_scores(toy, tmp_path):
    ax = noa.pl.donor_scores(toy, "apoptosis_intrinsic", sample_key="donor", condition_key="condition",
                             save=tmp_path / "donors.png", show=False)
    # 6 donors drawn as points, not 240 cells
    from matplotlib.collections import PathCollection

    assert sum(len(c.get_offsets()) for c in ax.collections if isinstance(c, PathCollection)) == 6
    _png(tmp_path / "donors.png")
    axes = noa.pl.donor_scores(toy, "apoptosis_intrinsic", sample_key="donor", condition_key="condition",
                               groupby="noa_cell_type", show=False)
    assert len(axes) == 4
    plt.close("all")


def test_forest_and_enrichment_and_confusion(toy, tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = noa.tl.compare_conditions(toy, value_key=["apoptosis_intrinsic", "stress_heat"], sample_key="donor",
                                        condition_key="condition", reference="control", groupby="noa_cell_type")
    ax = noa.pl.forest(res, save=tmp_path / "forest.png", show=False)
    assert len(ax.get_yticklabels()) == len(res)
    _png(tmp_path / "forest.png")

    enrich = pd.DataFrame({
        "cell_type": ["spermatocyte"] * 3 + ["sertoli"] * 3,
        "condition": "noa",
        "gene_set": ["apoptosis_intrinsic", "stress_heat", "inflammation"] * 2,
        "nes": [2.1, -0.5, 0.3, 0.2, 1.1, -1.4],
        "fdr": [0.001, 0.8, 0.5, 0.9, 0.2, 0.04],
    })
    noa.pl.enrichment(enrich, save=tmp_path / "enrich.png", show=False)
    _png(tmp_path / "enrich.png")
    with pytest.raises(ValueError, match="empty"):
        noa.pl.enrichment(enrich.iloc[:0])

    truth = ["SSC", "SSC", "sertoli", "leydig", "sertoli"]
    pred = ["SSC", "spermatogonia", "sertoli", "leydig", "other"]
    ax = noa.pl.confusion_matrix(truth, pred, save=tmp_path / "cm.png", show=False)
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels == ["SSC", "spermatogonia", "sertoli", "leydig", "other"]
    _png(tmp_path / "cm.png")
    with pytest.raises(ValueError, match="must match"):
        noa.pl.confusion_matrix(truth, pred[:2])
    plt.close("all")
