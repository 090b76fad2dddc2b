"""Which matrix to score (``layer=``, ``use_raw=``) and how to walk it in row blocks.

In-memory CSR and dense matrices are scored in place (dense in row blocks, CSC converted block by
block). Backed AnnData (``read_h5ad(..., backed="r")``) and dask arrays are read in row blocks,
so memory stays bounded by one block plus the (cells x sets) result. With a
``dask.distributed`` client active, dask input is scored on the workers.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
from anndata import AnnData

from .._identifiers import wants_raw
from .._validation import _preview
from ._base import GeneStats
from ._kernels import STAT_FIELDS, StatsAccumulator, block_stats, count_bad_values

#: Stored values per row block of backed, dask and CSC input (about 32 MB of float32 + int32).
NNZ_PER_BLOCK = 4_000_000
#: Matrix entries per row block of dense input (32 MB of float64).
DENSE_PER_BLOCK = 4_000_000


@dataclass
class MatrixSource:
    """The matrix to score and where it lives."""

    x: Any
    kind: str  #: "csr", "csc", "dense", "backed" or "dask"
    where: str  #: for messages, e.g. ``adata.layers['counts']``
    var: pd.DataFrame  #: gene annotation matching the columns of ``x``
    use_raw: bool

    @property
    def shape(self) -> tuple[int, int]:
        return tuple(int(n) for n in self.x.shape)


def resolve_matrix(adata: AnnData, layer: str | None, use_raw: bool | None) -> MatrixSource:
    """Pick ``adata.X``, a layer or ``adata.raw.X`` following scanpy's ``use_raw`` rule.

    ``use_raw=None`` means: ``adata.raw`` when it exists and no ``layer`` is given;
    ``layer="raw"`` means ``adata.raw.X`` (see :func:`noa_omics._identifiers.wants_raw`).
    """
    if wants_raw(adata, layer):
        layer, use_raw = None, True
    if use_raw is None:
        use_raw = layer is None and adata.raw is not None
    if use_raw:
        if layer is not None:
            raise ValueError(
                f"`layer={layer!r}` and `use_raw=True` were both given; pass only one "
                "(use_raw=False to score the layer)."
            )
        if adata.raw is None:
            raise ValueError(
                "use_raw=True but `adata.raw` is None; pass use_raw=False to score `adata.X` "
                "(or a layer with layer='<name>')."
            )
        x, var, where = adata.raw.X, adata.raw.var, "adata.raw.X"
    elif layer is not None:
        if layer not in adata.layers:
            raise KeyError(
                f"layer {layer!r} not found in `adata.layers`; available layers: {_preview(adata.layers.keys())}. "
                "Pass one of them, or layer=None to score `adata.X`."
            )
        x, var, where = adata.layers[layer], adata.var, f"adata.layers[{layer!r}]"
    else:
        x, var, where = adata.X, adata.var, "adata.X"
        if x is None:
            raise ValueError(
                f"`adata.X` is None; pass layer='<name>' with one of {_preview(adata.layers.keys())}."
            )
    if sp.issparse(x) and x.format not in ("csr", "csc"):
        x = sp.csr_matrix(x)  # COO/LIL/...: no row slicing; one converted copy
    elif isinstance(x, np.matrix):
        x = np.asarray(x)
    _check_dtype(x, where)
    if not isinstance(var, pd.DataFrame) and hasattr(var, "to_memory"):
        var = var.to_memory()  # lazy AnnData (anndata.experimental.read_lazy): gene annotation is small
    return MatrixSource(x=x, kind=_kind(x, where), where=where, var=var, use_raw=bool(use_raw))


def _check_dtype(x: Any, where: str) -> None:
    dtype = getattr(x, "dtype", None)
    if dtype is not None and not (np.issubdtype(dtype, np.number) or np.issubdtype(dtype, np.bool_)):
        raise TypeError(
            f"`{where}` has dtype {dtype}; scoring needs numbers: convert it, e.g. "
            "adata.X = adata.X.astype(np.float32)."
        )
    if dtype is not None and np.issubdtype(dtype, np.complexfloating):
        raise TypeError(f"`{where}` has complex dtype {dtype}; pass real-valued expression.")


def _kind(x: Any, where: str) -> str:
    if isinstance(x, np.ndarray):
        if x.ndim != 2:
            raise ValueError(f"`{where}` must be 2-D (cells x genes), got shape {x.shape}.")
        return "dense"
    if sp.issparse(x):
        return "csr" if x.format == "csr" else "csc"
    if _is_dask(x):
        return "dask"
    if hasattr(x, "shape") and hasattr(x, "__getitem__") and len(x.shape) == 2:
        return "backed"  # h5py/zarr datasets and anndata's backed CSR/CSC datasets
    raise TypeError(
        f"`{where}` of type {type(x).__name__} is not supported; use a numpy array, a scipy sparse matrix, "
        "a dask array or a backed AnnData."
    )


def _is_dask(x: Any) -> bool:
    try:
        import dask.array as da
    except ImportError:  # pragma: no cover - dask is a dependency
        return False
    return isinstance(x, da.Array)


def dask_client():
    """The active ``dask.distributed`` client, or None."""
    try:
        from distributed import default_client
    except ImportError:
        return None
    try:
        return default_client()
    except ValueError:
        return None


def as_block(block: Any) -> Any:
    """A canonical CSR matrix (sorted, no duplicates) or a 2-D ndarray, of float32/float64 or
    integer values (other types are converted); never modifies ``block``."""
    if sp.issparse(block):
        if block.format != "csr":
            block = sp.csr_matrix(block)
        if not block.has_canonical_format:
            block = block.copy()
            block.sum_duplicates()
    else:
        block = np.asarray(block)
    if block.dtype not in (np.float32, np.float64) and not np.issubdtype(block.dtype, np.integer):
        block = block.astype(np.float32)  # bool, float16
    return block


def _rows_per_block(src: MatrixSource, chunk_size: int | None) -> int:
    n_obs, n_vars = src.shape
    chunk_size = chunk_size or getattr(src.x, "preferred_chunk_size", None)  # streamed views
    if chunk_size is not None:
        return chunk_size
    if src.kind == "dense" or (src.kind == "backed" and not _backed_sparse(src.x)):
        return max(1, DENSE_PER_BLOCK // max(n_vars, 1))
    nnz = _stored(src.x)
    per_row = nnz / max(n_obs, 1) if nnz is not None else 0.05 * n_vars
    return max(1, int(NNZ_PER_BLOCK // max(per_row, 1.0)))


def _backed_sparse(x: Any) -> bool:
    return getattr(x, "format", None) in ("csr", "csc")


def _stored(x: Any) -> int | None:
    if sp.issparse(x):
        return int(x.nnz)
    group = getattr(x, "group", None)
    if group is not None and "data" in group:
        return int(group["data"].shape[0])
    return None


def iter_blocks(src: MatrixSource, chunk_size: int | None) -> Iterator[tuple[int, int, Any]]:
    """Yield ``(start, stop, block)`` over the rows, blocks as given by :func:`as_block`."""
    n_obs = src.shape[0]
    if src.kind == "dask":
        x = _dask_rows(src.x, chunk_size)
        start = 0
        for b, n in enumerate(x.chunks[0]):
            yield start, start + n, as_block(x.blocks[b].compute())
            start += n
        return
    if src.kind == "csr" and chunk_size is None:
        yield 0, n_obs, as_block(src.x)
        return
    step = _rows_per_block(src, chunk_size)
    for start in range(0, n_obs, step):
        stop = min(start + step, n_obs)
        yield start, stop, as_block(src.x[start:stop])


def _dask_rows(x, chunk_size: int | None):
    """Rechunk a dask array into row blocks spanning all genes."""
    if len(x.chunks[1]) != 1:
        x = x.rechunk({1: -1})
    if chunk_size is not None:
        x = x.rechunk({0: chunk_size})
    return x


def check_block_values(block: Any, *, where: str, method: str, nonnegative: bool, parallel: bool = True) -> None:
    """Refuse NaN/inf (and negatives for rank methods) in one block."""
    values = block.data if sp.issparse(block) else block
    if values.size == 0:
        return
    n_nonfinite, n_negative = count_bad_values(values.reshape(-1), parallel)
    if n_nonfinite:
        raise ValueError(nonfinite_message(where, n_nonfinite, partial=True))
    if nonnegative and n_negative:
        raise ValueError(negative_message(where, method))


def nonfinite_message(where: str, n: int, partial: bool = False) -> str:
    count = f"at least {n}" if partial else str(n)
    return (
        f"`{where}` contains {count} NaN or infinite value(s); replace them "
        "(e.g. X.data[~np.isfinite(X.data)] = 0) or remove the affected cells/genes before scoring."
    )


def negative_message(where: str, method: str) -> str:
    return (
        f"`{where}` contains negative values, but method {method!r} ranks expression within each cell and "
        "needs values >= 0 (is it scaled/centred data?); score the log-normalised or count matrix "
        "(layer='<name>' or use_raw=True), or use method='score_genes' or 'zmean'."
    )


def compute_stats(
    src: MatrixSource, chunk_size: int | None, native: bool = False, fields=STAT_FIELDS
) -> GeneStats:
    """First streaming pass: per-gene sums, squares, detection counts and value checks.

    ``native=True`` also gives the column sums scanpy bins genes by (``GeneStats.mean_scanpy``);
    ``fields`` (see :data:`~noa_omics.scoring._kernels.STAT_FIELDS`) limits the per-gene
    accumulators to those the method uses.
    """
    n_vars = src.shape[1]
    client = dask_client() if src.kind == "dask" else None
    if client is not None:
        import dask

        x = _dask_rows(src.x, chunk_size)
        parts = [dask.delayed(_stats_task)(blk, n_vars, native, fields) for blk in x.to_delayed().ravel()]
        acc = StatsAccumulator(n_vars, native=native, fields=fields)
        for part in dask.compute(*parts):
            acc.merge(part)
        return acc.result()
    acc = StatsAccumulator(n_vars, native=native, fields=fields)
    for _, _, block in iter_blocks(src, chunk_size):
        acc.add(block)
    stats = acc.result()
    if native and src.kind == "csc":
        # scipy sums CSC columns with numpy's pairwise reduceat, not in cell order: take its sums
        # so that the gene means (scanpy's expression bins) are the ones scanpy sees
        stats.sum_native = np.asarray(src.x.sum(axis=0)).ravel()
    return stats


def _stats_task(block, n_vars: int, native: bool, fields=STAT_FIELDS) -> StatsAccumulator:
    return block_stats(as_block(block), n_vars, native, fields)


def score_pass(
    src: MatrixSource, method: str, plan: Any, n_sets: int, chunk_size: int | None, check_values: bool
) -> np.ndarray:
    """Second pass: the (cells x sets) scores, block by block (or on dask workers)."""
    from ._registry import get_method

    meta = get_method(method)
    client = dask_client() if src.kind == "dask" else None
    if client is not None:
        import dask

        x = _dask_rows(src.x, chunk_size)
        plan_ref = dask.delayed(plan, pure=True)
        scores = x.map_blocks(
            _score_task, plan_ref, method, check_values, src.where,
            chunks=(x.chunks[0], (n_sets,)), dtype=np.float64, meta=np.empty((0, 0)),
        )
        return np.asarray(scores.compute())
    out = np.empty((src.shape[0], n_sets))
    for start, stop, block in iter_blocks(src, chunk_size):
        if check_values:
            check_block_values(block, where=src.where, method=method, nonnegative=meta.nonnegative)
        out[start:stop] = meta.score_block(block, plan, True)
    return out


def _score_task(block, plan, method: str, check_values: bool, where: str) -> np.ndarray:
    from ._registry import get_method

    meta = get_method(method)
    block = as_block(block)
    if check_values:
        check_block_values(block, where=where, method=method, nonnegative=meta.nonnegative)
    return meta.score_block(block, plan, False)
