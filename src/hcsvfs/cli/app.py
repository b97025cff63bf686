"""The ``hcsvfs`` command line (typer + rich)."""

from __future__ import annotations

from pathlib import Path

import typer

app = typer.Typer(help="hcsvfs: a virtual file system for high-content-screening data.", no_args_is_help=True)


@app.callback()
def _root() -> None:
    """hcsvfs command line."""


@app.command()
def demo(output: Path = typer.Option(Path("demo_output"), help="Folder for the demo's files.")) -> None:
    """Run the end-to-end demo on a synthetic plate."""
    from .demo import run_demo

    run_demo(output)


def main() -> None:
    app()
