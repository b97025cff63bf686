"""The picture a screener looks at first: a labelled plate map of a per-well measure, beside raw thumbnails
of a few wells with their segmentation outlined. Drawn with Pillow (no plotting library needed)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..backends.zarr.catalog import well_label

__all__ = ["Thumbnail", "render_plate_map", "outline"]

# Viridis at five stops: perceptually even, readable in grey, and the colour-blind-safe default of the field.
_STOPS = np.array([[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]], dtype=np.float64)
_BACKGROUND, _EMPTY, _TEXT, _OUTLINE = (255, 255, 255), (215, 215, 215), (20, 20, 20), (255, 220, 0)


@dataclass
class Thumbnail:
    """One well's picture: a 2-D raw image and, if there is one, its label image (same shape)."""

    well: str
    image: np.ndarray
    labels: np.ndarray | None = None


def colour(fraction: float) -> tuple[int, int, int]:
    """The colour of ``fraction`` (0..1) on the map's scale."""
    x = min(max(fraction, 0.0), 1.0) * (len(_STOPS) - 1)
    i = min(int(x), len(_STOPS) - 2)
    rgb = _STOPS[i] + (x - i) * (_STOPS[i + 1] - _STOPS[i])
    return int(rgb[0]), int(rgb[1]), int(rgb[2])


def outline(labels: np.ndarray) -> np.ndarray:
    """True on the pixels of each object that touch another object or the background."""
    lab = np.asarray(labels)
    edge = np.zeros(lab.shape, bool)
    edge[:-1, :] |= lab[:-1, :] != lab[1:, :]
    edge[1:, :] |= lab[1:, :] != lab[:-1, :]
    edge[:, :-1] |= lab[:, :-1] != lab[:, 1:]
    edge[:, 1:] |= lab[:, 1:] != lab[:, :-1]
    return edge & (lab > 0)


def _stretch(img: np.ndarray) -> np.ndarray:
    """0..255 between the 1st and 99.8th percentiles (robust to a few hot pixels)."""
    a = np.asarray(img, dtype=np.float32)
    lo, hi = np.percentile(a, [1.0, 99.8]) if a.size else (0.0, 1.0)
    hi = hi if hi > lo else lo + 1.0
    return (np.clip((a - lo) / (hi - lo), 0, 1) * 255 + 0.5).astype(np.uint8)


def _thumbnail(t: Thumbnail, side: int) -> Any:
    """The centre ``side`` x ``side`` of the image at full resolution (cells stay visible), outlines in yellow;
    an image smaller than that is enlarged."""
    from PIL import Image

    image, labels = _centre(t.image, side), _centre(t.labels, side) if t.labels is not None else None
    grey = _stretch(image)
    rgb = np.stack([grey] * 3, axis=-1)
    if labels is not None and labels.shape == image.shape:
        rgb[outline(labels)] = _OUTLINE
    return Image.fromarray(rgb).resize((side, side), Image.Resampling.NEAREST)


def _centre(img: np.ndarray, side: int) -> np.ndarray:
    a = np.asarray(img)
    y0, x0 = max(0, (a.shape[0] - side) // 2), max(0, (a.shape[1] - side) // 2)
    return a[y0 : y0 + side, x0 : x0 + side]


def render_plate_map(
    rows: list[str],
    columns: list[str],
    values: dict[str, float],
    measure: str,
    thumbnails: list[Thumbnail],
    *,
    width: int = 1200,
) -> Any:
    """A PIL image: the plate map (rows A.., columns 1.., one cell per well coloured by ``values[well]``, a colour
    bar naming ``measure``) and, to its right, up to four thumbnails (the centre of each at full resolution)
    with their segmentation outlined in yellow."""
    from PIL import Image, ImageDraw

    shown = thumbnails[:4]
    margin = 28
    cell = int(min(max((width * (0.55 if shown else 0.95) - margin) / max(1, len(columns)), 12), 72))
    grid_w, grid_h = cell * len(columns), cell * len(rows)
    bar_h = 64
    map_w, map_h = margin + grid_w + 24, margin + grid_h + 14 + bar_h
    # Thumbnails as tall as the map (two rows of them), within the width left and 96..400 pixels.
    side = int(max(96, min((width - map_w - 24) // 2 - 8, (map_h - 16) // 2 - 24, 400))) if shown else 0
    height = max(map_h, 2 * (side + 24) + 8)
    sheet = Image.new("RGB", (width, height), _BACKGROUND)
    draw = ImageDraw.Draw(sheet)
    finite = [v for v in values.values() if np.isfinite(v)]
    low, high = (min(finite), max(finite)) if finite else (0.0, 1.0)
    span = high - low if high > low else 1.0
    for j, name in enumerate(columns):
        draw.text((margin + j * cell + cell // 2 - 3 * len(name), 10), name, fill=_TEXT)
    for i, row in enumerate(rows):
        y = margin + i * cell
        draw.text((10, y + cell // 2 - 6), row, fill=_TEXT)
        for j, col in enumerate(columns):
            well = well_label(f"{row}/{col}")
            box = (margin + j * cell + 1, y + 1, margin + (j + 1) * cell - 1, y + cell - 1)
            value = values.get(well)
            fill = colour((value - low) / span) if value is not None and np.isfinite(value) else _EMPTY
            draw.rectangle(box, fill=fill)
            if value is not None and cell >= 36:
                dark = sum(fill) > 360
                draw.text((box[0] + 3, box[1] + cell // 2 - 7), f"{value:.3g}", fill=_TEXT if dark else (255, 255, 255))
    bar_y = margin + grid_h + 14
    bar_w = max(grid_w, 160)
    for x in range(bar_w):
        draw.line([(margin + x, bar_y), (margin + x, bar_y + 14)], fill=colour(x / max(1, bar_w - 1)))
    draw.text((margin, bar_y + 18), f"{low:.3g}", fill=_TEXT)
    draw.text((margin + bar_w - 7 * len(f"{high:.3g}"), bar_y + 18), f"{high:.3g}", fill=_TEXT)
    draw.text((margin, bar_y + 32), measure + ("   (grey: no value)" if len(values) < len(rows) * len(columns) else ""),
              fill=_TEXT)
    if shown:
        draw.text((margin, bar_y + 46), "right: centre of field 1 at full resolution, segmentation outlined in yellow",
                  fill=_TEXT)
    for k, t in enumerate(shown):
        x = map_w + 8 + (k % 2) * (side + 12)
        y = 8 + (k // 2) * (side + 24)
        draw.text((x, y), t.well, fill=_TEXT)
        sheet.paste(_thumbnail(t, side), (x, y + 14))
    used = map_w + 8 + min(2, len(shown)) * (side + 12) if shown else map_w
    return sheet.crop((0, 0, min(width, max(used, 320)), height))  # no empty band on the right
