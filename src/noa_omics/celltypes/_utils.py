"""Small helpers shared by the cell-type functions: per-cell tables and expression views."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
from anndata import AnnData

from .._identifiers import expression_layout, symbol_view
from .._validation import _preview, check_frame_columns, check_no_infinite, check_obs_key, check_score_table, is_count_matrix

#: obsm key preferred when a value is found in several score tables.
DEFAULT_SCORE_KEY = "noa_score_genes"


def as_key_list(value_key: str | Sequence[str], *, name: str = "value_key") -> list[str]:
    """``value_key`` as a non-empty list of unique strings."""
    keys = [value_key] if isinstance(value_key, str) else list(value_key) if isinstance(value_key, Iterable) else None
    if not keys or not all(isinstance(k, str) for k in keys):
        raise ValueError(f"`{name}` must be a column name or a non-empty list of column names, got {value_key!r}.")
    return list(dict.fromkeys(keys))


def score_tables(adata: AnnData) -> dict[str, pd.DataFrame]:
    """The obsm entries that are DataFrames (score tables written by ``noa.tl.score``)."""
    return {k: v for k, v in adata.obsm.items() if isinstance(v, pd.DataFrame)}


def find_value(adata: AnnData, key: str, score_key: str | None) -> pd.Series:
    """Per-cell values of ``key`` from ``adata.obs`` or a score table in ``adata.obsm``.

    With ``score_key`` only ``adata.obsm[score_key]`` is searched. Otherwise ``adata.obs`` is
    searched first, then every DataFrame in ``adata.obsm``; a key found in several tables is
    taken from ``noa_score_genes`` when that is one of them, else ``score_key`` is required.
    """
    tables = score_tables(adata)
    if score_key is not None:
        return check_score_table(adata, score_key, sets=[key])[key]
    if key in adata.obs.columns:
        return adata.obs[key]
    holders = [name for name, table in tables.items() if key in table.columns]
    if len(holders) == 1:
        return tables[holders[0]][key]
    if DEFAULT_SCORE_KEY in holders:
        return tables[DEFAULT_SCORE_KEY][key]
    if len(holders) > 1:
        raise ValueError(
            f"{key!r} is a column of several score tables {holders}; choose one with `score_key=`."
        )
    score_columns = sorted({c for t in tables.values() for c in map(str, t.columns)})
    raise KeyError(
        f"{key!r} not found in `adata.obs` (columns: {_preview(adata.obs.columns)}) nor in any score table in "
        f"`adata.obsm` (gene sets: {_preview(score_columns)}). Score the gene set first with "
        "noa.tl.score(adata, ...) or pass an existing column."
    )


def cell_table(
    data: AnnData | pd.DataFrame,
    *,
    columns: Sequence[str | None],
    values: Sequence[str],
    score_key: str | None = None,
    optional_values: Sequence[str] = (),
) -> tuple[pd.DataFrame, list[str]]:
    """Per-cell table with the grouping ``columns`` and numeric ``values``.

    Returns the table and the subset of ``optional_values`` that were found (missing optional
    values are skipped silently; missing required ones raise :class:`KeyError`).
    """
    columns = [c for c in dict.fromkeys(columns) if c is not None]
    if isinstance(data, AnnData):
        for col in columns:
            check_obs_key(data, col)
        frame = data.obs[columns].copy()
        for key in values:
            frame[key] = np.asarray(find_value(data, key, score_key))
        found = []
        for key in optional_values:
            if key in frame.columns:
                found.append(key)
                continue
            try:
                frame[key] = np.asarray(find_value(data, key, score_key))
                found.append(key)
            except (KeyError, ValueError):
                pass
    elif isinstance(data, pd.DataFrame):
        check_frame_columns(data, [*columns, *values], name="data")
        found = [k for k in optional_values if k in data.columns]
        frame = data[list(dict.fromkeys([*columns, *values, *found]))].copy()
    else:
        raise TypeError(
            f"`data` must be an AnnData or a per-cell pandas DataFrame, got {type(data).__name__}."
        )
    for key in [*values, *found]:
        if not pd.api.types.is_numeric_dtype(frame[key]) or pd.api.types.is_bool_dtype(frame[key]):
            raise ValueError(f"values of {key!r} are not numeric (dtype {frame[key].dtype}); pass a numeric column.")
        frame[key] = frame[key].astype(np.float64)
        check_no_infinite(frame[key], name=f"values of {key!r}")
    return frame, found


def expression_matrix(adata: AnnData, layer: str | None) -> Any:
    """``adata.layers[layer]``, ``adata.X`` (None) or ``adata.raw.X`` (``"raw"``), with a readable
    error for a missing one (:func:`noa_omics._identifiers.expression_layout`)."""
    return expression_layout(adata, layer).matrix


def looks_like_counts(matrix: Any) -> bool:
    """True when ``matrix`` holds raw counts (see :func:`noa_omics._validation.is_count_matrix`).

    An all-zero matrix counts as counts: normalising it is harmless and keeps it all-zero.
    """
    return is_count_matrix(matrix, empty=True)


def log_normalized_view(
    adata: AnnData, layer: str | None = None, *, target_sum: float = 1e4, gene_symbols: str | None = None
) -> tuple[AnnData, bool]:
    """A light AnnData whose X is log-normalised expression and whose ``var_names`` are gene
    symbols, leaving ``adata`` untouched.

    Identifiers follow :func:`noa_omics._identifiers.resolve_genes` (``gene_symbols`` column, or
    the well-known symbol column when ``var_names`` are Ensembl ids; first occurrence of a
    duplicated symbol). ``layer="raw"`` reads ``adata.raw.X``. When the values are raw counts
    (non-negative integers), a copy is normalised to ``target_sum`` counts per cell and
    ``log1p``-transformed (``scanpy.pp.normalize_total`` + ``scanpy.pp.log1p``); cells without
    counts stay all-zero. Otherwise the matrix is used as is (assumed log-normalised already).
    Returns the view and whether it was normalised here.
    """
    import scanpy as sc

    view, _, layout = symbol_view(adata, layer=layer, gene_symbols=gene_symbols, stacklevel=5)
    if not looks_like_counts(layout.matrix):
        return view, False
    view.X = _float32_copy(layout.matrix)
    sc.pp.normalize_total(view, target_sum=target_sum)
    sc.pp.log1p(view)
    return view, True


def _float32_copy(matrix: Any) -> Any:
    """A float32 copy that never touches ``matrix`` (older scipy's ``astype`` sorted the indices of a
    non-canonical source in place)."""
    if sp.issparse(matrix) and matrix.format in ("csr", "csc"):
        cls = sp.csr_matrix if matrix.format == "csr" else sp.csc_matrix
        return cls((matrix.data.astype(np.float32), matrix.indices.copy(), matrix.indptr.copy()), shape=matrix.shape)
    if sp.issparse(matrix):
        return sp.csr_matrix(matrix, dtype=np.float32, copy=True)
    return np.array(matrix, dtype=np.float32)


def sample_conditions(
    frame: pd.DataFrame, *, sample_key: str, condition_key: str, reference: Any, optional_reference: bool = False
) -> list[Any]:
    """Conditions present in ``frame[condition_key]`` (:func:`levels` order), after checking the design.

    Raises ``ValueError`` when a sample has cells in more than one condition, or when ``reference``
    is not one of the conditions (skipped for ``reference=None`` with ``optional_reference``).
    """
    per_sample = frame.groupby(sample_key, observed=True)[condition_key].nunique()
    mixed = per_sample.index[per_sample > 1]
    if len(mixed):
        raise ValueError(
            f"sample(s) {_preview(mixed)} have cells in more than one condition (more than one {condition_key!r} "
            f"value); each sample must belong to one condition (check `sample_key`={sample_key!r})."
        )
    present = levels(frame[condition_key])
    if not (reference is None and optional_reference) and reference not in present:
        raise ValueError(
            f"reference condition {reference!r} not found in {condition_key!r}; available conditions: {present}."
        )
    return present


def levels(column: pd.Series) -> list[Any]:
    """Distinct non-missing values of a column: category order for categoricals, else sorted as text."""
    if isinstance(column.dtype, pd.CategoricalDtype):
        present = set(column.dropna().unique())
        return [c for c in column.cat.categories if c in present]
    return sorted(column.dropna().unique(), key=str)
