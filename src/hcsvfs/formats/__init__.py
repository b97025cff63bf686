"""Serializers chosen by extension, then by type; add your own with ``formats.register``.

Example, a Netpbm format in a few lines (PNG, JPEG, BMP, GIF, NPZ are built in)::

    from hcsvfs.formats import Format, formats

    class PngFormat(Format):
        name, extensions = "png", (".png",)
        def accepts(self, obj): return getattr(obj, "ndim", 0) in (2, 3)
        def dump(self, obj, fh, **kw): PIL.Image.fromarray(obj).save(fh, format="PPM")
        def load(self, fh, **kw): return numpy.asarray(PIL.Image.open(fh))

    formats.register(NetpbmFormat())
"""

from __future__ import annotations

from .base import Format, FormatRegistry
from .npy import NpyFormat
from .npz import NpzFormat
from .pickle_fmt import PickleFormat
from .raster import BmpFormat, GifFormat, JpegFormat, PngFormat
from .text import BytesFormat, CsvFormat, JsonFormat, TextFormat
from .tiff import OmeTiffFormat, TiffFormat
from .torch_pt import TorchFormat

__all__ = ["Format", "FormatRegistry", "formats", "default_formats"]


def default_formats() -> FormatRegistry:
    """A fresh registry with the built-in formats, in order of preference by type."""
    reg = FormatRegistry()
    # Order matters for type-based choice and sniffing: specific magic first, catch-alls last.
    for fmt in (
        TorchFormat(),  # tensors keep their type rather than becoming .npy
        NpyFormat(),
        TiffFormat(),
        OmeTiffFormat(),
        PngFormat(),  # image files by extension (by type arrays go to .npy first)
        JpegFormat(),
        BmpFormat(),
        GifFormat(),
        TextFormat(),  # str before JSON: a plain string is text, not a JSON literal
        JsonFormat(),  # dicts and lists of rows before CSV
        CsvFormat(),
        NpzFormat(),  # by type: dicts of arrays that are not table columns
        BytesFormat(),
        PickleFormat(),  # takes anything, so only ever the last resort (and only when opted in)
    ):
        reg.register(fmt)
    return reg


#: The process-wide registry used by backends unless they are given another.
formats = default_formats()
