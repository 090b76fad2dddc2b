"""Plots of the multi-hit model (:func:`noa_omics.tl.multihit`)."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.patches import Patch

from .._vocabulary import APOPTOSIS_CONTEXTS, AXES
from ._utils import CONTEXT_COLORS, HISTOLOGY_COLORS, finish

#: Background of heatmap cells without a value.
NAN_COLOR = "#EEEEEE"

__all__ = ["multihit_heatmap", "multihit_profile"]

def _table(table) -> pd.DataFrame:
    """Accept the multihit DataFrame, or an AnnData holding it in ``uns["noa_multihit"]``."""
    if isinstance(table, pd.DataFrame):
        return table
    uns = getattr(table, "uns", None)
    if uns is not None and "noa_multihit" in uns:
        stored = uns["noa_multihit"]["table"]
        frame = pd.DataFrame(stored)
        return frame.set_index(frame.columns[0])
    raise TypeError(
        "pass the DataFrame returned by noa.tl.multihit (or an AnnData with uns['noa_multihit']), "
        f"got {type(table).__name__}."
    )


def _check_columns(table: pd.DataFrame, columns: Sequence[str]) -> None:
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise KeyError(
            f"column(s) {missing} not in the table; pass the DataFrame returned by noa.tl.multihit."
        )


def multihit_heatmap(
    table,
    *,
    columns: Sequence[str] | None = None,
    vmax: float | None = None,
    cmap: str = "RdBu_r",
    annotate: bool = True,
    ax: Axes | None = None,
    show: bool | None = None,
    save: str | None = None,
) -> Axes | None:
    """Donor x axis heatmap of robust z-scores, with the apoptosis context of each donor.

    Parameters
    ----------
    table
        Result of :func:`noa_omics.tl.multihit` (or an AnnData holding it).
    columns
        Columns to show (default: the six axes and ``germ_apoptosis``).
    vmax
        Colour limit (symmetric); default the 95th percentile of :math:`|z|`, at least 2.
    cmap
        Diverging colour map.
    annotate
        Write the z values in the cells.
    ax, show, save
        Matplotlib axes to draw on; show the figure; path to save it.

    Returns
    -------
    The axes (None when ``show=True``). Two labelled colour strips on the right give each donor's
    histology and apoptosis context; rows read ``donor (condition)`` when the table has a
    ``condition`` column; blank cells (not evaluable) are explained in the legend. With the
    stability columns of :func:`noa_omics.tl.multihit_stability`, unstable calls are hatched and
    each donor label gets the fraction of resamples behind the call.
    """
    table = _table(table)
    columns = list(columns) if columns is not None else list(AXES) + (
        ["germ_apoptosis"] if "germ_apoptosis" in table.columns else []
    )
    _check_columns(table, columns)
    values = table[columns].astype(float)
    if ax is None:
        _, ax = plt.subplots(figsize=(0.8 * len(columns) + 4.5, 0.35 * len(values) + 1.8))
    finite = np.abs(values.to_numpy()[np.isfinite(values.to_numpy())])
    if vmax is None:
        vmax = max(2.0, float(np.percentile(finite, 95))) if finite.size else 2.0
    data = np.ma.masked_invalid(values.to_numpy())
    image = ax.imshow(data, cmap=cmap, vmin=-vmax, vmax=vmax, aspect="auto", interpolation="nearest")
    ax.set_xticks(range(len(columns)), [c.replace("_", " ") for c in columns], rotation=45, ha="right")
    ax.set_yticks(range(len(values)), _row_labels(table))
    ax.set_facecolor(NAN_COLOR)  # NaN cells (not evaluable), explained in the legend
    if annotate:
        for i in range(values.shape[0]):
            for j in range(values.shape[1]):
                v = values.iat[i, j]
                if np.isfinite(v):
                    ax.text(j, i, f"{v:.1f}", ha="center", va="center", fontsize=7,
                            color="white" if abs(v) > 0.6 * vmax else "black")
    handles: list = []
    strips = [(key, colours) for key, colours in (("histology", HISTOLOGY_COLORS), ("apoptosis_context", CONTEXT_COLORS))
              if key in table.columns]
    n_col = len(columns)
    unstable = (table["unstable"].astype(bool).to_numpy() if "unstable" in table.columns
                else np.zeros(len(table), dtype=bool))
    for k, (key, colours) in enumerate(strips):
        left = n_col - 0.5 + 0.15 + 0.6 * k
        for i, value in enumerate(table[key].astype(str)):
            hatched = key == "apoptosis_context" and bool(unstable[i])
            ax.add_patch(plt.Rectangle((left, i - 0.5), 0.5, 1.0, facecolor=colours.get(value, "#FFFFFF"),
                                       clip_on=False, hatch="///" if hatched else None,
                                       edgecolor="black" if hatched else "none"))
        ax.text(left + 0.25, len(values) - 0.5 + 0.2, key.replace("apoptosis_", "").replace("_", " "),
                rotation=45, ha="right", va="top", fontsize=9)
        present = set(table[key].astype(str))
        handles.append(Patch(color="none", label=key.replace("_", " ")))
        handles += [Patch(color=c, label="  " + v.replace("_", " ")) for v, c in colours.items() if v in present]
    if "context_stability" in table.columns:
        labels = list(_row_labels(table))
        ax.set_yticks(range(len(values)), [
            f"{label} ({p:.0%}{', unstable' if u else ''})"
            for label, p, u in zip(labels, table["context_stability"], unstable)])
        if unstable.any():
            handles.append(Patch(facecolor="white", edgecolor="black", hatch="///",
                                 label="unstable call\n(share of resamples\nin brackets)"))
    ax.set_xlim(-0.5, n_col - 0.5)
    if values.isna().to_numpy().any():
        handles.append(Patch(facecolor=NAN_COLOR, edgecolor="#999999",
                             label="blank: not evaluable\n(too few cells or no input;\nsee missing_ingredients)"))
    bar = ax.figure.colorbar(image, ax=ax, label="robust z vs reference", fraction=0.04,
                             pad=0.03 + 0.09 * len(strips))
    if handles:
        # right of the colour bar, in the colour bar's own coordinates, so nothing overlaps
        bar.ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(4.5, 1.0), fontsize=8,
                      frameon=False, handlelength=1.2)
    ax.set_title("multi-hit profile per donor")
    return finish(ax.figure, ax, show=show, save=save)


def _row_labels(table: pd.DataFrame) -> list[str]:
    """Donor ids with their condition (``D04 (sertoli cell only)``) when the table has one."""
    if "condition" not in table.columns:
        return [str(i) for i in table.index]
    return [f"{i} ({str(c).replace('_', ' ')})" for i, c in zip(table.index, table["condition"])]


def multihit_profile(
    table,
    sample: str,
    *,
    kind: str = "bar",
    threshold: float | None = 3.0,
    ax: Axes | None = None,
    show: bool | None = None,
    save: str | None = None,
) -> Axes | None:
    """Multi-hit profile of one donor: a bar chart (or radar) of its axis z-scores.

    Parameters
    ----------
    table
        Result of :func:`noa_omics.tl.multihit` (or an AnnData holding it).
    sample
        Row (sample id) to plot.
    kind
        ``"bar"`` (axes and germ apoptosis, NaN shown as "n/a") or ``"radar"`` (axes only).
    threshold
        Dashed line at this z (the default rule threshold), None for none.
    ax, show, save
        Matplotlib axes (polar for ``kind="radar"``); show; path to save.

    Returns
    -------
    The axes (None when ``show=True``); the title gives the apoptosis context and histology. With
    the columns of :func:`noa_omics.tl.multihit_stability` the bars carry their percentile
    intervals and the title the call's stability.
    """
    table = _table(table)
    if sample not in table.index:
        raise KeyError(f"sample {sample!r} not in the table; samples: {list(table.index)[:20]}.")
    if kind not in ("bar", "radar"):
        raise ValueError(f"unknown kind {kind!r}; use 'bar' or 'radar'.")
    row = table.loc[sample]
    title = str(sample)
    if "apoptosis_context" in table.columns:
        title += f": {row['apoptosis_context'].replace('_', ' ')}"
        if "context_stability" in table.columns:
            title += f" [{float(row['context_stability']):.0%} of resamples]"
    if "histology" in table.columns:
        title += f" ({str(row['histology']).replace('_', ' ')})"
    color = CONTEXT_COLORS.get(str(row.get("apoptosis_context", "")), "#777777")
    if kind == "bar":
        columns = list(AXES) + (["germ_apoptosis"] if "germ_apoptosis" in table.columns else [])
        _check_columns(table, columns)
        values = row[columns].astype(float)
        if ax is None:
            _, ax = plt.subplots(figsize=(5, 3))
        x = np.arange(len(columns))
        ax.bar(x, np.nan_to_num(values.to_numpy()), color=[color if np.isfinite(v) else "#DDDDDD" for v in values])
        if all(f"{c}_low" in table.columns for c in columns):  # multihit_stability intervals
            low = row[[f"{c}_low" for c in columns]].astype(float).to_numpy()
            high = row[[f"{c}_high" for c in columns]].astype(float).to_numpy()
            ok = np.isfinite(low) & np.isfinite(high)
            ax.vlines(x[ok], low[ok], high[ok], color="black", lw=1.2)
        for xi, v in zip(x, values):
            if not np.isfinite(v):
                ax.text(xi, 0, "n/a", ha="center", va="bottom", fontsize=7)
        ax.axhline(0, color="black", lw=0.8)
        if threshold is not None:
            ax.axhline(threshold, color="black", lw=0.8, ls="--")
        ax.set_xticks(x, [c.replace("_", " ") for c in columns], rotation=45, ha="right")
        ax.set_ylabel("robust z vs reference")
    else:
        _check_columns(table, AXES)
        values = row[list(AXES)].astype(float).to_numpy()
        angles = np.linspace(0, 2 * np.pi, len(AXES), endpoint=False)
        if ax is None:
            _, ax = plt.subplots(figsize=(4, 4), subplot_kw={"projection": "polar"})
        if getattr(ax, "name", "") != "polar":
            raise ValueError("kind='radar' needs a polar axes: plt.subplots(subplot_kw={'projection': 'polar'}).")
        closed = np.append(np.nan_to_num(values), np.nan_to_num(values[:1]))
        ang = np.append(angles, angles[:1])
        ax.plot(ang, closed, color=color)
        ax.fill(ang, closed, color=color, alpha=0.25)
        if threshold is not None:
            ax.plot(ang, np.full_like(ang, threshold), color="black", lw=0.8, ls="--")
        ax.set_xticks(angles, list(AXES), fontsize=9)
        # labels sit outside the outer ring and the ring leaves room above the largest value,
        # so the polygon never runs into its labels
        finite = closed[np.isfinite(closed)]
        top = max([1.0, threshold or 0.0, *(finite.tolist() if finite.size else [])]) * 1.15
        ax.set_ylim(min(0.0, float(finite.min()) if finite.size else 0.0) * 1.15, top)
        ax.tick_params(axis="x", pad=10)
        ax.tick_params(axis="y", labelsize=7)
        ax.set_rlabel_position(90 / len(AXES))
    ax.set_title(title, fontsize=10, pad=18 if kind == "radar" else 6)
    return finish(ax.figure, ax, show=show, save=save)
