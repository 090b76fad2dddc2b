"""Write a TileDB-SOMA experiment in the CELLxGENE Census layout block by block (tests, benchmarks)."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd
import scipy.sparse as sp


def write_experiment(uri: str, obs: pd.DataFrame, var: pd.DataFrame, blocks: Iterable[sp.csr_matrix],
                     *, X_name: str = "raw") -> str:
    """An experiment with ``obs``, measurement ``RNA`` (``var``, ``X[X_name]``) from row blocks.

    ``obs``/``var`` indexes become the ``obs_id``/``var_id`` columns; blocks hold consecutive rows.
    """
    import pyarrow as pa
    import tiledbsoma as soma

    def frame(df: pd.DataFrame, id_name: str) -> pa.Table:
        table = df.reset_index(names=id_name)
        table.insert(0, "soma_joinid", np.arange(len(table), dtype=np.int64))
        for col in table.columns:
            if table[col].dtype == object or isinstance(table[col].dtype, pd.CategoricalDtype):
                table[col] = table[col].astype(str)
        return pa.Table.from_pandas(table, preserve_index=False)

    obs_t, var_t = frame(obs, "obs_id"), frame(var, "var_id")
    with soma.Experiment.create(uri) as exp:
        exp.add_new_dataframe("obs", schema=obs_t.schema, index_column_names=["soma_joinid"],
                              domain=[(0, len(obs) - 1)]).write(obs_t)
        rna = exp.add_new_collection("ms").add_new_collection("RNA", soma.Measurement)
        rna.add_new_dataframe("var", schema=var_t.schema, index_column_names=["soma_joinid"],
                              domain=[(0, len(var) - 1)]).write(var_t)
        array = rna.add_new_collection("X").add_new_sparse_ndarray(
            X_name, type=pa.float32(), shape=(len(obs), len(var)))
        start = 0
        for block in blocks:
            coo = sp.coo_matrix(block)
            array.write(pa.Table.from_pydict({
                "soma_dim_0": (coo.row + start).astype(np.int64), "soma_dim_1": coo.col.astype(np.int64),
                "soma_data": coo.data.astype(np.float32)}))
            start += block.shape[0]
    return uri


def random_count_blocks(n_obs: int, n_vars: int, *, per_cell: int = 40, block: int = 100_000, seed: int = 0):
    """Sparse count blocks with about ``per_cell`` detected genes per cell (1-4 counts each)."""
    rng = np.random.default_rng(seed)
    for start in range(0, n_obs, block):
        m = min(block, n_obs - start)
        rows = np.repeat(np.arange(m), per_cell)
        cols = rng.integers(0, n_vars, rows.size)
        data = rng.integers(1, 5, rows.size).astype(np.float32)
        out = sp.csr_matrix((data, (rows, cols)), shape=(m, n_vars))
        out.sum_duplicates()
        yield out
