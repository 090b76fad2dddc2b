r"""Donor-level pseudobulk gene-set enrichment per cell type (:func:`enrichment`)."""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
from anndata import AnnData

from .._validation import check_adata, check_in, check_obs_key, renamed_arguments
from ._stats import moderated_t_rows, welch_t_rows
from .._identifiers import counts_layout, expression_layout, resolve_genes
from ._utils import levels, sample_conditions

STATISTICS = ("moderated_t", "welch_t")
ENRICHMENT_COLUMNS = [
    "cell_type",
    "condition",
    "gene_set",
    "nes",
    "es",
    "pvalue",
    "fdr",
    "leading_edge",
    "n_genes",
    "n_samples",
    "n_reference_samples",
]


def pseudobulk(
    adata: AnnData,
    *,
    sample_key: str,
    group_key: str,
    layer: str | None = "counts",
    min_cells: int = 10,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Sum counts per sample x group.

    Returns
    -------
    (counts, meta)
        ``counts``: pseudobulk profiles x genes (sums of raw counts), indexed ``sample|group``;
        ``meta``: one row per profile with ``sample``, ``group`` and ``n_cells``. Profiles with
        fewer than ``min_cells`` cells are dropped.
    """
    layout = expression_layout(adata, layer)
    matrix = layout.matrix
    samples = adata.obs[sample_key].astype(str).to_numpy()
    groups = adata.obs[group_key].astype(str).to_numpy()
    labels = pd.Series(samples, dtype=object) + "|" + pd.Series(groups, dtype=object)
    codes, uniques = pd.factorize(labels, sort=True)
    indicator = sp.csr_matrix(
        (np.ones(len(codes)), (codes, np.arange(len(codes)))), shape=(len(uniques), len(codes))
    )
    summed = indicator @ (matrix if sp.issparse(matrix) else np.asarray(matrix))
    summed = summed.toarray() if sp.issparse(summed) else np.asarray(summed)
    n_cells = np.bincount(codes, minlength=len(uniques))
    meta = pd.DataFrame(
        {
            "sample": [u.split("|", 1)[0] for u in uniques],
            "group": [u.split("|", 1)[1] for u in uniques],
            "n_cells": n_cells,
        },
        index=pd.Index(uniques, name="profile"),
    )
    keep = n_cells >= min_cells
    counts = pd.DataFrame(summed[keep], index=meta.index[keep], columns=layout.var_names)
    return counts, meta[keep]


def log_cpm(counts: pd.DataFrame) -> pd.DataFrame:
    r"""Counts per million followed by :math:`\log(1 + x)`, per profile (row)."""
    totals = counts.sum(axis=1).to_numpy(dtype=float)
    totals[totals == 0] = 1.0
    return np.log1p(counts.div(totals, axis=0) * 1e6)


def rank_genes(expr_condition: np.ndarray, expr_reference: np.ndarray, genes: pd.Index, *, statistic: str) -> pd.Series:
    """Donor-level ranking statistic per gene (genes x samples inputs), sorted decreasing.

    Ties are broken by gene name so that the ranking, and hence the enrichment, does not depend on
    the order of ``adata.var``.
    """
    if statistic == "welch_t":
        values, _ = welch_t_rows(expr_condition, expr_reference)
    else:
        values = moderated_t_rows(expr_condition, expr_reference)
    ranking = pd.DataFrame({"gene": np.asarray(genes, dtype=str), "stat": values})
    ranking = ranking.sort_values(["stat", "gene"], ascending=[False, True], kind="mergesort")
    stat = ranking["stat"].to_numpy(dtype=np.float64)
    # gseapy re-sorts the ranking with an unstable sort: make tied values strictly decreasing in
    # the (statistic, gene name) order with offsets far below any real difference.
    tiny = 1e-9 * max(1.0, float(np.abs(stat).max()) if len(stat) else 1.0) / max(len(stat), 1)
    stat = stat - tiny * np.arange(len(stat))
    return pd.Series(stat, index=ranking["gene"].to_numpy(), name="stat")


def _gene_set_dict(gene_sets: Any, species: str | None, genes: pd.Index) -> tuple[dict[str, list[str]], str]:
    from ..genesets import as_collection, detect_species

    if gene_sets is None and species is None:
        species = detect_species(list(genes))
        if species is None:
            raise ValueError(
                "could not detect the species from the gene names; pass species='human' or 'mouse', or gene_sets=."
            )
    collection = as_collection(gene_sets, species=species)
    if gene_sets is None:
        collection = {name: gs for name, gs in collection.items() if gs.category != "marker"}
        version = as_collection(None, species=species).version
    else:
        version = getattr(collection, "version", "custom")
    return {name: list(gs.genes) for name, gs in collection.items()}, str(version)


@renamed_arguments(permutation_num="n_permutations", seed="random_state")
def enrichment(
    adata: AnnData,
    *,
    sample_key: str,
    condition_key: str,
    reference: Any,
    cell_type_key: str = "noa_cell_type",
    gene_sets: Any = None,
    layer: str | None = "counts",
    min_cells: int = 10,
    min_samples: int = 2,
    statistic: str = "moderated_t",
    n_permutations: int = 500,
    min_size: int = 5,
    max_size: int = 500,
    random_state: int = 0,
    species: str | None = None,
    cell_types: Sequence[str] | None = None,
    gene_symbols: str | None = None,
) -> pd.DataFrame:
    r"""Gene-set enrichment per cell type from donor-level pseudobulk profiles.

    1. **Pseudobulk**: raw counts are summed per sample x cell type (profiles with fewer than
       ``min_cells`` cells are dropped), converted to counts per million and
       :math:`\log(1+\mathrm{CPM})`.
    2. **Ranking**: for each cell type and each non-reference condition, genes are ranked by a
       donor-level statistic comparing the condition's samples with the reference samples:
       ``"moderated_t"`` (default; limma-style empirical-Bayes moderated t, Smyth 2004, which
       borrows variance information across genes and is stable with 2-5 donors) or
       ``"welch_t"`` (Welch t over donors). Genes without counts in the cell type are left out;
       ties are broken by gene name.
    3. **Enrichment**: :func:`gseapy.prerank` (Subramanian et al. 2005) with the gene sets as a
       dict (offline; no library download), ``outdir=None``, ``threads=1`` and ``seed=random_state``. The
       normalised enrichment score (NES) is positive when the set's genes are at the top of the
       ranking, i.e. higher in the condition than in the reference.

    Parameters
    ----------
    adata
        Annotated data with raw counts in ``layers[layer]`` (or ``X`` with ``layer=None``).
    sample_key, condition_key, reference
        Sample (donor) column, condition column and the reference condition.
    cell_type_key
        Cell-type column (one pseudobulk per sample x cell type).
    gene_sets
        None (curated library without the ``marker_*`` sets), a GeneSetCollection, a dict
        name -> genes or a GMT path.
    layer
        Layer with raw counts (default ``"counts"``); ``None`` uses ``X``, ``"raw"`` uses
        ``adata.raw.X`` (CELLxGENE files). When the matrix is absent or not counts, the error
        names where counts were found.
    min_cells
        Minimum cells per sample x cell type for a pseudobulk profile.
    min_samples
        Minimum profiles on each side of a comparison (at least 2); comparisons below it are
        skipped with a warning.
    statistic
        ``"moderated_t"`` or ``"welch_t"``.
    n_permutations
        Gene-set permutations of gseapy (``permutation_num``; the old keyword still works, with a
        FutureWarning). A permutation p-value is at least :math:`1/(B+1)` for :math:`B`
        permutations (Phipson & Smyth 2010), so ``pvalue`` and ``fdr`` are floored there: an
        observed 0 means "below 1/(B+1)", never exactly 0.
    min_size, max_size
        Gene-set size limits after intersecting with the ranked genes.
    random_state
        Seed of the gseapy permutations (same seed, same result; ``seed=`` is the old name).
    species
        Species for ``gene_sets=None`` (detected from gene names when None).
    cell_types
        Restrict to these cell types (default: all present).
    gene_symbols
        ``var`` column with gene symbols (None: ``var_names``, or the well-known symbol column
        when they are Ensembl ids; :mod:`noa_omics._identifiers`). Columns sharing a symbol have
        their counts summed (with a warning).

    Returns
    -------
    pandas.DataFrame
        Columns ``cell_type``, ``condition``, ``gene_set``, ``nes``, ``es``, ``pvalue`` (nominal),
        ``fdr`` (gseapy's FDR q-value, within the cell type x condition), ``leading_edge``
        (``;``-joined genes), ``n_genes`` (set genes in the ranking), ``n_samples``,
        ``n_reference_samples``; sorted by cell type, condition and NES (decreasing).
        ``attrs["params"]`` holds the parameters and the gene-set version.
    """
    import gseapy

    check_adata(adata)
    for key, what in ((sample_key, "sample column"), (condition_key, "condition column"), (cell_type_key, "cell-type column")):
        check_obs_key(adata, key, what=what)
    check_in(statistic, STATISTICS, name="statistic")
    if int(min_samples) < 2:
        raise ValueError(f"`min_samples` must be at least 2 (a donor-level statistic needs replicates), got {min_samples}.")
    layout = counts_layout(adata, layer)
    ids = resolve_genes(layout.var, layout.var_names, gene_symbols, where=layout.where,
                        fallback_var=adata.var if layout.use_raw else None, duplicates="sum")
    obs = adata.obs
    conditions = sample_conditions(obs, sample_key=sample_key, condition_key=condition_key, reference=reference)
    symbols = pd.Index(pd.unique(ids.symbols))
    sets, version = _gene_set_dict(gene_sets, species, symbols)
    _require_usable_sets(sets, symbols, ids, min_size, max_size)
    counts, meta = pseudobulk(adata, sample_key=sample_key, group_key=cell_type_key, layer=layer, min_cells=min_cells)
    counts.columns = ids.symbols
    if ids.n_duplicated:  # one column per symbol: counts summed (the rule of noa_omics._identifiers)
        counts = counts.T.groupby(level=0, sort=False).sum().T
    condition_of = obs.groupby(sample_key, observed=True)[condition_key].first()
    condition_of.index = condition_of.index.astype(str)
    meta = meta.assign(condition=meta["sample"].map(condition_of))
    expr = log_cpm(counts)
    types = [t for t in levels(obs[cell_type_key]) if cell_types is None or t in cell_types]

    rows = []
    skipped = []
    unusable: dict[str, int] = {}  # gene set -> ranked genes, for sets never tested
    tested: set[str] = set()
    for cell_type in types:
        in_type = meta["group"] == str(cell_type)
        ref = meta.index[in_type & (meta["condition"] == reference)]
        for condition in conditions:
            if condition == reference:
                continue
            cond = meta.index[in_type & (meta["condition"] == condition)]
            if len(cond) < min_samples or len(ref) < min_samples:
                skipped.append(f"{cell_type} / {condition} ({len(cond)} vs {len(ref)} samples)")
                continue
            expressed = (counts.loc[cond.append(ref)].sum(axis=0) > 0).to_numpy()
            genes = counts.columns[expressed]
            ranking = rank_genes(
                expr.loc[cond, genes].to_numpy().T,
                expr.loc[ref, genes].to_numpy().T,
                genes,
                statistic=statistic,
            )
            present = {name: [g for g in genes_ if g in ranking.index] for name, genes_ in sets.items()}
            usable = {name: g for name, g in present.items() if min_size <= len(g) <= max_size}
            for name, g in present.items():
                if name not in usable:
                    unusable.setdefault(name, len(g))
                else:
                    tested.add(name)
            if not usable:
                skipped.append(f"{cell_type} / {condition} (no gene set with {min_size}-{max_size} ranked genes)")
                continue
            table = _prerank(gseapy, ranking, usable, n_permutations=n_permutations, random_state=random_state,
                             min_size=min_size, max_size=max_size)
            table.insert(0, "condition", condition)
            table.insert(0, "cell_type", cell_type)
            table["n_genes"] = table["gene_set"].map(lambda n: len(usable[n]))
            table["n_samples"] = len(cond)
            table["n_reference_samples"] = len(ref)
            rows.append(table)
    if skipped:
        warnings.warn(
            f"enrichment skipped for {len(skipped)} cell type x condition comparison(s) with fewer than "
            f"{min_samples} pseudobulk samples (>= {min_cells} cells) on a side or no usable gene set: "
            f"{skipped[:10]}{' ...' if len(skipped) > 10 else ''}",
            UserWarning,
            stacklevel=2,
        )
    never = {n: k for n, k in unusable.items() if n not in tested}
    if never and rows:
        warnings.warn(
            f"{len(never)} gene set(s) were not tested in any cell type: fewer than min_size={min_size} or more than "
            f"max_size={max_size} of their genes are ranked (expressed) (ranked genes in brackets): "
            f"{', '.join(f'{n!r} ({k})' for n, k in list(never.items())[:10])}{' ...' if len(never) > 10 else ''}.",
            UserWarning,
            stacklevel=2,
        )
    result = pd.concat(rows, ignore_index=True) if rows else pd.DataFrame(columns=ENRICHMENT_COLUMNS)
    result = result[ENRICHMENT_COLUMNS]
    if len(result):
        order = {t: i for i, t in enumerate(types)}
        result = (
            result.assign(_order=result["cell_type"].map(order))
            .sort_values(["_order", "condition", "nes"], ascending=[True, True, False], kind="mergesort")
            .drop(columns="_order")
            .reset_index(drop=True)
        )
    result.attrs["params"] = {
        "sample_key": sample_key,
        "condition_key": condition_key,
        "reference": reference,
        "cell_type_key": cell_type_key,
        "layer": layer,
        "gene_symbols": ids.column,
        "min_cells": int(min_cells),
        "statistic": statistic,
        "n_permutations": int(n_permutations),
        "min_size": int(min_size),
        "max_size": int(max_size),
        "random_state": random_state,
        "pvalue_floor": 1.0 / (int(n_permutations) + 1),
        "geneset_version": version,
    }
    return result


def _require_usable_sets(sets: dict[str, list[str]], symbols: pd.Index, ids, min_size: int, max_size: int) -> None:
    """Refuse a run in which no gene set can be tested whatever the samples (identifiers or species
    that do not match the sets), instead of returning an empty table."""
    present = set(symbols)
    sizes = {name: sum(g in present for g in genes) for name, genes in sets.items()}
    if any(min_size <= n <= max_size for n in sizes.values()) or not sizes:
        return
    best = max(sizes.items(), key=lambda t: t[1])
    raise ValueError(
        f"no gene set has between min_size={min_size} and max_size={max_size} genes among the data's genes "
        f"(best: {best[0]!r} with {best[1]}); genes were matched on {ids.source} (e.g. {list(symbols[:3])}). "
        "Pass gene_symbols='<var column with symbols>' when var_names are not symbols, check species= and "
        "gene_sets=, or lower min_size."
    )


def _prerank(gseapy: Any, ranking: pd.Series, sets: dict[str, list[str]], *, n_permutations: int,
             random_state: int, min_size: int, max_size: int) -> pd.DataFrame:
    logger = logging.getLogger("gseapy")
    previous = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = gseapy.prerank(
                rnk=ranking,
                gene_sets=sets,
                outdir=None,
                threads=1,
                seed=int(random_state),
                permutation_num=int(n_permutations),
                min_size=int(min_size),
                max_size=int(max_size),
                no_plot=True,
                verbose=False,
            )
    finally:
        logger.setLevel(previous)
    res2d = res.res2d
    lead = res2d["Lead_genes"].astype(str) if "Lead_genes" in res2d else pd.Series("", index=res2d.index)
    floor = 1.0 / (int(n_permutations) + 1)  # no permutation p-value is below 1/(B+1); NaN stays NaN
    pvalue = np.maximum(pd.to_numeric(res2d["NOM p-val"], errors="coerce").to_numpy(dtype=float), floor)
    fdr = np.minimum(np.maximum(pd.to_numeric(res2d["FDR q-val"], errors="coerce").to_numpy(dtype=float), floor), 1.0)
    return pd.DataFrame(
        {
            "gene_set": res2d["Term"].astype(str).to_numpy(),
            "nes": pd.to_numeric(res2d["NES"], errors="coerce").to_numpy(),
            "es": pd.to_numeric(res2d["ES"], errors="coerce").to_numpy(),
            "pvalue": pvalue,
            "fdr": fdr,
            "leading_edge": lead.to_numpy(),
        }
    )
