"""Plots of per-cell gene-set scores."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from anndata import AnnData

from .._validation import _preview, check_adata
from ._utils import finish as _finish

__all__ = ["score_embedding"]


def _score_values(adata: AnnData, name: str, score_key: str | None) -> np.ndarray:
    from ..celltypes._utils import find_value

    return np.asarray(find_value(adata, name, score_key), dtype=float)


def score_embedding(
    adata: AnnData,
    sets: str | Sequence[str],
    *,
    basis: str = "umap",
    score_key: str | None = None,
    ncols: int = 3,
    cmap: str = "viridis",
    point_size: float | None = None,
    vmin: float | str | None = None,
    vmax: float | str | None = "p99",
    ax: Any = None,
    show: bool | None = None,
    save: str | Path | None = None,
) -> Any:
    """Gene-set scores coloured on a 2-D embedding, one panel per set.

    Parameters
    ----------
    adata
        Annotated data with coordinates in ``obsm["X_" + basis]`` (or ``obsm[basis]``).
    sets
        Gene-set name(s), looked up in ``obs`` then in the score tables of ``obsm``
        (e.g. ``obsm["noa_score_genes"]``), or in ``obsm[score_key]``.
    basis
        Embedding name (``"umap"``, ``"pca"``, ``"spatial"``, ...).
    score_key
        obsm key of the score table.
    ncols
        Panels per row.
    cmap, point_size
        Colour map and marker size (default ``120000 / n_cells``, capped to 1..20).
    vmin, vmax
        Colour limits; ``"pNN"`` means the NN-th percentile of each panel (default ``vmax="p99"``).
    ax
        Axes to draw into (a single set only).
    show, save
        Show the figure (then return None) / save it to this path.

    Returns
    -------
    matplotlib Axes (one set) or list of Axes.
    """
    import matplotlib.pyplot as plt

    check_adata(adata)
    names = [sets] if isinstance(sets, str) else list(sets)
    if not names:
        raise ValueError("`sets` is empty; pass at least one gene-set name.")
    key = basis if basis in adata.obsm else f"X_{basis}"
    if key not in adata.obsm:
        raise KeyError(
            f"no embedding {basis!r} (looked for `adata.obsm[{basis!r}]` and `adata.obsm['X_{basis}']`); available: "
            f"{_preview(adata.obsm.keys())}. Compute it first, e.g. scanpy.tl.umap(adata)."
        )
    coords = np.asarray(adata.obsm[key])[:, :2]
    values = {name: _score_values(adata, name, score_key) for name in names}
    if ax is not None and len(names) > 1:
        raise ValueError("`ax` can only be given for a single set; omit it to get one panel per set.")
    size = point_size if point_size is not None else float(np.clip(120_000 / max(adata.n_obs, 1), 1, 20))
    if ax is None:
        ncols = max(1, min(int(ncols), len(names)))
        nrows = math.ceil(len(names) / ncols)
        fig, grid = plt.subplots(nrows, ncols, figsize=(4.4 * ncols, 3.8 * nrows), squeeze=False, layout="constrained")
        axes = list(grid.ravel())
        for extra in axes[len(names):]:
            extra.set_visible(False)
        axes = axes[: len(names)]
    else:
        fig, axes = ax.figure, [ax]
    for panel, name in zip(axes, names):
        v = values[name]
        order = np.argsort(np.where(np.isfinite(v), v, -np.inf), kind="mergesort")  # high scores on top
        lo, hi = _limit(v, vmin), _limit(v, vmax)
        points = panel.scatter(
            coords[order, 0], coords[order, 1], c=v[order], s=size, cmap=cmap, vmin=lo, vmax=hi, linewidths=0,
            rasterized=True,
        )
        fig.colorbar(points, ax=panel, fraction=0.046, pad=0.02)
        panel.set_title(name)
        panel.set_xticks([])
        panel.set_yticks([])
        panel.set_xlabel(f"{basis}1")
        panel.set_ylabel(f"{basis}2")
    return _finish(fig, axes[0] if len(axes) == 1 else axes, show=show, save=save)


def _limit(values: np.ndarray, spec: float | str | None) -> float | None:
    if spec is None:
        return None
    if isinstance(spec, str):
        if not spec.startswith("p"):
            raise ValueError(f"colour limit {spec!r} not understood; use a number or 'pNN' (percentile).")
        finite = values[np.isfinite(values)]
        return float(np.percentile(finite, float(spec[1:]))) if finite.size else None
    return float(spec)


def _as_frame(data: Any, name: str) -> pd.DataFrame:
    if not isinstance(data, pd.DataFrame):
        raise TypeError(f"`{name}` must be a pandas DataFrame, got {type(data).__name__}.")
    return data
