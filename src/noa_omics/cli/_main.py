"""Entry point of the ``noa-omics`` command (work in progress: sub-commands are added per issue)."""

from __future__ import annotations

import typer

from .._version import __version__

app = typer.Typer(name="noa-omics", help="Apoptosis and multi-hit analysis of NOA testis omics.", no_args_is_help=True)


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(f"noa-omics {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version_callback, is_eager=True, help="Show the version and exit."),
) -> None:
    """noa-omics command line."""


def main() -> None:
    """Run the command line application."""
    app()
