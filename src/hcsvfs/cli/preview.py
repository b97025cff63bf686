"""``hcsvfs preview``: a PNG you can look at -- plate overview, montage of a well's fields, or one image."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import typer
from rich.console import Console

from ..backends.zarr import ZarrStorageBackend
from .errors import EXIT_USAGE, CliError
from .platemap import Thumbnail, render_plate_map
from .targets import Target, cli_filemanager, parse_target

__all__ = ["register", "preview", "plate_map", "to_uint8", "montage"]

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


def _plane(view_at: Callable[[int], Any], facts: dict[str, Any], channel: int, side: int) -> np.ndarray:
    """A 2-D picture of an NGFF image: t=0, one channel, max over z, from the coarsest level at least ``side`` wide
    (it reads a fraction of the bytes of level 0)."""
    view = view_at(0)
    for level in range(facts["levels"] - 1, 0, -1):
        coarse = view_at(level)
        if min(coarse.shape[-2:]) >= side:
            view = coarse
            break
    index: list[Any] = []
    for i, name in enumerate(facts["axes"][:-2]):
        if name == "c":
            if channel >= view.shape[i]:
                raise CliError(f"channel {channel} does not exist (the image has {view.shape[i]})")
            index.append(channel)
        else:
            index.append(slice(None) if name == "z" else 0)
    data = np.asarray(view[tuple(index)])
    return data.max(axis=0) if data.ndim == 3 else data


def _labels(plate: Any, well: str, shape: tuple[int, ...]) -> np.ndarray | None:
    """Field 0's first label image of ``well`` at the level whose (y, x) is ``shape``, or None."""
    names = plate.labels(well, 0)
    if not names:
        return None
    facts = plate.facts(well, 0)
    for level in range(facts["levels"]):
        view = plate.label(well, 0, names[0], level=level)
        if tuple(view.shape[-2:]) == tuple(shape):
            data = np.asarray(view[tuple(0 for _ in view.shape[:-2])])
            return data
    return None


def _well_measure(path: str, plate: Any, channel: int) -> tuple[dict[str, float], str]:
    """Cells per well from the pipeline's well markers (``<plate>.wells/<well>.json``) where it wrote them,
    else each well's mean intensity in ``channel`` (field 0)."""
    markers = Path(path.rstrip("/") + ".wells")
    counts: dict[str, float] = {}
    if markers.is_dir():
        for name in plate.wells:
            marker = markers / f"{name}.json"
            if marker.is_file():
                rows = json.loads(marker.read_text()).get("measurements") or []
                if rows and all("cells" in r for r in rows):
                    counts[name] = float(sum(r["cells"] for r in rows))
    if counts:
        return counts, "cells per well"
    means = {name: float(_plane(_field(plate, name, 0), plate.facts(name, 0), channel, 64).mean()) for name in plate.wells}
    return means, f"mean intensity, channel {channel} (field 1)"


def _field(plate: Any, well: str, field: int) -> Callable[[int], Any]:
    """The pyramid level ``level`` of one field, as a function of the level."""
    return lambda level: plate.field(well, field, level=level)


def plate_map(zb: ZarrStorageBackend, path: str, channel: int, width: int) -> tuple[Any, str]:
    """The plate map of a plate (cells per well where the pipeline counted them, else mean intensity) beside
    thumbnails of its wells with the highest and lowest values, their segmentation outlined; and what it shows."""
    plate = zb.open_plate(path)
    if not plate.wells:
        raise CliError(f"plate {path} has no wells yet")
    values, measure = _well_measure(path, plate, channel)
    ranked = sorted(values, key=lambda w: values[w])
    # highest, lowest, the next of each, then the first wells
    chosen = list(dict.fromkeys([ranked[-1], ranked[0], *ranked[-2:-1], *ranked[1:2], *sorted(plate.wells)]))[:4]
    thumbnails = []
    for name in chosen:
        image = _plane(_field(plate, name, 0), plate.facts(name, 0), channel, 192)
        thumbnails.append(Thumbnail(f"{name}: {values[name]:.4g}", image, _labels(plate, name, image.shape)))
    sheet = render_plate_map(plate.rows, plate.columns, values, measure, thumbnails, width=width)
    return sheet, f"plate map of {measure}, {len(plate.wells)} wells"


def _ngff_tiles(t: Target, zb: Any, well: str, channel: int, width: int) -> tuple[list[Any], int, list[str], str]:
    """The fields of one well of a plate, side by side."""
    plate = zb.open_plate(t.path)
    info = plate.wells.get(well.upper())
    if info is None:
        raise CliError(f"well {well} is not in this plate (wells: {', '.join(sorted(plate.wells)[:8])}...)")
    columns = math.ceil(math.sqrt(len(info.fields)))
    tiles = [_plane(_field(plate, well, i), plate.facts(well, i), channel, width // columns) for i in range(len(info.fields))]
    return tiles, columns, [f"field {i + 1}" for i in range(len(tiles))], f"well {well}"


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
    """Write a PNG: a plate map (a per-well measure, with thumbnails), a well's fields, a folder montage, or one image."""
    fm = cli_filemanager()
    t = parse_target(target, fm)
    if output.suffix.lower() != ".png":
        raise CliError(f"--output must end in .png, got {output}", EXIT_USAGE)
    if not fm.exists(t.path, t.backend):
        raise CliError(f"{t} does not exist on the {t.backend} backend")
    sheet: Any = None
    zb = fm.get_backend(t.backend)
    if isinstance(zb, ZarrStorageBackend):
        kind = zb.node_type(t.path)
        if kind == "plate":
            if well is None:
                sheet, what = plate_map(zb, t.path, channel, size)
            else:
                tiles, columns, labels, what = _ngff_tiles(t, zb, well, channel, size)
        elif well is not None:
            raise CliError(f"--well needs a plate; {t} is not one", EXIT_USAGE)
        elif kind == "image":
            image = _plane(lambda k: zb.load(t.path, level=k), zb.describe(t.path), channel, size)
            tiles, columns, labels, what = [image], 1, [], "image"
        else:
            tiles, columns, labels, what = _file_tiles(t, fm)
    else:
        tiles, columns, labels, what = _file_tiles(t, fm)
    if sheet is None:
        sheet = montage(tiles, columns, size, labels)
    output.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(output, format="PNG")
    Console(stderr=True).print(f"wrote {output} ({sheet.width}x{sheet.height}, {what})")


def register(app: typer.Typer) -> None:
    """Add ``preview`` to the app."""
    app.command("preview")(preview)
