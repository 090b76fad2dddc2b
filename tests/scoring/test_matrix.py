"""Known-answer tests of ``scoring/_matrix.py``: which matrix is read, how it is cut into row
blocks, and the statistics pass on dask workers against numpy.

Each test names the mutant it was written to kill (mutation testing, docs/mutation.md).
"""

from __future__ import annotations

import types

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from noa_omics.scoring import _matrix
from noa_omics.scoring._matrix import (
    DENSE_PER_BLOCK,
    NNZ_PER_BLOCK,
    MatrixSource,
    _rows_per_block,
    compute_stats,
    iter_blocks,
    resolve_matrix,
)


def _counts(n_obs: int = 10, n_vars: int = 5, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.poisson(1.0, size=(n_obs, n_vars)).astype(np.float32)
    x[0] = 0.0
    return x


def test_csr_blocks_follow_chunk_size():
    """In-memory CSR is one block unless ``chunk_size`` is given; then blocks of that many rows
    (kills ``chunk_size is not None`` in the one-block shortcut)."""
    x = sp.csr_matrix(_counts(10, 5))
    src = MatrixSource(x=x, kind="csr", where="adata.X", var=pd.DataFrame(index=list("abcde")), use_raw=False)
    assert [(a, b) for a, b, _ in iter_blocks(src, None)] == [(0, 10)]
    blocks = list(iter_blocks(src, 4))
    assert [(a, b) for a, b, _ in blocks] == [(0, 4), (4, 8), (8, 10)]
    np.testing.assert_array_equal(sp.vstack([blk for _, _, blk in blocks]).toarray(), x.toarray())


def test_backed_matrices_are_read_in_blocks_sized_by_their_layout(tmp_path):
    """A backed h5ad is a supported ``backed`` source (kills a misspelt ``shape`` check); a backed
    sparse matrix is cut by stored values per row, NNZ_PER_BLOCK // (nnz / n_obs), a backed dense
    one by entries per row, DENSE_PER_BLOCK // n_vars (kills a misspelt ``format`` check)."""
    x = _counts(10, 5)
    for layout, matrix in (("sparse", sp.csr_matrix(x)), ("dense", x)):
        path = tmp_path / f"{layout}.h5ad"
        ad.AnnData(matrix).write_h5ad(path)
        backed = ad.read_h5ad(path, backed="r")
        src = resolve_matrix(backed, None, False)
        assert src.kind == "backed"
        expected = NNZ_PER_BLOCK // (np.count_nonzero(x) / 10) if layout == "sparse" else DENSE_PER_BLOCK // 5
        assert _rows_per_block(src, None) == int(expected)
        stats = compute_stats(src, chunk_size=3)
        np.testing.assert_allclose(stats.sum, x.sum(axis=0), rtol=1e-6)
        backed.file.close()


def test_a_row_wider_than_the_block_budget_is_one_row_per_block():
    """Dense rows longer than DENSE_PER_BLOCK entries: one row per block (kills ``max(2, ...)``)."""
    wide = types.SimpleNamespace(shape=(3, DENSE_PER_BLOCK + 1))
    src = MatrixSource(x=wide, kind="dense", where="adata.X", var=pd.DataFrame(), use_raw=False)
    assert _rows_per_block(src, None) == 1
    src.x = types.SimpleNamespace(shape=(3, DENSE_PER_BLOCK // 4))
    assert _rows_per_block(src, None) == 4


def test_use_raw_without_raw_names_both_ways_out():
    """The message for ``use_raw=True`` without ``adata.raw`` names both fixes (kills the
    upper-cased hint)."""
    adata = ad.AnnData(_counts())
    with pytest.raises(ValueError, match=r"use_raw=False to score `adata.X` \(or a layer with layer='<name>'\)"):
        resolve_matrix(adata, None, True)


def test_statistics_on_dask_workers_equal_numpy():
    """With a ``dask.distributed`` client the statistics pass runs one task per row block on the
    workers and merges them (kills a lost dask array, ``fields=None``, ``n_vars=None`` in the task
    and a wrong merge): sums, squares and detection counts equal numpy's."""
    da = pytest.importorskip("dask.array")
    distributed = pytest.importorskip("distributed")
    x = _counts(40, 6, seed=1)
    src = MatrixSource(x=da.from_array(x, chunks=(7, 3)), kind="dask", where="adata.X",
                       var=pd.DataFrame(index=list("abcdef")), use_raw=False)
    with distributed.Client(processes=False, n_workers=1, threads_per_worker=1, dashboard_address=None):
        assert _matrix.dask_client() is not None
        for fields in (("sum", "sumsq", "nnz", "extent"), ("sum", "sumsq")):
            stats = compute_stats(src, chunk_size=None, native=True, fields=fields)
            np.testing.assert_allclose(stats.sum, x.sum(axis=0), rtol=1e-6)
            np.testing.assert_allclose(stats.sumsq, (x.astype(float) ** 2).sum(axis=0), rtol=1e-6)
            assert stats.n_obs == 40
        assert stats.nnz is None  # fields without "nnz"
        full = compute_stats(src, chunk_size=10)
        np.testing.assert_array_equal(full.nnz, (x != 0).sum(axis=0))
        np.testing.assert_allclose(full.vmax, x.max(axis=0))
