"""Plots of seminiferous tubules and their histology (``noa.pl.tubules``, ``noa.pl.histology_composition``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from anndata import AnnData

from .._validation import _preview, check_adata, check_frame_columns, check_obs_key, check_spatial
from .._vocabulary import CELL_TYPES, HISTOLOGIES
from ..spatial._utils import check_tubule_key
from ._utils import HISTOLOGY_COLORS
from ._utils import finish as _finish

__all__ = ["tubules", "histology_composition"]

def _hull(points: np.ndarray) -> np.ndarray | None:
    from scipy.spatial import ConvexHull, QhullError

    if len(points) < 3:
        return None
    try:
        hull = ConvexHull(points)
    except QhullError:
        return None
    return points[hull.vertices]


def tubules(
    adata: AnnData,
    color: str = "histology",
    *,
    tubule_key: str = "noa_tubule",
    cell_type_key: str = "noa_cell_type",
    spatial_key: str = "spatial",
    sample_key: str | None = None,
    sample: str | None = None,
    metrics: pd.DataFrame | None = None,
    cmap: str = "viridis",
    point_size: float | None = None,
    outline_width: float = 1.2,
    legend: bool = True,
    ax: Any = None,
    show: bool | None = None,
    save: str | Path | None = None,
    **metric_kwargs: Any,
) -> Any:
    """Section plot: cells as points and each tubule outlined by the convex hull of its cells.

    Parameters
    ----------
    adata
        Cells with coordinates, cell types and tubule ids (:func:`noa_omics.spatial.assign_tubules`).
    color
        A column of the tubule metrics (``"histology"``, ``"niche_collapse_index"``,
        ``"johnsen_like"``, ...): outlines are coloured by it and cells drawn in grey; or an
        ``obs`` column (e.g. ``"noa_cell_type"``): cells are coloured by it and outlines drawn in
        black.
    tubule_key, cell_type_key, spatial_key
        Keys of tubule ids, cell types and coordinates.
    sample_key, sample
        Plot one section: cells with ``obs[sample_key] == sample``. Needed when ``adata`` holds
        several sections (their coordinates are unrelated).
    metrics
        Output of :func:`noa_omics.spatial.tubule_metrics`; computed when needed and None.
    cmap
        Colormap of continuous values. Outlines are thin lines on white, so the map is used up
        to 85 % of its range (:func:`outline_cmap`): with the default ``viridis`` an intact
        tubule (NCI 0) is dark purple and a collapsed one (NCI 1) yellow-green, both visible.
    point_size
        Marker size of the cells (default from the number of cells).
    outline_width
        Line width of the tubule outlines.
    legend
        Draw a legend or colorbar.
    ax, show, save
        Matplotlib axes to draw in; show the figure; save it to this path.
    **metric_kwargs
        Passed to :func:`noa_omics.spatial.tubule_metrics` when metrics are computed here.

    Returns
    -------
    matplotlib.axes.Axes or None
        The axes (None with ``show=True``).
    """
    import matplotlib.pyplot as plt
    from matplotlib.collections import PolyCollection

    check_adata(adata, min_vars=0)
    coords = check_spatial(adata, spatial_key)
    check_tubule_key(adata, tubule_key)
    keep = np.ones(adata.n_obs, dtype=bool)
    if sample_key is not None:
        check_obs_key(adata, sample_key, what="sample column")
        values = adata.obs[sample_key].astype(str)
        if sample is None:
            if values.nunique() > 1:
                raise ValueError(
                    f"`adata` holds {values.nunique()} samples in {sample_key!r}; pass `sample=` "
                    f"(one of {_preview(sorted(values.unique()))}) to plot one section."
                )
        else:
            keep = (values == str(sample)).to_numpy()
            if not keep.any():
                raise ValueError(f"sample {sample!r} not found in `adata.obs[{sample_key!r}]`.")
    elif sample is not None:
        raise ValueError("`sample` needs `sample_key` (the obs column holding the sample names).")

    tub = adata.obs[tubule_key]
    by_metric = color not in adata.obs.columns
    if by_metric:
        if metrics is None:
            from ..spatial import tubule_metrics

            metrics = tubule_metrics(
                adata, tubule_key=tubule_key, cell_type_key=cell_type_key, spatial_key=spatial_key,
                **metric_kwargs,
            )
        if color not in metrics.columns:
            raise KeyError(
                f"{color!r} is neither a tubule metric ({_preview(metrics.columns)}) nor an `obs` "
                f"column ({_preview(adata.obs.columns)})."
            )

    if ax is None:
        fig, ax = plt.subplots(figsize=(7, 7))
    else:
        fig = ax.figure
    xy = coords[keep]
    size = point_size if point_size is not None else float(np.clip(20000 / max(keep.sum(), 1), 0.3, 12))

    if by_metric:
        ax.scatter(xy[:, 0], xy[:, 1], s=size, c="#BBBBBB", linewidths=0, rasterized=True)
    else:
        _scatter_obs(ax, adata.obs[color][keep], xy, size, cmap, legend)

    ids = tub[keep].astype(object)
    polys, names = [], []
    for name, idx in pd.Series(np.arange(keep.sum())).groupby(ids.to_numpy(), sort=True):
        hull = _hull(xy[idx.to_numpy()])
        if hull is not None:
            polys.append(hull)
            names.append(str(name))

    if by_metric:
        values = metrics[color].reindex(names)
        if isinstance(values.dtype, pd.CategoricalDtype) or values.dtype == object:
            palette = dict(HISTOLOGY_COLORS) if color == "histology" else _palette(values.dropna().unique())
            edge = [palette.get(v, "#000000") if pd.notna(v) else "#000000" for v in values]
            ax.add_collection(PolyCollection(polys, facecolors="none", edgecolors=edge, linewidths=outline_width))
            if legend:
                for label in (HISTOLOGIES if color == "histology" else palette):
                    if label in set(values.dropna()):
                        ax.plot([], [], color=palette[label], lw=2, label=label)
                ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), frameon=False, title=color)
        else:
            numeric = values.astype(float).to_numpy()
            coll = PolyCollection(polys, facecolors="none", linewidths=outline_width, cmap=outline_cmap(cmap))
            coll.set_array(numeric)
            if color == "niche_collapse_index":
                coll.set_clim(0.0, 1.0)
            coll.set_facecolor("none")
            ax.add_collection(coll)
            if legend:
                fig.colorbar(coll, ax=ax, fraction=0.046, pad=0.04, label=color)
    else:
        ax.add_collection(PolyCollection(polys, facecolors="none", edgecolors="black", linewidths=outline_width))

    ax.set_aspect("equal")
    ax.autoscale_view()
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(f"tubules: {color}" + ("" if sample is None else f" ({sample})"))
    return _finish(fig, ax, show=show, save=save)


def outline_cmap(name: str, *, stop: float = 0.85) -> Any:
    """``name`` cut at ``stop`` of its range, so that neither end is a near-white line on white."""
    import matplotlib
    from matplotlib.colors import ListedColormap

    base = matplotlib.colormaps[name]
    return ListedColormap(base(np.linspace(0.0, stop, 256)), name=f"{name}_outline")


def _palette(labels: Any) -> dict[str, Any]:
    import matplotlib.pyplot as plt

    cmap = plt.get_cmap("tab20")
    return {lab: cmap(k % 20) for k, lab in enumerate(labels)}


def _scatter_obs(ax: Any, values: pd.Series, xy: np.ndarray, size: float, cmap: str, legend: bool) -> None:
    if pd.api.types.is_numeric_dtype(values) and not isinstance(values.dtype, pd.CategoricalDtype):
        sc = ax.scatter(xy[:, 0], xy[:, 1], s=size, c=values.to_numpy(dtype=float), cmap=cmap,
                        linewidths=0, rasterized=True)
        if legend:
            ax.figure.colorbar(sc, ax=ax, fraction=0.046, pad=0.04, label=values.name)
        return
    labels = values.astype(object).where(values.notna(), "NA").astype(str)
    order = [t for t in CELL_TYPES if t in set(labels)] + sorted(set(labels) - set(CELL_TYPES))
    palette = _palette(order)
    for lab in order:
        m = (labels == lab).to_numpy()
        ax.scatter(xy[m, 0], xy[m, 1], s=size, color=palette[lab], linewidths=0, label=lab, rasterized=True)
    if legend:
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), frameon=False, markerscale=max(1.0, 6 / size),
                  title=values.name)


def histology_composition(
    summary: pd.DataFrame,
    *,
    ax: Any = None,
    horizontal: bool = False,
    show: bool | None = None,
    save: str | Path | None = None,
) -> Any:
    """Stacked bars of the fraction of tubules per histology, one bar per sample.

    Parameters
    ----------
    summary
        Output of :func:`noa_omics.spatial.niche_summary` (columns ``frac_<histology>``).
    ax, show, save
        Matplotlib axes to draw in; show the figure; save it to this path.
    horizontal
        Horizontal bars (useful with many samples).

    Returns
    -------
    matplotlib.axes.Axes or None
        The axes (None with ``show=True``).
    """
    import matplotlib.pyplot as plt

    if not isinstance(summary, pd.DataFrame):
        raise TypeError(
            f"`summary` must be the DataFrame of `noa.spatial.niche_summary`, got {type(summary).__name__}."
        )
    columns = [f"frac_{h}" for h in HISTOLOGIES]
    check_frame_columns(summary, columns, name="summary")
    if summary.empty:
        raise ValueError("`summary` has no rows (samples) to plot.")
    fractions = summary[columns].astype(float).fillna(0.0)
    if ax is None:
        fig, ax = plt.subplots(figsize=(max(4.0, 0.6 * len(summary) + 2.5), 4.0))
    else:
        fig = ax.figure
    positions = np.arange(len(summary))
    bottom = np.zeros(len(summary))
    for h, col in zip(HISTOLOGIES, columns):
        values = fractions[col].to_numpy()
        if horizontal:
            ax.barh(positions, values, left=bottom, color=HISTOLOGY_COLORS[h], label=h)
        else:
            ax.bar(positions, values, bottom=bottom, color=HISTOLOGY_COLORS[h], label=h)
        bottom += values
    labels = [str(i) for i in summary.index]
    if horizontal:
        ax.set_yticks(positions, labels)
        ax.set_xlabel("fraction of tubules")
        ax.set_xlim(0, 1)
    else:
        ax.set_xticks(positions, labels, rotation=45, ha="right")
        ax.set_ylabel("fraction of tubules")
        ax.set_ylim(0, 1)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), frameon=False, title="histology")
    ax.set_title("tubule histology per sample")
    return _finish(fig, ax, show=show, save=save)
