"""Pipeline stages: the steps grouped as the workflow's rules, with their files.

Each stage reads its inputs from a :class:`Workspace` and writes its outputs to it. The command
line runs all stages in one process (intermediate AnnData objects stay in memory); the Snakemake
workflow runs one stage per rule (intermediate objects go through ``work/*.h5ad``). Both call
the same functions in the same order, so they produce the same tables and figures.

Results directory::

    results.h5ad            single-cell data: labels, embedding, scores (obsm["noa_<method>"])
    spatial.h5ad            spatial data: tubule ids (obs["noa_tubule"])
    tables/*.csv            tidy tables (see TABLES)
    figures/*.png           figures (see FIGURES)
    report.html             self-contained report
    manifest.json           files + sha256, parameters, versions, inputs
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import platform
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import pandas as pd
from anndata import AnnData

from .._version import __version__
from . import _figures, _io, _scatter, _steps
from ._config import PipelineConfig

#: Intermediate and final AnnData files, relative to the results directory.
ADATA_FILES: dict[str, str] = {
    "singlecell_input": "work/singlecell.h5ad",
    "spatial_input": "work/spatial.h5ad",
    "annotated": "work/annotated.h5ad",
    "results": "results.h5ad",
    "spatial": "spatial.h5ad",
}

#: Tables: file stem -> (title, caption, column to sort by in the report).
TABLES: dict[str, tuple[str, str, str | None]] = {
    "cell_type_counts": ("Cell-type composition", "Cells per sample and cell type.", None),
    "annotation_confusion": ("Annotation against ground truth", "Cells per true (rows) and predicted (columns) type.", None),
    "cell_type_scores": ("Mean score per cell type", "Mean per-cell score of each gene set in each cell type.", None),
    "apoptosis_profile": ("Apoptosis profiles", "One row per sample x cell type x gene set.", None),
    "composition": ("Donor-level composition", "Cell-type (broad, fine) and germ-stage proportions per condition against the reference; donors are the unit (logit proportions, moderated t, propeller-style). Effect: log odds ratio with 95 % CI. Sorted by q-value.", "qvalue"),
    "condition_effects": ("Donor-level condition effects", "Each condition against the reference; samples are the unit. Sorted by q-value.", "qvalue"),
    "enrichment": ("Pseudobulk enrichment", "gseapy prerank of donor-level pseudobulk rankings per cell type. Sorted by FDR.", "fdr"),
    "tubule_metrics": ("Tubule metrics", "One row per segmented tubule.", None),
    "niche_summary": ("Niche summary", "One row per spatial sample.", None),
    "multihit": ("Multi-hit profiles", "One row per sample: axis z-scores, germ apoptosis, histology, apoptosis context, its stability over cell-bootstrap and reference leave-one-out resamples (context_stability, unstable, z intervals) and, with spatial data, focal spermatogenesis.", None),
}

#: Figures: file stem -> (title, caption).
FIGURES: dict[str, tuple[str, str]] = {
    "annotation_embedding": ("Cell-type annotation", "UMAP of the cells coloured by noa_cell_type."),
    "confusion_matrix": ("Annotation accuracy", "Fraction of each true type (rows) given each label (columns); needs a truth_cell_type column (demo data)."),
    "celltype_heatmap": ("Cell type x gene set", "Mean per-cell score of each gene set (marker sets left out) in each cell type, scaled 0-1 per set."),
    "donor_scores": ("Per-donor apoptosis by condition", "Per-donor mean apoptosis score in germ cells by condition, with 95 % CIs; a condition without germ cells (e.g. Sertoli-cell-only, Klinefelter) has a labelled empty column."),
    "composition": ("Composition per donor", "Broad cell-class proportions per donor (left) and the donor-level effect of each condition with its 95 % CI (right; filled: q < 0.05)."),
    "forest": ("Condition effects", "apoptosis_intrinsic: donor-level effect (difference of donor means) of each condition against the reference per cell type, Welch 95 % CI. Red: q < 0.05 (the title says when none is); open diamonds: one donor on a side, so no CI; comparisons without donors are counted in the legend, not drawn."),
    "enrichment": ("Pseudobulk enrichment", "Normalised enrichment score (colour) of the curated sets per cell type and condition; dot size: FDR (key on the right; permutation FDRs are at least 1/(permutations+1))."),
    "tubules": ("Tubule map", "The section with the highest mean niche-collapse index (NCI): tubule outlines coloured by histology (left) and NCI from 0 intact (dark purple) to 1 collapsed (yellow-green) (right)."),
    "histology_composition": ("Tubule histology per sample", "Fraction of tubules in each histology class."),
    "multihit_heatmap": ("Multi-hit profiles", "Axis z-scores per sample (rows: donor and condition); the two strips on the right give each sample's histology and apoptosis context; blank cells are not evaluable (too few cells or a missing input, listed in the multihit table's missing_ingredients)."),
}


def table_path(name: str) -> str:
    return f"tables/{name}.csv"


def figure_path(name: str) -> str:
    return f"figures/{name}.png"


class Workspace:
    """Files of one results directory, with an in-memory cache of AnnData objects.

    Parameters
    ----------
    root
        Directory the stages write into.
    persist_intermediates
        Write ``work/*.h5ad`` files (workflow mode); otherwise intermediate AnnData objects only
        live in memory (command-line mode).
    """

    def __init__(self, root: str | Path, *, persist_intermediates: bool = False) -> None:
        self.root = Path(root)
        self.persist_intermediates = persist_intermediates
        self._adata: dict[str, AnnData] = {}

    def path(self, rel: str) -> Path:
        return self.root / rel

    def save_adata(self, name: str, adata: AnnData) -> None:
        rel = ADATA_FILES[name]
        self._adata[name] = adata
        if self.persist_intermediates or not rel.startswith("work/"):
            _io.write_h5ad(self.path(rel), adata)

    def load_adata(self, name: str) -> AnnData:
        if name not in self._adata:
            import anndata as ad

            self._adata[name] = ad.read_h5ad(self.path(ADATA_FILES[name]))
        return self._adata[name]

    @contextlib.contextmanager
    def peek_adata(self, name: str) -> Iterator[AnnData]:
        """Read-only access to ``name``: the object in memory when this process made or loaded it,
        else the file opened backed (matrix left on disk) and closed on exit."""
        if name in self._adata:
            yield self._adata[name]
            return
        import anndata as ad

        adata = ad.read_h5ad(self.path(ADATA_FILES[name]), backed="r")
        try:
            yield adata
        finally:
            adata.file.close()

    def save_table(self, name: str, frame: pd.DataFrame) -> None:
        _io.write_csv(self.path(table_path(name)), frame)

    def load_table(self, name: str) -> pd.DataFrame:
        return pd.read_csv(self.path(table_path(name)))

    def has_table(self, name: str) -> bool:
        return self.path(table_path(name)).is_file()

    def save_figure(self, name: str, fig: Any) -> None:
        _io.write_figure(self.path(figure_path(name)), fig)


# ---------------------------------------------------------------------------------------------
# Stages
# ---------------------------------------------------------------------------------------------


def prepare_singlecell(cfg: PipelineConfig, raw: AnnData) -> AnnData:
    """Normalised single-cell input (all of it, or one sample: normalisation is per cell).

    ``raw`` is consumed: its counts matrix becomes the result's ``layers["counts"]`` without a
    copy (``share_counts=True``), so the caller must drop it."""
    counts_layer = cfg.singlecell.counts_layer
    if counts_layer is not None and counts_layer not in raw.layers and cfg.demo is not None:
        counts_layer = None
    return _steps.prepare_expression(raw, counts_layer=counts_layer, share_counts=True)


def stage_load(cfg: PipelineConfig, ws: Workspace) -> None:
    """Read (or generate, for the demo) the inputs; log-normalise the single-cell data."""
    import anndata as ad

    from .. import datasets

    donors = None
    if cfg.has_singlecell:
        if cfg.demo is not None:
            raw = datasets.demo_testis(seed=cfg.seed, n_cells=cfg.demo.n_cells)
            donors = raw.uns["demo"]["donors"]
        else:
            raw = ad.read_h5ad(cfg.singlecell.path)
        ws.save_adata("singlecell_input", prepare_singlecell(cfg, raw))
        del raw  # one matrix in memory at a time
    if cfg.has_spatial:
        if cfg.demo is not None and cfg.demo.link_donors and donors is not None:
            sdata = datasets.demo_spatial_for_donors(donors, seed=cfg.seed,
                                                     n_tubules=cfg.demo.n_tubules)
        elif cfg.demo is not None:
            sdata = datasets.demo_spatial(seed=cfg.seed, sections=cfg.demo.sections, n_tubules=cfg.demo.n_tubules)
        else:
            sdata = ad.read_h5ad(cfg.spatial.path)
        ws.save_adata("spatial_input", sdata)


def stage_annotate(cfg: PipelineConfig, ws: Workspace) -> None:
    """Cell-type labels, embedding, composition table and the annotation figures."""
    _annotate_into(cfg, ws, ws.load_adata("singlecell_input"))


def _annotate_into(cfg: PipelineConfig, ws: Workspace, adata: AnnData, *, save: bool = True) -> None:
    sc_cfg = cfg.singlecell
    if cfg.steps.embedding:  # graph first: the annotation smooths on obsp["connectivities"]
        _steps.embed(adata, random_state=cfg.seed, umap=False)
    _steps.annotate(adata, cell_type_key=sc_cfg.cell_type_key, gene_symbols=sc_cfg.gene_symbols)
    if cfg.steps.embedding:
        _steps.embed(adata, random_state=cfg.seed)
    if save:
        ws.save_adata("annotated", adata)
    ws.save_table("cell_type_counts", _steps.cell_type_counts(
        adata, sample_key=sc_cfg.sample_key, condition_key=sc_cfg.condition_key))
    if "truth_cell_type" in adata.obs.columns:
        ws.save_table("annotation_confusion", _steps.annotation_accuracy(adata, truth_key="truth_cell_type"))
        ws.save_figure("confusion_matrix", _figures.confusion_matrix(adata, truth_key="truth_cell_type"))
    if cfg.steps.embedding:
        ws.save_figure("annotation_embedding", _figures.annotation_embedding(adata))


def stage_score(cfg: PipelineConfig, ws: Workspace) -> None:
    """Score every gene set with each configured method; write ``results.h5ad``."""
    adata = ws.load_adata("annotated")
    _scatter.score_by_sample(adata, cfg)  # per sample, as the workflow's scattered jobs
    _score_tables(cfg, ws, adata)


def _score_tables(cfg: PipelineConfig, ws: Workspace, adata: AnnData) -> None:
    ws.save_adata("results", adata)
    tables = [_steps.cell_type_scores(adata, method=m) for m in cfg.scoring.methods]
    ws.save_table("cell_type_scores", pd.concat(tables, ignore_index=True))
    ws.save_figure("celltype_heatmap", _figures.celltype_heatmap(adata, method=cfg.primary_method))


def stage_profile(cfg: PipelineConfig, ws: Workspace) -> None:
    """Cell-type apoptosis profiles, donor-level comparisons and pseudobulk enrichment."""
    sc_cfg = cfg.singlecell
    adata = ws.load_adata("results")
    method = cfg.primary_method
    ws.save_table("apoptosis_profile", _steps.profile(
        adata, sample_key=sc_cfg.sample_key, condition_key=sc_cfg.condition_key, reference=sc_cfg.reference,
        method=method, gene_symbols=sc_cfg.gene_symbols))
    effects = _steps.compare(adata, sample_key=sc_cfg.sample_key, condition_key=sc_cfg.condition_key,
                             reference=sc_cfg.reference, method=method, gene_symbols=sc_cfg.gene_symbols)
    ws.save_table("condition_effects", effects)
    comp = _steps.composition(adata, sample_key=sc_cfg.sample_key, condition_key=sc_cfg.condition_key,
                              reference=sc_cfg.reference)
    ws.save_table("composition", comp)
    conditions = adata.obs.groupby(sc_cfg.sample_key, observed=True)[sc_cfg.condition_key].first().astype(str)
    ws.save_figure("composition", _figures.composition(comp, conditions))
    ws.save_figure("donor_scores", _figures.donor_scores(
        adata, sample_key=sc_cfg.sample_key, condition_key=sc_cfg.condition_key,
        reference=sc_cfg.reference, method=method))
    ws.save_figure("forest", _figures.forest(effects))
    if cfg.steps.enrichment:
        enr = _steps.enrichment(adata, sample_key=sc_cfg.sample_key, condition_key=sc_cfg.condition_key,
                                reference=sc_cfg.reference, gene_sets=cfg.scoring.gene_sets,
                                permutations=cfg.enrichment.permutations, min_size=cfg.enrichment.min_size,
                                random_state=cfg.seed, gene_symbols=sc_cfg.gene_symbols)
        ws.save_table("enrichment", enr)
        if len(enr):
            ws.save_figure("enrichment", _figures.enrichment(enr))


def stage_spatial(cfg: PipelineConfig, ws: Workspace) -> None:
    """Tubule segmentation, tubule metrics and niche collapse on the spatial section(s)."""
    sdata = ws.load_adata("spatial_input")
    # one section at a time, as the workflow's scattered jobs
    sections = sorted(sdata.obs[cfg.spatial.sample_key].astype(str).unique())
    parts = [_scatter.segment_section(cfg, _scatter.section_of(sdata, cfg, s)) for s in sections]
    gathered = _scatter.gather_sections([p[0] for p in parts], order=sdata.obs_names)
    _spatial_tables(cfg, ws, *_scatter.spatial_tables(cfg, gathered, parts[0][1]))


def _spatial_tables(cfg: PipelineConfig, ws: Workspace, sdata: AnnData, tubules: pd.DataFrame,
                    niche: pd.DataFrame, cell_type_key: str) -> None:
    sp_cfg = cfg.spatial
    ws.save_adata("spatial", sdata)
    ws.save_table("tubule_metrics", tubules)
    ws.save_table("niche_summary", niche)
    ws.save_figure("tubules", _figures.tubules(sdata, tubules, sample_key=sp_cfg.sample_key,
                                               spatial_key=sp_cfg.spatial_key, cell_type_key=cell_type_key))
    ws.save_figure("histology_composition", _figures.histology_composition(niche, sample_key=sp_cfg.sample_key))


def stage_multihit(cfg: PipelineConfig, ws: Workspace) -> None:
    """Per-sample multi-hit profiles and apoptosis-context calls."""
    sc_cfg = cfg.singlecell
    adata = ws.load_adata("results")
    spatial_table = None
    if cfg.has_spatial and ws.has_table("niche_summary"):
        # the niche table joins only when its samples are the single-cell samples
        niche = ws.load_table("niche_summary")
        sample_col = cfg.spatial.sample_key if cfg.spatial.sample_key in niche.columns else niche.columns[0]
        samples = set(adata.obs[sc_cfg.sample_key].astype(str))
        if samples & set(niche[sample_col].astype(str)):
            spatial_table = niche.rename(columns={sample_col: sc_cfg.sample_key}).set_index(sc_cfg.sample_key)
    table = _steps.multihit(adata, sample_key=sc_cfg.sample_key, reference=sc_cfg.reference,
                            condition_key=sc_cfg.condition_key, spatial_table=spatial_table,
                            method=cfg.primary_method, gene_symbols=sc_cfg.gene_symbols,
                            n_boot=_steps.STABILITY_BOOT, random_state=cfg.seed)
    ws.save_table("multihit", table.rename_axis(sc_cfg.sample_key).reset_index())
    ws.save_figure("multihit_heatmap", _figures.multihit_heatmap(table))


def stage_report(cfg: PipelineConfig, ws: Workspace, *, command: str | None = None) -> dict[str, Any]:
    """Write ``report.html`` and ``manifest.json`` (last: its presence marks a complete directory)."""
    from ..report import render_report

    manifest = build_manifest(cfg, ws, command=command)
    # the file list first, so this report has the same "Output files" as `noa-omics report`
    # (report.html and manifest.json are not listed in either)
    records = lambda: _io.file_records(ws.root, exclude=lambda rel: rel.startswith("work/") or rel == _io.MANIFEST_NAME)  # noqa: E731
    manifest["files"] = records()
    _io.write_text(ws.path("report.html"), render_report(ws.root, manifest=manifest))
    manifest["files"] = records()  # now with report.html
    _io.write_json(ws.path(_io.MANIFEST_NAME), manifest)
    return manifest


@dataclass(frozen=True)
class Stage:
    """One stage: its function and whether the config enables it."""

    name: str
    func: Callable[..., Any]
    description: str
    enabled: Callable[[PipelineConfig], bool]


STAGES: tuple[Stage, ...] = (
    Stage("load", stage_load, "load and normalise inputs", lambda c: True),
    Stage("annotate", stage_annotate, "annotate cell types and embed", lambda c: c.has_singlecell),
    Stage("score", stage_score, "score gene sets", lambda c: c.has_singlecell),
    Stage("profile", stage_profile, "profiles, donor-level comparisons, enrichment", lambda c: c.has_singlecell),
    Stage("spatial", stage_spatial, "tubules and niche collapse", lambda c: c.has_spatial),
    Stage("multihit", stage_multihit, "multi-hit profiles", lambda c: c.has_singlecell and c.steps.multihit),
    Stage("report", stage_report, "report and manifest", lambda c: True),
)


def enabled_stages(cfg: PipelineConfig) -> list[Stage]:
    """The stages the config runs, in order."""
    return [s for s in STAGES if s.enabled(cfg)]


def stage_outputs(name: str, cfg: PipelineConfig) -> list[str]:
    """Files a stage writes (relative to the results directory) under ``cfg``."""
    sc_demo = cfg.demo is not None
    if name == "load":
        return ([ADATA_FILES["singlecell_input"]] if cfg.has_singlecell else []) + (
            [ADATA_FILES["spatial_input"]] if cfg.has_spatial else [])
    if name == "annotate":
        out = [ADATA_FILES["annotated"], table_path("cell_type_counts")]
        if cfg.steps.embedding:
            out.append(figure_path("annotation_embedding"))
        if sc_demo:
            out += [table_path("annotation_confusion"), figure_path("confusion_matrix")]
        return out
    if name == "score":
        return [ADATA_FILES["results"], table_path("cell_type_scores"), figure_path("celltype_heatmap")]
    if name == "profile":
        out = [table_path("apoptosis_profile"), table_path("condition_effects"), table_path("composition"),
               figure_path("donor_scores"), figure_path("forest"), figure_path("composition")]
        if cfg.steps.enrichment:
            out.append(table_path("enrichment"))
        return out
    if name == "spatial":
        return [ADATA_FILES["spatial"], table_path("tubule_metrics"), table_path("niche_summary"),
                figure_path("tubules"), figure_path("histology_composition")]
    if name == "multihit":
        return [table_path("multihit"), figure_path("multihit_heatmap")]
    if name == "report":
        return ["report.html", _io.MANIFEST_NAME]
    raise KeyError(f"unknown stage {name!r}; stages are {[s.name for s in STAGES]}.")


def stage_inputs(name: str, cfg: PipelineConfig) -> list[str]:
    """Files a stage reads (relative to the results directory); external inputs excluded."""
    if name == "annotate":
        return [ADATA_FILES["singlecell_input"]]
    if name in ("score",):
        return [ADATA_FILES["annotated"]]
    if name == "profile":
        return [ADATA_FILES["results"]]
    if name == "multihit":
        return [ADATA_FILES["results"]] + ([table_path("niche_summary")] if cfg.has_spatial else [])
    if name == "spatial":
        return [ADATA_FILES["spatial_input"]]
    if name == "report":
        return [f for s in enabled_stages(cfg) if s.name != "report" for f in stage_outputs(s.name, cfg)
                if not f.startswith("work/")]
    return []


# ---------------------------------------------------------------------------------------------
# Scatter / gather (the workflow on a cluster: one job per sample and per section)
# ---------------------------------------------------------------------------------------------


def sample_file(token: str) -> str:
    """Per-sample intermediate (normalised and scored cells of one sample)."""
    return f"work/samples/{token}.h5ad"


def section_files(token: str) -> list[str]:
    """Per-section intermediate: the section's cells with their tubule ids."""
    return [f"work/sections/{token}.h5ad"]


def scatter_outputs(name: str, cfg: PipelineConfig) -> list[str]:
    """Final files of a gather rule: the stage's outputs without its intermediates."""
    stages = {"gather_singlecell": ("annotate", "score"), "gather_spatial": ("spatial",)}[name]
    return [f for st in stages for f in stage_outputs(st, cfg) if not f.startswith("work/")]


def run_sample(cfg: PipelineConfig, sample: str, root: str | Path) -> None:
    """One sample: its cells read from the (backed) input, normalised and scored (per-sample methods)."""
    adata = _scatter.score_sample(_scatter.load_sample(cfg, sample), cfg)
    _io.write_h5ad(Path(root) / sample_file(_scatter.safe_name(sample)), adata)


def run_gather_singlecell(cfg: PipelineConfig, root: str | Path) -> None:
    """All samples: gathered in input order, pooled methods scored, annotated and embedded."""
    import anndata as ad

    ws = Workspace(root, persist_intermediates=True)
    tokens = _scatter.singlecell_samples(cfg)
    parts = [ad.read_h5ad(ws.path(sample_file(t))) for t in tokens]
    adata = _scatter.gather_samples(parts, cfg, order=_scatter.input_order(cfg), dtypes=_scatter.input_dtypes(cfg))
    del parts
    _annotate_into(cfg, ws, adata, save=False)
    _score_tables(cfg, ws, adata)


def run_section(cfg: PipelineConfig, section: str, root: str | Path) -> None:
    """One spatial section: labels when the config has none, tubule segmentation."""
    sdata, cell_type_key = _scatter.segment_section(cfg, _scatter.load_section(cfg, section))
    sdata.uns["noa_section_cell_type_key"] = cell_type_key
    _io.write_h5ad(Path(root) / section_files(_scatter.safe_name(section))[0], sdata)


def run_gather_spatial(cfg: PipelineConfig, root: str | Path) -> None:
    """All sections in input order: panel scores, tubule metrics, niche summary, spatial figures."""
    import anndata as ad

    ws = Workspace(root, persist_intermediates=True)
    parts = [ad.read_h5ad(ws.path(section_files(t)[0])) for t in _scatter.spatial_sections(cfg)]
    key = str(parts[0].uns["noa_section_cell_type_key"])
    for part in parts:
        part.uns.pop("noa_section_cell_type_key", None)
    meta = ad.read_h5ad(cfg.spatial.path, backed="r")
    try:
        order = pd.Index(meta.obs_names.copy())
    finally:
        meta.file.close()
    gathered = _scatter.gather_sections(parts, order=order)
    _spatial_tables(cfg, ws, *_scatter.spatial_tables(cfg, gathered, key))


def run_stage(name: str, cfg: PipelineConfig, root: str | Path, **kwargs: Any) -> None:
    """Run one stage on the files of ``root`` (workflow mode: intermediates on disk)."""
    stage = {s.name: s for s in STAGES}[name]
    stage.func(cfg, Workspace(root, persist_intermediates=True), **kwargs)


# ---------------------------------------------------------------------------------------------
# Manifest
# ---------------------------------------------------------------------------------------------

_PACKAGES = ("noa-omics", "anndata", "scanpy", "squidpy", "gseapy", "decoupler", "pyucell", "numpy", "scipy",
             "pandas", "matplotlib", "scikit-learn", "statsmodels", "numba", "h5py", "snakemake", "typer")


def package_versions() -> dict[str, str]:
    """Installed versions of noa-omics and its main dependencies."""
    out = {}
    for name in _PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    out["noa-omics"] = __version__
    return out


def _input_records(cfg: PipelineConfig) -> list[dict[str, Any]]:
    if cfg.demo is not None:
        records = [{"name": "demo_testis", "description": f"noa_omics.datasets.demo_testis(seed={cfg.seed}, "
                    f"n_cells={cfg.demo.n_cells}) (simulated)"}]
        if cfg.has_spatial:
            linked = cfg.demo.link_donors and cfg.has_singlecell
            call = (f"demo_spatial_for_donors(donors of demo_testis, seed={cfg.seed}, n_tubules={cfg.demo.n_tubules})"
                    if linked else
                    f"demo_spatial(seed={cfg.seed}, sections={cfg.demo.sections}, n_tubules={cfg.demo.n_tubules})")
            records.append({"name": "demo_spatial", "description": f"noa_omics.datasets.{call} (simulated)"})
        return records
    records = []
    for label, path in (("single-cell", cfg.singlecell.path if cfg.singlecell else None),
                        ("spatial", cfg.spatial.path if cfg.spatial else None),
                        ("gene sets", cfg.scoring.gene_sets)):
        if path:
            p = Path(path)
            records.append({"name": label, "path": str(p.absolute()), "bytes": p.stat().st_size,
                            "sha256": _io.sha256sum(p)})
    return records


def _summary(cfg: PipelineConfig, ws: Workspace) -> tuple[dict[str, Any], list[dict[str, str]]]:
    summary: dict[str, Any] = {}
    libraries: list[dict[str, str]] = []
    if cfg.has_singlecell and ws.path(ADATA_FILES["results"]).is_file():
        with ws.peek_adata("results") as meta:
            obs = meta.obs
            sc_cfg = cfg.singlecell
            summary["cells"] = int(meta.n_obs)
            summary["genes"] = int(meta.n_vars)
            summary["samples"] = int(obs[sc_cfg.sample_key].nunique())
            summary["conditions"] = sorted(obs[sc_cfg.condition_key].astype(str).unique().tolist())
            summary["reference"] = sc_cfg.reference
            summary["cell_types"] = int(obs["noa_cell_type"].nunique())
            summary["scoring"] = list(cfg.scoring.methods)
            info = dict(meta.uns.get(_steps.PIPELINE_UNS_KEY, {}).get("score", {}))
            if info:
                summary["species"] = str(info.get("species"))
                libraries.append({"species": str(info.get("species")), "version": str(info.get("geneset_version"))})
    if cfg.has_spatial and ws.has_table("tubule_metrics"):
        tub = ws.load_table("tubule_metrics")
        summary["tubules"] = int(len(tub))
        if "niche_collapse_index" in tub.columns and len(tub):
            summary["median_NCI"] = round(float(tub["niche_collapse_index"].median()), 3)
    return summary, libraries


def build_manifest(cfg: PipelineConfig, ws: Workspace, *, command: str | None = None) -> dict[str, Any]:
    """Manifest of a results directory (without the ``files`` list, added last)."""
    summary, libraries = _summary(cfg, ws)
    figures = [{"path": figure_path(n), "title": t, "caption": c} for n, (t, c) in FIGURES.items()
               if ws.path(figure_path(n)).is_file()]
    tables = [{"path": table_path(n), "title": t, "caption": c, "sort_by": s} for n, (t, c, s) in TABLES.items()
              if ws.path(table_path(n)).is_file()]
    return {
        "title": "noa-omics report" + (" (demo data)" if cfg.demo is not None else ""),
        "noa_omics_version": __version__,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "command": command or " ".join(["noa-omics"] + sys.argv[1:]),
        "parameters": cfg.to_dict(),
        "inputs": _input_records(cfg),
        "summary": summary,
        "provenance": {
            "python": sys.version.split()[0],
            "platform": platform.platform(),
            "packages": package_versions(),
            "genesets": libraries,
        },
        "figures": figures,
        "tables": tables,
    }
