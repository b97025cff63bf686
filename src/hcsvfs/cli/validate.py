"""``hcsvfs validate``: check OME-NGFF metadata of an image or plate with ome-zarr-models."""

from __future__ import annotations

import typer
from rich.console import Console

from .errors import CliError
from .targets import cli_filemanager, parse_target, zarr_backend

__all__ = ["register", "validate"]


def validate(
    target: str = typer.Argument(..., help="An OME-Zarr image or plate: PATH.zarr or zarr:PATH."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="List every group that was checked."),
) -> None:
    """Validate OME-NGFF 0.4 or 0.5 plate, well and image metadata; exit 1 with the first problem if invalid."""
    fm = cli_filemanager()
    t = parse_target(target, fm)
    backend = zarr_backend(fm, t.backend, spec=str(t))
    if not backend.exists(t.path):
        raise CliError(f"no zarr store at {t}")
    checked = backend.validate(t.path)
    console = Console()
    if verbose:
        for line in checked:
            console.print(f"  ok {line}", highlight=False)
    console.print(f"[green]valid[/green]: {t} ({len(checked)} group(s) checked)")


def register(app: typer.Typer) -> None:
    """Add ``validate`` to the app."""
    app.command("validate")(validate)
