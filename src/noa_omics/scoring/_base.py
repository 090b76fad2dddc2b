"""Shared types of the scoring methods: per-gene statistics, the method declaration and gene sets.

A scoring method is one file (``_score_genes.py``, ``_aucell.py``, ...) that ends by declaring a
:class:`MethodMeta`; ``_registry.py`` lists them. The orchestrator (:func:`noa.tl.score`) does
the rest: it resolves the matrix and the gene sets, runs an optional streaming pass that fills
:class:`GeneStats`, asks the method to ``prepare`` a picklable plan from those statistics, then
calls the method's ``score_block`` on row blocks (in memory, backed, or on dask workers).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd


class ScoringError(ValueError, RuntimeError):
    """A scoring failure that scanpy reports as ``RuntimeError`` (e.g. no control genes).

    Subclasses both :class:`ValueError` (noa's convention for bad input) and
    :class:`RuntimeError` (what code written against :func:`scanpy.tl.score_genes` catches).
    """


@dataclass
class GeneStats:
    """Per-gene statistics over all cells, accumulated in one streaming pass in row order.

    Sums are accumulated cell after cell, the order in which ``scipy.sparse`` and ``numpy`` sum a
    column; see :attr:`mean_scanpy` for the means scanpy bins genes by.
    """

    n_obs: int
    sum: np.ndarray  #: sum of values per gene (float64)
    sum_native: np.ndarray  #: the same sum in the data's float type, cell order (``native=True`` passes only)
    dense_float32: bool  #: the matrix is dense float32 (numpy then also rounds means to float32)
    sumsq: np.ndarray  #: sum of squared values per gene (float64)
    nnz: np.ndarray  #: number of cells with a value different from 0, per gene (int64)
    vmin: np.ndarray  #: smallest value per gene, implicit zeros included (float64)
    vmax: np.ndarray  #: largest value per gene, implicit zeros included (float64)
    n_nonfinite: int = 0  #: NaN/inf values seen (the pass refuses them before anything uses the stats)
    n_negative: int = 0  #: negative values seen
    n_noninteger: int = 0  #: values with a fractional part
    max_value: float = 0.0  #: largest finite value of the matrix
    n_nan_gene: np.ndarray | None = None  #: NaN values per gene (int64; the NaN share of the non-finite)

    @property
    def mean(self) -> np.ndarray:
        """Mean per gene (float64)."""
        return self.sum / self.n_obs

    @property
    def mean_scanpy(self) -> np.ndarray:
        """Gene means computed as scanpy computes them for its expression bins.

        scipy and numpy sum a float32 column in float32 (cell order); numpy's ``nanmean`` of a
        dense float32 matrix also rounds the mean to float32. The result is float64.
        """
        mean = self.sum_native.astype(np.float64) / self.n_obs
        if self.dense_float32:
            mean = mean.astype(np.float32).astype(np.float64)
        return mean

    @property
    def var(self) -> np.ndarray:
        r"""Population variance per gene, :math:`E[x^2] - E[x]^2` clipped at 0 (float64)."""
        mean = self.mean
        return np.maximum(self.sumsq / self.n_obs - mean * mean, 0.0)

    @property
    def constant(self) -> np.ndarray:
        """True for genes with the same value in every cell (zero variance, exactly)."""
        return self.vmax == self.vmin


@dataclass
class Context:
    """What a method's ``prepare`` gets: the gene sets as column indices and the run's settings."""

    sets: list[np.ndarray]  #: per set, the column indices of the genes used (unique, set order)
    set_names: list[str]
    gene_names: pd.Index  #: identifiers used to match genes (var_names or the gene_symbols column)
    stats: GeneStats | None
    params: dict[str, Any]  #: effective method parameters
    random_state: int | None
    #: per set, True where the gene of ``sets`` is in the negative part of a signed signature
    #: (``GENE-``); None when no signature is signed or the method does not parse signs
    signs: list[np.ndarray] | None = None
    #: per set, ``(absent positive genes, absent negative genes)``: set genes not in the data
    n_absent: list[tuple[int, int]] | None = None


@dataclass(frozen=True)
class MethodMeta:
    """Declaration of one scoring method (the decoupler ``MethodMeta`` pattern).

    Attributes
    ----------
    name
        Value of ``method=`` in :func:`noa.tl.score`.
    description
        One line for listings.
    input
        What the matrix is expected to hold (e.g. log-normalised expression).
    reference
        Citation (DOI) of the method.
    defaults
        Method keyword arguments and their defaults (``**method_kwargs`` of :func:`noa.tl.score`).
    needs_gene_stats
        Whether ``prepare`` needs :class:`GeneStats` (a first streaming pass over all cells).
    nonnegative
        Whether negative values are refused (rank methods: ranks assume expression >= 0).
    check_params
        ``(params, n_vars) -> params``: validate user keyword arguments, fill defaults.
    usable_genes
        ``(stats, params) -> bool mask`` of genes a set may use (others are recorded as missing),
        or None when every gene present in the data is usable.
    extra
        Flags: ``stats`` (the :class:`GeneStats` fields the method reads, among ``"sum"``,
        ``"sumsq"``, ``"nnz"``, ``"extent"``; default all; the others are None),
        ``empty_cells_nan`` (cells without an expressed gene score NaN and are counted),
        ``signed`` (the method parses ``GENE+``/``GENE-``),
        ``warn_counts`` (warn on raw counts), ``native_sum`` (the statistics pass also
        accumulates scanpy's column sums).
    prepare
        ``(Context) -> plan``: a small picklable object holding everything ``score_block`` needs.
    score_block
        ``(block, plan, parallel) -> ndarray (n_rows, n_sets)``: scores of one row block; ``block``
        is a canonical ``scipy.sparse.csr_matrix`` or a C-contiguous 2-D ``numpy`` array.
    """

    name: str
    description: str
    input: str
    reference: str
    defaults: Mapping[str, Any]
    needs_gene_stats: bool
    nonnegative: bool
    check_params: Callable[[dict[str, Any], int], dict[str, Any]]
    prepare: Callable[[Context], Any]
    score_block: Callable[[Any, Any, bool], np.ndarray]
    usable_genes: Callable[[GeneStats, dict[str, Any]], np.ndarray] | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)


def unknown_params(params: Mapping[str, Any], defaults: Mapping[str, Any], method: str) -> None:
    """Refuse keyword arguments a method does not take."""
    unknown = sorted(set(params) - set(defaults))
    if unknown:
        raise ValueError(
            f"method {method!r} got unexpected keyword argument(s) {unknown}; "
            f"it takes {sorted(defaults) or 'none'} (see noa.scoring.methods())."
        )


def membership(sets: list[np.ndarray], n_vars: int, weights: list[np.ndarray] | None = None):
    """Gene-major sparse layout of the sets: for gene ``g``, its sets are ``set_id[ptr[g]:ptr[g+1]]``.

    Returns ``(ptr, set_id, weight)`` as int64/int64/float64 arrays; ``weight`` is 1 when
    ``weights`` is None.
    """
    genes = np.concatenate([np.asarray(s, dtype=np.int64) for s in sets]) if sets else np.empty(0, np.int64)
    set_id = np.concatenate([np.full(len(s), j, dtype=np.int64) for j, s in enumerate(sets)]) if sets else genes
    if weights is None:
        weight = np.ones(genes.size, dtype=np.float64)
    else:
        weight = np.concatenate([np.asarray(w, dtype=np.float64) for w in weights])
    order = np.argsort(genes, kind="stable")
    genes, set_id, weight = genes[order], set_id[order], weight[order]
    ptr = np.zeros(n_vars + 1, dtype=np.int64)
    np.add.at(ptr, genes + 1, 1)
    np.cumsum(ptr, out=ptr)
    return ptr, set_id, weight
