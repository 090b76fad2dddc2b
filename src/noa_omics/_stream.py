r"""Cells streamed in row blocks: the AnnData-like view that scoring reads without loading a matrix.

A :class:`StreamedCells` object stands in for an AnnData whose expression matrix is too large for
memory (a CELLxGENE Census query, a local TileDB-SOMA experiment). It holds the small parts in
memory (``obs``, ``var``, and the ``obsm``/``uns`` results written to it) and exposes ``X`` as a
:class:`RowBlockMatrix`: an object with ``shape``, ``dtype``, ``format = "csr"`` and row slicing
``X[start:stop]`` returning a :class:`scipy.sparse.csr_matrix`. That is the protocol the scoring
engine already walks for backed AnnData, so :func:`noa.tl.score` streams such a view block by block
through its kernels (two passes for methods that need gene statistics), with memory bounded by one
block plus the (cells x sets) result.

Two streamed reductions complete the picture, so that nothing downstream needs the whole matrix:

- :meth:`StreamedCells.to_anndata`: an in-memory AnnData of a *gene subset* (e.g. the genes of the
  curated sets, the markers and the multi-hit ingredients), with ``obs``, the score tables in
  ``obsm`` and ``uns``. Every downstream step (profiles, condition tests, multi-hit) runs on it.
  Memory: the stored values of the kept genes only.
- :meth:`StreamedCells.pseudobulk`: per-group (e.g. donor x cell type) sums of counts over all genes,
  accumulated block by block as :math:`S = G^\top X_b` summed over blocks :math:`b`, where
  :math:`G` is the sparse (cells x groups) indicator of the block's cells.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

#: Cells per block when none is given.
DEFAULT_CHUNK_SIZE = 20_000


class RowBlockMatrix:
    """Protocol of a lazily read (cells x genes) matrix: ``shape``, ``dtype``, ``X[start:stop]``.

    Subclasses implement :meth:`read_rows` (raw values of rows ``start:stop`` as CSR); the
    optional per-cell ``transform`` (see :func:`log1p_cp10k`) is applied to every block read.
    """

    format = "csr"  # scoring treats the rows as a backed CSR dataset
    preferred_chunk_size: int | None = None  # rows per block scoring uses when given no chunk_size

    def __init__(self, shape: tuple[int, int], *, dtype=np.float32, transform=None):
        self.shape = (int(shape[0]), int(shape[1]))
        self.dtype = np.dtype(dtype)
        self.transform = transform

    @property
    def ndim(self) -> int:
        return 2

    def read_rows(self, start: int, stop: int) -> sp.csr_matrix:  # pragma: no cover - abstract
        raise NotImplementedError

    def __getitem__(self, key) -> sp.csr_matrix:
        if not isinstance(key, slice) or key.step not in (None, 1):
            raise TypeError(
                f"{type(self).__name__} supports contiguous row slices X[start:stop] only, got {key!r}; "
                "materialise a subset first with .to_anndata(genes=...)."
            )
        start, stop, _ = key.indices(self.shape[0])
        block = self.read_rows(start, max(start, stop))
        return self.transform(block) if self.transform is not None else block

    def __len__(self) -> int:
        return self.shape[0]


#: Rows per chunk of the in-memory row-chunked passes (constant-size temporaries).
ROW_CHUNK = 16_384


def row_chunks(n_rows: int, size: int = ROW_CHUNK) -> list[tuple[int, int]]:
    """(start, stop) ranges of ``size`` rows covering ``n_rows`` rows."""
    return [(lo, min(lo + size, n_rows)) for lo in range(0, n_rows, size)]


def log1p_cp10k(block: sp.spmatrix, target_sum: float = 1e4, *, dtype=np.float32,
                share_structure: bool = False) -> sp.csr_matrix:
    r"""Per-cell normalisation of a counts block: :math:`\log(1 + 10^4\,x_{cg} / \sum_g x_{cg})`.

    With the default ``dtype=np.float32``, the same arithmetic as
    ``scanpy.pp.normalize_total(target_sum=1e4)`` followed by ``scanpy.pp.log1p`` on float32 data;
    ``dtype=None`` keeps a floating input's dtype (float64 for integers). Every cell's total is over
    all its genes, and a block always holds whole rows, so the result does not depend on the block
    size. Cells with no counts stay zero. ``block`` is not modified.

    ``share_structure=True`` (a CSR ``block`` in canonical format only) returns a matrix that shares
    ``block``'s ``indices`` and ``indptr`` arrays and owns only a new ``data`` array: half the memory
    of a copy. Neither matrix may then be re-sorted or pruned in place.
    """
    if dtype is None:
        dtype = block.dtype if np.issubdtype(block.dtype, np.floating) else np.float64
    dtype = np.dtype(dtype)
    if share_structure:
        if not (sp.issparse(block) and block.format == "csr" and block.has_canonical_format):
            raise ValueError("share_structure=True needs a CSR matrix in canonical format (sorted indices, no "
                             "duplicates); call sum_duplicates() on it first.")
        data = block.data.astype(dtype, copy=True)
        block = sp.csr_matrix((data, block.indices, block.indptr), shape=block.shape, copy=False)
    else:
        block = sp.csr_matrix(block, dtype=dtype, copy=True)
    totals = np.asarray(block.sum(axis=1), dtype=dtype).ravel()
    scale = np.divide(dtype.type(target_sum), totals, out=np.zeros_like(totals), where=totals > 0)
    lengths = np.diff(block.indptr)
    for lo, hi in row_chunks(block.shape[0]):  # no matrix-sized temporary
        block.data[block.indptr[lo]:block.indptr[hi]] *= np.repeat(scale[lo:hi], lengths[lo:hi])
    np.log1p(block.data, out=block.data)
    return block


class StreamedCells:
    """AnnData-like view of cells whose matrix is read in row blocks.

    Attributes follow AnnData's names so that :func:`noa.tl.score` accepts it unchanged:
    ``obs``, ``var``, ``obs_names``, ``var_names``, ``X`` (a :class:`RowBlockMatrix`),
    ``obsm`` and ``uns`` (results are written there with ``inplace=True``), ``raw = None``,
    ``layers = {}`` and ``n_obs``/``n_vars``. ``counts`` is the same matrix without the per-cell
    transform (the raw counts), used by :meth:`pseudobulk` and :meth:`to_anndata`.
    """

    raw = None
    isbacked = True

    def __init__(self, X: RowBlockMatrix, counts: RowBlockMatrix, obs: pd.DataFrame, var: pd.DataFrame,
                 *, uns: dict | None = None, chunk_size: int = DEFAULT_CHUNK_SIZE):
        if X.shape != (len(obs), len(var)) or counts.shape != X.shape:
            raise ValueError(
                f"matrix shape {X.shape} does not match obs ({len(obs)} rows) x var ({len(var)} rows)."
            )
        self.X = X
        self.counts = counts
        self.obs = obs
        self.var = var
        self.obsm: dict[str, Any] = {}
        self.uns: dict[str, Any] = dict(uns or {})
        self.layers: dict[str, Any] = {}
        self.chunk_size = int(chunk_size)
        X.preferred_chunk_size = counts.preferred_chunk_size = self.chunk_size

    # -- AnnData-like surface ---------------------------------------------------------------
    @property
    def obs_names(self) -> pd.Index:
        return self.obs.index

    @property
    def var_names(self) -> pd.Index:
        return self.var.index

    @property
    def n_obs(self) -> int:
        return self.X.shape[0]

    @property
    def n_vars(self) -> int:
        return self.X.shape[1]

    @property
    def shape(self) -> tuple[int, int]:
        return self.X.shape

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__} with n_obs x n_vars = {self.n_obs} x {self.n_vars} "
            f"(streamed in blocks of {self.chunk_size} cells); obsm: {list(self.obsm)}"
        )

    # -- streaming reductions ---------------------------------------------------------------
    def iter_blocks(self, *, counts: bool = False, chunk_size: int | None = None
                    ) -> Iterator[tuple[int, int, sp.csr_matrix]]:
        """Yield ``(start, stop, block)`` over the cells (``counts=True``: untransformed values)."""
        matrix = self.counts if counts else self.X
        step = int(chunk_size or self.chunk_size)
        for start in range(0, self.n_obs, step):
            stop = min(start + step, self.n_obs)
            yield start, stop, matrix[start:stop]

    def gene_positions(self, genes: Sequence[str], *, gene_symbols: str | None = None) -> np.ndarray:
        """Positions of ``genes`` (symbols with ``gene_symbols``, else ``var_names``), data order."""
        names = self.var[gene_symbols].astype(str) if gene_symbols is not None else self.var_names.to_series()
        wanted = set(map(str, genes))
        return np.flatnonzero(np.asarray(names.isin(wanted)))

    def to_anndata(self, genes: Sequence[str] | None = None, *, gene_symbols: str | None = None,
                   chunk_size: int | None = None):
        """Materialise the cells with a subset of genes as an in-memory AnnData.

        Parameters
        ----------
        genes
            Genes to keep (symbols when ``gene_symbols`` names the ``var`` column holding them,
            else ``var_names``); None keeps every gene (the whole matrix: only for small queries).
        gene_symbols
            ``var`` column with symbols (``"feature_name"`` in the Census).

        Returns
        -------
        anndata.AnnData
            ``X``: the kept genes after the view's per-cell transform, computed on whole rows (so
            log-normalisation uses each cell's total over *all* genes, not over the kept ones);
            ``layers["counts"]``: their raw counts (CSR, float32); ``obs`` with ``total_counts``
            (all genes), ``var`` (kept rows), every table of ``obsm`` and ``uns`` copied, plus
            ``uns["noa_stream"]`` recording the kept genes and the missing ones.
        """
        import anndata as ad

        if genes is None:
            cols = np.arange(self.n_vars)
            missing: list[str] = []
        else:
            genes = list(dict.fromkeys(map(str, genes)))
            cols = self.gene_positions(genes, gene_symbols=gene_symbols)
            names = self.var[gene_symbols].astype(str) if gene_symbols is not None else self.var_names
            present = set(np.asarray(names)[cols])
            missing = [g for g in genes if g not in present]
            if cols.size == 0:
                raise ValueError(
                    f"none of the {len(genes)} requested genes is in the data (first: {genes[:3]}); "
                    "check gene_symbols= (the Census keeps symbols in var['feature_name'])."
                )
        transform = self.X.transform
        counts_parts, values_parts, totals = [], [], []
        for _, _, block in self.iter_blocks(counts=True, chunk_size=chunk_size):
            totals.append(np.asarray(block.sum(axis=1)).ravel())
            counts_parts.append(block[:, cols])
            # per-cell transforms see the whole row (all genes), then the kept genes are cut out
            values_parts.append(transform(block)[:, cols] if transform is not None else block[:, cols])
        counts = _stack(counts_parts, cols.size)
        values = _stack(values_parts, cols.size)
        obs = self.obs.copy()
        obs["total_counts"] = np.concatenate(totals) if totals else np.zeros(0)
        adata = ad.AnnData(X=values, obs=obs, var=self.var.iloc[cols].copy())
        adata.layers["counts"] = counts
        for key, value in self.obsm.items():
            adata.obsm[key] = value.copy()
        adata.uns.update({k: v for k, v in self.uns.items()})
        adata.uns["noa_stream"] = {"n_genes_kept": int(cols.size), "genes_missing": missing,
                                   "source": self.uns.get("noa_soma", {})}
        return adata

    def pseudobulk(self, groupby: str | Sequence[str], *, chunk_size: int | None = None):
        """Sums of raw counts over all genes per group of cells, accumulated block by block.

        Parameters
        ----------
        groupby
            One ``obs`` column or several (e.g. ``["donor_id", "noa_cell_type"]``).

        Returns
        -------
        anndata.AnnData
            Groups x genes; ``X`` the summed counts (CSR float64), ``obs`` the group columns and
            ``n_cells``. Only groups with at least one cell are returned.
        """
        import anndata as ad

        keys = [groupby] if isinstance(groupby, str) else list(groupby)
        for key in keys:
            if key not in self.obs.columns:
                raise KeyError(f"column {key!r} not found in obs; available: {list(self.obs.columns)[:10]}.")
        frame = self.obs[keys].astype(str)
        codes, uniques = pd.MultiIndex.from_frame(frame).factorize()
        n_groups = len(uniques)
        total = sp.csr_matrix((n_groups, self.n_vars), dtype=np.float64)
        for start, stop, block in self.iter_blocks(counts=True, chunk_size=chunk_size):
            rows = codes[start:stop]
            indicator = sp.csr_matrix(
                (np.ones(stop - start), (rows, np.arange(stop - start))), shape=(n_groups, stop - start)
            )
            total = total + indicator @ block.astype(np.float64)
        obs = pd.DataFrame(list(uniques), columns=keys)
        obs["n_cells"] = np.bincount(codes, minlength=n_groups)
        obs.index = ["|".join(map(str, t)) for t in uniques]
        return ad.AnnData(X=sp.csr_matrix(total), obs=obs, var=self.var.copy())


def _stack(parts: list, n_cols: int) -> sp.csr_matrix:
    if not parts:
        return sp.csr_matrix((0, n_cols), dtype=np.float32)
    return sp.vstack(parts, format="csr").astype(np.float32)


def is_streamed(obj: Any) -> bool:
    """True for a :class:`StreamedCells` view (accepted wherever scoring reads a backed AnnData)."""
    return isinstance(obj, StreamedCells)
