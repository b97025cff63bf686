"""``hcsvfs convert``: an ImageXpress-style folder of TIFFs -> an OME-Zarr (NGFF 0.5) plate, well by well."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from .. import paths as P
from ..metrics.report import human_bytes
from .errors import EXIT_USAGE, CliError
from .targets import cli_filemanager, parse_target, zarr_backend

__all__ = ["register", "convert"]


def convert(
    source: str = typer.Argument(..., help="Folder of TIFFs named like A01_s1_w1[_z001][_t001].tif (any backend)."),
    destination: str = typer.Argument(..., help="The plate to write: PATH.zarr or zarr:PATH.zarr."),
    parser: str = typer.Option("metaxpress", "--parser", help="File-name parser registered in hcsvfs.hcs."),
    compression: str = typer.Option("lz4", "--compression", help="lz4, zstd, gzip or none."),
    level: int = typer.Option(1, "--level", min=0, max=9, help="Compression level."),
    overwrite: bool = typer.Option(False, "--overwrite", "-f", help="Replace planes already in the plate."),
    validate: bool = typer.Option(True, "--validate/--no-validate", help="Check the written plate with ome-zarr-models."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar or summary."),
    metrics: Path | None = typer.Option(None, "--metrics", help="Write the run's metrics (JSON) here for 'hcsvfs stats'."),
) -> None:
    """Convert a TIFF folder into an OME-Zarr HCS plate (one well in memory at a time)."""
    from ..backends.zarr import ZarrStorageBackend
    from ..config import ZarrConfig
    from ..pipeline.ingest import output_name, scan_plate

    fm = cli_filemanager(metrics=metrics is not None)
    src, dst = parse_target(source, fm), parse_target(destination, fm)
    if dst.backend != "zarr" or not dst.path.endswith(".zarr"):
        raise CliError(f"the destination {dst} must be a plate path ending in .zarr (e.g. out/plate.zarr)", EXIT_USAGE)
    try:
        config = ZarrConfig(compression=compression, compression_level=level)
    except ValueError as exc:
        raise CliError(str(exc), EXIT_USAGE) from None
    fm.registry.register_backend("zarr", ZarrStorageBackend(config=config), replace=True)
    layout = scan_plate(fm, src.path, src.backend, parser=parser)
    console = Console(stderr=True)
    columns = (
        TextColumn("[bold]convert[/bold]"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        TextColumn("{task.description}"),
    )
    with Progress(*columns, console=console, transient=True, disable=quiet) as progress:
        task = progress.add_task("", total=len(layout))
        for well in layout.wells:
            records = layout.images[well]
            progress.update(task, description=well)
            planes = [fm.load(r.path, src.backend) for r in records]
            names = [P.join(dst.path, output_name(r.key)) for r in records]
            try:
                fm.save_batch(planes, names, "zarr", overwrite=overwrite)  # one write per field shard
            except FileExistsError as exc:
                raise CliError(f"{exc} (on the command line: convert --overwrite)") from exc
            progress.advance(task, len(records))
    checked = zarr_backend(fm).validate(dst.path) if validate else []
    if metrics is not None and fm.metrics is not None:
        fm.metrics.to_json(metrics)
    if not quiet:
        stored = sum(f.stat().st_size for f in Path(dst.path).rglob("*") if f.is_file()) if Path(dst.path).exists() else 0
        console.print(
            f"wrote {dst}: {len(layout.wells)} wells, {len(layout)} planes, fields {layout.fields}, channels "
            f"{layout.channels}" + (f", {human_bytes(stored)} on disk" if stored else "")
            + (f"; valid OME-NGFF ({len(checked)} groups)" if validate else ""),
            soft_wrap=True,  # one line in logs, however long the path
        )


def register(app: typer.Typer) -> None:
    """Add ``convert`` to the app."""
    app.command("convert")(convert)
