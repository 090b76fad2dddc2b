"""Known-answer tests of ``scoring/_kernels.py``: the gene-statistics pass against numpy on
small hand-made blocks, with NaN/inf, negative and fractional values counted by hand.

Each test names the mutant it was written to kill (mutation testing, docs/mutation.md).
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from noa_omics.scoring._kernels import StatsAccumulator, row_blocks

NAN, INF = np.nan, np.inf
#: 2 NaN (gene 2) and 1 inf (gene 0), 2 negatives, 2 non-integers (1.5, -0.25), max 3.
BLOCK = np.array([[1.5, -2.0, NAN], [INF, 3.0, 0.0], [0.0, -0.25, 2.0], [1.0, 0.0, NAN]])


@pytest.mark.parametrize("parallel", [True, False])
@pytest.mark.parametrize("layout", ["dense", "csr"])
def test_value_checks_count_by_hand(layout, parallel):
    """NaN/inf, negatives, non-integers, the largest value and NaN per gene, counted by hand on
    both kernels (kills ``n_nonfinite += 2``, negatives written into the non-integer slot, the
    largest value dropped and ``n_nan_gene=None``)."""
    block = BLOCK if layout == "dense" else sp.csr_matrix(BLOCK)
    acc = StatsAccumulator(3, parallel=parallel)
    acc.add(block)
    res = acc.result()
    assert (res.n_nonfinite, res.n_negative, res.n_noninteger) == (3, 2, 2)
    assert res.max_value == 3.0
    np.testing.assert_array_equal(res.n_nan_gene, [0, 0, 2])  # inf is not NaN
    finite = np.where(np.isfinite(BLOCK), BLOCK, 0.0)
    np.testing.assert_allclose(res.sum, finite.sum(axis=0))
    np.testing.assert_allclose(res.sumsq, (finite**2).sum(axis=0))


def test_merge_equals_one_pass_over_all_rows():
    """Accumulators of two row blocks merged (the dask path) equal one pass over the stacked
    matrix and numpy's column statistics (kills ``self.ss -= other.ss`` and any other merge sign)."""
    rng = np.random.default_rng(0)
    x = rng.poisson(1.0, size=(30, 6)).astype(np.float64)
    x[rng.random(x.shape) < 0.3] = 0.0
    top, bottom = StatsAccumulator(6, native=True), StatsAccumulator(6, native=True)
    top.add(sp.csr_matrix(x[:11]))
    bottom.add(sp.csr_matrix(x[11:]))
    top.merge(bottom)
    merged = top.result()
    np.testing.assert_allclose(merged.sum, x.sum(axis=0))
    np.testing.assert_allclose(merged.sumsq, (x**2).sum(axis=0))
    np.testing.assert_array_equal(merged.nnz, (x != 0).sum(axis=0))
    np.testing.assert_allclose(merged.sum_native, x.sum(axis=0))
    np.testing.assert_allclose(merged.vmax, x.max(axis=0))
    np.testing.assert_allclose(merged.vmin, x.min(axis=0))
    assert merged.n_obs == 30 and merged.max_value == x.max()


def test_row_blocks_never_exceed_the_rows():
    """Four row groups per thread, at least one, at most one per row (kills ``max(2, ...)``,
    which hands a one-row matrix two groups)."""
    assert row_blocks(1, 8) == 1
    assert row_blocks(3, 4) == 3
    assert row_blocks(100, 2) == 8
    assert row_blocks(100, 0) == 4
    assert row_blocks(0, 4) == 1
