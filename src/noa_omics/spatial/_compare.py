"""Donor-level comparison of tubule metrics between conditions: ``compare_tubules``."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from .._validation import check_frame_columns

__all__ = ["compare_tubules", "tubules_per_donor"]


def tubules_per_donor(
    metrics: pd.DataFrame,
    *,
    value_key: str | Sequence[str],
    donor_key: str = "donor",
    condition_key: str = "condition",
    groupby: str | None = None,
    aggregate: str = "mean",
) -> pd.DataFrame:
    """Aggregate per-tubule metrics to one row per donor (and ``groupby`` level).

    Parameters
    ----------
    metrics
        Per-tubule table from :func:`~noa_omics.spatial.tubule_metrics`, carrying the donor and
        condition columns (``obs_keys=[donor_key, condition_key]``).
    value_key
        Numeric metric column(s), e.g. ``"niche_collapse_index"``.
    donor_key, condition_key
        Donor and condition columns; every donor must have one condition.
    groupby
        Optional column (e.g. ``"histology"``) to aggregate within.
    aggregate
        ``"mean"`` or ``"median"`` over a donor's tubules.

    Returns
    -------
    pandas.DataFrame
        Columns ``donor_key``, ``condition_key``, ``groupby`` (if given), ``n_tubules`` and the
        aggregated value columns.
    """
    values = [value_key] if isinstance(value_key, str) else list(value_key)
    if not values:
        raise ValueError("`value_key` is empty; name at least one metric column.")
    check_frame_columns(metrics, [donor_key, condition_key, groupby, *values], name="metrics")
    if aggregate not in ("mean", "median"):
        raise ValueError(f"unknown aggregate {aggregate!r}; use 'mean' or 'median'.")
    for v in values:
        if not pd.api.types.is_numeric_dtype(metrics[v]):
            raise ValueError(f"metric column {v!r} is not numeric; compare numeric metrics only.")
    conditions = metrics.groupby(donor_key, observed=True)[condition_key].nunique()
    if (conditions > 1).any():
        bad = list(conditions.index[conditions > 1][:3])
        raise ValueError(
            f"donor(s) {bad} have tubules in more than one {condition_key!r}; the donor is the unit "
            "of comparison, so each donor needs a single condition."
        )
    keys = [donor_key, condition_key] + ([groupby] if groupby is not None else [])
    frame = metrics[keys + values].copy()
    for k in keys:
        frame[k] = frame[k].astype(str)
    grouped = frame.groupby(keys, observed=True, sort=True)
    out = grouped[values].agg(aggregate)
    out.insert(0, "n_tubules", grouped.size())
    return out.reset_index()


def compare_tubules(
    metrics: pd.DataFrame,
    *,
    value_key: str | Sequence[str] = "niche_collapse_index",
    donor_key: str = "donor",
    condition_key: str = "condition",
    reference: str,
    groupby: str | None = None,
    aggregate: str = "mean",
) -> pd.DataFrame:
    """Compare tubule metrics between conditions with the donor as the unit.

    Tubule metrics are first aggregated per donor (:func:`tubules_per_donor`: tubules of a donor
    are not independent replicates), then each metric is compared between conditions by
    :func:`noa_omics.tl.compare_conditions` on the per-donor table (``sample_key=donor_key``).

    Parameters
    ----------
    metrics
        Per-tubule table of :func:`~noa_omics.spatial.tubule_metrics` with donor and condition
        columns (``tubule_metrics(adata, obs_keys=["donor", "condition"], ...)``).
    value_key
        Metric column(s) to compare.
    donor_key, condition_key
        Donor and condition columns.
    reference
        Reference condition (e.g. ``"control"``).
    groupby
        Optional column to compare within (e.g. ``"histology"``).
    aggregate
        ``"mean"`` or ``"median"`` of a donor's tubules.

    Returns
    -------
    pandas.DataFrame
        The result of ``compare_conditions`` (``condition``, ``effect``, ``ci_low``, ``ci_high``,
        ``pvalue``, ``qvalue``, ``n_samples``, ``n_reference_samples`` ...), one block per metric,
        with a ``metric`` column.
    """
    from .. import celltypes  # resolved at call time (upstream module)

    values = [value_key] if isinstance(value_key, str) else list(value_key)
    per_donor = tubules_per_donor(
        metrics,
        value_key=values,
        donor_key=donor_key,
        condition_key=condition_key,
        groupby=groupby,
        aggregate=aggregate,
    )
    if reference not in set(per_donor[condition_key]):
        raise ValueError(
            f"reference condition {reference!r} not found in {condition_key!r}; "
            f"available: {sorted(set(per_donor[condition_key]))}."
        )
    results = []
    for v in values:
        res = celltypes.compare_conditions(
            per_donor,
            value_key=v,
            sample_key=donor_key,
            condition_key=condition_key,
            reference=reference,
            groupby=groupby,
            min_cells=1,  # one row per donor already (its tubules aggregated)
        )
        res = res.copy()
        res.insert(0, "metric", v)
        results.append(res)
    return pd.concat(results, ignore_index=True)

