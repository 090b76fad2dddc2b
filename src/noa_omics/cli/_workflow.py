"""``noa-omics workflow init DIR``: copy the shipped Snakemake workflow into a folder."""

from __future__ import annotations

from pathlib import Path

import typer

from ._errors import OneLineErrors, handle_errors

app = typer.Typer(help="The Snakemake workflow shipped with noa-omics.", no_args_is_help=True,
                  cls=OneLineErrors, rich_markup_mode=None)


@app.command("init")
@handle_errors
def init(
    folder: Path = typer.Argument(..., help="Folder to write the Snakefile and configs into.", show_default=False),
    force: bool = typer.Option(False, "--force", help="Replace files of the same names."),
) -> None:
    """Write Snakefile, config.schema.yaml and config.example.yaml into FOLDER."""
    import warnings

    from ..pipeline._workflow import init_workflow

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        written = init_workflow(folder, overwrite=force)
    for path in written:
        typer.echo(f"wrote {path}")
    typer.echo(f"run it: snakemake -s {folder / 'Snakefile'} --configfile {folder / 'config.example.yaml'} --cores 2")
    typer.echo(f"   or: noa-omics run {folder / 'config.example.yaml'}")
    for w in caught:
        typer.echo(f"note: {w.message}", err=True)
