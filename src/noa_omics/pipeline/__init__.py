"""The analysis pipeline shared by the command line, the Snakemake workflow and notebooks.

- :mod:`noa_omics.pipeline.steps`: the analysis steps as small functions on AnnData objects.
- :func:`run_pipeline`: every stage into one results directory, written atomically.
- :func:`run_stage`: one stage on a results directory (one workflow rule).
- :mod:`noa_omics.pipeline.scatter`, :func:`run_sample`, :func:`run_section`, :func:`run_gather_singlecell`,
  :func:`run_gather_spatial`: per-sample / per-section jobs and their gathering (cluster workflow).
- :func:`load_config` / :func:`config_from_dict` / :func:`validate_inputs`: the YAML config.
"""

from . import _scatter as scatter
from . import _steps as steps
from ._config import (
    SCORING_METHODS,
    ConfigError,
    PipelineConfig,
    config_from_dict,
    load_config,
    validate_inputs,
)
from ._run import demo_config, run_pipeline, score_file
from ._stages import (
    FIGURES,
    STAGES,
    TABLES,
    Workspace,
    enabled_stages,
    run_gather_singlecell,
    run_gather_spatial,
    run_sample,
    run_section,
    run_stage,
    sample_file,
    scatter_outputs,
    section_files,
    stage_inputs,
    stage_outputs,
)

__all__ = [
    "SCORING_METHODS",
    "ConfigError",
    "PipelineConfig",
    "config_from_dict",
    "load_config",
    "validate_inputs",
    "demo_config",
    "run_pipeline",
    "score_file",
    "run_stage",
    "stage_inputs",
    "stage_outputs",
    "enabled_stages",
    "Workspace",
    "STAGES",
    "FIGURES",
    "TABLES",
    "steps",
    "scatter",
    "run_sample",
    "run_section",
    "run_gather_singlecell",
    "run_gather_spatial",
    "sample_file",
    "section_files",
    "scatter_outputs",
]
