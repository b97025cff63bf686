"""``hcsvfs cp``: copy a file or a tree between any two backends, with a progress bar."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from ..metrics.report import human_bytes
from .errors import CliError
from .targets import cli_filemanager, parse_target

__all__ = ["register", "cp"]


def cp(
    source: str = typer.Argument(..., help="What to copy: PATH, BACKEND:PATH or a URL (a file or a folder)."),
    destination: str = typer.Argument(..., help="Where to: PATH, BACKEND:PATH or a URL."),
    overwrite: bool = typer.Option(False, "--overwrite", "-f", help="Replace files that already exist."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar or summary."),
    metrics: Path | None = typer.Option(None, "--metrics", help="Write the run's metrics (JSON) here for 'hcsvfs stats'."),
) -> None:
    """Copy SOURCE to DESTINATION between backends (disk, zarr, memory, object stores)."""
    fm = cli_filemanager(metrics=metrics is not None)
    src, dst = parse_target(source, fm), parse_target(destination, fm)
    if not fm.exists(src.path, src.backend):
        raise CliError(f"{src} does not exist on the {src.backend} backend")
    is_dir = fm.is_dir(src.path, src.backend)
    total = len(fm.list_files(src.path, src.backend, recursive=True)) if is_dir else 1
    console = Console(stderr=True)
    with Progress(
        TextColumn("[bold]cp[/bold]"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        TextColumn("{task.description}"),
        console=console,
        transient=True,
        disable=quiet,
    ) as progress:
        task = progress.add_task("", total=total)

        def advance(path: str) -> None:
            progress.update(task, advance=1, description=path[-40:])

        try:
            written = fm.transfer(src.path, src.backend, dst.path, dst.backend, overwrite=overwrite, progress=advance)
        except FileExistsError as exc:
            raise CliError(f"{exc} (on the command line: cp --overwrite)") from exc
    if metrics is not None and fm.metrics is not None:
        fm.metrics.to_json(metrics)
    if not quiet:
        size = sum(fm.stat(p, dst.backend).size for p in written) if dst.backend != "memory" else 0
        console.print(f"copied {len(written)} file(s) to {dst}" + (f" ({human_bytes(size)})" if size else ""), soft_wrap=True)


def register(app: typer.Typer) -> None:
    """Add ``cp`` to the app."""
    app.command("cp")(cp)
