"""Plots of cell-type annotation and cell-type-resolved apoptosis statistics."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from anndata import AnnData
from scipy import stats

from .._validation import check_adata, check_frame_columns, check_obs_key, check_score_table
from .._vocabulary import CELL_TYPES
from ._scores import _as_frame
from ._utils import finish as _finish

__all__ = ["celltype_heatmap", "donor_scores", "forest", "enrichment", "confusion_matrix"]


def celltype_heatmap(
    adata: AnnData,
    sets: Sequence[str] | None = None,
    *,
    cell_type_key: str = "noa_cell_type",
    score_key: str = "noa_score_genes",
    standard_scale: str | None = "var",
    cmap: str = "magma",
    annotate: bool = False,
    ax: Any = None,
    show: bool | None = None,
    save: str | Path | None = None,
) -> Any:
    """Heatmap of mean gene-set scores per cell type (rows) and gene set (columns).

    Parameters
    ----------
    adata
        Annotated data with a score table in ``obsm[score_key]`` and cell types in
        ``obs[cell_type_key]``.
    sets
        Gene sets (columns of the score table) to show; default all.
    standard_scale
        ``"var"``: scale each gene set to 0..1 across cell types; ``"group"``: each cell type;
        None: raw means.
    annotate
        Write the values in the cells.
    ax, show, save
        As in scanpy.

    Returns
    -------
    matplotlib Axes
    """
    import matplotlib.pyplot as plt

    check_adata(adata)
    check_obs_key(adata, cell_type_key, what="cell-type column")
    columns = None if sets is None else ([sets] if isinstance(sets, str) else list(sets))
    table = check_score_table(adata, score_key, sets=columns)
    columns = list(table.columns) if columns is None else columns
    types = adata.obs[cell_type_key]
    means = table[columns].groupby(types.to_numpy(), observed=True).mean()
    order = [t for t in CELL_TYPES if t in means.index] + [t for t in means.index if t not in CELL_TYPES]
    means = means.loc[order]
    if standard_scale == "var":
        span = (means.max() - means.min()).replace(0, 1)
        shown = (means - means.min()) / span
    elif standard_scale == "group":
        span = (means.max(axis=1) - means.min(axis=1)).replace(0, 1)
        shown = means.sub(means.min(axis=1), axis=0).div(span, axis=0)
    elif standard_scale is None:
        shown = means
    else:
        raise ValueError(f"unknown standard_scale {standard_scale!r}; use 'var', 'group' or None.")
    if ax is None:
        fig, ax = plt.subplots(figsize=(0.45 * len(columns) + 3, 0.35 * len(order) + 1.8))
    else:
        fig = ax.figure
    image = ax.imshow(shown.to_numpy(dtype=float), aspect="auto", cmap=cmap)
    ax.set_xticks(range(len(columns)), columns, rotation=90)
    ax.set_yticks(range(len(order)), [str(t) for t in order])
    ax.set_xlabel("gene set")
    ax.set_ylabel(cell_type_key)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.02, label="scaled mean score" if standard_scale else "mean score")
    if annotate:
        for (i, j), value in np.ndenumerate(means.to_numpy(dtype=float)):
            ax.text(j, i, f"{value:.2f}", ha="center", va="center", fontsize=6, color="white")
    return _finish(fig, ax, show=show, save=save)


def _donor_table(
    data: AnnData | pd.DataFrame,
    value_key: str,
    sample_key: str,
    condition_key: str,
    groupby: str | None,
    score_key: str | None,
) -> pd.DataFrame:
    from ..celltypes._utils import cell_table

    cells, _ = cell_table(data, columns=[sample_key, condition_key, groupby], values=[value_key], score_key=score_key)
    keys = [condition_key, sample_key] + ([groupby] if groupby else [])
    return cells.groupby(keys, observed=True)[value_key].mean().reset_index()


def donor_scores(
    data: AnnData | pd.DataFrame,
    value_key: str,
    *,
    sample_key: str,
    condition_key: str,
    groupby: str | None = None,
    groups: Sequence[Any] | None = None,
    score_key: str | None = None,
    order: Sequence[Any] | None = None,
    ncols: int = 4,
    empty_label: str = "no cells",
    ax: Any = None,
    show: bool | None = None,
    save: str | Path | None = None,
) -> Any:
    """One point per donor (mean of its cells) by condition, with the condition mean and 95% CI.

    Cells are not drawn: the donor is the unit of replication (see :func:`noa.tl.compare_conditions`).
    The interval is the t interval of the donor means (:math:`\\bar x \\pm t_{n-1,0.975} s/\\sqrt n`);
    conditions with one donor show the point only.

    Parameters
    ----------
    data
        AnnData (value from ``obs`` or an ``obsm`` score table) or per-cell DataFrame.
    value_key
        Score or numeric column.
    sample_key, condition_key
        Donor and condition columns.
    groupby, groups
        Optional grouping column (e.g. ``"noa_cell_type"``): one panel per group (or per
        ``groups``).
    order
        Order of the conditions on the x axis.
    empty_label
        Written in the column of a condition (in ``order``) without any donor value, e.g.
        ``"no germ cells"`` when the plotted cells are germ cells and a condition has none.
    ax, show, save
        As in scanpy (``ax`` only without ``groupby``).

    Returns
    -------
    matplotlib Axes or list of Axes (one per group).
    """
    import matplotlib.pyplot as plt

    table = _donor_table(data, value_key, sample_key, condition_key, groupby, score_key)
    conditions = list(order) if order is not None else list(pd.unique(table[condition_key].astype(object)))
    if isinstance(table[condition_key].dtype, pd.CategoricalDtype) and order is None:
        present = set(table[condition_key].astype(object))
        conditions = [c for c in table[condition_key].cat.categories if c in present]
    panels: list[Any] = [None]
    if groupby is not None:
        present_groups = list(pd.unique(table[groupby].astype(object)))
        panels = list(groups) if groups is not None else present_groups
    if ax is not None and len(panels) > 1:
        raise ValueError("`ax` can only be used with a single panel; pass `groups=[one group]` or omit `ax`.")
    if ax is None:
        ncols = max(1, min(int(ncols), len(panels)))
        nrows = math.ceil(len(panels) / ncols)
        fig, grid = plt.subplots(
            nrows, ncols, figsize=(max(3.0, 0.8 * len(conditions) + 1.5) * ncols, 3.4 * nrows), squeeze=False,
            layout="constrained",
        )
        axes = list(grid.ravel())
        for extra in axes[len(panels):]:
            extra.set_visible(False)
        axes = axes[: len(panels)]
    else:
        fig, axes = ax.figure, [ax]
    rng = np.random.default_rng(0)
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for panel, group in zip(axes, panels):
        sub = table if group is None else table[table[groupby].astype(object) == group]
        for i, condition in enumerate(conditions):
            values = sub.loc[sub[condition_key].astype(object) == condition, value_key].to_numpy(dtype=float)
            values = values[np.isfinite(values)]
            if not len(values):
                # an empty column says why it is empty instead of looking like a drawing error
                panel.text(i, 0.5, empty_label, transform=panel.get_xaxis_transform(), rotation=90,
                           ha="center", va="center", fontsize=8, color="#57606a")
                continue
            colour = colours[i % len(colours)]
            jitter = rng.uniform(-0.12, 0.12, len(values))
            panel.scatter(i + jitter, values, s=28, color=colour, edgecolor="black", linewidth=0.4, zorder=3)
            mean = values.mean()
            panel.hlines(mean, i - 0.25, i + 0.25, color="black", linewidth=2, zorder=4)
            if len(values) > 1:
                half = stats.t.ppf(0.975, len(values) - 1) * values.std(ddof=1) / math.sqrt(len(values))
                panel.errorbar(i + 0.3, mean, yerr=half, color="black", capsize=3, linewidth=1.2, zorder=4)
        panel.set_xticks(range(len(conditions)), [str(c) for c in conditions], rotation=45, ha="right")
        panel.set_ylabel(f"{value_key} (donor mean)")
        if group is not None:
            panel.set_title(str(group))
    return _finish(fig, axes[0] if len(axes) == 1 else axes, show=show, save=save)


def forest(
    results: pd.DataFrame,
    *,
    label_columns: Sequence[str] | None = None,
    alpha: float = 0.05,
    ax: Any = None,
    show: bool | None = None,
    save: str | Path | None = None,
) -> Any:
    """Forest plot of :func:`noa.tl.compare_conditions` effects with their 95% CIs.

    Rows with ``qvalue < alpha`` are drawn in red. Comparisons with a single donor on a side
    have no CI (one donor says nothing about donor-to-donor variation): they are drawn as open
    grey diamonds, point only, and the legend says why. Comparisons without an estimate (no
    sample on a side) are left out and counted in the legend, never drawn as empty rows. A
    label column that is the same on every row (e.g. the gene set) is left out of the labels
    and named in the axes title instead.

    Parameters
    ----------
    results
        Output of :func:`noa.tl.compare_conditions` (``effect``, ``ci_low``, ``ci_high``).
    label_columns
        Columns joined into the row labels (default: ``variable``, ``group`` when present,
        ``condition``).
    alpha
        q-value threshold for highlighting.
    ax, show, save
        As in scanpy.

    Returns
    -------
    matplotlib Axes; ``ax.noa_n_significant`` holds the number of red rows (the caller can
    title the figure honestly).
    """
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    results = _as_frame(results, "results")
    check_frame_columns(results, ["effect", "ci_low", "ci_high"], name="results")
    if label_columns is None:
        label_columns = [c for c in ("variable", "group", "condition") if c in results.columns and results[c].notna().any()]
    check_frame_columns(results, label_columns, name="results")
    estimated = results["effect"].notna().to_numpy()
    n_missing = int((~estimated).sum())
    results = results[estimated].reset_index(drop=True)
    constant = [c for c in label_columns if len(results) > 1 and results[c].astype(str).nunique() == 1]
    varying = [c for c in label_columns if c not in constant]
    labels = [" / ".join(row) for row in results[varying].astype(str).itertuples(index=False, name=None)] \
        if varying else [str(i) for i in results.index]
    n = len(results)
    if ax is None:
        fig, ax = plt.subplots(figsize=(6.0, 0.32 * max(n, 1) + 1.4))
    else:
        fig = ax.figure
    y = np.arange(n)[::-1]
    q = results["qvalue"].to_numpy(dtype=float) if "qvalue" in results.columns else np.full(n, np.nan)
    significant = np.isfinite(q) & (q < alpha)
    colour = np.where(significant, "tab:red", "tab:blue")
    effect = results["effect"].to_numpy(dtype=float)
    low = results["ci_low"].to_numpy(dtype=float)
    high = results["ci_high"].to_numpy(dtype=float)
    has_ci = np.isfinite(low) & np.isfinite(high)
    ax.hlines(y[has_ci], low[has_ci], high[has_ci], color=colour[has_ci], linewidth=1.5)
    ax.scatter(effect[has_ci], y[has_ci], color=colour[has_ci], s=30, zorder=3)
    ax.scatter(effect[~has_ci], y[~has_ci], facecolor="white", edgecolor="grey", marker="D", s=30, zorder=3)
    ax.axvline(0.0, color="grey", linestyle="--", linewidth=1)
    ax.set_yticks(y, labels)
    ax.set_xlabel("effect (difference of donor means) and 95% CI")
    if not n:
        ax.text(0.5, 0.5, "no comparison could be estimated\n(no donors on a side)", transform=ax.transAxes,
                ha="center", va="center", color="#57606a")
    handles = [Line2D([], [], color="tab:blue", marker="o", label=f"q >= {alpha:g}")]
    if significant.any():
        handles.insert(0, Line2D([], [], color="tab:red", marker="o", label=f"q < {alpha:g}"))
    if (~has_ci).any():
        handles.append(Line2D([], [], color="grey", marker="D", markerfacecolor="white", linestyle="none",
                              label="one donor on a side: no CI"))
    if n_missing:
        handles.append(Line2D([], [], linestyle="none", label=f"{n_missing} comparison(s) without donors not shown"))
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    if constant:
        ax.set_title(", ".join(str(results[c].iloc[0]) for c in constant), fontsize=10)
    ax.noa_n_significant = int(significant.sum())
    return _finish(fig, ax, show=show, save=save)


def enrichment(
    results: pd.DataFrame,
    *,
    fdr_cap: float = 1e-3,
    top: int | None = None,
    cmap: str = "RdBu_r",
    ax: Any = None,
    show: bool | None = None,
    save: str | Path | None = None,
) -> Any:
    """Dot plot of :func:`noa.tl.enrichment` results.

    Gene sets on the y axis, cell type x condition on the x axis; colour = NES (red: higher in
    the condition), dot size = :math:`-\\log_{10}` FDR (capped at ``fdr_cap``).

    Parameters
    ----------
    results
        Output of :func:`noa.tl.enrichment` (``cell_type``, ``condition``, ``gene_set``, ``nes``,
        ``fdr``).
    fdr_cap
        Smallest FDR for the size scale.
    top
        Keep the ``top`` gene sets by largest absolute NES.
    ax, show, save
        As in scanpy.

    Returns
    -------
    matplotlib Axes
    """
    import matplotlib.pyplot as plt

    results = _as_frame(results, "results")
    check_frame_columns(results, ["cell_type", "condition", "gene_set", "nes", "fdr"], name="results")
    if results.empty:
        raise ValueError("`results` is empty; nothing to plot (enrichment found no comparable cell type).")
    table = results.assign(column=results["cell_type"].astype(str) + " / " + results["condition"].astype(str))
    if top is not None:
        strongest = table.groupby("gene_set")["nes"].apply(lambda s: s.abs().max()).nlargest(int(top)).index
        table = table[table["gene_set"].isin(strongest)]
    columns = list(pd.unique(table["column"]))
    rows = list(table.groupby("gene_set")["nes"].mean().sort_values().index)
    x = table["column"].map({c: i for i, c in enumerate(columns)}).to_numpy()
    y = table["gene_set"].map({r: i for i, r in enumerate(rows)}).to_numpy()
    def dot_size(fdr_values: np.ndarray) -> np.ndarray:
        clipped = np.clip(np.nan_to_num(np.asarray(fdr_values, dtype=float), nan=1.0), fdr_cap, 1.0)
        return 20 + 180 * (-np.log10(clipped) / -math.log10(fdr_cap))

    size = dot_size(table["fdr"].to_numpy(dtype=float))
    nes = table["nes"].to_numpy(dtype=float)
    limit = float(np.nanmax(np.abs(nes))) if np.isfinite(nes).any() else 1.0
    if ax is None:
        fig, ax = plt.subplots(figsize=(0.75 * len(columns) + 5, 0.36 * len(rows) + 2.2))
    else:
        fig = ax.figure
    points = ax.scatter(x, y, c=nes, s=size, cmap=cmap, vmin=-limit, vmax=limit, edgecolor="black", linewidth=0.3)
    ax.set_xticks(range(len(columns)), columns, rotation=90, fontsize=10)
    ax.set_yticks(range(len(rows)), rows, fontsize=10)
    ax.set_xlim(-0.6, len(columns) - 0.4)
    ax.set_ylim(-0.6, len(rows) - 0.4)
    fig.colorbar(points, ax=ax, fraction=0.046, pad=0.02, label="NES")
    # dot-size key: the FDR each size stands for (sizes are capped at fdr_cap)
    steps = [1.0] + [10.0 ** -k for k in range(1, int(round(-math.log10(fdr_cap))) + 1)]
    handles = [ax.scatter([], [], s=float(dot_size(np.array([f]))[0]), color="white", edgecolor="black",
                          linewidth=0.6, label=f"{f:g}" + (" or less" if f == fdr_cap else "")) for f in steps]
    ax.legend(handles=handles, title="FDR", loc="upper left", bbox_to_anchor=(1.25, 1.0), frameon=False,
              fontsize=9, title_fontsize=9, labelspacing=1.1, borderpad=0.8)
    return _finish(fig, ax, show=show, save=save)


def confusion_matrix(
    truth: Sequence[Any] | pd.Series,
    predicted: Sequence[Any] | pd.Series,
    *,
    labels: Sequence[Any] | None = None,
    normalize: str | None = "true",
    annotate: bool = True,
    cmap: str = "Blues",
    ax: Any = None,
    show: bool | None = None,
    save: str | Path | None = None,
) -> Any:
    """Confusion matrix of predicted vs true labels (rows: truth, columns: prediction).

    Parameters
    ----------
    truth, predicted
        Label sequences of equal length.
    labels
        Label order (default: the vocabulary order for known cell types, then the rest).
    normalize
        ``"true"`` (rows sum to 1, i.e. recall per true type), ``"pred"``, ``"all"`` or None
        (counts), as in :func:`sklearn.metrics.confusion_matrix`.
    annotate
        Write the values in the cells.
    ax, show, save
        As in scanpy.

    Returns
    -------
    matplotlib Axes
    """
    import matplotlib.pyplot as plt
    from sklearn.metrics import confusion_matrix as sk_confusion

    truth = np.asarray(pd.Series(truth).astype(str))
    predicted = np.asarray(pd.Series(predicted).astype(str))
    if len(truth) != len(predicted):
        raise ValueError(f"`truth` has {len(truth)} labels but `predicted` has {len(predicted)}; they must match.")
    if labels is None:
        seen = set(truth) | set(predicted)
        labels = [t for t in CELL_TYPES if t in seen] + sorted(seen - set(CELL_TYPES))
    labels = [str(label) for label in labels]
    matrix = sk_confusion(truth, predicted, labels=labels, normalize=normalize)
    if ax is None:
        fig, ax = plt.subplots(figsize=(0.5 * len(labels) + 2.5, 0.5 * len(labels) + 2))
    else:
        fig = ax.figure
    image = ax.imshow(matrix, cmap=cmap, vmin=0)
    ax.set_xticks(range(len(labels)), labels, rotation=90)
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("truth")
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.02)
    if annotate:
        threshold = matrix.max() / 2 if matrix.size else 0
        for (i, j), value in np.ndenumerate(matrix):
            if value:
                text = f"{value:.2f}" if normalize else f"{int(value)}"
                ax.text(j, i, text, ha="center", va="center", fontsize=6, color="white" if value > threshold else "black")
    return _finish(fig, ax, show=show, save=save)
