"""Per-sample and per-section units of the pipeline (scatter), and their gathering.

A cohort of hundreds of donors runs as independent jobs, one per sample (load, normalise,
score) and one per spatial section (tubule segmentation), then one gather job for
everything that needs all samples (annotation, embedding, donor-level statistics, multi-hit,
report). ``noa-omics run`` calls the same functions in one process (a loop over samples and
sections), so the command line and the Snakemake workflow give the same tables::

    from noa_omics.pipeline import scatter

    parts = [scatter.load_sample(cfg, s) for s in scatter.singlecell_samples(cfg)]
    parts = [scatter.score_sample(p, cfg) for p in parts]
    adata = scatter.gather_samples(parts, order=...)

Scoring per sample: ``aucell`` and ``ucell`` (per-cell ranks) are computed on each sample's cells
alone; ``score_genes`` (control genes binned by the gene means over all cells) and ``zmean``
(each gene standardised over all cells) are computed once on the gathered cells: per sample they
would give each donor its own control genes or gene scales and blur the donor differences the
comparison tests.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd
from anndata import AnnData

from .._identifiers import expression_layout
from . import _steps
from ._config import PipelineConfig

#: Methods scored per sample: a cell's score depends on that cell alone (per-cell ranks).
#: ``score_genes`` bins genes by their mean over all cells to draw control genes, and ``zmean``
#: standardises each gene over all cells: both are scored once on the gathered cells, so every
#: donor is scored against the same control genes and gene scales.
PER_SAMPLE_METHODS: tuple[str, ...] = ("aucell", "ucell")


def safe_name(name: Any) -> str:
    """File-system and wildcard safe token of a sample / section id."""
    return re.sub(r"[^A-Za-z0-9_.-]", "_", str(name))


def _names(values: Iterable[Any], what: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for value in values:
        token = safe_name(value)
        if token in out and out[token] != str(value):
            raise ValueError(f"{what} ids {out[token]!r} and {value!r} map to the same file name {token!r}; "
                             "rename one of them.")
        out[token] = str(value)
    return out


def _read_obs_column(path: str, key: str) -> pd.Series:
    import anndata as ad

    meta = ad.read_h5ad(path, backed="r")
    try:
        return meta.obs[key].astype(str)
    finally:
        meta.file.close()


def singlecell_samples(cfg: PipelineConfig) -> dict[str, str]:
    """Samples of the single-cell input file: wildcard token -> sample id (sorted)."""
    sc_cfg = cfg.singlecell
    column = _read_obs_column(sc_cfg.path, sc_cfg.sample_key)
    return _names(sorted(column.unique()), "sample")


def spatial_sections(cfg: PipelineConfig) -> dict[str, str]:
    """Sections of the spatial input file: wildcard token -> section id (sorted)."""
    column = _read_obs_column(cfg.spatial.path, cfg.spatial.sample_key)
    return _names(sorted(column.unique()), "section")


def input_order(cfg: PipelineConfig) -> pd.Index:
    """Cell ids of the single-cell input file in file order (the gathered object's order)."""
    import anndata as ad

    meta = ad.read_h5ad(cfg.singlecell.path, backed="r")
    try:
        return pd.Index(meta.obs_names.copy())
    finally:
        meta.file.close()


def input_dtypes(cfg: PipelineConfig) -> dict[str, Any]:
    """Categorical ``obs`` dtypes of the single-cell input file (per-sample files keep only their
    own categories; the gathered object gets the file's categories, in the file's order)."""
    import anndata as ad

    meta = ad.read_h5ad(cfg.singlecell.path, backed="r")
    try:
        return {k: v.dtype for k, v in meta.obs.items() if isinstance(v.dtype, pd.CategoricalDtype)}
    finally:
        meta.file.close()


def load_sample(cfg: PipelineConfig, sample: str) -> AnnData:
    """One sample of the single-cell input: read backed, only its cells into memory, normalised."""
    import anndata as ad

    from ._stages import prepare_singlecell

    backed = ad.read_h5ad(cfg.singlecell.path, backed="r")
    try:
        mask = (backed.obs[cfg.singlecell.sample_key].astype(str) == str(sample)).to_numpy()
        if not mask.any():
            raise ValueError(f"sample {sample!r} not found in {cfg.singlecell.sample_key!r} of "
                             f"{cfg.singlecell.path!r}.")
        raw = backed[np.flatnonzero(mask)].to_memory()
    finally:
        backed.file.close()
    return prepare_singlecell(cfg, raw)


def _score_one(adata: AnnData, cfg: PipelineConfig, methods: Sequence[str]) -> dict[str, pd.DataFrame]:
    """Scores of ``adata``'s cells (X only: what the scorer reads), method -> cells x sets."""
    view = AnnData(X=adata.X, obs=pd.DataFrame(index=adata.obs_names), var=adata.var.copy())
    results = _steps.score(view, methods=methods, gene_sets=cfg.scoring.gene_sets, species=cfg.species,
                           gene_symbols=cfg.singlecell.gene_symbols, random_state=cfg.seed)
    for method in methods:
        adata.uns[f"noa_{method}"] = view.uns[f"noa_{method}"]
    adata.uns.setdefault(_steps.PIPELINE_UNS_KEY, {})
    info = dict(adata.uns[_steps.PIPELINE_UNS_KEY])
    info["score"] = view.uns[_steps.PIPELINE_UNS_KEY]["score"]
    adata.uns[_steps.PIPELINE_UNS_KEY] = info
    return results


def score_sample(adata: AnnData, cfg: PipelineConfig) -> AnnData:
    """Score one sample's cells with the per-sample methods (``obsm["noa_<method>"]``), in place."""
    methods = [m for m in cfg.scoring.methods if m in PER_SAMPLE_METHODS]
    if methods:
        for method, table in _score_one(adata, cfg, methods).items():
            adata.obsm[f"noa_{method}"] = table
    return adata


def _finish_scores(adata: AnnData, cfg: PipelineConfig) -> None:
    """Score the pooled methods on all cells and record the run's parameters."""
    pooled = [m for m in cfg.scoring.methods if m not in PER_SAMPLE_METHODS]
    if pooled:
        for method, table in _score_one(adata, cfg, pooled).items():
            adata.obsm[f"noa_{method}"] = table
    info = dict(adata.uns.get(_steps.PIPELINE_UNS_KEY, {}))
    score = dict(info.get("score", {}))
    score.update(methods=list(cfg.scoring.methods), scored_per_sample=[m for m in cfg.scoring.methods
                                                                          if m in PER_SAMPLE_METHODS],
                 sample_key=cfg.singlecell.sample_key)
    info["score"] = score
    adata.uns[_steps.PIPELINE_UNS_KEY] = info


def score_by_sample(adata: AnnData, cfg: PipelineConfig) -> None:
    """Score every configured method as the workflow does (per sample, then pooled), in place."""
    methods = [m for m in cfg.scoring.methods if m in PER_SAMPLE_METHODS]
    samples = adata.obs[cfg.singlecell.sample_key].astype(str).to_numpy()
    tables: dict[str, list[pd.DataFrame]] = {m: [] for m in methods}
    for sample in sorted(set(samples)):
        idx = np.flatnonzero(samples == sample)
        part = AnnData(X=adata.X[idx], obs=pd.DataFrame(index=adata.obs_names[idx]), var=adata.var.copy())
        score_sample(part, cfg)
        for method in methods:
            tables[method].append(part.obsm[f"noa_{method}"])
            adata.uns[f"noa_{method}"] = part.uns[f"noa_{method}"]
        if methods:
            info = dict(adata.uns.get(_steps.PIPELINE_UNS_KEY, {}))
            info["score"] = part.uns[_steps.PIPELINE_UNS_KEY]["score"]
            adata.uns[_steps.PIPELINE_UNS_KEY] = info
    for method in methods:
        adata.obsm[f"noa_{method}"] = _assemble(tables[method], adata.obs_names)
    _finish_scores(adata, cfg)


def _assemble(frames: list[pd.DataFrame], index: pd.Index) -> pd.DataFrame:
    """Per-sample score tables as one table in ``index`` order (a set one sample lacks is NaN there)."""
    table = pd.concat(frames, axis=0, join="outer", sort=False)
    columns = list(dict.fromkeys(c for f in frames for c in f.columns))
    return table.reindex(index=index, columns=columns)


def gather_samples(parts: Sequence[AnnData], cfg: PipelineConfig, *, order: pd.Index,
                   dtypes: dict[str, Any] | None = None) -> AnnData:
    """One AnnData of the per-sample objects (prepared and scored), cells in ``order``; pooled
    methods are scored here."""
    import anndata as ad

    keys = [f"noa_{m}" for m in cfg.scoring.methods if m in PER_SAMPLE_METHODS]
    tables = {k: [p.obsm[k] for p in parts] for k in keys}
    stripped = []
    for p in parts:
        q = p.copy() if keys else p
        for k in keys:
            del q.obsm[k]
        stripped.append(q)
    adata = ad.concat(stripped, axis=0, join="outer", merge="same", uns_merge="first")
    missing = order.difference(adata.obs_names)
    if len(missing):
        raise ValueError(f"{len(missing)} cells of the input (e.g. {list(missing[:3])}) are in no sample file; "
                         "rerun the per-sample jobs.")
    adata = adata[order].copy()
    for column, dtype in (dtypes or {}).items():
        if column in adata.obs.columns:
            adata.obs[column] = adata.obs[column].astype(object).astype(dtype)
    for k in keys:
        adata.obsm[k] = _assemble(tables[k], adata.obs_names)
    _finish_scores(adata, cfg)
    return adata


# ---------------------------------------------------------------------------------------------
# Spatial sections
# ---------------------------------------------------------------------------------------------


def segment_section(cfg: PipelineConfig, sdata: AnnData) -> tuple[AnnData, str]:
    """The per-section part of the spatial analysis: labels (when the config has none) and tubule
    segmentation (:func:`noa_omics.spatial.assign_tubules`, ``obs["noa_tubule"]``), in place.

    Segmentation is per section whatever the grouping (tubule ids are prefixed by the section),
    so segmenting sections in separate jobs gives the same tubules as segmenting them together.
    Returns ``(sdata, cell_type_key)``.
    """
    from .. import spatial as noa_spatial

    sp_cfg = cfg.spatial
    cell_type_key = sp_cfg.cell_type_key
    if cell_type_key is None:
        _steps.annotate(sdata, gene_symbols=sp_cfg.gene_symbols)
        cell_type_key = "noa_cell_type"
    noa_spatial.assign_tubules(sdata, cell_type_key=cell_type_key, spatial_key=sp_cfg.spatial_key,
                               sample_key=sp_cfg.sample_key)
    return sdata, cell_type_key


def spatial_tables(cfg: PipelineConfig, sdata: AnnData, cell_type_key: str
                   ) -> tuple[AnnData, pd.DataFrame, pd.DataFrame, str]:
    """The gathered part: the panel scored over all sections (the Sertoli term of the
    niche-collapse index is standardised over all Sertoli cells), tubule metrics and niche summary.

    Returns ``(sdata, tubule_metrics, niche_summary, cell_type_key)``.
    """
    sp_cfg = cfg.spatial
    score_key = None
    if sdata.n_vars >= 20:
        # score the panel (Sertoli barrier/immaturity term of the niche-collapse index)
        counts = sp_cfg.counts_layer if cfg.demo is None else ("counts" if "counts" in sdata.layers else None)
        matrix = expression_layout(sdata, counts).matrix  # counts_layer: raw -> adata.raw.X
        if _steps.looks_like_counts(matrix):
            sdata = _steps.prepare_expression(sdata, counts_layer=counts)
            _steps.score(sdata, methods=[cfg.primary_method], species=cfg.species, random_state=cfg.seed,
                         gene_symbols=sp_cfg.gene_symbols)
            score_key = f"noa_{cfg.primary_method}"
    tubules, niche = _steps.spatial(sdata, sample_key=sp_cfg.sample_key, cell_type_key=cell_type_key,
                                    spatial_key=sp_cfg.spatial_key, score_key=score_key, random_state=cfg.seed,
                                    segment=False)
    return sdata, tubules, niche, cell_type_key


def section_of(sdata: AnnData, cfg: PipelineConfig, section: str) -> AnnData:
    """The cells of one section (a copy)."""
    mask = (sdata.obs[cfg.spatial.sample_key].astype(str) == str(section)).to_numpy()
    if not mask.any():
        raise ValueError(f"section {section!r} not found in {cfg.spatial.sample_key!r} of the spatial input.")
    return sdata[mask].copy()


def load_section(cfg: PipelineConfig, section: str) -> AnnData:
    """One section of the spatial input file, read backed (only its cells into memory)."""
    import anndata as ad

    backed = ad.read_h5ad(cfg.spatial.path, backed="r")
    try:
        mask = (backed.obs[cfg.spatial.sample_key].astype(str) == str(section)).to_numpy()
        if not mask.any():
            raise ValueError(f"section {section!r} not found in {cfg.spatial.sample_key!r} of {cfg.spatial.path!r}.")
        return backed[np.flatnonzero(mask)].to_memory()
    finally:
        backed.file.close()


def gather_sections(parts: Sequence[AnnData], *, order: pd.Index) -> AnnData:
    """Concatenate segmented sections; cells back in ``order`` (the input's)."""
    import anndata as ad

    sdata = ad.concat(list(parts), axis=0, join="outer", merge="same", uns_merge="first")
    if "noa_tubule" in sdata.obs:
        ids = sdata.obs["noa_tubule"].astype(object)
        categories = list(dict.fromkeys(i for i in ids if isinstance(i, str)))
        sdata.obs["noa_tubule"] = pd.Categorical(ids.where(ids.notna(), None), categories=categories)
    return sdata[order.intersection(sdata.obs_names, sort=False)].copy()
