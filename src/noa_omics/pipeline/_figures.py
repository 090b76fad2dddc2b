"""Figures of the pipeline: each returns one matplotlib Figure built from a stage's results.

The drawing is done by :mod:`noa_omics.pl` (and :func:`scanpy.pl.umap` for the embedding);
these wrappers only choose what to show (which set, which section) and the figure size.
"""

from __future__ import annotations

from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from anndata import AnnData

from .._vocabulary import CELL_TYPES

#: Gene set shown in the per-donor and forest figures.
FOCUS_SET = "apoptosis_intrinsic"


#: Most cells drawn in the embedding figure; larger data show a seeded random subsample.
EMBEDDING_MAX_CELLS = 50_000


def annotation_embedding(adata: AnnData, *, key: str = "noa_cell_type", max_cells: int = EMBEDDING_MAX_CELLS,
                         seed: int = 0) -> Any:
    """UMAP coloured by cell type (:func:`scanpy.pl.umap`); above ``max_cells`` cells a random
    subsample of ``max_cells`` (seeded) is drawn and the title says so."""
    import scanpy as sc

    fig, ax = plt.subplots(figsize=(7.5, 6))
    present = [c for c in CELL_TYPES if c in set(adata.obs[key].astype(str))]
    view = adata.obs[[key]].copy()
    view[key] = pd.Categorical(view[key].astype(str), categories=present)
    coords = np.asarray(adata.obsm["X_umap"])
    title = "Cell types (noa_cell_type)"
    if adata.n_obs > max_cells:
        keep = np.sort(np.random.default_rng(seed).choice(adata.n_obs, size=max_cells, replace=False))
        view, coords = view.iloc[keep], coords[keep]
        title += f"\nrandom subsample: {max_cells:,} of {adata.n_obs:,} cells shown"
    tmp = AnnData(obs=view, obsm={"X_umap": coords})
    sc.pl.umap(tmp, color=key, ax=ax, show=False, frameon=False, title=title)
    return fig


def confusion_matrix(adata: AnnData, *, truth_key: str, key: str = "noa_cell_type") -> Any:
    """Row-normalised confusion matrix of the annotation against the truth (:func:`noa.pl.confusion_matrix`)."""
    from .. import pl

    fig, ax = plt.subplots(figsize=(8, 7))
    truth = adata.obs[truth_key].astype(str)
    pred = adata.obs[key].astype(str)
    pl.confusion_matrix(truth, pred, ax=ax, show=False, annotate=False)
    ax.set_title(f"Annotation accuracy {(truth.to_numpy() == pred.to_numpy()).mean():.1%}")
    return fig


def celltype_heatmap(adata: AnnData, *, method: str = "score_genes", key: str = "noa_cell_type") -> Any:
    """Mean score per cell type x gene set, marker sets left out (:func:`noa.pl.celltype_heatmap`)."""
    from .. import pl

    score_key = f"noa_{method}"
    columns = list(adata.obsm[score_key].columns)
    sets = [c for c in columns if not c.startswith("marker_")] or columns
    fig, ax = plt.subplots(figsize=(max(7.0, 0.42 * len(sets) + 3), 6.5))
    pl.celltype_heatmap(adata, sets, cell_type_key=key, score_key=score_key, ax=ax, show=False)
    ax.set_title(f"Mean {method} score per cell type (scaled 0-1 per set)")
    return fig


def donor_scores(adata: AnnData, *, sample_key: str, condition_key: str, reference: str,
                 method: str = "score_genes", gene_set: str = FOCUS_SET) -> Any:
    """Per-donor mean apoptosis score in germ cells by condition, 95 % CI (:func:`noa.pl.donor_scores`)."""
    from .. import pl

    score_key = f"noa_{method}"
    if gene_set not in adata.obsm[score_key].columns:
        gene_set = adata.obsm[score_key].columns[0]
    conditions = [reference] + sorted(c for c in adata.obs[condition_key].astype(str).unique() if c != reference)
    germ = (adata.obs["noa_cell_class"].astype(str) == "germ").to_numpy()
    if germ.sum() == 0:
        germ = np.ones(adata.n_obs, dtype=bool)
    fig, ax = plt.subplots(figsize=(max(6.0, 0.9 * len(conditions) + 2), 4.5))
    # a condition without germ cells (Sertoli-cell-only, Klinefelter) gets a labelled empty column
    pl.donor_scores(adata[germ], gene_set, sample_key=sample_key, condition_key=condition_key,
                    score_key=score_key, order=conditions, empty_label="no germ cells", ax=ax, show=False)
    ax.set_title(f"{gene_set} in germ cells: donor means by condition (95% CI)")
    return fig


def forest(effects: pd.DataFrame, *, gene_set: str = FOCUS_SET, max_rows: int = 45, alpha: float = 0.05) -> Any:
    """Donor-level effects of each condition vs the reference for one set (:func:`noa.pl.forest`).

    The title says how many comparisons reached ``q < alpha`` (or that none did); comparisons
    with one donor on a side are drawn without a CI and comparisons without donors are counted,
    not drawn (see :func:`noa.pl.forest`).
    """
    from .. import pl

    table = effects
    estimated = table.dropna(subset=["effect"])
    if gene_set not in set(estimated["variable"]):  # the focus set has no estimate: show one that has
        gene_set = (estimated if len(estimated) else table)["variable"].iloc[0]
    table = table[table["variable"] == gene_set]
    order = {c: i for i, c in enumerate(CELL_TYPES)}
    table = table.assign(_order=table["group"].map(order).fillna(len(order)))
    table = table.sort_values(["_order", "condition"], kind="stable").drop(columns="_order")
    shown = table[table["effect"].notna()].head(max_rows)
    table = pd.concat([shown, table[table["effect"].isna()]])
    fig, ax = plt.subplots(figsize=(7.5, 0.3 * len(shown) + 1.6))
    ax = pl.forest(table.reset_index(drop=True), label_columns=["group", "condition"], alpha=alpha, ax=ax, show=False)
    n_sig = ax.noa_n_significant
    verdict = (f"red: q < {alpha:g} ({n_sig} of {len(shown)})" if n_sig
               else f"no comparison reached q < {alpha:g}")
    ax.set_title(f"{gene_set}: effect vs reference per cell type; {verdict}")
    return fig


def composition(table: pd.DataFrame, conditions: pd.Series, *, level: str = "broad") -> Any:
    """Stacked proportions per donor and composition effects with CIs (:func:`noa.pl.composition_bars`,
    :func:`noa.pl.composition_effects`) at one level of the composition table."""
    from .. import pl

    sub = table[table["level"] == level].reset_index(drop=True)
    sub.attrs = dict(table.attrs)
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 0.25 * len(sub) + 3), gridspec_kw={"width_ratios": [1.3, 1]})
    pl.composition_bars(sub, conditions=conditions, ax=left, show=False)
    pl.composition_effects(sub, ax=right, show=False)
    fig.tight_layout()
    return fig


def enrichment(table: pd.DataFrame, *, top: int = 20) -> Any:
    """NES and FDR of the curated sets per cell type x condition (:func:`noa.pl.enrichment`)."""
    from .. import pl

    ax = pl.enrichment(table, top=top, show=False)
    ax.set_title("Pseudobulk pre-ranked enrichment (dot size: -log10 FDR)")
    return ax.figure


def _tubule_sample(tubule_table: pd.DataFrame) -> str:
    per_sample = tubule_table.groupby("sample")["niche_collapse_index"].mean()
    return str(per_sample.idxmax())


def tubules(sdata: AnnData, tubule_table: pd.DataFrame, *, sample_key: str = "sample",
            spatial_key: str = "spatial", cell_type_key: str = "noa_cell_type") -> Any:
    """The section with the highest mean niche-collapse index, by histology and by NCI (:func:`noa.pl.tubules`)."""
    from .. import pl

    sample = _tubule_sample(tubule_table)
    metrics = tubule_table.set_index("tubule")
    fig, axes = plt.subplots(1, 2, figsize=(15, 6), gridspec_kw={"wspace": 0.55})
    for ax, color in zip(axes, ("histology", "niche_collapse_index")):
        pl.tubules(sdata, color, sample_key=sample_key, sample=sample, metrics=metrics, spatial_key=spatial_key,
                   cell_type_key=cell_type_key, ax=ax, show=False)
        ax.set_title(f"{sample}: {color.replace('_', ' ')}")
    return fig


def histology_composition(niche_table: pd.DataFrame, *, sample_key: str = "sample") -> Any:
    """Fraction of tubules per histology, one bar per sample (:func:`noa.pl.histology_composition`)."""
    from .. import pl

    fig, ax = plt.subplots(figsize=(7, 4))
    pl.histology_composition(niche_table.set_index(sample_key), ax=ax, show=False)
    ax.set_title("Tubule histology per sample")
    return fig


def multihit_heatmap(table: pd.DataFrame) -> Any:
    """Axis z-scores per donor with the apoptosis context (:func:`noa.pl.multihit_heatmap`)."""
    from .. import pl

    fig, ax = plt.subplots(figsize=(9, 0.4 * len(table) + 2))
    pl.multihit_heatmap(table, ax=ax, show=False)
    ax.set_title("Multi-hit profiles: robust z vs reference donors")
    return fig
