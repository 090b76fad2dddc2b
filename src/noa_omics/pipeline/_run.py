"""Run the whole pipeline into a results directory, atomically."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

from . import _io, _steps
from ._config import (
    SCORING_METHODS,
    ConfigError,
    DemoSection,
    PipelineConfig,
    check_h5ad_file,
    config_from_dict,
    validate_inputs,
)
from ._stages import Workspace, enabled_stages


class Progress(Protocol):
    """Receives stage start/end events (the command line shows them with rich)."""

    def start(self, name: str, description: str) -> None: ...

    def done(self, name: str, seconds: float) -> None: ...


def demo_config(out: str | Path, *, seed: int = 0, n_cells: int | None = None, quick: bool = False) -> PipelineConfig:
    """Config of ``noa-omics demo``: the whole analysis on the embedded demo data.

    ``quick`` uses 1500 cells, two spatial sections of 20 tubules and 100 enrichment permutations.
    ``n_cells=None`` takes that default (the demo's 4000 cells without ``quick``); any other value
    is used as given and checked by the schema (0 and negatives are errors, never the default).
    """
    if n_cells is None:
        n_cells = 1500 if quick else DemoSection().n_cells
    cfg = PipelineConfig(output=str(out), seed=seed, demo=DemoSection(n_cells=n_cells))
    if quick:
        cfg.demo.sections, cfg.demo.n_tubules = 2, 20
        cfg.enrichment.permutations = 100
    return config_from_dict(cfg.to_dict())


def run_pipeline(cfg: PipelineConfig, *, progress: Progress | None = None, command: str | None = None,
                 validate: bool = True) -> Path:
    """Run every enabled stage and write the results directory ``cfg.output`` atomically.

    The directory is built in ``<output>.tmp-XXXX`` and renamed to ``<output>`` at the end; on
    any error the staging directory is removed and an existing ``<output>`` is untouched.

    Returns
    -------
    Path
        The results directory.
    """
    if validate:
        validate_inputs(cfg)
    with _io.staged_directory(cfg.output) as staging:
        ws = Workspace(staging, persist_intermediates=False)
        for stage in enabled_stages(cfg):
            if progress is not None:
                progress.start(stage.name, stage.description)
            t0 = time.perf_counter()
            kwargs: dict[str, Any] = {"command": command} if stage.name == "report" else {}
            stage.func(cfg, ws, **kwargs)
            if progress is not None:
                progress.done(stage.name, time.perf_counter() - t0)
    return Path(cfg.output).expanduser().absolute()


def score_file(path: str | Path, out: str | Path, *, methods: Sequence[str] = ("score_genes",),
               gene_sets: str | None = None, layer: str | None = None, species: str | None = None,
               normalize: str = "auto", random_state: int = 0, gene_symbols: str | None = None) -> dict[str, Any]:
    """Score an ``.h5ad`` file and write the scored copy atomically (``noa-omics score``).

    Parameters
    ----------
    path, out
        Input and output ``.h5ad`` files.
    methods
        Scoring methods; each writes ``obsm["noa_<method>"]``.
    gene_sets
        A GMT file; None scores the curated library of the detected species.
    layer
        Layer to score; None scores ``X``; ``"raw"`` scores ``adata.raw.X``.
    gene_symbols
        ``var`` column with gene symbols (e.g. ``feature_name``); None uses ``var_names``, or the
        well-known symbol column when they are Ensembl ids (:mod:`noa_omics._identifiers`).
    normalize
        ``auto``: when the scored matrix holds raw counts, log-normalise a copy into ``X``
        (counts kept in ``layers["counts"]``) and score that; ``yes``: always; ``no``: never.

    Returns
    -------
    dict
        ``n_cells``, ``methods``, ``normalized`` and the score shape per method.
    """
    import anndata as ad

    from .._identifiers import expression_layout

    for method in methods:
        if method not in SCORING_METHODS:
            raise ConfigError(f"unknown scoring method {method!r}; use one of {list(SCORING_METHODS)}.")
    if normalize not in ("auto", "yes", "no"):
        raise ConfigError(f"--normalize must be auto, yes or no, got {normalize!r}.")
    if gene_sets is not None and not Path(gene_sets).is_file():
        raise ConfigError(f"gene-set file {str(gene_sets)!r} not found; check the path.")
    check_h5ad_file(path)
    _io.check_writable_dir(out, what="output file")
    if Path(out).is_dir():
        raise ConfigError(f"output {str(out)!r} is a directory; name an .h5ad file.")
    try:
        adata = ad.read_h5ad(path)
    except Exception as err:
        raise ConfigError(f"input file {str(path)!r} is not a readable AnnData .h5ad file: {err}") from err
    if layer is not None and layer not in adata.layers and not (layer == "raw" and adata.raw is not None):
        raise ConfigError(f"layer {layer!r} not found in {str(path)!r}; available layers: "
                          f"{list(adata.layers.keys()) or 'none'}"
                          f"{' (--layer raw scores adata.raw.X)' if adata.raw is not None else ''}.")
    if gene_symbols is not None and gene_symbols not in adata.var.columns and not (
            layer == "raw" and gene_symbols in adata.raw.var.columns):
        raise ConfigError(f"--gene-symbols {gene_symbols!r} is not a column of var in {str(path)!r}; available "
                          f"columns: {', '.join(map(str, list(adata.var.columns)[:12])) or '(none)'}.")
    matrix = expression_layout(adata, layer).matrix
    do_norm = normalize == "yes" or (normalize == "auto" and _steps.looks_like_counts(matrix))
    if do_norm:
        adata = _steps.prepare_expression(adata, counts_layer=layer)
        layer = None
    if gene_sets is not None:
        from .. import genesets as _gs

        gene_sets = _gs.read_gmt(gene_sets)
    results = _steps.score(adata, methods=methods, gene_sets=gene_sets, species=species, layer=layer,
                           gene_symbols=gene_symbols, random_state=random_state)
    _io.write_h5ad(out, adata)
    return {"n_cells": int(adata.n_obs), "methods": list(methods), "normalized": bool(do_norm),
            "shapes": {m: list(df.shape) for m, df in results.items()}}
