"""Command line interface ``noa-omics`` (typer)."""

from ._main import app, main

__all__ = ["app", "main"]
