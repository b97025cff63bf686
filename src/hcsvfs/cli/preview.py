"""``hcsvfs preview``: a PNG you can look at -- plate overview, montage of a well's fields, or one image."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import typer
from rich.console import Console

from .errors import EXIT_USAGE, CliError
from .ngff import ome_attrs, open_group, plane, plate_layout, well_fields
from .targets import Target, cli_filemanager, parse_target

__all__ = ["register", "preview", "to_uint8", "montage"]

_IMAGE_EXTENSIONS = [".tif", ".tiff", ".npy"]


def to_uint8(img: np.ndarray, low: float = 1.0, high: float = 99.8) -> np.ndarray:
    """Contrast-stretch to 0..255 between two percentiles (robust to a few hot pixels)."""
    img = np.asarray(img, dtype=np.float32)
    lo, hi = np.percentile(img, [low, high]) if img.size else (0.0, 1.0)
    if hi <= lo:
        hi = lo + 1.0
    return (np.clip((img - lo) / (hi - lo), 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def montage(tiles: list[np.ndarray | None], columns: int, width: int, labels: list[str] | None = None) -> Any:
    """A grid PIL image ``width`` pixels wide; ``None`` tiles (empty wells) stay dark."""
    from PIL import Image, ImageDraw

    rows = max(1, math.ceil(len(tiles) / columns))
    cell = max(1, width // columns)
    sheet = Image.new("L", (cell * columns, cell * rows), 0)
    draw = ImageDraw.Draw(sheet)
    for i, tile in enumerate(tiles):
        x, y = (i % columns) * cell, (i // columns) * cell
        if tile is not None:
            sheet.paste(Image.fromarray(to_uint8(_to_2d(tile))).resize((cell, cell), Image.Resampling.BILINEAR), (x, y))
        if labels and cell >= 24:
            draw.text((x + 2, y + 1), labels[i], fill=255)
    return sheet


def _to_2d(img: Any) -> np.ndarray:
    a = np.asarray(img)
    while a.ndim > 3:  # leading t/c axes: first entry
        a = a[0]
    return a.max(axis=0) if a.ndim == 3 else a


def _ngff_tiles(t: Target, well: str | None, channel: int, width: int) -> tuple[list[Any], int, list[str], str]:
    group = open_group(t.path)
    meta = ome_attrs(group)
    if "plate" in meta and well is None:
        rows, cols, wells = plate_layout(group)
        side = width // max(1, len(cols))
        tiles: list[Any] = []
        labels: list[str] = []
        for r in range(len(rows)):
            for c in range(len(cols)):
                path = wells.get((r, c))
                first = ome_attrs(group[path])["well"]["images"][0]["path"] if path else None
                tiles.append(plane(group[path][first], channel, side) if path else None)
                labels.append(f"{rows[r]}{cols[c]}")
        return tiles, len(cols), labels, f"plate overview, {len(wells)} wells"
    if "plate" in meta:
        fields = well_fields(group, well)  # type: ignore[arg-type]
        columns = math.ceil(math.sqrt(len(fields)))
        tiles = [plane(f, channel, width // columns) for f in fields]
        return tiles, columns, [f"field {i}" for i in range(len(tiles))], f"well {well}"
    if well is not None:
        raise CliError(f"--well needs a plate; {t} is a single image", EXIT_USAGE)
    return [plane(group, channel, width)], 1, [], "image"


def _file_tiles(t: Target, fm: Any) -> tuple[list[Any], int, list[str], str]:
    if fm.is_file(t.path, t.backend):
        return [fm.load(t.path, t.backend)], 1, [], "image"
    files = fm.list_files(t.path, t.backend, extensions=_IMAGE_EXTENSIONS)
    if not files:
        raise CliError(f"no images ({', '.join(_IMAGE_EXTENSIONS)}) directly inside {t}")
    tiles = [fm.load(f, t.backend) for f in files]
    return tiles, math.ceil(math.sqrt(len(tiles))), [Path(f).stem for f in files], f"montage of {len(files)} images"


def preview(
    target: str = typer.Argument(..., help="A plate/image (.zarr), an image file, or a folder of images."),
    output: Path = typer.Option(Path("preview.png"), "--output", "-o", help="PNG file to write."),
    well: str | None = typer.Option(None, "--well", "-w", help="Montage of this well's fields (A01) instead of the plate."),
    channel: int = typer.Option(0, "--channel", "-c", min=0, help="Channel to show (OME-Zarr)."),
    size: int = typer.Option(1024, "--size", min=16, max=16384, help="Width of the PNG in pixels."),
) -> None:
    """Write a PNG: plate overview (one tile per well), a well's fields, a folder montage, or one image."""
    fm = cli_filemanager()
    t = parse_target(target, fm)
    if t.backend == "zarr":
        tiles, columns, labels, what = _ngff_tiles(t, well, channel, size)
    else:
        if not fm.exists(t.path, t.backend):
            raise CliError(f"{t} does not exist on the {t.backend} backend")
        tiles, columns, labels, what = _file_tiles(t, fm)
    sheet = montage(tiles, columns, size, labels)
    if output.suffix.lower() != ".png":
        raise CliError(f"--output must end in .png, got {output}", EXIT_USAGE)
    output.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(output, format="PNG")
    Console(stderr=True).print(f"wrote {output} ({sheet.width}x{sheet.height}, {what})")


def register(app: typer.Typer) -> None:
    """Add ``preview`` to the app."""
    app.command("preview")(preview)
