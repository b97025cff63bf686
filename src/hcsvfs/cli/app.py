"""The ``hcsvfs`` command line (typer + rich): one small module per command, errors as one line."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import typer
from typer.core import TyperGroup
from typer.exceptions import TyperException

from .errors import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_USAGE, CliError, one_line

__all__ = ["app", "main"]


class _OneLineErrors(TyperGroup):
    """Runs commands without click's standalone handling so every failure becomes one stderr line."""

    def main(self, args: Any = None, prog_name: str | None = None, *a: Any, **kw: Any) -> Any:
        argv = list(sys.argv[1:] if args is None else args)
        debug = "--debug" in argv or os.environ.get("HCSVFS_DEBUG") == "1"
        kw["standalone_mode"] = False
        try:
            code = super().main(argv, prog_name, *a, **kw)
        except typer.Exit as exc:
            sys.exit(exc.exit_code)
        except TyperException as exc:  # typer's (vendored click) usage errors: bad option, missing argument
            if debug:
                raise
            ctx = getattr(exc, "ctx", None)
            where = ctx.command_path if ctx is not None else "hcsvfs"
            message = exc.format_message()
            if message:  # empty for "no arguments: help was shown"
                one_line(f"{message} (see: {where} --help)")
            sys.exit(getattr(exc, "exit_code", EXIT_USAGE))
        except typer.Abort:
            one_line("interrupted")
            sys.exit(EXIT_INTERRUPTED)
        except CliError as exc:
            if debug:
                raise
            one_line(str(exc))
            sys.exit(exc.code)
        except KeyboardInterrupt:
            one_line("interrupted")
            sys.exit(EXIT_INTERRUPTED)
        except Exception as exc:
            if debug:
                raise
            one_line(_describe(exc))
            sys.exit(EXIT_FAILED)
        sys.exit(code if isinstance(code, int) else 0)


def _describe(exc: BaseException) -> str:
    from ..errors import StorageError

    if isinstance(exc, ImportError):
        return f"{exc}: this needs a part of hcsvfs or an optional dependency that is not installed"
    if isinstance(exc, (StorageError, OSError, ValueError, TypeError)):
        text = str(exc) or type(exc).__name__
        return text if isinstance(exc, StorageError) else f"{type(exc).__name__}: {text}"
    return f"internal error {type(exc).__name__}: {exc} (rerun with --debug for the traceback)"


app = typer.Typer(
    cls=_OneLineErrors,
    help="hcsvfs: a virtual file system for high-content-screening data.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _print_version(value: bool) -> None:
    if value:
        from .. import __version__

        print(f"hcsvfs {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    debug: bool = typer.Option(False, "--debug", help="Show full tracebacks instead of one-line errors."),
    version: bool = typer.Option(False, "--version", callback=_print_version, is_eager=True, help="Print the version and exit."),
) -> None:
    """hcsvfs command line. Targets are BACKEND:PATH (disk:, zarr:, memory:), URLs (s3://...) or local paths."""


@app.command()
def demo(output: Path = typer.Option(Path("demo_output"), help="Folder for the demo's files.")) -> None:
    """Run the end-to-end demo on a synthetic plate."""
    from .demo import run_demo

    run_demo(output)


def _register() -> None:
    # Each command lives in its own module; importing them here keeps `hcsvfs --help` complete.
    from . import bench, convert, cp, info, ls, preview, stats, tune, validate

    for module in (ls, info, cp, convert, validate, preview, stats, tune, bench):
        module.register(app)


_register()


def main() -> None:
    """Console-script entry point (also ``python -m hcsvfs.cli``)."""
    app(prog_name="hcsvfs")
