"""Numba kernels shared by several methods: the streaming gene-statistics pass and the sparse
linear score :math:`S = X W + b` used by ``score_genes`` and ``zmean``.

Every parallel kernel has a serial twin (same source, compiled without ``parallel=True``, see
:func:`twins`): the twins run inside dask workers, where parallelism comes from the blocks and nested thread pools
would only compete (and numba's ``workqueue`` layer refuses concurrent parallel calls).
"""

from __future__ import annotations

import types

import numba as nb
import numpy as np
import scipy.sparse as sp

from ._base import GeneStats


def twins(func):
    """``(parallel, serial)`` compilations of one kernel.

    The serial twin is a renamed copy of the function: numba's on-disk cache is keyed by the
    function's name, so two dispatchers of the same function would load each other's machine code.
    """
    name = f"{func.__name__}_serial"
    serial = types.FunctionType(
        func.__code__.replace(co_name=name), func.__globals__, name, func.__defaults__, func.__closure__
    )
    serial.__qualname__ = f"{func.__qualname__}_serial"
    serial.__module__ = func.__module__
    return nb.njit(parallel=True, cache=True)(func), nb.njit(cache=True)(serial)


def _csr_stats(data, indices, indptr, want, s, ss, nnz, stored, vmin, vmax, nan, flags, vmax_all):
    # One partial accumulator per part of the rows (first axis of every output); summed after.
    # Counters are local until the part ends (no false sharing between threads). ``want``
    # (bool[4]: sum, sum of squares, non-zero count, stored count/min/max) skips the per-gene
    # accumulators a method does not use; value checks (NaN/inf, negatives, fractions, max) always run.
    n_parts = s.shape[0]
    n_rows = indptr.size - 1
    for part in nb.prange(n_parts):
        n_nonfinite = 0
        n_negative = 0
        n_fraction = 0
        top = -np.inf
        for i in range(part * n_rows // n_parts, (part + 1) * n_rows // n_parts):
            for k in range(indptr[i], indptr[i + 1]):
                x = np.float64(data[k])
                if not np.isfinite(x):
                    n_nonfinite += 1
                    nan[part, indices[k]] += x != x
                    continue
                g = indices[k]
                if want[0]:
                    s[part, g] += x
                if want[1]:
                    ss[part, g] += x * x
                if want[2]:
                    nnz[part, g] += x != 0.0
                if want[3]:
                    stored[part, g] += 1
                    vmin[part, g] = min(vmin[part, g], x)
                    vmax[part, g] = max(vmax[part, g], x)
                n_negative += x < 0.0
                n_fraction += x != np.floor(x)
                top = max(top, x)
        flags[part, 0] = n_nonfinite
        flags[part, 1] = n_negative
        flags[part, 2] = n_fraction
        vmax_all[part] = top


def _dense_stats(block, want, s, ss, nnz, stored, vmin, vmax, nan, flags, vmax_all):
    n_parts = s.shape[0]
    n_rows, n_vars = block.shape
    for part in nb.prange(n_parts):
        n_nonfinite = 0
        n_negative = 0
        n_fraction = 0
        top = -np.inf
        for i in range(part * n_rows // n_parts, (part + 1) * n_rows // n_parts):
            for g in range(n_vars):
                x = np.float64(block[i, g])
                if not np.isfinite(x):
                    n_nonfinite += 1
                    nan[part, g] += x != x
                    continue
                if want[0]:
                    s[part, g] += x
                if want[1]:
                    ss[part, g] += x * x
                if want[2]:
                    nnz[part, g] += x != 0.0
                if want[3]:
                    stored[part, g] += 1
                    vmin[part, g] = min(vmin[part, g], x)
                    vmax[part, g] = max(vmax[part, g], x)
                n_negative += x < 0.0
                n_fraction += x != np.floor(x)
                top = max(top, x)
        flags[part, 0] = n_nonfinite
        flags[part, 1] = n_negative
        flags[part, 2] = n_fraction
        vmax_all[part] = top


_csr_stats_par, _csr_stats_ser = twins(_csr_stats)
_dense_stats_par, _dense_stats_ser = twins(_dense_stats)


@nb.njit(cache=True)
def _csr_native_sum(data, indices, indptr, s_native):
    # Serial on purpose: a column is summed cell after cell in the data's own float type
    # (float32 stays float32), exactly as scipy's and numpy's column sums, so the gene means that
    # set scanpy's expression bins match bit for bit. NaN/inf are refused before anyone reads it.
    for k in range(indptr[0], indptr[indptr.size - 1]):
        s_native[indices[k]] += data[k]


@nb.njit(cache=True)
def _dense_native_sum(block, s_native):
    for i in range(block.shape[0]):
        for g in range(block.shape[1]):
            s_native[g] += block[i, g]


#: Per-gene statistics a method may ask for (``MethodMeta.extra["stats"]``), in kernel order.
STAT_FIELDS = ("sum", "sumsq", "nnz", "extent")

#: At most this many partial accumulators (each n_vars x 6 numbers) in the statistics pass.
MAX_STAT_PARTS = 8


class StatsAccumulator:
    """Accumulate :class:`GeneStats` over row blocks given in row order.

    ``native=True`` also accumulates the column sums in the data's own float type, in cell
    order (a serial pass; only ``score_genes`` needs it). ``fields`` (subset of
    :data:`STAT_FIELDS`) selects the per-gene accumulators; the others are None in the result.
    """

    def __init__(self, n_vars: int, *, native: bool = False, parallel: bool = True, fields=STAT_FIELDS):
        unknown = set(fields) - set(STAT_FIELDS)
        if unknown:
            raise ValueError(f"unknown statistics {sorted(unknown)}; use {STAT_FIELDS}.")
        self.fields = tuple(f for f in STAT_FIELDS if f in fields)
        self.want = np.array([f in fields for f in STAT_FIELDS], dtype=np.bool_)
        self.n_obs = 0
        self.n_vars = n_vars
        self.native = native
        self.parallel = parallel
        self.s = np.zeros(n_vars)
        self.s_native: np.ndarray | None = None  # allocated with the first block's float type
        self.dense_float32 = False
        self.ss = np.zeros(n_vars)
        self.nnz = np.zeros(n_vars, dtype=np.int64)
        self.stored = np.zeros(n_vars, dtype=np.int64)
        self.nan = np.zeros(n_vars, dtype=np.int64)
        self.vmin = np.full(n_vars, np.inf)
        self.vmax = np.full(n_vars, -np.inf)
        self.flags = np.zeros(3, dtype=np.int64)
        self.vmax_all = np.full(1, -np.inf)

    def add(self, block) -> None:
        """Add one row block (canonical CSR or 2-D ndarray)."""
        n_parts = min(MAX_STAT_PARTS, nb.get_num_threads(), max(1, block.shape[0])) if self.parallel else 1
        shape = (n_parts, self.n_vars)
        s, ss = np.zeros(shape), np.zeros(shape)
        nnz, stored = np.zeros(shape, dtype=np.int64), np.zeros(shape, dtype=np.int64)
        nan = np.zeros(shape, dtype=np.int64)
        vmin, vmax = np.full(shape, np.inf), np.full(shape, -np.inf)
        flags, vmax_all = np.zeros((n_parts, 3), dtype=np.int64), np.full(n_parts, -np.inf)
        sparse = sp.issparse(block)
        if sparse:
            kernel = _csr_stats_par if self.parallel else _csr_stats_ser
            kernel(block.data, block.indices, block.indptr, self.want, s, ss, nnz, stored, vmin, vmax, nan, flags, vmax_all)
        else:
            kernel = _dense_stats_par if self.parallel else _dense_stats_ser
            kernel(block, self.want, s, ss, nnz, stored, vmin, vmax, nan, flags, vmax_all)
        self.s += s.sum(axis=0)
        self.ss += ss.sum(axis=0)
        self.nnz += nnz.sum(axis=0)
        self.stored += stored.sum(axis=0)
        self.nan += nan.sum(axis=0)
        np.minimum(self.vmin, vmin.min(axis=0), out=self.vmin)
        np.maximum(self.vmax, vmax.max(axis=0), out=self.vmax)
        self.flags += flags.sum(axis=0)
        self.vmax_all[0] = max(self.vmax_all[0], vmax_all.max())
        if self.native:
            if self.s_native is None:
                native = np.float32 if block.dtype == np.float32 else np.float64
                self.s_native = np.zeros(self.n_vars, dtype=native)
                self.dense_float32 = native == np.float32 and not sparse
            if sparse:
                _csr_native_sum(block.data, block.indices, block.indptr, self.s_native)
            else:
                _dense_native_sum(block, self.s_native)
        self.n_obs += block.shape[0]

    def merge(self, other: StatsAccumulator) -> None:
        """Add the statistics of the next row block(s), accumulated elsewhere (dask workers)."""
        self.n_obs += other.n_obs
        if other.s_native is not None:
            if self.s_native is None:
                self.s_native = np.zeros(self.n_vars, dtype=other.s_native.dtype)
                self.dense_float32 = other.dense_float32
            self.s_native += other.s_native
        self.s += other.s
        self.ss += other.ss
        self.nnz += other.nnz
        self.stored += other.stored
        self.nan += other.nan
        np.minimum(self.vmin, other.vmin, out=self.vmin)
        np.maximum(self.vmax, other.vmax, out=self.vmax)
        self.flags += other.flags
        np.maximum(self.vmax_all, other.vmax_all, out=self.vmax_all)

    def result(self) -> GeneStats:
        implicit_zero = self.stored < self.n_obs
        vmin = np.where(implicit_zero, np.minimum(self.vmin, 0.0), self.vmin)
        vmax = np.where(implicit_zero, np.maximum(self.vmax, 0.0), self.vmax)
        max_value = float(self.vmax_all[0]) if np.isfinite(self.vmax_all[0]) else 0.0
        if np.any(implicit_zero):
            max_value = max(max_value, 0.0)
        s_native = self.s if self.s_native is None else self.s_native
        want = dict(zip(STAT_FIELDS, self.want))
        return GeneStats(
            n_obs=self.n_obs, sum=self.s if want["sum"] else None, sum_native=s_native,
            dense_float32=self.dense_float32, sumsq=self.ss if want["sumsq"] else None,
            nnz=self.nnz if want["nnz"] else None, vmin=vmin if want["extent"] else None,
            vmax=vmax if want["extent"] else None,
            n_nonfinite=int(self.flags[0]), n_negative=int(self.flags[1]),
            n_noninteger=int(self.flags[2]), max_value=max_value, n_nan_gene=self.nan,
        )


def _bad_values(values):
    n_nonfinite = 0
    n_negative = 0
    for k in nb.prange(values.size):
        x = np.float64(values[k])
        n_nonfinite += not np.isfinite(x)
        n_negative += x < 0.0
    return n_nonfinite, n_negative


_bad_values_par, _bad_values_ser = twins(_bad_values)


def count_bad_values(values: np.ndarray, parallel: bool = True) -> tuple[int, int]:
    """Numbers of NaN/inf and of negative values in a 1-D array."""
    n_nonfinite, n_negative = (_bad_values_par if parallel else _bad_values_ser)(values)
    return int(n_nonfinite), int(n_negative)


def block_stats(block, n_vars: int, native: bool, fields=STAT_FIELDS) -> StatsAccumulator:
    """Statistics of one block (the dask-worker task of the statistics pass; serial kernels)."""
    acc = StatsAccumulator(n_vars, native=native, parallel=False, fields=fields)
    acc.add(block)
    return acc


def _csr_linear(data, indices, indptr, w_ptr, w_set, w_val, offset, out):
    # out[i, s] = offset[s] + sum_g X[i, g] * W[g, s]; W is gene-major (w_ptr over genes).
    n_sets = out.shape[1]
    for i in nb.prange(indptr.size - 1):
        for s in range(n_sets):
            out[i, s] = offset[s]
        for k in range(indptr[i], indptr[i + 1]):
            g = indices[k]
            x = np.float64(data[k])
            for t in range(w_ptr[g], w_ptr[g + 1]):
                out[i, w_set[t]] += x * w_val[t]


_csr_linear_par, _csr_linear_ser = twins(_csr_linear)


def linear_scores(block, w_ptr, w_set, w_val, offset, parallel: bool) -> np.ndarray:
    r"""Scores :math:`S = X W + b` of one row block; ``W`` is given gene-major (see ``membership``)."""
    n_sets = offset.size
    if sp.issparse(block):
        out = np.empty((block.shape[0], n_sets))
        kernel = _csr_linear_par if parallel else _csr_linear_ser
        kernel(block.data, block.indices, block.indptr, w_ptr, w_set, w_val, offset, out)
        return out
    # Dense blocks: the product is a BLAS matrix multiply with W made dense (genes x sets).
    genes = np.repeat(np.arange(w_ptr.size - 1), np.diff(w_ptr))
    w_dense = np.zeros((w_ptr.size - 1, n_sets))
    np.add.at(w_dense, (genes, w_set), w_val)
    return np.asarray(block, dtype=np.float64) @ w_dense + offset


@nb.njit(cache=True)
def lower_bound(arr, n, x):
    """First index ``j < n`` with ``arr[j] >= x`` (``n`` if none); ``arr[:n]`` ascending."""
    lo, hi = 0, n
    while lo < hi:
        mid = (lo + hi) >> 1
        if arr[mid] < x:
            lo = mid + 1
        else:
            hi = mid
    return lo


#: Up to this many distinct set values in a cell, counts use one vectorised pass per value;
#: above, one pass with a binary search per value of the row.
SIMD_CLASSES = 48


@nb.njit(cache=True)
def class_counts(data, lo, hi, uniq, n_u, greater, eq, bucket):
    """For each distinct set value ``uniq[j]`` (ascending, ``j < n_u``), count the row's values
    ``data[lo:hi]`` greater than it (``greater[j]``) and equal to it (``eq[j]``)."""
    if n_u <= SIMD_CLASSES:
        for j in range(n_u):
            u = uniq[j]
            n_gt = 0
            n_eq = 0
            for k in range(lo, hi):
                x = data[k]
                n_gt += x > u
                n_eq += x == u
            greater[j] = n_gt
            eq[j] = n_eq
        return
    for j in range(n_u + 1):
        bucket[j] = 0
        if j < n_u:
            eq[j] = 0
    smallest = uniq[0]
    for k in range(lo, hi):
        x = data[k]
        if x >= smallest:  # smaller values never outrank a set gene
            j = lower_bound(uniq, n_u, x)
            if j < n_u and uniq[j] == x:
                eq[j] += 1
            else:
                bucket[j] += 1
    running = bucket[n_u]
    for j in range(n_u - 1, -1, -1):
        greater[j] = running
        running += eq[j] + bucket[j]


def row_blocks(n_rows: int, n_threads: int) -> int:
    """Number of row groups handed to ``prange`` by the rank kernels (a few per thread)."""
    return max(1, min(n_rows, 4 * max(1, n_threads)))
