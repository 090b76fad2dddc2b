"""Pipeline configuration: schema, YAML loading and up-front validation.

One schema, ``workflows/config.schema.yaml`` (JSON Schema, shipped in the package), is the single
source of the keys, types, allowed values and ranges: ``noa-omics run CONFIG.yaml``, ``noa-omics
demo`` and the Snakemake workflow all validate against it with :mod:`jsonschema`. The dataclasses
below give the parsed config its attributes (a test checks that their fields and defaults are the
schema's). Every problem is reported as one :class:`ConfigError` line naming the key and the fix,
*before* any computation starts.

Relative paths are resolved against the current working directory (as Snakemake does).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..datasets._demo_testis import DEMO_N_CELLS

#: Scoring methods of :func:`noa_omics.tl.score`.
SCORING_METHODS: tuple[str, ...] = ("score_genes", "aucell", "ucell", "zmean")


#: Smallest demo cohort (the schema's ``demo.n_cells`` minimum).
MIN_DEMO_CELLS = 200


class ConfigError(ValueError):
    """A configuration or input problem, reported as one readable line."""


@dataclass
class DemoSection:
    """Generate the embedded demo data instead of reading input files."""

    n_cells: int = DEMO_N_CELLS
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


def _where(path: Sequence[Any]) -> str:
    keys = [str(p) for p in path if not isinstance(p, int)]
    return "the config" if not keys else f"section {keys[0]!r}" if len(keys) == 1 else "section " + repr(".".join(keys))


def _schema_message(err: Any) -> str:
    """One readable line for a :mod:`jsonschema` validation error (key, rule, fix)."""
    path = list(err.absolute_path)
    key = ".".join(str(p) for p in path) or "the config"
    rule, expected, value = err.validator, err.validator_value, err.instance
    if rule == "additionalProperties":
        allowed = list(err.schema.get("properties", {}))
        unknown = sorted(set(value) - set(allowed))
        return f"unknown key {unknown[0]!r} in {_where(path)}; allowed keys: {', '.join(allowed)}."
    if rule == "type":
        names = [expected] if isinstance(expected, str) else list(expected)
        if not path:
            return f"the config must be a mapping of keys to values, got {type(value).__name__}."
        return f"key {key!r} must be of type {' or '.join(names)}, got {value!r}."
    if rule == "enum":
        if path[:1] == ["species"]:
            return f"unknown species {value!r}; use one of {[v for v in expected if v]} or null (detect)."
        if path[:2] == ["scoring", "methods"]:
            return f"unknown scoring method {value!r}; use one of {list(expected)}."
        return f"unknown value {value!r} for {key!r}; use one of {list(expected)}."
    if rule == "minimum":
        return f"{key} is {value}; use at least {expected}."
    if rule == "minItems":
        return f"{key} is empty; name at least {expected} value(s)."
    if rule == "uniqueItems":
        return f"{key} lists a value twice; list each once."
    if rule == "minLength":
        return f"{key!r} is empty; give a value."
    return f"{key}: {err.message}"  # pragma: no cover - rules the schema does not use


def check_schema(data: Mapping[str, Any]) -> None:
    """Validate a parsed config against the one schema (``workflows/config.schema.yaml``).

    The same file is given to :func:`snakemake.utils.validate` by the Snakefile, so the
    command line and the workflow accept exactly the same configs. Raises :class:`ConfigError`
    with one line for the first problem (in document order).
    """
    import jsonschema

    from ._workflow import config_schema

    validator = jsonschema.Draft202012Validator(config_schema())
    errors = sorted(validator.iter_errors(data), key=lambda e: [str(p) for p in e.absolute_path])
    if errors:
        raise ConfigError(_schema_message(errors[0]))


def _build(cls: type, data: Mapping[str, Any] | None) -> Any:
    kwargs = dict(data or {})
    if cls is PipelineConfig:
        for name, section in _SECTIONS.items():
            if name in kwargs:
                value = kwargs[name]
                kwargs[name] = None if value is None and name in ("demo", "singlecell", "spatial") else _build(
                    section, value)
    return cls(**kwargs)


def config_from_dict(data: Mapping[str, Any] | None) -> PipelineConfig:
    """Build and check a :class:`PipelineConfig` from a plain mapping (parsed YAML).

    Key names, value types and allowed values are checked against the configuration schema
    (:func:`check_schema`); the rules that relate several keys are checked here; input files are
    checked by :func:`validate_inputs`.
    """
    if data is None:
        data = {}
    check_schema(data)
    cfg = _build(PipelineConfig, data)
    if cfg.demo is not None:
        if cfg.singlecell is not None and cfg.singlecell.path is not None:
            raise ConfigError("the config has both a 'demo' section and singlecell.path; keep one of them.")
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
