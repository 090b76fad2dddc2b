"""The Snakemake workflow and the configuration schema, shipped with the package.

A wheel carries ``workflows/`` as ``noa_omics/_library/workflows`` (``pyproject.toml``
``force-include``); an editable install falls back to ``<repository>/workflows``. The one
configuration schema (``config.schema.yaml``, JSON Schema) lives there: the command line
(:func:`noa_omics.pipeline.config_from_dict`) and the Snakefile validate against the same file.

``noa-omics workflow init DIR`` (:func:`init_workflow`) copies the workflow into a folder of the
user's, where ``snakemake -s DIR/Snakefile --configfile DIR/config.example.yaml`` runs it.
"""

from __future__ import annotations

import functools
import importlib.resources
import shutil
from pathlib import Path
from typing import Any

from .._io import write_bytes

#: Files of the shipped workflow.
WORKFLOW_FILES: tuple[str, ...] = ("Snakefile", "config.schema.yaml", "config.example.yaml")
SCHEMA_FILE = "config.schema.yaml"


def workflow_dir() -> Path:
    """Folder holding the Snakefile, the config schema and the example config."""
    try:
        packaged = importlib.resources.files("noa_omics").joinpath("_library", "workflows")
        if packaged.is_dir() and packaged.joinpath(SCHEMA_FILE).is_file():
            return Path(str(packaged))
    except (ModuleNotFoundError, NotADirectoryError, FileNotFoundError):  # pragma: no cover
        pass
    source = Path(__file__).resolve().parents[3] / "workflows"
    if (source / SCHEMA_FILE).is_file():
        return source
    raise FileNotFoundError(
        "the workflow files were not found (neither noa_omics/_library/workflows in the installed package "
        f"nor {source}); reinstall noa-omics."
    )


def schema_path() -> Path:
    """Path of the configuration schema (JSON Schema written as YAML)."""
    return workflow_dir() / SCHEMA_FILE


@functools.lru_cache(maxsize=1)
def config_schema() -> dict[str, Any]:
    """The configuration schema as a dict (read once)."""
    import yaml

    return yaml.safe_load(schema_path().read_text(encoding="utf-8"))


def init_workflow(dest: str | Path, *, overwrite: bool = False) -> list[Path]:
    """Copy the Snakefile, the config schema and the example config into ``dest``.

    Parameters
    ----------
    dest
        Folder to create (or an existing folder).
    overwrite
        Replace files of the same names; otherwise an existing file is an error.

    Returns
    -------
    list of Path
        The written files.

    Raises
    ------
    FileExistsError
        If ``dest`` is a file, or holds one of the files and ``overwrite`` is false.
    """
    dest = Path(dest)
    if dest.exists() and not dest.is_dir():
        raise FileExistsError(f"{str(dest)!r} exists and is not a folder; choose another folder.")
    source = workflow_dir()
    clash = [name for name in WORKFLOW_FILES if (dest / name).exists()]
    if clash and not overwrite:
        raise FileExistsError(
            f"{str(dest)!r} already holds {', '.join(clash)}; choose an empty folder or pass --force."
        )
    written = [write_bytes(dest / name, (source / name).read_bytes()) for name in WORKFLOW_FILES]
    if shutil.which("snakemake") is None:
        import warnings

        warnings.warn("snakemake is not installed; install it with `pip install 'noa-omics[workflow]'`.",
                      UserWarning, stacklevel=2)
    return written
