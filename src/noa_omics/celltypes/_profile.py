r"""Per-sample, per-cell-type summaries of gene-set scores (:func:`apoptosis_profile`)."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from anndata import AnnData

from .._validation import _preview, check_adata, check_no_infinite, check_obs_key, check_score_table
from ._utils import levels, log_normalized_view, sample_conditions

PROFILE_COLUMNS = ["sample", "condition", "cell_type", "gene_set", "n_cells", "mean", "median", "frac_high"]


def _score_table(
    adata: AnnData, *, method: str, score_key: str | None, species: str | None, layer: str | None,
    gene_symbols: str | None = None,
) -> tuple[pd.DataFrame, str]:
    key = score_key or f"noa_{method}"
    if key in adata.obsm or score_key is not None:
        return check_score_table(adata, key), key
    from ..scoring import score

    view, _ = log_normalized_view(adata, layer, gene_symbols=gene_symbols)
    table = score(view, None, method=method, species=species, inplace=False)
    return table, key


def apoptosis_profile(
    adata: AnnData,
    *,
    sample_key: str,
    cell_type_key: str = "noa_cell_type",
    condition_key: str | None = None,
    method: str = "score_genes",
    score_key: str | None = None,
    sets: Sequence[str] | None = None,
    reference: Any = None,
    high_quantile: float = 0.9,
    species: str | None = None,
    layer: str | None = None,
    gene_symbols: str | None = None,
) -> pd.DataFrame:
    r"""Tidy summary of gene-set scores per sample x cell type x gene set.

    Scores are read from ``adata.obsm[score_key or f"noa_{method}"]`` (written by
    :func:`noa.tl.score`); when that table is absent every curated set is scored here with
    ``noa.tl.score(method=method)`` on a log-normalised copy (raw counts are normalised to 10,000
    per cell and ``log1p``-transformed) and the result is not stored.

    ``frac_high`` is the fraction of a sample's cells of a type whose score exceeds a threshold
    :math:`\theta_{k,s}`: the ``high_quantile`` quantile of the scores of gene set :math:`s` in
    cell type :math:`k` among the cells of the ``reference`` condition (all cells when
    ``reference`` is None),

    .. math::

        \theta_{k,s} = Q_{q}\bigl(\{x_{c,s} : \text{type}(c) = k,\ c \in \text{reference}\}\bigr),
        \qquad
        \text{frac\_high}_{d,k,s} = \frac{1}{n_{d,k}} \sum_{c \in d,k} [x_{c,s} > \theta_{k,s}].

    With a reference, control samples therefore sit near :math:`1 - q` (0.1 by default) and a
    sample with more high-scoring cells than controls sits above it. A cell type without
    reference cells has no threshold (``frac_high`` NaN, with a warning).

    Parameters
    ----------
    adata
        Annotated data with cell types in ``obs[cell_type_key]`` (e.g. from
        :func:`noa.tl.annotate_testis`).
    sample_key
        Sample (donor) column of ``obs``.
    cell_type_key
        Cell-type column of ``obs``.
    condition_key
        Optional condition column; adds a ``condition`` column to the result.
    method
        Scoring method (``score_genes``, ``aucell``, ``ucell``, ``zmean``): selects the default
        score table and the method used when scores are missing.
    score_key
        obsm key of the score table (default ``f"noa_{method}"``).
    sets
        Gene sets to summarise; default every column of the score table except the
        ``marker_*`` sets.
    reference
        Reference condition for the ``frac_high`` threshold (requires ``condition_key``).
    high_quantile
        Quantile :math:`q` in (0, 1) defining "high".
    species, layer
        Passed to the scorer when scores are computed here (``layer="raw"``: ``adata.raw.X``).
    gene_symbols
        ``var`` column with gene symbols, for scores computed here (None: ``var_names``, or the
        well-known symbol column when they are Ensembl ids; :mod:`noa_omics._identifiers`).

    Returns
    -------
    pandas.DataFrame
        Columns ``sample``, ``condition`` (when ``condition_key`` is given), ``cell_type``,
        ``gene_set``, ``n_cells``, ``mean``, ``median``, ``frac_high``. Every sample x cell type
        present in the data gets a row per gene set; a cell type absent from a sample has
        ``n_cells`` 0 and NaN statistics (an arrested testis with no spermatids is data, not a
        missing row). ``attrs["params"]`` holds the parameters and the thresholds.
    """
    check_adata(adata)
    check_obs_key(adata, sample_key, what="sample column")
    check_obs_key(adata, cell_type_key, what="cell-type column")
    check_obs_key(adata, condition_key, what="condition column", allow_none=True)
    if not 0 < float(high_quantile) < 1:
        raise ValueError(f"`high_quantile` must be in (0, 1), got {high_quantile}.")
    if reference is not None and condition_key is None:
        raise ValueError("`reference` needs `condition_key` (the column holding the reference condition).")
    table, key = _score_table(adata, method=method, score_key=score_key, species=species, layer=layer,
                              gene_symbols=gene_symbols)
    if sets is None:
        sets = [c for c in table.columns if not str(c).startswith("marker_")] or list(table.columns)
    else:
        sets = [sets] if isinstance(sets, str) else list(sets)
        missing = [s for s in sets if s not in table.columns]
        if missing:
            raise KeyError(
                f"gene set(s) {missing} not in the score table `adata.obsm[{key!r}]`; available: "
                f"{_preview(table.columns)}. Score them first with noa.tl.score."
            )
    obs = adata.obs
    if condition_key is not None:
        sample_conditions(
            obs, sample_key=sample_key, condition_key=condition_key, reference=reference, optional_reference=True
        )
    scores = table[sets].to_numpy(dtype=np.float64)
    check_no_infinite(scores, name=f"the score table `adata.obsm[{key!r}]`")
    samples = obs[sample_key].astype(object).to_numpy()
    types = obs[cell_type_key].astype(object).to_numpy()
    in_reference = (
        np.ones(adata.n_obs, dtype=bool)
        if reference is None
        else (obs[condition_key].astype(object) == reference).to_numpy()
    )
    type_levels = levels(obs[cell_type_key])
    sample_levels = levels(obs[sample_key])
    thresholds = {}
    no_reference = []
    for cell_type in type_levels:
        ref_cells = scores[(types == cell_type) & in_reference]
        if len(ref_cells):
            thresholds[cell_type] = np.nanquantile(ref_cells, high_quantile, axis=0)
        else:
            thresholds[cell_type] = np.full(len(sets), np.nan)
            no_reference.append(cell_type)
    if no_reference:
        warnings.warn(
            f"cell type(s) {no_reference} have no cells in the reference condition {reference!r}; their frac_high "
            "is NaN.",
            UserWarning,
            stacklevel=2,
        )
    condition_of = (
        obs.groupby(sample_key, observed=True)[condition_key].first().to_dict() if condition_key is not None else {}
    )
    # one stable sort by (sample, cell type) instead of a boolean mask per group: O(n log n)
    sample_codes = pd.Categorical(samples, categories=sample_levels).codes.astype(np.int64)
    type_codes = pd.Categorical(types, categories=type_levels).codes.astype(np.int64)
    group = np.where((sample_codes < 0) | (type_codes < 0), -1, sample_codes * len(type_levels) + type_codes)
    order = np.argsort(group, kind="stable")
    sorted_scores = scores[order]
    bounds = np.searchsorted(group[order], np.arange(len(sample_levels) * len(type_levels) + 1))
    blocks = []
    for s_index, sample in enumerate(sample_levels):
        for t_index, cell_type in enumerate(type_levels):
            g = s_index * len(type_levels) + t_index
            values = sorted_scores[bounds[g]:bounds[g + 1]]
            n = len(values)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                mean = np.nanmean(values, axis=0) if n else np.full(len(sets), np.nan)
                median = np.nanmedian(values, axis=0) if n else np.full(len(sets), np.nan)
                high = (values > thresholds[cell_type]).mean(axis=0) if n else np.full(len(sets), np.nan)
            high = np.where(np.isnan(thresholds[cell_type]), np.nan, high)
            blocks.append(
                pd.DataFrame(
                    {
                        "sample": sample,
                        "condition": condition_of.get(sample),
                        "cell_type": cell_type,
                        "gene_set": sets,
                        "n_cells": n,
                        "mean": mean,
                        "median": median,
                        "frac_high": high,
                    }
                )
            )
    result = pd.concat(blocks, ignore_index=True) if blocks else pd.DataFrame(columns=PROFILE_COLUMNS)
    if condition_key is None:
        result = result.drop(columns="condition")
    result["n_cells"] = result["n_cells"].astype(int)
    result.attrs["params"] = {
        "sample_key": sample_key,
        "cell_type_key": cell_type_key,
        "condition_key": condition_key,
        "method": method,
        "score_key": key,
        "reference": reference,
        "high_quantile": float(high_quantile),
        "gene_symbols": gene_symbols,
        "thresholds": {k: dict(zip(sets, map(float, v))) for k, v in thresholds.items()},
    }
    return result
