"""``hcsvfs convert``: an ImageXpress-style folder of TIFFs, or any OME-Zarr plate (NGFF 0.4 or 0.5, any writer),
-> an hcsvfs OME-Zarr (NGFF 0.5, zarr v3) plate, well by well, every plane verified."""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

import numpy as np
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from .. import paths as P
from ..metrics.report import human_bytes
from .errors import EXIT_USAGE, CliError
from .targets import Target, cli_filemanager, parse_target, zarr_backend

__all__ = ["register", "convert"]

_COLUMNS = (
    TextColumn("[bold]convert[/bold]"),
    BarColumn(),
    MofNCompleteColumn(),
    TimeRemainingColumn(),
    TextColumn("{task.description}"),
)


def convert(
    source: str = typer.Argument(
        ..., help="Folder of TIFFs named like A01_s1_w1[_z001][_t001].tif, or an OME-Zarr plate (OLD.zarr, any writer)."
    ),
    destination: str = typer.Argument(..., help="The plate to write: PATH.zarr or zarr:PATH.zarr."),
    parser: str = typer.Option(
        "auto", "--parser",
        help="auto (the instrument, from its metadata: Opera/Operetta Index.idx.xml, ImageXpress .HTD, CellVoyager "
        ".mlf; else ImageXpress names), or a file-name parser registered in hcsvfs.hcs.",
    ),
    pattern: str | None = typer.Option(
        None, "--pattern",
        help="A regular expression for the whole file name with named groups well (or row and col), field, "
        "channel, z, t; e.g. '(?P<well>[A-P]\\d{2})_f(?P<field>\\d+)_c(?P<channel>\\d+)\\.tif'.",
    ),
    missing: str = typer.Option(
        "error", "--missing",
        help="Images the acquisition lacks (autofocus failures): error (name them all) or fill (zeros, recorded "
        "in each well's metadata).",
    ),
    compression: str = typer.Option(
        "lz4", "--compression", help="lz4, lz4hc, zstd, gzip, none, or auto (a measured trial picks; see hcsvfs tune)."
    ),
    goal: str = typer.Option("balanced", "--goal", help="For --compression auto: balanced, speed or size."),
    level: int = typer.Option(1, "--level", min=0, max=9, help="Compression level."),
    overwrite: bool = typer.Option(False, "--overwrite", "-f", help="Replace planes already in the plate."),
    validate: bool = typer.Option(True, "--validate/--no-validate", help="Check the written plate with ome-zarr-models."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar or summary."),
    metrics: Path | None = typer.Option(None, "--metrics", help="Write the run's metrics (JSON) here for 'hcsvfs stats'."),
) -> None:
    """Convert a TIFF folder, or migrate another tool's (or an NGFF 0.4) plate, into an OME-Zarr HCS plate.

    One well in memory at a time; a plate's planes are read back after writing and compared (exit 1 on a difference).
    """
    from ..backends.zarr import ZarrStorageBackend
    from ..config import ZarrConfig
    from ..pipeline.ingest import output_name, scan_plate
    from ..pipeline.microscopes import name_parser

    fm = cli_filemanager(metrics=metrics is not None)
    src, dst = parse_target(source, fm), parse_target(destination, fm)
    if dst.backend != "zarr" or not dst.path.endswith(".zarr"):
        raise CliError(f"the destination {dst} must be a plate path ending in .zarr (e.g. out/plate.zarr)", EXIT_USAGE)
    try:
        config = ZarrConfig(compression=compression, compression_level=level, goal=goal)
    except ValueError as exc:
        raise CliError(str(exc), EXIT_USAGE) from None
    source_backend = fm.get_backend(src.backend)
    if (
        isinstance(source_backend, ZarrStorageBackend)
        and source_backend.exists(src.path)
        and source_backend.node_type(src.path) == "plate"
    ):
        _migrate(source_backend, src.path, dst, config, overwrite=overwrite, validate=validate, quiet=quiet)
        return
    if missing not in ("error", "fill"):
        raise CliError(f"--missing must be error or fill, not {missing!r}", EXIT_USAGE)
    try:  # a bad --pattern or --parser is a usage error, found before anything is read
        name_parser(parser, pattern)
    except ValueError as exc:
        raise CliError(str(exc), EXIT_USAGE) from None
    layout = scan_plate(fm, src.path, src.backend, parser=parser, pattern=pattern, missing=cast(Any, missing))
    config = _with_acquisition(config, layout)
    fm.registry.register_backend("zarr", ZarrStorageBackend(config=config), replace=True)
    console = Console(stderr=True)
    with Progress(*_COLUMNS, console=console, transient=True, disable=quiet) as progress:
        task = progress.add_task("", total=len(layout))
        for well in layout.wells:
            records = layout.images[well]
            progress.update(task, description=well)
            planes = [layout.load_plane(fm, r, src.backend) for r in records]
            names = [P.join(dst.path, output_name(r.key)) for r in records]
            filled = [n for n, r in zip(names, records) if r.path is None]
            try:
                # one write per field shard; stand-ins for missing images are listed in the well's metadata
                extra: dict[str, Any] = {"filled": filled} if filled else {}
                fm.save_batch(planes, names, "zarr", overwrite=overwrite, **extra)
            except FileExistsError as exc:
                raise CliError(f"{exc} (on the command line: convert --overwrite)") from exc
            progress.advance(task, len(records))
    checked = zarr_backend(fm).validate(dst.path) if validate else []
    if metrics is not None and fm.metrics is not None:
        fm.metrics.to_json(metrics)
    if not quiet:
        stored = sum(f.stat().st_size for f in Path(dst.path).rglob("*") if f.is_file()) if Path(dst.path).exists() else 0
        acq = layout.acquisition
        source = f" from {acq.vendor} metadata {acq.metadata_file}" if acq is not None and acq.metadata_file else ""
        console.print(
            f"wrote {dst}{source}: {len(layout.wells)} wells, {len(layout)} planes, fields {layout.fields}, channels "
            f"{', '.join(layout.channel_names())}" + (f", {human_bytes(stored)} on disk" if stored else "")
            + (f", {len(layout.missing)} missing image(s) filled with zeros" if layout.missing else "")
            + (f"; valid OME-NGFF ({len(checked)} groups)" if validate else ""),
            soft_wrap=True,  # one line in logs, however long the path
        )


def _with_acquisition(config: Any, layout: Any) -> Any:
    """The plate's config with what the instrument's metadata says: channel names, pixel size, z step, plate size."""
    import dataclasses

    acq = layout.acquisition
    changes: dict[str, Any] = {"channel_names": layout.channel_names()}
    if acq is not None:
        changes.update(pixel_size=acq.pixel_size, z_spacing=acq.z_spacing, plate_shape=acq.plate_shape)
    return dataclasses.replace(config, **changes)


def _migrate(source: Any, plate: str, dst: Target, config: Any, *, overwrite: bool, validate: bool, quiet: bool) -> None:
    """Copy every plane (and label image) of a plate into a new hcsvfs plate, verifying each one read back."""
    import dataclasses

    from ..backends.zarr import ZarrStorageBackend
    from ..hcs import parse_filename

    info = source.open_plate(plate)
    first = next(iter(info.wells), None)
    channels = info.facts(first, 0).get("channels", []) if first else []
    target = ZarrStorageBackend(config=dataclasses.replace(config, channel_names=tuple(channels)))
    target.ensure_directory(dst.path)
    total = sum(len(w.files) for w in info.wells.values())
    console = Console(stderr=True)
    with Progress(*_COLUMNS, console=console, transient=True, disable=quiet) as progress:
        task = progress.add_task("", total=total)
        for well, winfo in sorted(info.wells.items()):
            progress.update(task, description=well)
            names = sorted(winfo.files)
            # Names that are not ImageXpress (another writer's own) get the synthesised name of their place.
            renamed = {n: n if parse_filename(n) else _synthesised(info, well, n) for n in names}
            planes = source.load_batch([P.join(plate, n) for n in names], materialize=True)
            out = [P.join(dst.path, renamed[n]) for n in names]
            try:
                target.save_batch(planes, out, overwrite=overwrite)
            except FileExistsError as exc:
                raise CliError(f"{exc} (on the command line: convert --overwrite)") from exc
            _verify(target, out, planes)
            for label in sorted({lab for f in range(len(winfo.fields)) for lab in info.labels(well, f)}):
                label_planes = source.load_batch([P.join(plate, n) for n in names], label=label, materialize=True)
                target.save_batch(label_planes, out, overwrite=True, label=label)
                _verify(target, out, label_planes, label=label)
            del planes
            progress.advance(task, len(names))
    checked = target.validate(dst.path) if validate else []
    if not quiet:
        console.print(
            f"migrated {plate} to {dst}: {len(info.wells)} wells, {total} planes, every one read back equal"
            + (f"; valid OME-NGFF 0.5 ({len(checked)} groups)" if validate else ""),
            soft_wrap=True,
        )


def _synthesised(info: Any, well: str, name: str) -> str:
    """The ImageXpress name of a plane another writer named its own way, from where it is: its field's position
    in the well, and its t, c and z along the field's axes."""
    from ..hcs import HCSName, image_name, parse_well

    winfo = info.wells[well]
    ref = winfo.files[name]
    position = winfo.fields.index(ref.field.rsplit("/", 1)[-1])
    at = dict(zip(info.facts(well, position)["axes"], ref.index))
    row, column = parse_well(well)
    return image_name(HCSName(row, column, position + 1, at.get("c", 0) + 1, at.get("z", 0) + 1, at.get("t", 0) + 1))


def _verify(target: Any, names: list[str], planes: list[Any], *, label: str | None = None) -> None:
    """Read the written planes back and compare them with what was read from the source."""
    options = {"label": label} if label is not None else {}
    for name, written, original in zip(names, target.load_batch(names, materialize=True, **options), planes):
        if written.shape != original.shape or written.dtype != original.dtype or not np.array_equal(written, original):
            raise CliError(f"{name}: the plane read back differs from the source ({written.dtype}{written.shape}); "
                           "nothing is wrong with the source, but do not use this copy")


def register(app: typer.Typer) -> None:
    """Add ``convert`` to the app."""
    app.command("convert")(convert)
