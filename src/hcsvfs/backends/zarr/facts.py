"""What an OME-Zarr image or plate holds, from its metadata alone (the CLI's ls, info and preview read this).

One reader for every store the backend reaches (local, S3, any fsspec URL) and
every NGFF version it reads: no pixel is decoded here.
"""

from __future__ import annotations

from typing import Any

from .catalog import array_shape
from .codecs import describe_codecs
from .image import level_paths, open_array
from .ngff import axis_names, ngff, ngff_version, own_attrs
from .store import StoreLocator, join_key

__all__ = ["compression_facts", "image_facts", "image_axes", "channel_names"]


def image_axes(meta: dict[str, Any] | None, rank: int) -> str:
    """The axis names of an image (``"tczyx"``, ``"czyx"``...), or NGFF's order for the rank without metadata."""
    return "".join(n if len(n) == 1 else "?" for n in axis_names(meta, rank))


def channel_names(meta: dict[str, Any] | None) -> list[str]:
    """The channel labels of an image's ``omero`` metadata (empty if it has none)."""
    channels = (ngff(meta).get("omero") or {}).get("channels") or []
    return [str(c.get("label", "")) for c in channels if isinstance(c, dict)]


def image_facts(locator: StoreLocator, image: str, meta: dict[str, Any] | None = None) -> dict[str, Any]:
    """Axes, shapes of every level, dtype, chunks, shards, codec, channel names and NGFF version of an image group."""
    key = locator.key(image)
    meta = meta if meta is not None else locator.read_meta(key)
    paths = level_paths(meta)
    level0 = locator.read_meta(join_key(key, paths[0]))
    shape = array_shape(level0)
    arr = open_array(locator, join_key(key, paths[0]), meta=level0)
    facts: dict[str, Any] = {
        "type": "image",
        "format": f"zarr v{(meta or {}).get('zarr_format', 3)}",
        "ngff_version": ngff_version(meta),
        "axes": image_axes(meta, len(shape)),
        "shape": list(shape),
        "dtype": str(arr.dtype),
        "levels": len(paths),
        "chunks": list(arr.chunks),
        "shards": list(arr.shards) if arr.shards else None,
        "codec": describe_codecs(arr),
    }
    names = channel_names(meta)
    if names:
        facts["channels"] = names
    labels = ngff(locator.read_meta(join_key(key, "labels"))).get("labels")
    if labels:
        facts["labels"] = [str(n) for n in labels]
    facts |= compression_facts(meta)
    return facts


def compression_facts(meta: dict[str, Any] | None) -> dict[str, Any]:
    """How ``compression="auto"`` chose the codec of an image (or of a plate's images and labels), if it did."""
    records = own_attrs(meta).get("compression")
    if not records:
        return {}
    by_kind = records if "chosen" not in records else {"": records}
    return {
        f"auto codec{f' ({kind})' if kind else ''}": (
            f"{r['chosen']} for goal {r['goal']!r} at {r['bandwidth_MBps']} MB/s on {r.get('threads', '?')} threads, "
            f"best of {len(r['trial'])} codecs tried on {r['sample_bytes'] // 1024} KiB in {r['trial_ms']} ms "
            "(hcsvfs tune PATH shows the table)"
        )
        for kind, r in by_kind.items()
    }
