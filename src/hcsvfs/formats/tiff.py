"""TIFF and OME-TIFF through tifffile."""

from __future__ import annotations

import functools
import inspect
import json
import re
from typing import Any, BinaryIO, Literal

import numpy as np

from ..arrays import array_spec, is_array, to_numpy
from .base import Format

# Default OME axes by rank, the NGFF order (t, c, z, y, x) truncated from the left.
_DEFAULT_AXES = {2: "YX", 3: "ZYX", 4: "CZYX", 5: "TCZYX"}
# OME-XML pixel types: 64-bit integers and float16 have none, so those go to .tif or .npy.
_OME_DTYPES = frozenset(
    np.dtype(t)
    for t in ("bool", "int8", "int16", "int32", "uint8", "uint16", "uint32", "float32", "float64", "complex64", "complex128")
)
# OME readers squeeze singleton axes; this tag in Image/Description records the axes we wrote so load restores them.
_AXES_TAG = "hcsvfs:axes="
_AXES_RE = re.compile(re.escape(_AXES_TAG) + r"([A-Za-z]+)")


def _tiff_dtype_ok(shape: tuple[int, ...], dtype: np.dtype) -> bool:
    return dtype.kind in "buifc" and len(shape) >= 2 and all(shape)


class TiffFormat(Format):
    """Plain TIFF: shape and dtype round trip exactly (tifffile's shaped metadata).

    Options are tifffile's: ``imwrite``'s keywords on save (``compression``,
    ``resolution``, ``metadata``...), ``TiffFile.asarray``'s on load (``key``, ``series``, ``level``).
    """

    name = "tiff"
    extensions = (".tif", ".tiff")

    def options(self, kind: Literal["save", "load"]) -> frozenset[str]:
        return _tifffile_options(kind, ome=False)

    def accepts(self, obj: Any) -> bool:
        return is_array(obj) and _tiff_dtype_ok(*array_spec(obj))

    def dump(self, obj: Any, fh: BinaryIO, **options: Any) -> None:
        import tifffile

        arr = to_numpy(obj)
        # minisblack keeps (..., 3) stacks as data, not RGB pixels; BigTIFF past 4 GB.
        options.setdefault("photometric", "minisblack")
        tifffile.imwrite(fh, arr, bigtiff=arr.nbytes > 2**32 - 2**25, **options)

    def load(self, fh: BinaryIO, **options: Any) -> Any:
        import tifffile

        with tifffile.TiffFile(fh) as tif:
            if options.pop("metadata", False):
                return tiff_metadata(tif)
            try:
                return tif.asarray(**options)
            except IndexError:
                # tifffile cannot rebuild a shaped series of 5+ axes that are all 1 (a one-pixel
                # stack); the pixel and the shape it was written with are both in page 0.
                shape = _shaped_shape(tif.pages.first.description)
                if shape is None or len(tif.pages) != 1:
                    raise
                return tif.pages[0].asarray().reshape(shape)

    def sniff(self, head: bytes) -> bool:
        return head[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")


class OmeTiffFormat(TiffFormat):
    """OME-TIFF with axes (``axes="TCZYX"`` or the default for the array's rank)."""

    name = "ome-tiff"
    extensions = (".ome.tif", ".ome.tiff")

    def options(self, kind: Literal["save", "load"]) -> frozenset[str]:
        return _tifffile_options(kind, ome=True)

    def accepts(self, obj: Any) -> bool:
        if not super().accepts(obj):
            return False
        shape, dtype = array_spec(obj)
        # OME-TIFF has five axes (T, C, Z, Y, X); higher ranks go to .tif or .npy.
        return len(shape) in _DEFAULT_AXES and dtype.newbyteorder("=") in _OME_DTYPES

    def dump(self, obj: Any, fh: BinaryIO, **options: Any) -> None:
        import tifffile

        arr = to_numpy(obj)
        axes = options.pop("axes", None) or _DEFAULT_AXES.get(arr.ndim)
        if axes is None or len(axes) != arr.ndim:
            raise ValueError(f"OME-TIFF needs one axis letter per dimension; got axes={axes!r} for shape {arr.shape}")
        metadata = dict(options.pop("metadata", None) or {})
        metadata["axes"] = axes
        metadata.setdefault("Description", _AXES_TAG + axes)
        tifffile.imwrite(
            fh, arr, ome=True, metadata=metadata, photometric="minisblack", bigtiff=arr.nbytes > 2**32 - 2**25, **options
        )

    def load(self, fh: BinaryIO, **options: Any) -> Any:
        import tifffile

        with tifffile.TiffFile(fh) as tif:
            if options.pop("metadata", False):
                return tiff_metadata(tif)
            series = tif.series[0]
            data = series.asarray(**options)
            _check_ome_xml(tif.ome_metadata)
            written = _written_axes(tif.ome_metadata)
            full_axes, full_shape = _unsqueezed(tif, series)
        if written is None or not set(written) <= set(full_axes):
            return data  # a foreign OME-TIFF: tifffile's squeezed shape
        return data.reshape([full_shape[full_axes.index(a)] for a in written])

    def sniff(self, head: bytes) -> bool:
        return False  # plain TIFF's sniff reads these too


def _unsqueezed(tif: Any, series: Any) -> tuple[str, tuple[int, ...]]:
    """The first series' axes and shape with its length-1 dimensions kept.

    tifffile 2026.4 (the release for Python 3.12+) replaced ``series.get_axes(False)`` with
    ``tif.series(squeeze=False)``; Python 3.11 gets the older release, so both are asked in turn.
    """
    if hasattr(series, "get_axes"):
        return series.get_axes(False), tuple(series.get_shape(False))
    full = tif.series(squeeze=False)[0]
    return full.axes, tuple(full.shape)


@functools.cache
def _tifffile_options(kind: str, *, ome: bool) -> frozenset[str]:
    """tifffile's own keywords, less those hcsvfs sets itself (the file, its mode, OME and axes handling)."""
    import tifffile

    if kind == "load":
        # metadata=True: the file's metadata instead of its pixels (see tiff_metadata)
        return (frozenset(inspect.signature(tifffile.TiffFile.asarray).parameters) - {"self", "out"}) | {"metadata"}
    names = {n for n, p in inspect.signature(tifffile.imwrite).parameters.items() if p.kind is p.KEYWORD_ONLY}
    names -= {"mode", "append", "returnoffset", "shape", "dtype"}  # the atomic write owns the file; data gives these
    if ome:
        names = (names - {"ome", "imagej", "shaped"}) | {"axes"}
    return frozenset(names)


_PER_UM = {2: 25400.0, 3: 10000.0}  # TIFF ResolutionUnit inch, centimetre: micrometres per unit


def tiff_metadata(tif: Any) -> dict[str, Any]:
    """What a microscope wrote into a TIFF, without decoding its pixels: shape, dtype, ``pixel_size`` (y, x) in
    micrometres where the file says (MetaMorph/MetaXpress calibration, else resolution tags in inches or
    centimetres), and the MetaSeries plane info (ImageXpress writes the wavelength name there)."""
    page = tif.pages.first
    series = tif.series[0]
    meta: dict[str, Any] = {"shape": list(series.shape), "dtype": str(series.dtype), "pixel_size": None,
                            "metaseries": None}
    if tif.is_metaseries:
        info = (tif.metaseries_metadata or {}).get("PlaneInfo") or {}
        meta["metaseries"] = info
        x, y = info.get("spatial-calibration-x"), info.get("spatial-calibration-y")
        if isinstance(x, (int, float)) and isinstance(y, (int, float)) and x > 0 and y > 0:
            meta["pixel_size"] = (float(y), float(x))
            return meta
    unit = page.tags.get("ResolutionUnit")
    xres, yres = page.tags.get("XResolution"), page.tags.get("YResolution")
    if unit is not None and int(unit.value) in _PER_UM and xres is not None and yres is not None:
        (xn, xd), (yn, yd) = xres.value, yres.value
        if xn and yn:
            per_um = _PER_UM[int(unit.value)]
            meta["pixel_size"] = (per_um * yd / yn, per_um * xd / xn)
    return meta


def _written_axes(ome_xml: str | None) -> str | None:
    """The axes hcsvfs recorded on save, if this file was written by hcsvfs."""
    found = _AXES_RE.search(ome_xml or "")
    return found.group(1) if found else None


def _shaped_shape(description: str | None) -> list[int] | None:
    """The shape tifffile's shaped writer recorded in a page description (``{"shape": [...]}``)."""
    try:
        shape = json.loads(description or "")["shape"]
    except (ValueError, KeyError, TypeError):
        return None
    return shape if isinstance(shape, list) and all(isinstance(n, int) for n in shape) else None


def _check_ome_xml(ome_xml: str | None) -> None:
    """Raise ValueError if the OME-XML is missing or cut short: tifffile would silently squeeze the axes."""
    if ome_xml is None:
        # Writers put the OME-XML after the pixels, so a truncated file loses it first.
        raise ValueError("the file has no OME-XML metadata (truncated, or not an OME-TIFF: name it .tif)")
    import xml.etree.ElementTree as ET

    try:
        ET.fromstring(ome_xml)
    except ET.ParseError as exc:
        raise ValueError(f"the OME-XML metadata is damaged ({exc})") from None
