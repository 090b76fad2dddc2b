"""Input validation shared by every public function.

Every public entry point calls these helpers first, so that a bad input fails early with a
uniform message that names the problem *and* the fix (``ValueError``/``KeyError``), instead of
crashing deep inside or returning silent NaN.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

import numpy as np
import scipy.sparse as sp
import pandas as pd
from anndata import AnnData

from ._stream import is_streamed
from ._vocabulary import SPECIES

F = TypeVar("F", bound=Callable[..., Any])


def check_adata(
    adata: Any, *, name: str = "adata", min_obs: int = 1, min_vars: int = 1, allow_streamed: bool = False
) -> AnnData:
    """Check that ``adata`` is an AnnData with at least ``min_obs`` cells and ``min_vars`` genes.

    ``allow_streamed=True`` also accepts a :class:`~noa_omics._stream.StreamedCells` view (functions
    that stream cells in row blocks, like scoring).
    """
    if is_streamed(adata) and not allow_streamed:
        raise TypeError(
            f"`{name}` is a streamed view ({type(adata).__name__}); this step needs the cells in memory: "
            "materialise the genes it reads with `.to_anndata(genes=...)` first (see docs/census.md)."
        )
    if not isinstance(adata, AnnData) and not is_streamed(adata):
        raise TypeError(
            f"`{name}` must be an AnnData object, got {type(adata).__name__}; "
            "read your file with `anndata.read_h5ad(path)` first."
        )
    if adata.n_obs < min_obs:
        raise ValueError(
            f"`{name}` has {adata.n_obs} cells (observations); at least {min_obs} are needed. "
            "Check your cell filtering."
        )
    if adata.n_vars < min_vars:
        raise ValueError(
            f"`{name}` has {adata.n_vars} genes (variables); at least {min_vars} are needed. "
            "Check your gene filtering."
        )
    return adata


def check_obs_key(adata: AnnData, key: str | None, *, what: str = "column", allow_none: bool = False) -> None:
    """Check that ``key`` is a column of ``adata.obs``; the message lists the available columns."""
    if key is None:
        if allow_none:
            return
        raise ValueError(f"a {what} name is required (got None).")
    if key not in adata.obs.columns:
        raise KeyError(
            f"{what} {key!r} not found in `adata.obs`; available columns: {_preview(adata.obs.columns)}. "
            f"Pass the right name or add the column first."
        )


def check_frame_columns(df: pd.DataFrame, columns: Iterable[str], *, name: str = "data") -> None:
    """Check that every column in ``columns`` is present in ``df``."""
    missing = [c for c in columns if c is not None and c not in df.columns]
    if missing:
        raise KeyError(
            f"column(s) {missing} not found in `{name}`; available columns: {_preview(df.columns)}."
        )


def check_species(species: str | None, *, allow_none: bool = True) -> str | None:
    """Normalise a species name; only ``human`` and ``mouse`` are supported."""
    if species is None and allow_none:
        return None
    if not isinstance(species, str) or species.lower() not in SPECIES:
        raise ValueError(f"unknown species {species!r}; use one of {list(SPECIES)}.")
    return species.lower()


def check_in(value: Any, allowed: Sequence[Any], *, name: str) -> Any:
    """Check that ``value`` is one of ``allowed``."""
    if value not in allowed:
        raise ValueError(f"unknown {name} {value!r}; use one of {list(allowed)}.")
    return value


def check_finite_array(values: np.ndarray, *, name: str) -> None:
    """Refuse NaN/inf in a numeric array."""
    arr = np.asarray(values)
    if arr.size and not np.isfinite(arr).all():
        n_bad = int((~np.isfinite(arr)).sum())
        raise ValueError(f"`{name}` contains {n_bad} NaN or infinite value(s); remove or impute them first.")


def check_spatial(adata: AnnData, spatial_key: str = "spatial") -> np.ndarray:
    """Return 2-D coordinates from ``adata.obsm[spatial_key]`` after checking shape and finiteness."""
    if spatial_key not in adata.obsm:
        raise KeyError(
            f"no coordinates at `adata.obsm[{spatial_key!r}]`; available keys: {_preview(adata.obsm.keys())}. "
            "Store an (n_cells, 2) array of x/y positions there."
        )
    coords = np.asarray(adata.obsm[spatial_key])
    if coords.ndim != 2 or coords.shape[0] != adata.n_obs:
        raise ValueError(
            f"`adata.obsm[{spatial_key!r}]` has shape {coords.shape}; expected (n_cells, 2) x/y positions."
        )
    if coords.shape[1] != 2:
        raise ValueError(
            f"`adata.obsm[{spatial_key!r}]` has {coords.shape[1]} columns; expected 2 (x, y). "
            "For 3-D data, pass one z-plane at a time or project to x/y."
        )
    if not np.issubdtype(coords.dtype, np.number):
        raise ValueError(f"`adata.obsm[{spatial_key!r}]` is not numeric (dtype {coords.dtype}).")
    check_finite_array(coords, name=f"adata.obsm[{spatial_key!r}]")
    return coords.astype(np.float64, copy=False)


def _preview(items: Iterable[Any], n: int = 12) -> str:
    items = [str(i) for i in items]
    text = ", ".join(items[:n])
    return f"[{text}{', ...' if len(items) > n else ''}]" if items else "[] (none)"


def check_unique_names(names: Iterable[Any], *, where: str = "var_names") -> None:
    """Refuse duplicated gene identifiers in any index (``var_names``, ``raw.var_names``, a var column)."""
    names = pd.Index(names)
    if not names.is_unique:
        dup = names[names.duplicated()].unique()
        raise ValueError(
            f"`{where}` contains {len(dup)} duplicated gene name(s), e.g. {list(dup[:5])}; "
            "run `adata.var_names_make_unique()` (or pick a unique identifier column) or aggregate "
            "duplicates before scoring."
        )


def check_no_infinite(values: Any, *, name: str) -> None:
    """Refuse +/-inf in a numeric array or Series (NaN is left to the caller, e.g. cells skipped)."""
    arr = np.asarray(values, dtype=np.float64)
    n_inf = int(np.isinf(arr).sum())
    if n_inf:
        raise ValueError(
            f"{name} contains {n_inf} infinite value(s); replace them (e.g. with NaN to leave those "
            "cells out) or fix the computation that produced them."
        )


def check_score_table(adata: AnnData, score_key: str, *, sets: Iterable[str] | None = None) -> pd.DataFrame:
    """Return the per-cell score table ``adata.obsm[score_key]`` written by ``noa.tl.score``.

    Raises ``KeyError`` when the key is absent (listing the available keys) or when one of ``sets``
    is not a column, and ``ValueError`` when the entry is not a cells x gene-sets DataFrame.
    """
    if score_key not in adata.obsm:
        raise KeyError(
            f"no per-cell scores at `adata.obsm[{score_key!r}]`; available keys: {_preview(adata.obsm.keys())}. "
            "Run `noa.tl.score(adata, method=...)` first or pass the right `score_key`."
        )
    table = adata.obsm[score_key]
    if not isinstance(table, pd.DataFrame):
        raise ValueError(
            f"`adata.obsm[{score_key!r}]` is a {type(table).__name__}, not a cells x gene-sets DataFrame; "
            "store scores with `noa.tl.score` (it writes a DataFrame with set names as columns)."
        )
    if sets is not None:
        missing = [s for s in sets if s not in table.columns]
        if missing:
            raise KeyError(
                f"gene set(s) {missing} not in `adata.obsm[{score_key!r}]` (it has {_preview(table.columns)}); "
                "score them with `noa.tl.score(adata, gene_sets=...)`."
            )
    return table


def check_positive_int(value: Any, *, name: str) -> int:
    """Return ``value`` as an ``int`` after checking it is an integer >= 1 (bools refused)."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"`{name}` must be a positive integer, got {value!r}.")
    return int(value)


def is_count_matrix(matrix: Any, *, n_check: int = 20_000, empty: bool = False) -> bool:
    """Whether ``matrix`` looks like raw counts: its sampled non-zero values are non-negative integers.

    Samples the first ``n_check`` stored values of a sparse matrix, or the non-zero values of the
    first 200 rows of a dense, dask or backed one. Values within ``1e-6`` (relative) of an integer
    count as integers, so float32 counts qualify while log-normalised values do not. ``empty`` is the
    answer when no non-zero value is found (an all-zero matrix).
    """
    if sp.issparse(matrix):
        values = np.asarray(matrix.data[:n_check])
    else:
        block = matrix[: min(matrix.shape[0], 200)]
        if hasattr(block, "compute"):
            block = block.compute()
        values = np.asarray(block.data if sp.issparse(block) else block).ravel()
    values = values[values != 0][:n_check]
    if values.size == 0:
        return empty
    if not np.isfinite(values).all():
        return False
    rounded = np.round(values)
    return bool(np.all(values >= 0) and np.all(np.abs(values - rounded) <= 1e-6 * np.maximum(1.0, np.abs(values))))


def renamed_arguments(**old_to_new: str) -> Callable[[F], F]:
    """Keep old keyword names of a function working, with a :class:`FutureWarning` per call.

    ``@renamed_arguments(seed="random_state")`` lets ``f(seed=1)`` run as ``f(random_state=1)``
    and says so; giving both names is an error. One spelling per concept across the API
    (``random_state``, ``n_permutations``, ...) without breaking existing notebooks.
    """

    def decorate(func: F) -> F:
        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            for old, new in old_to_new.items():
                if old in kwargs:
                    if new in kwargs:
                        raise TypeError(f"{func.__name__}() got both {old!r} and its new name {new!r}; pass {new!r} only.")
                    warnings.warn(
                        f"{func.__name__}({old}=...) is deprecated; use {new}=... (same meaning).",
                        FutureWarning,
                        stacklevel=2,
                    )
                    kwargs[new] = kwargs.pop(old)
            return func(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorate
