"""Agreement of a tubule segmentation with a reference annotation: ``tubule_agreement``."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import adjusted_rand_score

__all__ = ["tubule_agreement", "tubule_recovery"]


def _labels(values: pd.Series | np.ndarray, name: str) -> pd.Series:
    if isinstance(values, pd.Series):
        series = values
    else:
        series = pd.Series(np.asarray(values, dtype=object))
    series = series.astype(object).where(series.notna(), None)
    return series.rename(name)


def _aligned(predicted, reference) -> tuple[pd.Series, pd.Series]:
    pred = _labels(predicted, "predicted")
    ref = _labels(reference, "reference")
    if isinstance(predicted, pd.Series) and isinstance(reference, pd.Series):
        if not pred.index.equals(ref.index):
            if not ref.index.isin(pred.index).all():
                raise ValueError(
                    "`predicted` and `reference` are Series with different indices; give both "
                    "for the same cells (e.g. two columns of `adata.obs`)."
                )
            pred = pred.reindex(ref.index)
    elif len(pred) != len(ref):
        raise ValueError(f"`predicted` has {len(pred)} cells and `reference` {len(ref)}; give one label per cell.")
    else:
        pred.index = ref.index
    if ref.notna().sum() == 0:
        raise ValueError("`reference` assigns no cell to a tubule; nothing to compare against.")
    return pred, ref


def tubule_recovery(
    predicted: pd.Series | np.ndarray,
    reference: pd.Series | np.ndarray,
    *,
    min_coverage: float = 0.8,
    min_purity: float = 0.8,
    split_fraction: float = 0.2,
) -> pd.DataFrame:
    """Per reference tubule: how the prediction covers it (one row per reference tubule).

    For reference tubule :math:`t` and predicted tubule :math:`p`, the coverage is
    :math:`|t \\cap p| / |t|` and the purity :math:`|t \\cap p| / |p|` (over the cells given).
    :math:`t` is ``recovered`` whole when its best predicted tubule (largest overlap) has
    coverage :math:`\\ge` ``min_coverage`` and purity :math:`\\ge` ``min_purity``. Otherwise it
    is ``missed`` when fewer than half of its cells are in any predicted tubule, ``split`` when
    two or more predicted tubules each hold at least ``split_fraction`` of it, ``merged`` when
    its best predicted tubule is impure (purity below ``min_purity``).

    Columns: ``tubule``, ``n_cells``, ``best``, ``coverage``, ``purity``, ``assigned``,
    ``recovered``, ``split``, ``merged``, ``missed``.
    """
    pred, ref = _aligned(predicted, reference)
    for name, value in (("min_coverage", min_coverage), ("min_purity", min_purity),
                        ("split_fraction", split_fraction)):
        if not 0 < value <= 1:
            raise ValueError(f"`{name}` must be in (0, 1], got {value}.")
    pred_size = pred.value_counts(dropna=True)
    inside = ref.notna()
    frame = pd.DataFrame({"ref": ref[inside].astype(str), "pred": pred[inside]})
    n_cells = frame.groupby("ref").size()
    assigned = frame["pred"].notna().groupby(frame["ref"]).sum()
    overlap = frame.dropna(subset=["pred"]).groupby(["ref", "pred"]).size().rename("n").reset_index()
    overlap = overlap.sort_values(["ref", "n", "pred"], ascending=[True, False, True], kind="stable")
    best = overlap.drop_duplicates("ref").set_index("ref")
    big_parts = overlap.assign(frac=overlap["n"] / overlap["ref"].map(n_cells))
    n_big = big_parts[big_parts["frac"] >= split_fraction].groupby("ref").size()

    out = pd.DataFrame({"tubule": n_cells.index, "n_cells": n_cells.to_numpy()}).set_index("tubule", drop=False)
    out["best"] = best["pred"].reindex(out.index)
    n_best = best["n"].reindex(out.index).fillna(0).to_numpy()
    out["coverage"] = n_best / out["n_cells"].to_numpy()
    sizes = out["best"].map(pred_size).astype(float).fillna(np.inf).to_numpy()
    out["purity"] = np.where(np.isfinite(sizes), n_best / np.where(np.isfinite(sizes), sizes, 1), 0.0)
    out["assigned"] = assigned.reindex(out.index).fillna(0).to_numpy() / out["n_cells"].to_numpy()
    out["recovered"] = (out["coverage"] >= min_coverage) & (out["purity"] >= min_purity)
    out["missed"] = ~out["recovered"] & (out["assigned"] < 0.5)
    out["split"] = ~out["recovered"] & ~out["missed"] & (n_big.reindex(out.index).fillna(0).to_numpy() >= 2)
    out["merged"] = ~out["recovered"] & ~out["missed"] & (out["purity"] < min_purity)
    return out.reset_index(drop=True)


def tubule_agreement(
    predicted: pd.Series | np.ndarray,
    reference: pd.Series | np.ndarray,
    *,
    cells: pd.Series | np.ndarray | None = None,
    min_coverage: float = 0.8,
    min_purity: float = 0.8,
    split_fraction: float = 0.2,
) -> pd.Series:
    """Agreement of predicted tubule ids with reference tubule ids (e.g. a pathologist's outlines).

    Parameters
    ----------
    predicted, reference
        Tubule id per cell (NA outside tubules): two ``obs`` columns, or equal-length arrays.
    cells
        Boolean mask (per cell, aligned like ``reference``) of the cells to compare, e.g. the
        epithelial cells; default every cell.
    min_coverage, min_purity
        Whole-recovery thresholds (see :func:`tubule_recovery`).
    split_fraction
        Smallest share of a reference tubule that counts as a piece when it is split.

    Returns
    -------
    pandas.Series
        ``n_reference``, ``n_predicted``, ``recovered_fraction`` (reference tubules recovered whole:
        one predicted tubule covering :math:`\\ge` 80 % of its cells at :math:`\\ge` 80 % purity),
        ``ari`` (adjusted Rand index over the cells inside reference tubules, predicted NA as one
        label), ``n_split``, ``n_merged``, ``n_missed``, ``interstitial_assigned`` (fraction of
        cells outside reference tubules that the prediction puts in a tubule).

    Examples
    --------
    >>> import pandas as pd
    >>> ref = pd.Series(["a", "a", "b", "b", None])
    >>> pred = pd.Series(["x", "x", "y", "y", None])
    >>> float(tubule_agreement(pred, ref)["recovered_fraction"])
    1.0
    """
    pred, ref = _aligned(predicted, reference)
    if cells is not None:
        mask = np.asarray(cells, dtype=bool)
        if mask.shape != (len(ref),):
            raise ValueError(f"`cells` must be a boolean mask of length {len(ref)}, got shape {mask.shape}.")
        pred, ref = pred[mask], ref[mask]
    table = tubule_recovery(pred, ref, min_coverage=min_coverage, min_purity=min_purity,
                            split_fraction=split_fraction)
    inside = ref.notna().to_numpy()
    pred_str = pred.astype(object).where(pred.notna(), "__NA__").astype(str).to_numpy()
    ari = adjusted_rand_score(ref[inside].astype(str).to_numpy(), pred_str[inside])
    outside = ~inside
    return pd.Series({
        "n_reference": int(len(table)),
        "n_predicted": int(pred.dropna().nunique()),
        "recovered_fraction": float(table["recovered"].mean()),
        "ari": float(ari),
        "n_split": int(table["split"].sum()),
        "n_merged": int(table["merged"].sum()),
        "n_missed": int(table["missed"].sum()),
        "interstitial_assigned": float(pred[outside].notna().mean()) if outside.any() else 0.0,
    }, name="tubule_agreement")
