"""Entry point of the ``noa-omics`` command.

Sub-commands: ``demo``, ``run``, ``score``, ``report`` (this file), ``genesets``
(``cli/_genesets.py``) and ``workflow`` (``cli/_workflow.py``). Every command goes through :func:`handle_errors`: bad input ends with
one ``noa-omics: error: ...`` line on stderr, a non-zero exit and no partial output.
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Optional

import typer

from .._version import __version__
from ._census import census as _census_command
from ._errors import STATE, OneLineErrors, handle_errors, quiet_libraries
from ._genesets import app as _genesets_app
from ._workflow import app as _workflow_app

app = typer.Typer(
    name="noa-omics",
    help="Apoptosis and multi-hit analysis of NOA testis single-cell and spatial omics.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    cls=OneLineErrors,
    rich_markup_mode=None,  # plain click help: no boxes, no `<bool>` after flags
)

app.add_typer(_genesets_app, name="genesets", help="List, show and export the curated gene sets.")
app.add_typer(_workflow_app, name="workflow", help="Copy the Snakemake workflow and its config into a folder.")
app.command(name="census")(_census_command)

VERBOSE = typer.Option(False, "--verbose", "-v", help="Show library warnings and full tracebacks on error.")


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(f"noa-omics {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version_callback, is_eager=True,
                                 help="Show the version and exit."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Show warnings and tracebacks (all commands)."),
) -> None:
    """noa-omics command line."""
    STATE["verbose"] = verbose


def _command_line() -> str:
    return shlex.join(["noa-omics", *sys.argv[1:]]) if sys.argv and "noa" in Path(sys.argv[0]).name else "noa-omics"


class _RichProgress:
    """Stage-by-stage progress display (rich) on stderr."""

    def __init__(self, n_stages: int) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

        self.console = Console(stderr=True)
        self.progress = Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
                                 TextColumn("{task.completed}/{task.total}"), TimeElapsedColumn(),
                                 console=self.console, transient=True)
        self.task = self.progress.add_task("starting", total=n_stages)

    def __enter__(self) -> _RichProgress:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def start(self, name: str, description: str) -> None:
        self.progress.update(self.task, description=f"{name}: {description}")

    def done(self, name: str, seconds: float) -> None:
        self.progress.advance(self.task)
        self.progress.console.print(f"[green]done[/green] {name:<9} {seconds:6.1f} s")


def _run(cfg) -> Path:  # noqa: ANN001 - PipelineConfig, imported lazily
    from ..pipeline import enabled_stages, run_pipeline, validate_inputs

    validate_inputs(cfg)
    with _RichProgress(len(enabled_stages(cfg))) as progress:
        out = run_pipeline(cfg, progress=progress, command=_command_line(), validate=False)
    typer.echo(f"results: {out}")
    typer.echo(f"report:  {out / 'report.html'}")
    return out


@app.command()
@handle_errors
def demo(
    out: Path = typer.Option(..., "--out", "-o", help="Results directory to create."),
    seed: int = typer.Option(0, "--seed", help="Random seed of the demo data and the analysis."),
    n_cells: Optional[int] = typer.Option(None, "--n-cells", help="Cells in the demo data, at least 200 (default 4000; 1500 with --quick)."),
    quick: bool = typer.Option(False, "--quick", help="Small demo (1500 cells, fewer permutations)."),
    verbose: bool = VERBOSE,
) -> None:
    """Run the whole analysis on the embedded demo data and write tables, figures and report.html."""
    quiet_libraries(verbose or STATE["verbose"])
    from ..pipeline import demo_config
    from ..pipeline._config import MIN_DEMO_CELLS

    if n_cells is not None and n_cells < MIN_DEMO_CELLS:
        raise ValueError(f"--n-cells must be at least {MIN_DEMO_CELLS} (a demo cohort of 13 donors), got {n_cells}.")
    _run(demo_config(out, seed=seed, n_cells=n_cells, quick=quick))


@app.command()
@handle_errors
def run(
    config: Path = typer.Argument(..., help="YAML config (`noa-omics workflow init DIR` writes an example: DIR/config.example.yaml).",
                                show_default=False),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Results directory (overrides 'output' in the config)."),
    verbose: bool = VERBOSE,
) -> None:
    """Run the pipeline on your own .h5ad files, as described by a YAML config."""
    quiet_libraries(verbose or STATE["verbose"])
    from ..pipeline import load_config

    cfg = load_config(config)
    if out is not None:
        cfg.output = str(out)
    _run(cfg)


@app.command()
@handle_errors
def score(
    input: Path = typer.Argument(..., help="Input .h5ad file.", show_default=False),
    out: Path = typer.Option(..., "--out", "-o", help="Output .h5ad file (scores in obsm['noa_<method>'])."),
    method: list[str] = typer.Option(["score_genes"], "--method", "-m",
                                     help="score_genes, aucell, ucell or zmean; repeat for several."),
    genesets: Optional[Path] = typer.Option(None, "--genesets", help="GMT file (default: the curated library)."),
    layer: Optional[str] = typer.Option(None, "--layer", help="Layer to score (default: X; raw: adata.raw.X)."),
    species: Optional[str] = typer.Option(None, "--species", help="human or mouse (default: detected)."),
    gene_symbols: Optional[str] = typer.Option(
        None, "--gene-symbols",
        help="var column with gene symbols, e.g. feature_name (default: var_names, or the well-known symbol "
             "column when they are Ensembl ids)."),
    normalize: str = typer.Option("auto", "--normalize",
                                  help="auto: log-normalise when the matrix holds raw counts; yes; no."),
    seed: int = typer.Option(0, "--seed", help="Random seed (score_genes control genes)."),
    verbose: bool = VERBOSE,
) -> None:
    """Score gene sets per cell and write a scored copy of the file."""
    quiet_libraries(verbose or STATE["verbose"])
    from .._validation import check_species
    from ..pipeline import score_file

    species = check_species(species)
    info = score_file(input, out, methods=method, gene_sets=str(genesets) if genesets else None, layer=layer,
                      species=species, normalize=normalize, random_state=seed, gene_symbols=gene_symbols)
    shapes = ", ".join(f"{m}: {s[1]} sets" for m, s in info["shapes"].items())
    typer.echo(f"scored {info['n_cells']} cells ({shapes}){' after log-normalising counts' if info['normalized'] else ''}"
               f" -> {out}")


@app.command()
@handle_errors
def report(
    results: Path = typer.Argument(..., help="Results directory (with manifest.json).", show_default=False),
    out: Path = typer.Option(..., "--out", "-o", help="HTML file to write."),
    verbose: bool = VERBOSE,
) -> None:
    """Re-render the HTML report from a results directory (tables, figures, manifest)."""
    quiet_libraries(verbose or STATE["verbose"])
    from ..pipeline._io import check_writable_dir
    from ..report import load_manifest, write_report

    manifest = load_manifest(results)
    check_writable_dir(out, what="report")
    write_report(results, out, manifest=manifest)
    typer.echo(f"report: {out}")


def main() -> None:
    """Run the command line application."""
    app(prog_name="noa-omics")
