"""Shared fixtures of the scoring tests: small simulated matrices (session scope, built once)."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp


def _adata(x, prefix: str = "GENE") -> ad.AnnData:
    n, m = x.shape
    return ad.AnnData(
        x,
        obs=pd.DataFrame(index=[f"cell{i}" for i in range(n)]),
        var=pd.DataFrame(index=[f"{prefix}{j}" for j in range(m)]),
    )


def nb_counts(n_cells: int, n_genes: int, *, seed: int, scale: float = 0.1) -> np.ndarray:
    """Negative-binomial counts with gene-specific means and cell-specific depths (no empty cell)."""
    rng = np.random.default_rng(seed)
    mu = rng.lognormal(0.0, 1.5, n_genes) * scale
    depth = rng.lognormal(0.0, 0.6, (n_cells, 1))
    counts = rng.negative_binomial(2, 2.0 / (2.0 + mu[None, :] * depth))
    counts[:, -5:] = 0  # never-detected genes
    empty = counts.sum(axis=1) == 0
    counts[empty, 0] = 1
    return counts


def log_normalise(counts: np.ndarray) -> sp.csr_matrix:
    lib = counts.sum(axis=1, keepdims=True)
    return sp.csr_matrix(np.log1p(counts / lib * 1e4).astype(np.float32))


@pytest.fixture(scope="session")
def lognorm() -> ad.AnnData:
    """300 cells x 2,000 genes, NB counts log-normalised (float32 CSR), 20-600 genes per cell."""
    return _adata(log_normalise(nb_counts(300, 2000, seed=0)))


@pytest.fixture(scope="session")
def counts() -> ad.AnnData:
    """200 cells x 1,500 sparse integer counts (float32 CSR): many ties, cells with < n_up genes."""
    return _adata(sp.csr_matrix(nb_counts(200, 1500, seed=1, scale=0.03).astype(np.float32)))


@pytest.fixture(scope="session")
def continuous() -> ad.AnnData:
    """150 cells x 800 genes, 40% dense with 80 distinct values: many distinct set values per cell."""
    x = sp.random(150, 800, density=0.4, format="csr", random_state=2, dtype=np.float64)
    x.data = np.round(x.data * 20) / 4 + 0.25
    return _adata(x)


@pytest.fixture(scope="session")
def gene_sets(lognorm) -> dict[str, list[str]]:
    """Six random sets of 30 genes (overlapping) and one with two absent genes."""
    rng = np.random.default_rng(7)
    names = lognorm.var_names
    sets = {f"set{j}": list(rng.choice(names[:-5], 30, replace=False)) for j in range(6)}
    sets["with_missing"] = list(rng.choice(names[:-5], 10, replace=False)) + ["NOTAGENE1", "NOTAGENE2"]
    return sets


def random_sets(adata: ad.AnnData, n_sets: int, size: int, seed: int) -> dict[str, list[str]]:
    rng = np.random.default_rng(seed)
    return {f"s{j}": list(rng.choice(adata.var_names, size, replace=False)) for j in range(n_sets)}


def as_storage(adata: ad.AnnData, kind: str, tmp_path=None) -> ad.AnnData:
    """The same data as CSR, CSC, dense, dask (sparse or dense blocks) or a backed h5ad file."""
    x = adata.X
    if kind == "csr":
        new = x.copy()
    elif kind == "csc":
        new = x.tocsc()
    elif kind == "dense":
        new = x.toarray()
    elif kind == "dask":
        import dask.array as da

        new = da.from_array(x, chunks=(64, 700))  # column chunks too: rechunked internally
    elif kind == "dask_dense":
        import dask.array as da

        new = da.from_array(x.toarray(), chunks=(50, -1))
    elif kind == "backed":
        path = tmp_path / "backed.h5ad"
        adata.write_h5ad(path)
        return ad.read_h5ad(path, backed="r")
    else:  # pragma: no cover
        raise ValueError(kind)
    return ad.AnnData(new, obs=adata.obs.copy(), var=adata.var.copy())


STORAGES = ["csr", "csc", "dense", "dask", "dask_dense", "backed"]
