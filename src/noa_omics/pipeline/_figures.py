"""Figures of the pipeline: each builds one matplotlib Figure from the stage's results.

The drawing is done by :mod:`noa_omics.pl`; these wrappers choose the data and the size.
"""

from __future__ import annotations

from typing import Any

import matplotlib

matplotlib.use("Agg", force=False)
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from anndata import AnnData  # noqa: E402

from .._vocabulary import CELL_TYPES, GERM_STAGES, HISTOLOGIES  # noqa: E402


def _new(figsize: tuple[float, float]) -> tuple[Any, Any]:
    return plt.subplots(figsize=figsize)


def annotation_embedding(adata: AnnData, *, key: str = "noa_cell_type") -> Any:
    """UMAP coloured by cell type."""
    fig, ax = _new((7.5, 6))
    xy = np.asarray(adata.obsm["X_umap"])
    labels = adata.obs[key].astype(str).to_numpy()
    cmap = plt.get_cmap("tab20")
    for i, ct in enumerate([c for c in CELL_TYPES if c in set(labels)]):
        m = labels == ct
        ax.scatter(xy[m, 0], xy[m, 1], s=3, color=cmap(i % 20), label=f"{ct} ({m.sum()})", rasterized=True)
    ax.set_xlabel("UMAP 1")
    ax.set_ylabel("UMAP 2")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.legend(markerscale=4, fontsize=7, loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False)
    ax.set_title("Cell types (noa_cell_type)")
    return fig


def confusion_matrix(adata: AnnData, *, truth_key: str, key: str = "noa_cell_type") -> Any:
    """Row-normalised confusion matrix of the annotation against the truth."""
    truth = adata.obs[truth_key].astype(str)
    pred = adata.obs[key].astype(str)
    types = [c for c in CELL_TYPES if c in set(truth) | set(pred)]
    table = pd.crosstab(truth, pred).reindex(index=types, columns=types, fill_value=0)
    frac = table.div(table.sum(axis=1).replace(0, 1), axis=0)
    fig, ax = _new((7, 6))
    im = ax.imshow(frac.to_numpy(), cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(types)), types, rotation=60, ha="right", fontsize=8)
    ax.set_yticks(range(len(types)), types, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("truth")
    fig.colorbar(im, ax=ax, fraction=0.046, label="fraction of true type")
    acc = float((truth.to_numpy() == pred.to_numpy()).mean())
    ax.set_title(f"Annotation accuracy {acc:.1%}")
    return fig


def celltype_heatmap(adata: AnnData, *, method: str = "score_genes", key: str = "noa_cell_type") -> Any:
    """Cell type x gene set heatmap of mean scores (column z-scored)."""
    scores = pd.DataFrame(adata.obsm[f"noa_{method}"], index=adata.obs_names)
    scores = scores[[c for c in scores.columns if not c.startswith("marker_")] or list(scores.columns)]
    mean = scores.groupby(adata.obs[key].astype(str).to_numpy()).mean()
    mean = mean.reindex([c for c in CELL_TYPES if c in mean.index])
    z = (mean - mean.mean()) / mean.std(ddof=0).replace(0, 1)
    fig, ax = _new((max(7, 0.42 * z.shape[1] + 3), 0.4 * z.shape[0] + 2.5))
    im = ax.imshow(z.to_numpy(), cmap="RdBu_r", vmin=-2.5, vmax=2.5, aspect="auto")
    ax.set_xticks(range(z.shape[1]), z.columns, rotation=60, ha="right", fontsize=8)
    ax.set_yticks(range(z.shape[0]), z.index, fontsize=8)
    fig.colorbar(im, ax=ax, fraction=0.03, label="z-score across cell types")
    ax.set_title(f"Mean {method} score per cell type")
    return fig


def donor_scores(adata: AnnData, *, sample_key: str, condition_key: str, reference: str,
                 method: str = "score_genes", gene_set: str = "apoptosis_intrinsic",
                 cell_class: str = "germ") -> Any:
    """Per-donor mean score in germ cells by condition, with a 95 % t interval of the donor means."""
    from scipy import stats

    scores = pd.DataFrame(adata.obsm[f"noa_{method}"], index=adata.obs_names)
    if gene_set not in scores.columns:
        gene_set = scores.columns[0]
    cells = adata.obs[[sample_key, condition_key]].astype(str).assign(score=scores[gene_set].to_numpy())
    if "noa_cell_class" in adata.obs and (adata.obs["noa_cell_class"].astype(str) == cell_class).sum() > 0:
        cells = cells[adata.obs["noa_cell_class"].astype(str).to_numpy() == cell_class]
    donors = cells.groupby([condition_key, sample_key], observed=True)["score"].mean().reset_index()
    conditions = [reference] + sorted(c for c in donors[condition_key].unique() if c != reference)
    fig, ax = _new((max(6, 1.1 * len(conditions) + 2), 4.5))
    for i, cond in enumerate(conditions):
        vals = donors.loc[donors[condition_key] == cond, "score"].to_numpy()
        ax.scatter(np.full(len(vals), i) + np.linspace(-0.12, 0.12, len(vals)), vals, s=28, zorder=3,
                   color="#8c2d19" if cond != reference else "#3b6ea5")
        if len(vals) >= 2:
            half = stats.t.ppf(0.975, len(vals) - 1) * vals.std(ddof=1) / np.sqrt(len(vals))
            ax.errorbar(i + 0.28, vals.mean(), yerr=half, fmt="s", color="black", capsize=4, ms=5)
    ax.set_xticks(range(len(conditions)), conditions, rotation=30, ha="right")
    ax.set_ylabel(f"{gene_set} ({method}), donor mean")
    ax.set_title(f"{gene_set} in {cell_class} cells per donor (mean, 95% CI)")
    return fig


def forest(effects: pd.DataFrame, *, gene_set: str | None = None, max_rows: int = 40) -> Any:
    """Forest plot of donor-level effects (effect and 95 % CI) of each condition vs the reference."""
    table = effects.dropna(subset=["effect"]).copy()
    var_col = "variable" if "variable" in table.columns else "gene_set"
    if gene_set is None:
        gene_set = "apoptosis_intrinsic" if (table[var_col] == "apoptosis_intrinsic").any() else table[var_col].iloc[0]
    table = table[table[var_col] == gene_set]
    group_col = "group" if "group" in table.columns else "cell_type"
    order = {c: i for i, c in enumerate(CELL_TYPES)}
    table = table.assign(_o=table[group_col].map(order).fillna(99)).sort_values(["_o", "condition"]).head(max_rows)
    labels = (table[group_col].astype(str) + " | " + table["condition"].astype(str)).to_list()
    fig, ax = _new((7.5, 0.28 * len(table) + 1.8))
    y = np.arange(len(table))[::-1]
    ci_ok = table[["ci_low", "ci_high"]].notna().all(axis=1).to_numpy()
    ax.hlines(y[ci_ok], table["ci_low"].to_numpy()[ci_ok], table["ci_high"].to_numpy()[ci_ok], color="grey")
    sig = (table.get("qvalue", pd.Series(np.nan, index=table.index)) < 0.05).to_numpy()
    ax.scatter(table["effect"], y, c=np.where(sig, "#8c2d19", "#3b6ea5"), zorder=3, s=22)
    ax.axvline(0, color="black", lw=0.8)
    ax.set_yticks(y, labels, fontsize=7)
    ax.set_xlabel("effect vs reference (difference of donor means)")
    ax.set_title(f"{gene_set}: donor-level effects (red: q < 0.05)")
    return fig


def enrichment(table: pd.DataFrame, *, max_sets: int = 20) -> Any:
    """NES of the gene sets (rows) per cell type x condition (columns)."""
    piv = table.assign(col=table["cell_type"].astype(str) + " | " + table["condition"].astype(str))
    piv = piv.pivot_table(index="gene_set", columns="col", values="nes", aggfunc="mean")
    piv = piv.loc[piv.abs().max(axis=1).sort_values(ascending=False).index[:max_sets]]
    fig, ax = _new((max(7, 0.35 * piv.shape[1] + 4), 0.32 * piv.shape[0] + 2.5))
    im = ax.imshow(piv.to_numpy(dtype=float), cmap="RdBu_r", vmin=-3, vmax=3, aspect="auto")
    ax.set_xticks(range(piv.shape[1]), piv.columns, rotation=70, ha="right", fontsize=6)
    ax.set_yticks(range(piv.shape[0]), piv.index, fontsize=7)
    fig.colorbar(im, ax=ax, fraction=0.03, label="NES")
    ax.set_title("Pseudobulk pre-ranked enrichment")
    return fig


def tubules(sdata: AnnData, tubule_table: pd.DataFrame, *, sample_key: str = "sample",
            spatial_key: str = "spatial", sample: str | None = None) -> Any:
    """Cells of one section coloured by the histology of their tubule; NCI as text."""
    xy = np.asarray(sdata.obsm[spatial_key])
    obs = sdata.obs
    samples = obs[sample_key].astype(str)
    sample = sample or samples.iloc[0]
    m = (samples == sample).to_numpy()
    tub = obs["noa_tubule"].astype("object").to_numpy()
    hist_map = dict(zip(tubule_table["tubule"].astype(str), tubule_table["histology"].astype(str))) \
        if "tubule" in tubule_table.columns else {}
    hist = np.array([hist_map.get(str(t), "outside") if t is not None and t == t else "outside" for t in tub])
    colors = {"normal": "#2a9d8f", "hypospermatogenesis": "#e9c46a", "maturation_arrest": "#f4a261",
              "sertoli_cell_only": "#e76f51", "outside": "#d0d0d0"}
    fig, ax = _new((7, 7))
    for h in ["outside", *HISTOLOGIES]:
        sel = m & (hist == h)
        if sel.any():
            ax.scatter(xy[sel, 0], xy[sel, 1], s=2, color=colors.get(h, "grey"), label=h, rasterized=True)
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.legend(markerscale=5, fontsize=7, loc="upper right")
    ax.set_title(f"Tubules of {sample} by histology")
    return fig


def histology_composition(tubule_table: pd.DataFrame, *, sample_key: str = "sample") -> Any:
    """Stacked bars: fraction of tubules per histology class, per sample."""
    col = sample_key if sample_key in tubule_table.columns else None
    groups = tubule_table[col].astype(str) if col else pd.Series("all", index=tubule_table.index)
    frac = pd.crosstab(groups, tubule_table["histology"].astype(str), normalize="index")
    frac = frac.reindex(columns=[h for h in HISTOLOGIES if h in frac.columns])
    fig, ax = _new((7, 4))
    frac.plot(kind="bar", stacked=True, ax=ax, color=["#2a9d8f", "#e9c46a", "#f4a261", "#e76f51"][: frac.shape[1]])
    ax.set_ylabel("fraction of tubules")
    ax.set_xlabel("")
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False)
    ax.set_title("Tubule histology per sample")
    return fig


def multihit_heatmap(table: pd.DataFrame) -> Any:
    """Axis z-scores per sample, with the apoptosis context in the row labels."""
    from .._vocabulary import AXES

    axes_cols = [a for a in AXES if a in table.columns] + (["germ_apoptosis"] if "germ_apoptosis" in table.columns else [])
    values = table[axes_cols].astype(float)
    labels = [f"{i} | {c}" for i, c in zip(table.index.astype(str), table.get("apoptosis_context", pd.Series("", index=table.index)))]
    fig, ax = _new((8, 0.36 * len(values) + 2))
    im = ax.imshow(np.clip(values.to_numpy(), -6, 6), cmap="RdBu_r", vmin=-6, vmax=6, aspect="auto")
    ax.set_xticks(range(len(axes_cols)), axes_cols, rotation=40, ha="right")
    ax.set_yticks(range(len(labels)), labels, fontsize=7)
    fig.colorbar(im, ax=ax, fraction=0.04, label="robust z vs reference")
    ax.set_title("Multi-hit profiles")
    return fig


_ = GERM_STAGES
