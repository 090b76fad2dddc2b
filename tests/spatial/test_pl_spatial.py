"""Spatial plots ``noa.pl.tubules`` and ``noa.pl.histology_composition`` render (Agg backend)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

import noa_omics as noa  # noqa: E402

from .conftest import quiet_metrics  # noqa: E402


@pytest.mark.parametrize("color", ["histology", "niche_collapse_index", "noa_cell_type"])
def test_tubules_plot(mixed_segmented, tmp_path, color):
    metrics = quiet_metrics(mixed_segmented)
    path = tmp_path / f"tubules_{color}.png"
    ax = noa.pl.tubules(mixed_segmented, color, metrics=metrics, save=path)
    assert path.stat().st_size > 1000
    n_tubules = metrics.shape[0]
    polys = [c for c in ax.collections if c.__class__.__name__ == "PolyCollection"]
    assert len(polys) == 1 and len(polys[0].get_paths()) == n_tubules
    plt.close("all")


def test_tubules_plot_one_section_of_many(cohort, tmp_path):
    sample = sorted(cohort.obs["sample"].astype(str).unique())[1]
    fig, ax = plt.subplots()
    out = noa.pl.tubules(cohort, "johnsen_like", sample_key="sample", sample=sample, ax=ax)
    assert out is ax and sample in ax.get_title()
    with pytest.raises(ValueError, match="sample="):
        noa.pl.tubules(cohort, "histology", sample_key="sample")
    with pytest.raises(KeyError, match="neither"):
        noa.pl.tubules(cohort, "colour", sample_key="sample", sample=sample)
    plt.close("all")


def test_histology_composition(cohort, tmp_path):
    summary = noa.spatial.niche_summary(cohort, sample_key="sample", n_perms=20)
    path = tmp_path / "composition.png"
    ax = noa.pl.histology_composition(summary, save=path)
    assert path.stat().st_size > 1000
    assert len(ax.patches) == 4 * len(summary)
    with pytest.raises(KeyError, match="frac_"):
        noa.pl.histology_composition(summary.drop(columns="frac_normal"))
    plt.close("all")
