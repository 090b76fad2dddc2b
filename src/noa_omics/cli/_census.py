"""``noa-omics census``: stream a TileDB-SOMA experiment (local Census copy or any SOMA URI)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from ._errors import STATE, handle_errors, quiet_libraries


@handle_errors
def census(
    experiment: str = typer.Argument(..., help="TileDB-SOMA experiment URI (e.g. a local copy of the Census).",
                                     show_default=False),
    out: Path = typer.Option(..., "--out", "-o", help="Results directory to create."),
    filter: str = typer.Option("tissue_general == 'testis'", "--filter",
                               help="SOMA obs value filter of the query."),
    method: list[str] = typer.Option(["ucell"], "--method", "-m",
                                     help="score_genes, aucell, ucell or zmean; repeat for several."),
    sample_key: str = typer.Option("donor_id", "--sample-key", help="obs column with the donor."),
    condition_key: str = typer.Option("disease", "--condition-key", help="obs column with the condition."),
    reference: str = typer.Option("normal", "--reference", help="Reference condition value."),
    species: str = typer.Option("human", "--species", help="human or mouse."),
    chunk_size: int = typer.Option(20_000, "--chunk-size", help="Cells per streamed block."),
    no_multihit: bool = typer.Option(False, "--no-multihit", help="Skip the multi-hit table."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Show library warnings and tracebacks."),
) -> None:
    """Score every cell of a SOMA query in blocks and write scores, profiles and multi-hit tables."""
    quiet_libraries(verbose or STATE["verbose"])
    from .._validation import check_species
    from ..pipeline._census import run_soma

    if chunk_size < 1:
        raise ValueError(f"--chunk-size must be a positive integer, got {chunk_size}.")
    info = run_soma(experiment, out, obs_value_filter=filter or None, methods=method, sample_key=sample_key,
                    condition_key=condition_key or None, reference=reference, species=check_species(species),
                    chunk_size=chunk_size, multihit=not no_multihit)
    typer.echo(f"streamed {info['n_cells']} cells of {info['n_donors']} donors -> {info['out']}")
