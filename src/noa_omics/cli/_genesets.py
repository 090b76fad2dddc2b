"""``noa-omics genesets``: list, show and export the curated gene-set library."""

from __future__ import annotations

import enum
import sys
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from ._errors import OneLineErrors, handle_errors

app = typer.Typer(help="Curated NOA gene-set library: list, show, export.", no_args_is_help=True,
                  cls=OneLineErrors, rich_markup_mode=None)


class Species(str, enum.Enum):
    human = "human"
    mouse = "mouse"


class ExportFormat(str, enum.Enum):
    gmt = "gmt"
    network = "network"


def _fail(message: str) -> None:
    """One readable line on stderr, exit code 1, no traceback."""
    typer.echo(f"noa-omics: error: {' '.join(message.split())}", err=True)
    raise typer.Exit(code=1)


def _load(species: Species, category: str | None = None):
    """The library for ``species``, restricted to ``category`` when given."""
    from ..genesets import load

    try:
        collection = load(species.value)
        return collection if category is None else collection.filter(category=category)
    except (ValueError, FileNotFoundError) as err:
        _fail(str(err))


def _console() -> Console:
    return Console(file=sys.stdout, width=200, soft_wrap=True)


@app.command("list")
@handle_errors
def list_sets(
    species: Species = typer.Option(Species.human, "--species", "-s", help="Symbol species."),
    category: str = typer.Option(None, "--category", "-c", help="Only this category."),
) -> None:
    """Table of the gene sets (name, category, axis, direction, number of genes)."""
    collection = _load(species, category)
    table = Table(title=f"noa-omics gene sets {collection.version} ({collection.species}, {len(collection)} sets)")
    for column in ("name", "category", "axis", "direction", "n_genes"):
        table.add_column(column, justify="right" if column == "n_genes" else "left")
    for gs in collection.values():
        table.add_row(gs.name, gs.category or "", gs.axis or "", gs.direction or "", str(len(gs.genes)))
    _console().print(table)


@app.command("show")
@handle_errors
def show(
    name: str = typer.Argument(..., help="Gene-set name (see `noa-omics genesets list`)."),
    species: Species = typer.Option(Species.human, "--species", "-s", help="Symbol species."),
) -> None:
    """Details and genes of one gene set."""
    collection = _load(species)
    if name not in collection:
        _fail(f"unknown gene set {name!r}; run `noa-omics genesets list` to see the {len(collection)} names.")
    gs = collection[name]
    console = _console()
    console.print(f"[bold]{gs.name}[/bold]  ({collection.species}, library {collection.version})", highlight=False)
    for label, value in (
        ("category", gs.category),
        ("axis", gs.axis),
        ("direction", gs.direction),
        ("n_genes", len(gs.genes)),
        ("description", gs.description),
        ("sources", ", ".join(gs.sources)),
        ("references", ", ".join(gs.references)),
        ("notes", gs.notes),
    ):
        if value not in (None, ""):
            console.print(f"{label}: {value}", highlight=False, markup=False)
    if gs.dropped:
        console.print(f"dropped (no one-to-one mouse ortholog): {' '.join(gs.dropped)}", highlight=False, markup=False)
    console.print("genes: " + " ".join(gs.genes), highlight=False, markup=False)


@app.command("export")
@handle_errors
def export(
    fmt: ExportFormat = typer.Option(ExportFormat.gmt, "--format", "-f", help="gmt or network (TSV source/target/weight)."),
    species: Species = typer.Option(Species.human, "--species", "-s", help="Symbol species."),
    out: Path = typer.Option(..., "--out", "-o", help="Output file (written atomically); - for standard output."),
    category: str = typer.Option(None, "--category", "-c", help="Only this category."),
) -> None:
    """Export the library as GMT or as a decoupler network table (tab-separated)."""
    collection = _load(species, category)
    to_stdout = str(out) == "-"
    if not to_stdout:
        if not out.parent.exists():
            _fail(f"output folder {str(out.parent)!r} does not exist; create it first.")
        if out.is_dir():
            _fail(f"--out {str(out)!r} is a folder; give a file name.")
    if fmt is ExportFormat.gmt:
        from ..genesets._gmt import format_gmt

        text = format_gmt(collection)
    else:
        text = collection.to_network().to_csv(sep="\t", index=False)
    if to_stdout:
        sys.stdout.write(text)
        sys.stdout.flush()
    else:
        from .._io import write_text

        write_text(out, text, create_parent=False)
    typer.echo(f"wrote {len(collection)} gene sets ({collection.species}, {fmt.value}) to "
               f"{'standard output' if to_stdout else out}", err=to_stdout)
