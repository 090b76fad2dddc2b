"""One error-handling wrapper for every command: one readable line on stderr, no traceback.

``--verbose`` (on the command or before it: ``noa-omics --verbose demo ...``) prints the
traceback as well. Exit codes: 2 for bad input (missing/invalid file, missing column, unknown
reference, unwritable output, bad option value), 1 for any other failure, 130 when interrupted.
"""

from __future__ import annotations

import functools
import re
import sys
import traceback
from collections.abc import Callable
from typing import Any, TypeVar

import typer
from typer.core import TyperGroup

try:  # recent typer vendors click as ``typer._click`` and raises its exceptions
    from typer import _click as click
except ImportError:  # pragma: no cover - typer built on the click package
    import click

F = TypeVar("F", bound=Callable[..., Any])

#: Set by the root callback (``noa-omics --verbose ...``).
STATE: dict[str, bool] = {"verbose": False}

_INPUT_ERRORS = (ValueError, KeyError, TypeError, OSError, LookupError)


#: Python keyword arguments named in library messages -> the command-line option that sets them.
_CLI_OPTIONS = {"species": "--species", "layer": "--layer", "gene_sets": "--genesets", "random_state": "--seed"}
_PY_ARG = re.compile(r"\b(" + "|".join(_CLI_OPTIONS) + r")=(['\"]?)([\w./-]*)\2")
_OR_VALUE = re.compile(r"(--[\w-]+) ([\w./-]+) or (?:\1 ?)?['\"]([\w./-]+)['\"]")


def cli_wording(text: str) -> str:
    """Rewrite Python call syntax in a library message as command-line options.

    ``pass species='human' or 'mouse'`` becomes ``pass --species human or --species mouse``:
    the user of the command line types options, not keyword arguments.
    """
    text = _PY_ARG.sub(lambda m: f"{_CLI_OPTIONS[m.group(1)]} {m.group(3)}", text)
    return _OR_VALUE.sub(lambda m: f"{m.group(1)} {m.group(2)} or {m.group(1)} {m.group(3)}", text)


def one_line(text: str) -> str:
    """``noa-omics: error: <text>`` with the whitespace collapsed."""
    return "noa-omics: error: " + " ".join(cli_wording(text).split())


def error_line(err: BaseException) -> str:
    """The one-line message of an exception (KeyError quotes removed, whitespace collapsed)."""
    if isinstance(err, KeyError) and err.args:
        text = str(err.args[0])
    elif isinstance(err, OSError) and err.strerror and err.filename:
        text = f"{err.strerror}: {err.filename!s}"
    else:
        text = str(err) or type(err).__name__
    return one_line(text)


#: Raised by a group called without a command (click >= 8.2); its report is the help text.
_NO_ARGS_IS_HELP = getattr(click.exceptions, "NoArgsIsHelpError", ())


class OneLineErrors(TyperGroup):
    """Typer group whose usage errors (bad ``--format``, a missing ``--out``) are one stderr line.

    Click's own report is a usage block (and, with rich, a box); the README promises the same
    ``noa-omics: error: ...`` line as every other failure, with the exit code click uses (2).
    """

    def main(self, args: Any = None, prog_name: str | None = None, complete_var: str | None = None,
             standalone_mode: bool = True, **extra: Any) -> Any:
        try:
            rv = super().main(args=args, prog_name=prog_name, complete_var=complete_var,
                              standalone_mode=False, **extra)
            code = rv if isinstance(rv, int) else 0
        except _NO_ARGS_IS_HELP as err:
            err.show()  # `noa-omics genesets` alone: the help text
            code = err.exit_code
        except click.exceptions.UsageError as err:
            where = f" See `{err.ctx.command_path} --help`." if err.ctx is not None else ""
            message = err.format_message().replace("Value error, ", "")  # pydantic wording of typer
            sys.stderr.write(one_line(message + where) + "\n")
            code = err.exit_code
        except click.exceptions.ClickException as err:
            sys.stderr.write(one_line(err.format_message()) + "\n")
            code = err.exit_code
        except typer.Abort:
            sys.stderr.write("noa-omics: error: interrupted; no output was written.\n")
            code = 130
        if standalone_mode:
            sys.exit(code)
        return code


def handle_errors(func: F) -> F:
    """Wrap a command so that any exception ends as one stderr line and a non-zero exit."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        verbose = bool(kwargs.get("verbose")) or STATE["verbose"]
        try:
            return func(*args, **kwargs)
        except (typer.Exit, typer.Abort, click.exceptions.ClickException):
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
