"""``noa.tl.score``: score gene sets per cell with one of the registered methods."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd
from anndata import AnnData

from .._validation import check_adata, check_positive_int, check_unique_names
from ._base import Context
from ._matrix import compute_stats, negative_message, nonfinite_message, resolve_matrix, score_pass
from ._registry import get_method
from .._identifiers import resolve_genes
from ._sets import map_sets, no_sets_message, resolve_sets

#: Integer-valued data with a maximum above this look like raw counts to ``score_genes``.
COUNTS_MAX = 50


def score(
    adata: AnnData,
    gene_sets=None,
    *,
    method: str = "score_genes",
    layer: str | None = None,
    use_raw: bool | None = None,
    gene_symbols: str | None = None,
    species: str | None = None,
    key_added: str | None = None,
    random_state: int | None = 0,
    min_genes: int = 3,
    inplace: bool = True,
    chunk_size: int | None = None,
    **method_kwargs: Any,
) -> pd.DataFrame:
    r"""Score gene sets in every cell.

    All sets are scored together in one pass over the matrix; the score of a set never depends on
    which other sets are in the call. Methods (see :func:`noa_omics.scoring.methods`):

    - ``"score_genes"``: :math:`\bar{x}_S - \bar{x}_{C_S}`, set mean minus the mean of random
      expression-matched control genes; the algorithm and defaults of :func:`scanpy.tl.score_genes`
      (``ctrl_size=50``, ``n_bins=25``, ``ctrl_as_ref=True``, ``gene_pool=None``), equal to it
      for the same ``random_state``. Expects log-normalised data.
    - ``"aucell"``: area under the recovery curve of the set in the cell's gene ranking
      (AUCell, decoupler's definition, ``n_up=None`` = 5% of the expressed genes).
    - ``"ucell"``: normalised Mann-Whitney U of the set's ranks (UCell, ``max_rank=1500``).
    - ``"zmean"``: mean of the per-gene z-scores (population SD over all cells).

    Parameters
    ----------
    adata
        Cells x genes. ``X``/layers may be dense, CSR/CSC, backed (``read_h5ad(..., backed="r")``)
        or dask arrays; backed and dask data are read in row blocks of ``chunk_size`` cells. With a
        ``dask.distributed`` client active, dask data are scored on its workers.
    gene_sets
        None (the curated library for ``species``), a :class:`~noa_omics.genesets.GeneSetCollection`,
        a dict ``name -> genes`` or the path of a GMT file.
    method
        ``"score_genes"``, ``"aucell"``, ``"ucell"`` or ``"zmean"``.
    layer
        Score ``adata.layers[layer]`` instead of ``adata.X``; ``"raw"`` scores ``adata.raw.X``.
    use_raw
        Score ``adata.raw.X``; None means True when ``adata.raw`` exists and no ``layer`` is given
        (scanpy's rule).
    gene_symbols
        Column of ``var`` (``raw.var`` with ``use_raw``) holding gene symbols, when ``var_names``
        are e.g. Ensembl ids. None: ``var_names``, or, when they are Ensembl ids, the first
        well-known symbol column (``feature_name``, ``gene_symbols``, ``gene_name``, ``symbol``,
        ...; a warning says which). Duplicated symbols: the first column of each is scored
        (see :mod:`noa_omics._identifiers`).
    species
        ``"human"`` or ``"mouse"``; detected from the gene names when None.
    key_added
        Key of the result in ``adata.obsm`` and ``adata.uns``; default ``f"noa_{method}"``.
    random_state
        Seed of the control-gene draw (``score_genes``) and of the tie order (``aucell``); None
        draws a fresh seed.
    min_genes
        Sets with fewer usable genes in the data are dropped (one warning lists them).
    inplace
        Store the result in ``adata``; with False the input is not modified.
    chunk_size
        Cells per row block for backed, dask, dense and CSC data (default: about 4 million stored
        values per block); in-memory CSR is scored in one block unless given.
    **method_kwargs
        Method parameters: ``ctrl_size``, ``n_bins``, ``ctrl_as_ref``, ``gene_pool``
        (score_genes); ``n_up`` (aucell); ``max_rank`` (ucell).

    Returns
    -------
    pandas.DataFrame
        Cells x sets (index ``obs_names``, columns the kept sets in input order). With
        ``inplace=True`` also stored in ``adata.obsm[key]``, and ``adata.uns[key]`` records
        ``method``, ``params`` (every effective parameter), ``geneset_version``, ``species``,
        ``genes_used`` and ``genes_missing`` (per input set; missing includes genes present but
        unusable, e.g. zero-variance genes for zmean) and ``sets_dropped``.

    Raises
    ------
    ValueError
        Unknown method; Ensembl ids without ``gene_symbols``; data and sets of different species;
        no set with ``min_genes`` genes; NaN/inf values; negative values for ``aucell``/``ucell``;
        zero cells; duplicated gene names; ``use_raw=True`` without ``adata.raw``.
    KeyError
        Missing ``layer`` or ``gene_symbols`` column.

    Examples
    --------
    >>> import noa_omics as noa
    >>> adata = noa.datasets.demo_testis()  # doctest: +SKIP
    >>> noa.tl.score(adata, {"stress": ["HSPA1A", "HSPA1B", "DNAJB1"]}, method="ucell")  # doctest: +SKIP
    """
    check_adata(adata, min_obs=1, min_vars=1)
    meta = get_method(method)
    min_genes = check_positive_int(min_genes, name="min_genes")
    if chunk_size is not None:
        chunk_size = check_positive_int(chunk_size, name="chunk_size")
    random_state = _check_random_state(random_state)
    if key_added is not None and (not isinstance(key_added, str) or not key_added):
        raise ValueError(f"`key_added` must be a non-empty string or None, got {key_added!r}.")

    src = resolve_matrix(adata, layer, use_raw)
    var_names = adata.raw.var_names if src.use_raw else adata.var_names
    ids = resolve_genes(src.var, var_names, gene_symbols, where=src.where,
                        fallback_var=adata.var if src.use_raw else None)
    names, source = ids.names, ids.source
    if ids.column is None:
        check_unique_names(names, where=source)
    params = meta.check_params(dict(method_kwargs), len(names))
    resolved = resolve_sets(gene_sets, species, names)
    set_names, indices, missing = map_sets(resolved.collection, names)
    _require_a_set(set_names, indices, min_genes, names, source, resolved)

    stats = None
    if meta.needs_gene_stats:
        stats = compute_stats(src, chunk_size, native=meta.extra.get("native_sum", False))
        _check_stats(stats, src.where, method, meta.nonnegative, warn_counts=meta.extra.get("warn_counts", False))
        if meta.usable_genes is not None:
            usable = meta.usable_genes(stats, params)
            missing = {n: missing[n] + [names[g] for g in idx if not usable[g]] for n, idx in zip(set_names, indices)}
            indices = [idx[usable[idx]] for idx in indices]
            _require_a_set(set_names, indices, min_genes, names, source, resolved)
    kept = _drop_small_sets(set_names, indices, min_genes)

    ctx = Context(
        sets=[indices[i] for i in kept], set_names=[set_names[i] for i in kept], gene_names=names,
        stats=stats, params=params, random_state=random_state,
    )
    plan = meta.prepare(ctx)
    values = score_pass(src, method, plan, len(kept), chunk_size, check_values=stats is None)
    result = pd.DataFrame(values, index=pd.Index(adata.obs_names.copy()), columns=ctx.set_names)

    if inplace:
        key = key_added or f"noa_{method}"
        adata.obsm[key] = result
        adata.uns[key] = {
            "method": method,
            "params": {
                **ctx.params,
                "random_state": random_state,
                "layer": layer,
                "use_raw": src.use_raw,
                "gene_symbols": ids.column,
                "min_genes": min_genes,
                "chunk_size": chunk_size,
            },
            "geneset_version": resolved.collection.version,
            "species": resolved.species,
            "genes_used": {name: [names[g] for g in idx] for name, idx in zip(set_names, indices)},
            "genes_missing": {name: list(missing[name]) for name in set_names},
            "sets_dropped": [name for name, idx in zip(set_names, indices) if idx.size < min_genes],
        }
    return result


def _require_a_set(set_names, indices, min_genes, names, source, resolved) -> None:
    """Refuse a call where no set has ``min_genes`` genes, saying which identifier style was seen."""
    sizes = [idx.size for idx in indices]
    if not any(n >= min_genes for n in sizes):
        best = max(zip(set_names, sizes), key=lambda t: t[1]) if set_names else None
        raise ValueError(no_sets_message(len(set_names), min_genes, best, names, source, resolved))


def _drop_small_sets(set_names: list[str], indices: list[np.ndarray], min_genes: int) -> list[int]:
    """Positions of the sets with at least ``min_genes`` genes; one warning lists the others."""
    kept = [i for i, idx in enumerate(indices) if idx.size >= min_genes]
    dropped = [f"{name!r} ({idx.size})" for name, idx in zip(set_names, indices) if idx.size < min_genes]
    if dropped:
        warnings.warn(
            f"{len(dropped)} gene set(s) have fewer than min_genes={min_genes} usable genes in the data and "
            f"were dropped (usable genes in brackets): {', '.join(dropped)}.",
            UserWarning,
            stacklevel=3,
        )
    return kept


def _check_random_state(value: Any) -> int | None:
    if value is None:
        return int(np.random.SeedSequence().generate_state(1)[0])
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        raise ValueError(f"`random_state` must be a non-negative integer or None, got {value!r}.")
    return int(value)


def _check_stats(stats, where: str, method: str, nonnegative: bool, *, warn_counts: bool) -> None:
    if stats.n_nonfinite:
        raise ValueError(nonfinite_message(where, stats.n_nonfinite))
    if nonnegative and stats.n_negative:
        raise ValueError(negative_message(where, method))
    if warn_counts and stats.n_noninteger == 0 and stats.max_value > COUNTS_MAX:
        warnings.warn(
            f"`{where}` holds only integers (max {stats.max_value:g}): it looks like raw counts, but {method!r} "
            "expects log-normalised data; run sc.pp.normalize_total and sc.pp.log1p first, or pass the "
            "normalised layer with layer='<name>'.",
            UserWarning,
            stacklevel=3,
        )
