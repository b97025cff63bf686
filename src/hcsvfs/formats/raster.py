"""Raster image files through Pillow: PNG, JPEG, BMP and GIF, each taking only the arrays it can hold.

PNG, BMP and GIF are lossless for what they take; JPEG is lossy by design
(pixels come back close, not equal): choose it only for pictures to look at.
"""

from __future__ import annotations

from typing import Any, BinaryIO, ClassVar

import numpy as np

from ..arrays import array_spec, is_array, to_numpy
from .base import Format

__all__ = ["PngFormat", "JpegFormat", "BmpFormat", "GifFormat"]

# (dtype, channels) -> Pillow mode; channels 0 is a 2-D (y, x) image.
_MODES = {
    ("bool", 0): "1",
    ("uint8", 0): "L",
    ("uint16", 0): "I;16",
    ("uint8", 3): "RGB",
    ("uint8", 4): "RGBA",
}


def _mode(shape: tuple[int, ...], dtype: np.dtype) -> str | None:
    """The Pillow mode of a (y, x) or (y, x, 3|4) array, or None if Pillow has none for it."""
    if len(shape) == 2:
        key = (dtype.name, 0)
    elif len(shape) == 3:
        key = (dtype.name, shape[2])
    else:
        return None
    return _MODES.get(key) if all(shape) and dtype.isnative else None


class _PillowFormat(Format):
    """A Pillow format that writes the Pillow modes in ``modes``."""

    pil_format: ClassVar[str]
    modes: ClassVar[frozenset[str]]

    def accepts(self, obj: Any) -> bool:
        return is_array(obj) and _mode(*array_spec(obj)) in self.modes

    def dump(self, obj: Any, fh: BinaryIO, **options: Any) -> None:
        from PIL import Image

        Image.fromarray(np.ascontiguousarray(to_numpy(obj))).save(fh, format=self.pil_format, **options)

    def load(self, fh: BinaryIO, **options: Any) -> Any:
        from PIL import Image

        with Image.open(fh) as opened:
            opened.load()
            # A greyscale GIF is a palette image: its palette maps back to the grey values.
            return np.asarray(opened.convert("L") if opened.mode == "P" else opened)


class PngFormat(_PillowFormat):
    name = "png"
    extensions = (".png",)
    pil_format = "PNG"
    modes = frozenset({"1", "L", "I;16", "RGB", "RGBA"})
    save_options = frozenset({"compress_level", "optimize"})

    def sniff(self, head: bytes) -> bool:
        return head.startswith(b"\x89PNG\r\n\x1a\n")


class JpegFormat(_PillowFormat):
    name = "jpeg"
    extensions = (".jpg", ".jpeg")
    pil_format = "JPEG"
    modes = frozenset({"L", "RGB"})
    save_options = frozenset({"quality", "optimize", "progressive", "subsampling"})

    def sniff(self, head: bytes) -> bool:
        return head.startswith(b"\xff\xd8\xff")


class BmpFormat(_PillowFormat):
    name = "bmp"
    extensions = (".bmp",)
    pil_format = "BMP"
    modes = frozenset({"1", "L", "RGB"})

    def sniff(self, head: bytes) -> bool:
        return head.startswith(b"BM") and len(head) >= 18 and int.from_bytes(head[14:18], "little") in (12, 40, 108, 124)


class GifFormat(_PillowFormat):
    name = "gif"
    extensions = (".gif",)
    pil_format = "GIF"
    modes = frozenset({"L"})
    save_options = frozenset({"optimize"})

    def sniff(self, head: bytes) -> bool:
        return head[:6] in (b"GIF87a", b"GIF89a")
