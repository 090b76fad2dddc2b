"""dask input with a ``dask.distributed`` client: scored on the workers, equal to in-memory."""

from __future__ import annotations

import dask.array as da
import pytest
from numpy.testing import assert_allclose

import noa_omics as noa

distributed = pytest.importorskip("distributed")


@pytest.fixture(scope="module")
def client():
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None
    ) as cluster, distributed.Client(cluster) as c:
        yield c


@pytest.mark.parametrize("method", ["score_genes", "aucell", "ucell", "zmean"])
def test_workers_score_equal_to_in_memory(client, lognorm, gene_sets, method):
    expected = noa.tl.score(lognorm, gene_sets, method=method, inplace=False)
    lazy = lognorm.copy()
    lazy.X = da.from_array(lognorm.X, chunks=(60, -1))
    with distributed.get_task_stream(client) as stream:
        got = noa.tl.score(lazy, gene_sets, method=method, inplace=False)
    assert_allclose(got.to_numpy(), expected.to_numpy(), atol=1e-10, rtol=0)
    keys = [str(task["key"]) for task in stream.data]
    assert sum("_score_task" in k for k in keys) == 5  # one task per row block, on the workers
    if method != "ucell":
        assert sum("_stats_task" in k for k in keys) == 5
