"""Cheap facts about stored objects for ``info``: read headers, never whole arrays."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..backends.zarr.codecs import describe_codecs
from ..metrics.advice import chunk_advice

__all__ = ["describe_local_file", "describe_object", "describe_zarr"]


def describe_local_file(path: Path) -> dict[str, Any]:
    """Shape, dtype, codec and chunking from a TIFF, NPY or zarr header on the local file system."""
    name = path.name.lower()
    if path.is_dir() and (path / "zarr.json").exists():
        return describe_zarr(str(path))
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


def describe_zarr(url: str) -> dict[str, Any]:
    """Type, shape, dtype, codecs, chunks/shards of a zarr array, or members and NGFF metadata of a group."""
    import zarr

    node = zarr.open(url, mode="r")
    attrs: dict[str, Any] = dict(node.attrs)
    ome: dict[str, Any] = attrs.get("ome") or {}
    out: dict[str, Any] = {"format": f"zarr v{node.metadata.zarr_format}"}
    if isinstance(node, zarr.Array):
        out |= {
            "type": "array",
            "shape": list(node.shape),
            "dtype": str(node.dtype),
            "chunks": list(node.chunks),
            "shards": list(node.shards) if node.shards else None,
            "codec": describe_codecs(node),
        }
        hint = chunk_advice(node.shape, node.chunks)
        if hint is not None:
            out["advice"] = hint.message
    else:
        out["type"] = "group"
        out["members"] = sorted(node.group_keys())[:20] + sorted(node.array_keys())[:20]
    if ome:
        out["ngff_version"] = ome.get("version")
        out["ngff"] = ", ".join(k for k in ome if k != "version")
        if "plate" in ome:
            plate = ome["plate"]
            out["plate"] = (
                f"{len(plate.get('rows', []))} rows x {len(plate.get('columns', []))} columns, "
                f"{len(plate.get('wells', []))} wells, {plate.get('field_count', '?')} fields/well"
            )
        if "multiscales" in ome:
            ms = ome["multiscales"][0]
            out["axes"] = "".join(a["name"] for a in ms.get("axes", []))
            out["levels"] = len(ms.get("datasets", []))
    return out


def describe_object(obj: Any) -> dict[str, Any]:
    """Type, shape and dtype of a loaded object (memory backend: no header to read)."""
    from ..arrays import memory_type, nbytes

    out: dict[str, Any] = {"type": type(obj).__name__}
    kind = memory_type(obj)
    if kind is not None:
        out |= {"memory_type": kind, "shape": list(obj.shape), "dtype": str(obj.dtype), "nbytes": nbytes(obj)}
    return out
