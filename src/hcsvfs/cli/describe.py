"""Cheap facts about stored objects for ``info``: read headers, never whole arrays."""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["describe_local_file", "describe_object"]


def describe_local_file(path: Path) -> dict[str, Any]:
    """Shape, dtype, codec and chunking from a TIFF, NPY or zarr header on the local file system."""
    name = path.name.lower()
    if name.endswith((".tif", ".tiff")):
        import tifffile

        with tifffile.TiffFile(path) as tif:
            series = tif.series[0]
            page = tif.pages.first
            out: dict[str, Any] = {
                "format": "OME-TIFF" if tif.is_ome else "TIFF",
                "shape": list(series.shape),
                "dtype": str(series.dtype),
                "axes": series.axes,
                "codec": tifffile.COMPRESSION(page.compression).name.lower(),
            }
            if page.is_tiled:
                out["chunks"] = [page.tilelength, page.tilewidth]
            return out
    if name.endswith(".npy"):
        import numpy as np

        arr = np.load(path, mmap_mode="r", allow_pickle=False)
        return {"format": "NPY", "shape": list(arr.shape), "dtype": str(arr.dtype), "codec": "none"}
    return {}


def describe_object(obj: Any) -> dict[str, Any]:
    """Type, shape and dtype of a loaded object (memory backend: no header to read)."""
    from ..arrays import memory_type, nbytes

    out: dict[str, Any] = {"type": type(obj).__name__}
    kind = memory_type(obj)
    if kind is not None:
        out |= {"memory_type": kind, "shape": list(obj.shape), "dtype": str(obj.dtype), "nbytes": nbytes(obj)}
    return out
