"""The report's figures say what they show (issue 17 items 15-19)."""

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
from noa_omics.pipeline import _figures  # noqa: E402


def _effects(q=(0.5, 0.2, np.nan, np.nan)) -> pd.DataFrame:
    return pd.DataFrame({
        "variable": ["apoptosis_intrinsic"] * 4,
        "group": ["spermatocyte", "sertoli", "sertoli", "leydig"],
        "condition": ["noa", "noa", "klinefelter", "scos"],
        "effect": [0.2, -0.1, 0.05, np.nan],            # leydig/scos: no donors -> no estimate
        "ci_low": [0.0, -0.3, np.nan, np.nan],          # sertoli/klinefelter: one donor -> no CI
        "ci_high": [0.4, 0.1, np.nan, np.nan],
        "qvalue": list(q),
    })


def _labels(ax) -> list[str]:
    return [t.get_text() for t in ax.get_yticklabels()]


def test_forest_title_is_honest_when_nothing_is_red():
    fig = _figures.forest(_effects())
    title = fig.axes[0].get_title()
    assert "no comparison reached q < 0.05" in title and "red" not in title
    fig = _figures.forest(_effects(q=(0.01, 0.2, np.nan, np.nan)))
    assert "red: q < 0.05 (1 of 3)" in fig.axes[0].get_title()
    plt.close("all")


def test_forest_draws_single_donor_rows_without_ci_and_no_empty_rows():
    ax = noa.pl.forest(_effects(), show=False)
    assert len(_labels(ax)) == 3  # the NaN comparison is not an empty row
    assert all(not label.startswith("apoptosis_intrinsic") for label in _labels(ax))  # no repeated prefix
    assert ax.get_title() == "apoptosis_intrinsic"
    lines = ax.collections[0]  # hlines: the CIs, one per row that has one
    assert len(lines.get_segments()) == 2
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "one donor on a side: no CI" in legend
    assert "1 comparison(s) without donors not shown" in legend
    assert not any(t.startswith("q < ") for t in legend)  # nothing red, no red key
    plt.close("all")


def _germ_less_condition() -> AnnData:
    rng = np.random.default_rng(0)
    rows = []
    for donor, cond in [("c1", "control"), ("c2", "control"), ("k1", "klinefelter"), ("k2", "klinefelter")]:
        for i in range(30):
            germ = cond == "control" and i % 2 == 0
            rows.append({"sample": donor, "condition": cond, "noa_cell_class": "germ" if germ else "sertoli",
                         "noa_cell_type": "spermatocyte" if germ else "sertoli"})
    obs = pd.DataFrame(rows, index=[f"c{i}" for i in range(len(rows))])
    adata = AnnData(X=np.zeros((len(obs), 1), dtype=np.float32), obs=obs)
    adata.obsm["noa_score_genes"] = pd.DataFrame({"apoptosis_intrinsic": rng.normal(size=len(obs))},
                                                 index=obs.index)
    return adata


def test_donor_scores_say_why_a_column_is_empty():
    fig = _figures.donor_scores(_germ_less_condition(), sample_key="sample", condition_key="condition",
                                reference="control")
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert texts == ["no germ cells"]  # the Klinefelter column is labelled, not silently empty
    plt.close("all")


def _multihit() -> pd.DataFrame:
    table = pd.DataFrame({
        "genetic": [0.1, 0.2, 5.0], "endocrine": [0.0, np.nan, 1.0], "oxidative": [0.3, 0.1, 0.2],
        "epigenetic": [0.0, 0.1, np.nan], "inflammation": [0.0, 0.2, 0.4], "niche": [0.1, 0.0, 8.0],
        "germ_apoptosis": [0.0, 0.5, np.nan],
        "histology": ["normal", "normal", "sertoli_cell_only"],
        "apoptosis_context": ["indeterminate", "indeterminate", "irreversible"],
        "condition": ["control", "control", "klinefelter"],
    }, index=pd.Index(["D01", "D02", "D10"], name="sample"))
    return table


def test_multihit_heatmap_labels_strips_conditions_and_blank_cells():
    ax = noa.pl.multihit_heatmap(_multihit(), show=False)
    assert _labels(ax) == ["D01 (control)", "D02 (control)", "D10 (klinefelter)"]
    strip_labels = [t.get_text() for t in ax.texts if t.get_text() in ("histology", "context")]
    assert strip_labels == ["histology", "context"]  # both strips drawn and named
    rects = [p for p in ax.patches if isinstance(p, plt.Rectangle)]
    assert len(rects) == 6  # 3 donors x (histology, context)
    legend = [t.get_text() for t in ax.figure.axes[1].get_legend().get_texts()]
    assert any("not evaluable" in t for t in legend)
    assert {"histology", "apoptosis context"} <= set(legend)
    assert "  sertoli cell only" in legend and "  irreversible" in legend
    plt.close("all")


def test_tubule_outline_colour_map_has_visible_ends():
    from matplotlib.colors import to_rgb

    from noa_omics.pl._spatial import outline_cmap

    def luminance(rgb):
        r, g, b = rgb
        return 0.2126 * r + 0.7152 * g + 0.0722 * b

    cmap = outline_cmap("viridis")
    assert luminance(cmap(0.0)[:3]) < 0.3 and luminance(cmap(1.0)[:3]) < 0.8
    old_low = matplotlib.colormaps["magma_r"](0.0)[:3]  # the previous default: NCI 0 was pale yellow
    assert luminance(old_low) > 0.9
    assert luminance(to_rgb("white")) - luminance(cmap(0.0)[:3]) > 0.6


def test_enrichment_plot_has_a_dot_size_key_and_readable_ticks():
    table = pd.DataFrame({"cell_type": ["sertoli"] * 4, "condition": ["noa", "noa", "scos", "scos"],
                          "gene_set": ["a", "b", "a", "b"], "nes": [1.5, -1.0, 0.2, 2.0],
                          "fdr": [0.01, 0.5, 1.0, 0.001]})
    ax = noa.pl.enrichment(table, show=False)
    legend = ax.get_legend()
    assert legend.get_title().get_text() == "FDR"
    assert [t.get_text() for t in legend.get_texts()] == ["1", "0.1", "0.01", "0.001 or less"]
    sizes = [h.get_sizes()[0] for h in legend.legend_handles]
    assert sizes == sorted(sizes)
    assert min(t.get_fontsize() for t in ax.get_xticklabels() + ax.get_yticklabels()) >= 10
    plt.close("all")


def test_radar_labels_stay_outside_the_polygon():
    ax = noa.pl.multihit_profile(_multihit(), "D10", kind="radar", show=False)
    values = _multihit().loc["D10", ["genetic", "niche"]].to_numpy(dtype=float)
    assert ax.get_ylim()[1] >= 1.15 * values.max()  # room between the largest value and the labels
    assert ax.xaxis.get_major_ticks()[0].get_pad() >= 10
    plt.close("all")


def test_confusion_table_in_biological_order():
    from noa_omics.pipeline import _steps

    labels = ["sertoli", "SSC", "leydig", "spermatocyte", "round_spermatid"]
    obs = pd.DataFrame({"truth_cell_type": labels * 2, "noa_cell_type": labels[::-1] * 2},
                       index=[f"c{i}" for i in range(10)])
    table = _steps.annotation_accuracy(AnnData(obs=obs), truth_key="truth_cell_type")
    order = ["SSC", "spermatocyte", "round_spermatid", "sertoli", "leydig"]
    assert list(table["truth"]) == order
    assert list(table.columns[1:]) == order


def test_forest_without_any_estimate_says_so():
    effects = _effects()
    effects["effect"] = np.nan
    ax = noa.pl.forest(effects, show=False)
    assert _labels(ax) == []
    assert "no comparison could be estimated" in ax.texts[0].get_text()
    fig = _figures.forest(effects)  # the pipeline figure does not crash either
    assert "no comparison reached" in fig.axes[0].get_title()
    plt.close("all")


def test_pipeline_forest_falls_back_to_a_set_with_estimates():
    effects = pd.concat([_effects().assign(effect=np.nan), _effects().assign(variable="stress_heat")])
    fig = _figures.forest(effects)
    assert fig.axes[0].get_title().startswith("stress_heat:")
    plt.close("all")


def test_context_and_histology_strips_use_distinct_colours():
    """The heatmap's two strips share one legend: a colour must name one histology or one context."""
    from noa_omics.pl._utils import CONTEXT_COLORS, HISTOLOGY_COLORS

    assert not set(CONTEXT_COLORS.values()) & set(HISTOLOGY_COLORS.values())
    assert len(set(CONTEXT_COLORS.values())) == len(CONTEXT_COLORS)
