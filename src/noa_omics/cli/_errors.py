"""One error-handling wrapper for every command: one readable line on stderr, no traceback.

``--verbose`` (on the command or before it: ``noa-omics --verbose demo ...``) prints the
traceback as well. Exit codes: 2 for bad input (missing/invalid file, missing column, unknown
reference, unwritable output, bad option value), 1 for any other failure, 130 when interrupted.
"""

from __future__ import annotations

import functools
import sys
import traceback
from collections.abc import Callable
from typing import Any, TypeVar

import click
import typer

F = TypeVar("F", bound=Callable[..., Any])

#: Set by the root callback (``noa-omics --verbose ...``).
STATE: dict[str, bool] = {"verbose": False}

_INPUT_ERRORS = (ValueError, KeyError, TypeError, OSError, LookupError)


def error_line(err: BaseException) -> str:
    """The one-line message of an exception (KeyError quotes removed, whitespace collapsed)."""
    if isinstance(err, KeyError) and err.args:
        text = str(err.args[0])
    elif isinstance(err, OSError) and err.strerror and err.filename:
        text = f"{err.strerror}: {err.filename!s}"
    else:
        text = str(err) or type(err).__name__
    text = " ".join(text.split())
    return f"noa-omics: error: {text}"


def handle_errors(func: F) -> F:
    """Wrap a command so that any exception ends as one stderr line and a non-zero exit."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        verbose = bool(kwargs.get("verbose")) or STATE["verbose"]
        try:
            return func(*args, **kwargs)
        except (typer.Exit, typer.Abort, click.exceptions.ClickException, click.exceptions.Exit):
            raise
        except KeyboardInterrupt:
            sys.stderr.write("noa-omics: error: interrupted; no output was written.\n")
            raise typer.Exit(130) from None
        except Exception as err:  # noqa: BLE001 -- the point of the wrapper
            if verbose:
                traceback.print_exc(file=sys.stderr)
            sys.stderr.write(error_line(err) + "\n")
            sys.stderr.flush()
            raise typer.Exit(2 if isinstance(err, _INPUT_ERRORS) else 1) from None

    return wrapper  # type: ignore[return-value]


def quiet_libraries(verbose: bool) -> None:
    """Silence library warnings unless ``verbose`` (stderr stays one line on failure)."""
    import logging
    import warnings

    import matplotlib

    matplotlib.use("Agg")  # files only, never a window
    if verbose:
        return
    warnings.filterwarnings("ignore")
    # gseapy creates a logger with its own stream handler per call: disable WARNING and below
    logging.disable(logging.WARNING)
    try:
        import scanpy as sc

        sc.settings.verbosity = 0
    except Exception:  # pragma: no cover - scanpy is a dependency
        pass
