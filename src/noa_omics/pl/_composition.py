"""Plots of donor-level composition (:func:`noa_omics.tl.compare_composition`)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .._validation import check_frame_columns
from ._utils import finish

__all__ = ["composition_bars", "composition_effects"]


def _counts(result: pd.DataFrame) -> pd.DataFrame:
    counts = result.attrs.get("counts") if isinstance(result, pd.DataFrame) else None
    if not counts:
        raise ValueError(
            "the table carries no per-sample counts (attrs['counts']); pass the DataFrame returned by "
            "noa.tl.compare_composition."
        )
    return pd.DataFrame.from_dict(counts, orient="index").fillna(0)


def composition_bars(
    result: pd.DataFrame,
    *,
    conditions: Mapping[str, Any] | pd.Series | None = None,
    cmap: str = "tab20",
    ax: Any = None,
    show: bool | None = None,
    save: str | Path | None = None,
) -> Any:
    """Stacked bars of the proportions per donor (one bar per sample, one colour per category).

    Parameters
    ----------
    result
        Output of :func:`noa_omics.tl.compare_composition` (its ``attrs["counts"]``).
    conditions
        Sample -> condition, to order the bars by condition and label the groups.
    cmap
        Matplotlib colour map of the categories.
    ax, show, save
        As in scanpy.

    Returns
    -------
    matplotlib Axes
    """
    import matplotlib.pyplot as plt

    counts = _counts(result)
    props = counts.div(counts.sum(axis=1).replace(0, np.nan), axis=0).fillna(0)
    order = list(props.index)
    labels = order
    if conditions is not None:
        cond = pd.Series(conditions).astype(str).reindex(order)
        order = sorted(order, key=lambda s: (str(cond.get(s)), s))
        labels = [f"{s}\n{cond.get(s)}" for s in order]
    props = props.loc[order]
    if ax is None:
        _, ax = plt.subplots(figsize=(0.45 * len(order) + 3.5, 3.5))
    colors = plt.get_cmap(cmap)(np.linspace(0, 1, max(props.shape[1], 2)))
    bottom = np.zeros(len(order))
    for j, name in enumerate(props.columns):
        ax.bar(range(len(order)), props[name].to_numpy(), bottom=bottom, color=colors[j], label=str(name), width=0.85)
        bottom += props[name].to_numpy()
    ax.set_xticks(range(len(order)), labels, rotation=90, fontsize=7)
    ax.set_ylim(0, 1)
    ax.set_ylabel("proportion of cells")
    level = result.attrs.get("params", {}).get("level", "")
    ax.set_title(f"composition per donor ({level})" if level else "composition per donor")
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=7, frameon=False)
    return finish(ax.figure, ax, show=show, save=save)


def composition_effects(
    result: pd.DataFrame,
    *,
    condition: Any = None,
    alpha: float = 0.05,
    ax: Any = None,
    show: bool | None = None,
    save: str | Path | None = None,
) -> Any:
    """Forest plot of the composition effects with their intervals, one row per category.

    Parameters
    ----------
    result
        Output of :func:`noa_omics.tl.compare_composition`.
    condition
        Condition to show (default: every condition, as separate markers).
    alpha
        Rows with ``qvalue`` < alpha are drawn filled, the others open.
    ax, show, save
        As in scanpy.

    Returns
    -------
    matplotlib Axes
    """
    import matplotlib.pyplot as plt

    check_frame_columns(result, ["cell_type", "condition", "effect", "ci_low", "ci_high", "qvalue"], name="result")
    table = result if condition is None else result[result["condition"] == condition]
    if table.empty:
        raise ValueError(f"no row for condition {condition!r}; conditions: {sorted(map(str, result['condition'].unique()))}.")
    types = list(dict.fromkeys(table["cell_type"]))
    conds = list(dict.fromkeys(table["condition"]))
    if ax is None:
        _, ax = plt.subplots(figsize=(5, 0.32 * len(types) * max(1, len(conds) ** 0.5) + 1.2))
    markers = "osD^v<>"
    offsets = np.linspace(-0.25, 0.25, len(conds)) if len(conds) > 1 else [0.0]
    for k, cond in enumerate(conds):
        sub = table[table["condition"] == cond].set_index("cell_type").reindex(types)
        y = np.arange(len(types)) + offsets[k]
        sig = (sub["qvalue"] < alpha).to_numpy()
        ax.hlines(y, sub["ci_low"], sub["ci_high"], color=f"C{k}", lw=1.2)
        ax.scatter(sub["effect"][sig], y[sig], color=f"C{k}", marker=markers[k % len(markers)], zorder=3,
                   label=str(cond) if sig.any() else None)
        ax.scatter(sub["effect"][~sig], y[~sig], facecolor="white", edgecolor=f"C{k}", marker=markers[k % len(markers)],
                   zorder=3, label=None if sig.any() else str(cond))
    ax.axvline(0, color="black", lw=0.8)
    ax.set_yticks(range(len(types)), types)
    ax.invert_yaxis()
    scale = str(table["transform"].iloc[0]) if "transform" in table.columns else ""
    ax.set_xlabel({"logit": "log odds ratio vs reference", "asin_sqrt": "difference in arcsin sqrt(p)"}.get(scale, "effect"))
    ax.set_title(f"composition effects (filled: q < {alpha:g})")
    if len(conds) > 1:
        ax.legend(fontsize=7, frameon=False, loc="best")
    return finish(ax.figure, ax, show=show, save=save)
