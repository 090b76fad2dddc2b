"""Streamed run over a TileDB-SOMA experiment (a CELLxGENE Census query or a local copy).

:func:`run_soma` scores every cell of the query block by block, keeps only the genes the later
steps read (the curated sets, the markers and the multi-hit gene ingredients) in memory, and
writes the per-donor tables; memory grows with cells x (gene sets + kept genes), never with the
whole matrix. ``noa-omics census`` is its command line.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from .._version import __version__
from ._io import check_writable_dir, file_records, staged_directory, write_csv, write_h5ad, write_json


def kept_genes(species: str) -> list[str]:
    """Symbols the downstream steps read: every curated set and the multi-hit gene ingredients."""
    from ..genesets import load
    from ..multihit._axes import load_axes

    library = load(species)
    genes = [g for name in library for g in library[name].genes]
    axes = load_axes(None, species=species)
    for ingredient in _ingredients(axes):
        gene = getattr(ingredient, "gene", None)
        if isinstance(gene, str) and gene:
            genes.append(gene)
    return list(dict.fromkeys(genes))


def _ingredients(axes: Any):
    """Every ingredient of the axes and derived columns of an ``AxesConfig``."""
    for block in (axes.axes, axes.derived):
        for ingredients in block.values():
            yield from ingredients


def run_soma(
    experiment: Any,
    out: str | Path,
    *,
    obs_value_filter: str | None = "tissue_general == 'testis'",
    methods: Sequence[str] = ("ucell",),
    sample_key: str = "donor_id",
    condition_key: str | None = "disease",
    reference: str | None = "normal",
    species: str = "human",
    gene_symbols: str = "feature_name",
    chunk_size: int = 20_000,
    multihit: bool = True,
) -> dict[str, Any]:
    """Score a SOMA query in row blocks and write scores, per-donor profiles and multi-hit tables.

    Parameters
    ----------
    experiment
        URI of a TileDB-SOMA experiment, or an open ``Experiment``.
    out
        Results directory (written atomically: staged, then moved into place).
    obs_value_filter
        SOMA ``obs`` filter of the query.
    methods
        Scoring methods (the first one feeds the profile and multi-hit tables).
    sample_key, condition_key, reference
        Donor column, condition column and reference condition (the Census: ``donor_id``,
        ``disease``, ``"normal"``); ``condition_key=None`` skips condition columns.
    gene_symbols
        ``var`` column with symbols (``feature_name`` in the Census).

    Returns
    -------
    dict
        ``n_cells``, ``n_donors``, ``seconds`` per step and the written files.
    """
    from ..celltypes import apoptosis_profile
    from ..datasets import open_soma
    from ..scoring import score

    if not methods:
        raise ValueError("give at least one scoring method, e.g. methods=['ucell'].")
    out = check_writable_dir(out, what="results")
    seconds: dict[str, float] = {}
    t0 = time.perf_counter()
    with open_soma(experiment, obs_value_filter=obs_value_filter, chunk_size=chunk_size) as cells:
        for key in (sample_key, condition_key):
            if key is not None and key not in cells.obs.columns:
                raise KeyError(f"column {key!r} not found in obs of the query; available: {list(cells.obs.columns)}.")
        seconds["open"] = time.perf_counter() - t0
        for method in methods:
            t = time.perf_counter()
            score(cells, method=method, gene_symbols=gene_symbols, species=species)
            seconds[f"score_{method}"] = time.perf_counter() - t
        t = time.perf_counter()
        compact = cells.to_anndata(kept_genes(species), gene_symbols=gene_symbols)
        seconds["materialise_genes"] = time.perf_counter() - t
    compact.var["feature_id"] = compact.var_names.astype(str)  # ids kept beside the symbols
    compact.var_names = pd.Index(compact.var[gene_symbols].astype(str).to_numpy())
    compact.var_names_make_unique()
    method = methods[0]
    t = time.perf_counter()
    profile = apoptosis_profile(compact, sample_key=sample_key, condition_key=condition_key,
                                method=method, reference=reference if condition_key else None)
    seconds["profile"] = time.perf_counter() - t
    donors = None
    if multihit:
        from ..multihit import multihit as run_multihit

        t = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("default")
            donors = run_multihit(compact, sample_key=sample_key, condition_key=condition_key,
                                  reference=reference if condition_key else None, score_key=f"noa_{method}",
                                  method=method, species=species, inplace=False)
        seconds["multihit"] = time.perf_counter() - t
    with staged_directory(out) as stage:
        write_h5ad(stage / "cells.h5ad", compact)
        write_csv(stage / "profile.csv", profile)
        if donors is not None:
            write_csv(stage / "multihit.csv", donors, index=True)
        manifest = {
            "noa_omics_version": __version__, "source": compact.uns.get("noa_soma", {}),
            "census": compact.uns.get("noa_census"), "methods": list(methods), "sample_key": sample_key,
            "condition_key": condition_key, "reference": reference, "n_cells": int(compact.n_obs),
            "n_genes_kept": int(compact.n_vars), "seconds": seconds,
        }
        manifest["files"] = file_records(stage)
        write_json(stage / "manifest.json", manifest)
    return {"n_cells": int(compact.n_obs), "n_donors": int(compact.obs[sample_key].nunique()),
            "seconds": seconds, "out": Path(out)}
