"""``noa.tl.score``: score gene sets per cell with one of the registered methods."""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from anndata import AnnData

from .._validation import check_adata, check_positive_int, check_unique_names
from ._base import Context
from ._matrix import compute_stats, negative_message, nonfinite_message, resolve_matrix, score_pass
from ._registry import get_method
from .._identifiers import resolve_genes
from ._sets import map_sets, map_signed_sets, no_sets_message, resolve_sets, suffixed_genes
from ._smooth import knn_graph, smooth_params, smooth_scores

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
    smooth_knn: bool | Mapping[str, Any] = False,
    **method_kwargs: Any,
) -> pd.DataFrame:
    r"""Score gene sets in every cell.

    Sets with fewer than ``min_genes`` (default 3) usable genes in the data are dropped with one
    warning: a one- or two-gene "set" is a gene, not a programme, and its score is mostly that
    gene's noise. The peers (scanpy, decoupler with ``tmin=1``, pyUCell) score them; pass
    ``min_genes=1`` to get exactly their results.

    All sets are scored together in one pass over the matrix; the score of a set never depends on
    which other sets are in the call. Methods (see :func:`noa_omics.scoring.methods`):

    - ``"score_genes"``: :math:`\bar{x}_S - \bar{x}_{C_S}`, set mean minus the mean of random
      expression-matched control genes; the algorithm and defaults of :func:`scanpy.tl.score_genes`
      (``ctrl_size=50``, ``n_bins=25``, ``ctrl_as_ref=True``, ``gene_pool=None``), equal to it
      for the same ``random_state``. Expects log-normalised data.
    - ``"aucell"``: area under the recovery curve of the set in the cell's gene ranking
      (AUCell, decoupler's definition, ``n_up=None`` = 5% of the expressed genes).
    - ``"ucell"``: normalised Mann-Whitney U of the set's ranks (UCell, ``max_rank=1500``).
    - ``"zmean"``: mean of the per-gene z-scores (population SD over all cells). Expects
      log-normalised data (a warning is given for raw counts).

    ``score_genes`` and ``zmean`` depend on normalisation; ``aucell`` and ``ucell`` use only the
    within-cell order of the genes, so per-cell scaling and ``log1p`` do not change them.
    Signed signatures (``GENE+`` / ``GENE-``) are parsed by ``ucell`` only; the other methods
    read such names as written (and warn).

    Parameters
    ----------
    adata
        Cells x genes. ``X``/layers may be dense, CSR/CSC, backed (``read_h5ad(..., backed="r")``)
        or dask arrays; backed and dask data are read in row blocks of ``chunk_size`` cells, and so
        is a streamed view of a TileDB-SOMA experiment (:func:`noa.datasets.open_soma`). With a
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
        Sets with fewer usable genes in the data are dropped (one warning lists them); 1 scores
        every set with a gene in the data, as the peers do.
    inplace
        Store the result in ``adata``; with False the input is not modified.
    chunk_size
        Cells per row block for backed, dask, dense and CSC data (default: about 4 million stored
        values per block); in-memory CSR is scored in one block unless given.
    smooth_knn
        Smooth the scores over a kNN graph of the cells (UCell's ``SmoothKNN``; see
        :mod:`noa_omics.scoring._smooth` for the formula): True, or a dict with ``graph_key``
        (``"connectivities"``: ``adata.obsp`` graph used when present), ``k`` (10, neighbours of a
        graph built from ``obsm[use_rep]`` when the graph is absent), ``use_rep`` (``"X_pca"``),
        ``decay`` (0.1) and ``up_only`` (False). The returned and stored scores are the smoothed ones.
    **method_kwargs
        Method parameters: ``ctrl_size``, ``n_bins``, ``ctrl_as_ref``, ``gene_pool``,
        ``nan_policy`` (score_genes; ``"raise"`` or ``"omit"``: scanpy's NaN-ignoring means);
        ``n_up`` (aucell); ``max_rank``, ``signed`` (True: parse ``GENE+``/``GENE-``), ``w_neg``
        (1.0), ``missing_genes`` (``"skip"`` or pyUCell's ``"impute"``) (ucell).

    Returns
    -------
    pandas.DataFrame
        Cells x sets (index ``obs_names``, columns the kept sets in input order). With
        ``inplace=True`` also stored in ``adata.obsm[key]``, and ``adata.uns[key]`` records
        ``method``, ``params`` (every effective parameter), ``geneset_version``, ``species``,
        ``genes_used`` and ``genes_missing`` (per input set; missing includes genes present but
        unusable, e.g. zero-variance genes for zmean; negative genes of signed signatures carry
        their ``-``), ``sets_dropped``, ``n_cells_unscored`` (cells with NaN scores, e.g.
        ``aucell`` cells without expressed genes) and ``smooth_knn`` (settings and graph, or None).

    Warns
    -----
    UserWarning
        Sets dropped (``min_genes``); gene names ending in ``+``/``-`` not parsed as signs; raw
        counts for ``score_genes``/``zmean``; ``aucell`` cells without expressed genes (NaN).

    Raises
    ------
    ScoringError
        A ``ValueError`` that is also a ``RuntimeError`` (what scanpy raises): ``score_genes``
        finds no control genes.
    ValueError
        Unknown method; Ensembl ids without ``gene_symbols``; data and sets of different species;
        no set with ``min_genes`` genes; NaN/inf values (NaN allowed by
        ``nan_policy="omit"``); negative values for ``aucell``/``ucell``;
        zero cells; duplicated gene names; ``use_raw=True`` without ``adata.raw``.
    KeyError
        Missing ``layer`` or ``gene_symbols`` column.

    Examples
    --------
    >>> import noa_omics as noa
    >>> adata = noa.datasets.demo_testis()  # doctest: +SKIP
    >>> noa.tl.score(adata, {"stress": ["HSPA1A", "HSPA1B", "DNAJB1"]}, method="ucell")  # doctest: +SKIP
    """
    check_adata(adata, min_obs=1, min_vars=1, allow_streamed=True)
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
    smooth = smooth_params(smooth_knn)
    resolved = resolve_sets(gene_sets, species, names)
    signed = meta.extra.get("signed", False) and params.get("signed", False)
    signs = n_absent = None
    if signed:
        set_names, indices, missing, signs, n_absent = map_signed_sets(resolved.collection, names)
    else:
        set_names, indices, missing = map_sets(resolved.collection, names)
        _warn_unparsed_signs(resolved.collection, method)
    _require_a_set(set_names, indices, min_genes, names, source, resolved)

    stats = None
    if meta.needs_gene_stats:
        stats = compute_stats(
            src, chunk_size, native=meta.extra.get("native_sum", False),
            fields=meta.extra.get("stats", ("sum", "sumsq", "nnz", "extent")),
        )
        _check_stats(
            stats, src.where, method, meta.nonnegative, warn_counts=meta.extra.get("warn_counts", False),
            allow_nan=params.get("nan_policy") == "omit",
        )
        if meta.usable_genes is not None:
            usable = meta.usable_genes(stats, params)
            missing = {n: missing[n] + [names[g] for g in idx if not usable[g]] for n, idx in zip(set_names, indices)}
            if signs is not None:
                signs = [sg[usable[idx]] for sg, idx in zip(signs, indices)]
            indices = [idx[usable[idx]] for idx in indices]
            _require_a_set(set_names, indices, min_genes, names, source, resolved)
    kept = _drop_small_sets(set_names, indices, min_genes)

    ctx = Context(
        sets=[indices[i] for i in kept], set_names=[set_names[i] for i in kept], gene_names=names,
        stats=stats, params=params, random_state=random_state,
        signs=None if signs is None else [signs[i] for i in kept],
        n_absent=None if n_absent is None else [n_absent[i] for i in kept],
    )
    plan = meta.prepare(ctx)
    values = score_pass(src, method, plan, len(kept), chunk_size, check_values=stats is None)
    n_unscored = _count_unscored(values, meta)
    smooth_record = None
    if smooth is not None:
        graph, graph_source = knn_graph(adata, smooth)
        values = smooth_scores(values, graph, smooth["decay"], smooth["up_only"])
        smooth_record = {**smooth, "graph": graph_source}
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
                "smooth_knn": smooth is not None,
            },
            "geneset_version": resolved.collection.version,
            "species": resolved.species,
            "genes_used": _genes_used(set_names, indices, signs, names),
            "genes_missing": {name: list(missing[name]) for name in set_names},
            "sets_dropped": [name for name, idx in zip(set_names, indices) if idx.size < min_genes],
            "n_cells_unscored": n_unscored,
            "smooth_knn": smooth_record,
        }
    return result


def _genes_used(set_names, indices, signs, names) -> dict[str, list[str]]:
    if signs is None:
        return {name: [names[g] for g in idx] for name, idx in zip(set_names, indices)}
    return {
        name: [names[g] + ("-" if neg else "") for g, neg in zip(idx, sg)]
        for name, idx, sg in zip(set_names, indices, signs)
    }


def _warn_unparsed_signs(collection, method: str) -> None:
    """One warning when set genes end in ``+``/``-`` (signed notation) and the method reads them as written."""
    suffixed = suffixed_genes(collection)
    if not suffixed:
        return
    n = sum(len(g) for g in suffixed.values())
    examples = ", ".join(f"{name!r}: {genes[:3]}" for name, genes in list(suffixed.items())[:3])
    how = "signed=False was given" if method == "ucell" else f"method {method!r} does not read signs"
    warnings.warn(
        f"{n} gene name(s) in {len(suffixed)} set(s) end in '+' or '-' ({examples}), the notation of signed "
        f"signatures, but {how}: the names are matched as written (names not in the data count as missing). "
        "Use method='ucell' (signed=True) to score signed signatures, or remove the suffixes.",
        UserWarning,
        stacklevel=3,
    )


def _count_unscored(values: np.ndarray, meta) -> int:
    """Cells whose scores are NaN by the method's rule (aucell: no expressed gene); one warning."""
    if not meta.extra.get("empty_cells_nan", False) or values.size == 0:
        return 0
    n = int(np.isnan(values).all(axis=1).sum())
    if n:
        warnings.warn(
            f"{meta.name}: {n} cell(s) have no expressed gene, so no ranking; their scores are NaN "
            "(decoupler drops such cells). Filter empty cells (sc.pp.filter_cells(adata, min_genes=1)) "
            "or check the matrix (layer=/use_raw=).",
            UserWarning,
            stacklevel=3,
        )
    return n


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


def _check_stats(stats, where: str, method: str, nonnegative: bool, *, warn_counts: bool, allow_nan: bool) -> None:
    n_nan = int(stats.n_nan_gene.sum()) if stats.n_nan_gene is not None else 0
    if stats.n_nonfinite and not (allow_nan and stats.n_nonfinite == n_nan):
        message = nonfinite_message(where, stats.n_nonfinite)
        if method == "score_genes" and stats.n_nonfinite == n_nan:
            message += " Or pass nan_policy='omit' to ignore NaN as scanpy does (NaN-ignoring means)."
        raise ValueError(message)
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
