"""The analysis pipeline shared by the command line, the Snakemake workflow and notebooks.

- :mod:`noa_omics.pipeline.steps`: the analysis steps as small functions on AnnData objects.
- :func:`run_pipeline`: every stage into one results directory, written atomically.
- :func:`run_stage`: one stage on a results directory (one workflow rule).
- :func:`load_config` / :func:`config_from_dict` / :func:`validate_inputs`: the YAML config.
"""

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
from ._stages import FIGURES, STAGES, TABLES, Workspace, enabled_stages, run_stage, stage_inputs, stage_outputs

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
]
