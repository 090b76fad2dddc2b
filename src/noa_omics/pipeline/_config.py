"""Pipeline configuration: schema, YAML loading and up-front validation.

One schema serves ``noa-omics run CONFIG.yaml``, ``noa-omics demo`` and the Snakemake
workflow (``workflows/config.schema.yaml`` states the same schema as JSON Schema). Every
problem is reported as one :class:`ConfigError` line naming the key and the fix, *before* any
computation starts.

Relative paths are resolved against the current working directory (as Snakemake does).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .._vocabulary import SPECIES

#: Scoring methods of :func:`noa_omics.tl.score`.
SCORING_METHODS: tuple[str, ...] = ("score_genes", "aucell", "ucell", "zmean")


class ConfigError(ValueError):
    """A configuration or input problem, reported as one readable line."""


@dataclass
class DemoSection:
    """Generate the embedded demo data instead of reading input files."""

    n_cells: int = 4000
    spatial: bool = True
    sections: int = 4
    n_tubules: int = 30
    #: One section per single-cell demo donor (same ids), so that the niche-collapse index enters
    #: the multi-hit niche axis; ``sections`` is then ignored.
    link_donors: bool = True


@dataclass
class SingleCellSection:
    """Single-cell input (an ``.h5ad`` file)."""

    path: str | None = None
    #: Layer with the raw counts; ``"raw"``: ``adata.raw.X`` (CELLxGENE); None: ``X``.
    counts_layer: str | None = "counts"
    sample_key: str = "sample"
    condition_key: str = "condition"
    reference: str = "control"
    donor_key: str | None = None
    cell_type_key: str | None = None
    #: ``var`` column with gene symbols (e.g. ``feature_name``), passed to every stage; None uses
    #: ``var_names`` or, for Ensembl ids, the well-known symbol column (``noa_omics._identifiers``).
    gene_symbols: str | None = None


@dataclass
class SpatialSection:
    """Spatial input (an ``.h5ad`` file with x/y coordinates in ``obsm``)."""

    path: str | None = None
    sample_key: str = "sample"
    cell_type_key: str | None = "noa_cell_type"
    spatial_key: str = "spatial"
    counts_layer: str | None = None
    gene_symbols: str | None = None


@dataclass
class ScoringSection:
    """Gene-set scoring."""

    methods: list[str] = field(default_factory=lambda: ["score_genes"])
    gene_sets: str | None = None


@dataclass
class StepsSection:
    """Optional steps (all on by default)."""

    embedding: bool = True
    enrichment: bool = True
    multihit: bool = True


@dataclass
class EnrichmentSection:
    """Donor-level pseudobulk enrichment (gseapy prerank)."""

    permutations: int = 200
    min_size: int = 5


@dataclass
class PipelineConfig:
    """Complete pipeline configuration (see ``workflows/config.example.yaml``)."""

    output: str = "noa-results"
    species: str | None = None
    seed: int = 0
    demo: DemoSection | None = None
    singlecell: SingleCellSection | None = None
    spatial: SpatialSection | None = None
    scoring: ScoringSection = field(default_factory=ScoringSection)
    steps: StepsSection = field(default_factory=StepsSection)
    enrichment: EnrichmentSection = field(default_factory=EnrichmentSection)

    @property
    def has_singlecell(self) -> bool:
        return self.singlecell is not None

    @property
    def has_spatial(self) -> bool:
        return self.spatial is not None

    @property
    def primary_method(self) -> str:
        return self.scoring.methods[0]

    def to_dict(self) -> dict[str, Any]:
        """Plain-dict form (YAML/JSON serialisable), as recorded in the manifest."""
        return dataclasses.asdict(self)


_SECTIONS: dict[str, type] = {
    "demo": DemoSection,
    "singlecell": SingleCellSection,
    "spatial": SpatialSection,
    "scoring": ScoringSection,
    "steps": StepsSection,
    "enrichment": EnrichmentSection,
}


def _type_ok(value: Any, annotation: str) -> bool:
    if value is None:
        return "None" in annotation
    if annotation.startswith("bool"):
        return isinstance(value, bool)
    if annotation.startswith("int"):
        return isinstance(value, int) and not isinstance(value, bool)
    if annotation.startswith("str"):
        return isinstance(value, str)
    if annotation.startswith("list[str]"):
        return isinstance(value, list) and all(isinstance(v, str) for v in value)
    return True


def _build(cls: type, data: Any, where: str) -> Any:
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise ConfigError(f"{where} must be a mapping of keys to values, got {type(data).__name__}.")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = [k for k in data if k not in fields]
    if unknown:
        raise ConfigError(
            f"unknown key {unknown[0]!r} in {where}; allowed keys: {', '.join(fields)}."
        )
    kwargs = {}
    for name, value in data.items():
        annotation = str(fields[name].type)
        if name in _SECTIONS and cls is PipelineConfig:
            kwargs[name] = None if value is None and name in ("demo", "singlecell", "spatial") else _build(
                _SECTIONS[name], value, f"section {name!r}"
            )
            continue
        if not _type_ok(value, annotation):
            raise ConfigError(
                f"key {name!r} in {where} must be of type {annotation.replace(' | None', ' or null')}, "
                f"got {value!r}."
            )
        kwargs[name] = value
    return cls(**kwargs)


def config_from_dict(data: Mapping[str, Any] | None) -> PipelineConfig:
    """Build and check a :class:`PipelineConfig` from a plain mapping (parsed YAML).

    Checks key names, value types and allowed values; input files are checked by
    :func:`validate_inputs`.
    """
    if data is None:
        data = {}
    cfg = _build(PipelineConfig, data, "the config")
    if cfg.species is not None and cfg.species not in SPECIES:
        raise ConfigError(f"unknown species {cfg.species!r}; use one of {list(SPECIES)} or null (detect).")
    if not cfg.scoring.methods:
        raise ConfigError("scoring.methods is empty; name at least one of " + ", ".join(SCORING_METHODS) + ".")
    for method in cfg.scoring.methods:
        if method not in SCORING_METHODS:
            raise ConfigError(f"unknown scoring method {method!r}; use one of {list(SCORING_METHODS)}.")
    if len(set(cfg.scoring.methods)) != len(cfg.scoring.methods):
        raise ConfigError("scoring.methods lists a method twice; list each method once.")
    if cfg.demo is not None:
        if cfg.singlecell is not None and cfg.singlecell.path is not None:
            raise ConfigError("the config has both a 'demo' section and singlecell.path; keep one of them.")
        if cfg.demo.n_cells < 200:
            raise ConfigError(f"demo.n_cells is {cfg.demo.n_cells}; use at least 200 cells.")
        if cfg.demo.sections < 1 or cfg.demo.n_tubules < 4:
            raise ConfigError("demo.sections must be at least 1 and demo.n_tubules at least 4.")
        cfg.singlecell = cfg.singlecell or SingleCellSection()
        if cfg.demo.spatial and cfg.spatial is None:
            cfg.spatial = SpatialSection()
    else:
        if cfg.singlecell is None and cfg.spatial is None:
            raise ConfigError(
                "the config names no input: add a 'singlecell' and/or 'spatial' section with a 'path' "
                "(or a 'demo' section)."
            )
        for name in ("singlecell", "spatial"):
            section = getattr(cfg, name)
            if section is not None and not section.path:
                raise ConfigError(f"section {name!r} has no 'path'; name the .h5ad file to read.")
    if cfg.enrichment.permutations < 10:
        raise ConfigError("enrichment.permutations must be at least 10.")
    if not cfg.output:
        raise ConfigError("'output' is empty; name the results directory.")
    return cfg


def load_config(path: str | Path) -> PipelineConfig:
    """Read a YAML config file and check its keys and values (not yet the input files)."""
    import yaml

    path = Path(path)
    if not path.exists():
        raise ConfigError(f"config file {str(path)!r} not found; check the path.")
    if not path.is_file():
        raise ConfigError(f"config {str(path)!r} is not a file.")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as err:
        first = " ".join(str(err).split())
        raise ConfigError(f"config {str(path)!r} is not valid YAML: {first}") from err
    if data is not None and not isinstance(data, Mapping):
        raise ConfigError(f"config {str(path)!r} must be a YAML mapping (key: value lines).")
    return config_from_dict(data)


# ---------------------------------------------------------------------------------------------
# Input checks (files, columns, reference) -- cheap: only obs/var metadata are read.
# ---------------------------------------------------------------------------------------------


def check_h5ad_file(path: str | Path, *, what: str = "input") -> Path:
    """Check that ``path`` exists and is an HDF5 (``.h5ad``) file."""
    import h5py

    path = Path(path)
    if not path.exists():
        raise ConfigError(f"{what} file {str(path)!r} not found; check the path.")
    if not path.is_file():
        raise ConfigError(f"{what} {str(path)!r} is not a file.")
    try:
        ok = h5py.is_hdf5(path)
    except OSError:
        ok = False
    if not ok:
        raise ConfigError(
            f"{what} file {str(path)!r} is not an .h5ad (HDF5) file; save your AnnData with "
            "`adata.write_h5ad(path)`."
        )
    return path


def read_h5ad_metadata(path: str | Path, *, what: str = "input") -> Any:
    """Open an ``.h5ad`` file in backed mode (obs, var and key names; no matrix)."""
    import anndata as ad

    check_h5ad_file(path, what=what)
    try:
        return ad.read_h5ad(path, backed="r")
    except Exception as err:  # anndata raises many types for malformed files
        first = " ".join(str(err).split())[:200]
        raise ConfigError(f"{what} file {str(path)!r} is not a readable AnnData .h5ad file: {first}") from err


def _check_column(meta: Any, key: str | None, *, section: str, option: str, path: str) -> None:
    if key is None:
        return
    if key not in meta.obs.columns:
        cols = ", ".join(map(str, list(meta.obs.columns)[:12])) or "(none)"
        raise ConfigError(
            f"column {key!r} ({section}.{option}) not found in obs of {path!r}; available columns: {cols}."
        )


def _check_counts_layer(meta: Any, layer: str | None, *, section: str, path: str) -> None:
    """``counts_layer``: a layer, ``raw`` (``adata.raw.X`` when no layer is named so) or null (X)."""
    if layer is None or layer in meta.layers.keys():
        return
    has_raw = meta.raw is not None
    if layer == "raw" and has_raw:
        return
    raw_note = (
        "; counts_layer: raw reads adata.raw.X, but the file has no raw" if layer == "raw"
        else ("; the file has adata.raw: use counts_layer: raw for adata.raw.X" if has_raw else "")
    )
    raise ConfigError(
        f"layer {layer!r} ({section}.counts_layer) not found in {path!r}; "
        f"available layers: {list(meta.layers.keys()) or 'none'}{raw_note}. Set counts_layer: null if X "
        "holds the raw counts."
    )


def _has_var_column(meta: Any, column: str, counts_layer: str | None) -> bool:
    if column in meta.var.columns:
        return True
    return counts_layer == "raw" and meta.raw is not None and column in meta.raw.var.columns


def validate_inputs(cfg: PipelineConfig) -> None:
    """Check input files, columns, layers and the reference condition before running.

    Raises
    ------
    ConfigError
        On the first problem found, with one readable line.
    """
    if cfg.demo is not None:
        return
    if cfg.singlecell is not None:
        sc_cfg = cfg.singlecell
        meta = read_h5ad_metadata(sc_cfg.path, what="single-cell input")
        try:
            for option in ("sample_key", "condition_key", "donor_key", "cell_type_key"):
                _check_column(meta, getattr(sc_cfg, option), section="singlecell", option=option, path=sc_cfg.path)
            _check_counts_layer(meta, sc_cfg.counts_layer, section="singlecell", path=sc_cfg.path)
            if sc_cfg.gene_symbols is not None and not _has_var_column(meta, sc_cfg.gene_symbols, sc_cfg.counts_layer):
                raise ConfigError(
                    f"column {sc_cfg.gene_symbols!r} (singlecell.gene_symbols) not found in var of {sc_cfg.path!r}; "
                    f"available columns: {', '.join(map(str, list(meta.var.columns)[:12])) or '(none)'}."
                )
            conditions = meta.obs[sc_cfg.condition_key].astype(str).unique().tolist()
            if sc_cfg.reference not in conditions:
                raise ConfigError(
                    f"reference condition {sc_cfg.reference!r} not found in column {sc_cfg.condition_key!r} "
                    f"of {sc_cfg.path!r}; values are: {', '.join(sorted(conditions))}."
                )
            if len(conditions) < 2:
                raise ConfigError(
                    f"column {sc_cfg.condition_key!r} of {sc_cfg.path!r} holds one condition only "
                    f"({conditions[0]!r}); a comparison needs at least two."
                )
        finally:
            meta.file.close()
    if cfg.spatial is not None:
        sp_cfg = cfg.spatial
        meta = read_h5ad_metadata(sp_cfg.path, what="spatial input")
        try:
            _check_column(meta, sp_cfg.sample_key, section="spatial", option="sample_key", path=sp_cfg.path)
            _check_column(meta, sp_cfg.cell_type_key, section="spatial", option="cell_type_key", path=sp_cfg.path)
            if sp_cfg.spatial_key not in meta.obsm.keys():
                raise ConfigError(
                    f"no coordinates at obsm[{sp_cfg.spatial_key!r}] (spatial.spatial_key) in {sp_cfg.path!r}; "
                    f"available obsm keys: {list(meta.obsm.keys()) or 'none'}."
                )
            _check_counts_layer(meta, sp_cfg.counts_layer, section="spatial", path=sp_cfg.path)
            if sp_cfg.gene_symbols is not None and not _has_var_column(meta, sp_cfg.gene_symbols, sp_cfg.counts_layer):
                raise ConfigError(
                    f"column {sp_cfg.gene_symbols!r} (spatial.gene_symbols) not found in var of {sp_cfg.path!r}."
                )
        finally:
            meta.file.close()
    if cfg.scoring.gene_sets is not None and not Path(cfg.scoring.gene_sets).is_file():
        raise ConfigError(f"gene-set file {cfg.scoring.gene_sets!r} (scoring.gene_sets) not found; check the path.")
