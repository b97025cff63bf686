"""Write one OME-Zarr image node: a hidden 'pending' group, its arrays, then the metadata that makes it visible."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

import numpy as np
import zarr
from zarr.storage import StorePath

from ...config import ZarrConfig
from ...errors import PathNotFoundError
from .codecs import array_layout
from .ngff import channel_window, image_attrs, ngff, omero_attrs
from .pyramid import downsample
from .store import StoreLocator, join_key

if TYPE_CHECKING:
    from zarr.core.metadata.v2 import ArrayV2MetadataDict
    from zarr.core.metadata.v3 import ArrayMetadataJSON_V3

__all__ = [
    "write_image",
    "write_levels",
    "commit_image",
    "channel_metadata",
    "level_count",
    "PENDING",
    "open_levels",
    "level_paths",
    "open_array",
]

#: Attributes of a node being written: node_kind() says "internal", so listings and loads skip it.
PENDING = {"hcsvfs": {"kind": "pending"}}


def level_count(shape: tuple[int, ...], config: ZarrConfig) -> int:
    """1 + the pyramid levels that still have at least 1 pixel on each side."""
    n = 1
    while n <= config.pyramid_levels and min(shape[-2:]) // 2**n >= 1:
        n += 1
    return n


def write_image(
    locator: StoreLocator,
    logical: str,
    data: np.ndarray,
    config: ZarrConfig,
    axes: str | None,
    *,
    labels: bool = False,
    hide: bool = True,
    name: str | None = None,
    image_label: bool = False,
    compression: dict[str, Any] | None = None,
) -> None:
    """Write a new image group at ``logical``: its level arrays with their pixels, then the metadata that shows it.

    ``image_label`` makes it an NGFF label image (``image-label`` metadata, its source two levels up);
    ``compression`` is the record of an ``auto`` codec choice, kept in the group's metadata.

    ``hide`` first marks the group 'pending' so it is invisible while written; plate
    fields skip that, as nothing lists them until their well's metadata is written.
    """
    if hide:
        # A raw metadata write (no zarr event-loop hop); the caller has already cleared the place.
        locator.write_meta(locator.key(logical), {"zarr_format": 3, "node_type": "group", "attributes": PENDING})
    node = locator.node(logical)
    levels = level_count(data.shape, config) if data.ndim >= 2 else 1
    current = data
    for level in range(levels):
        if level:
            current = downsample(current, labels=labels)
        # create_array(data=...) creates and fills in one call: one event-loop hop per level, not two.
        zarr.create_array(
            node,
            name=str(level),
            data=current,
            fill_value=0,
            dimension_names=list(axes) if axes else None,
            # Skip zarr's all-fill-value test of every chunk (a full compare per chunk, ~30 % of a plate
            # write here): image planes are never empty, and an all-zero chunk costs bytes, not correctness.
            config={"write_empty_chunks": True},
            **array_layout(config, current.shape),
        )
    commit_image(
        locator, logical, axes, levels, config, name=name, data=data, image_label=image_label, compression=compression
    )


def write_levels(arrays: list[Any], data: np.ndarray, index: tuple[int, ...] = (), *, labels: bool = False) -> None:
    """Write ``data`` at ``index`` of level 0 and its downsampled versions into the lower levels."""
    arrays[0][index if index else ...] = data
    current = data
    for level in arrays[1:]:
        current = downsample(current, labels=labels)
        level[index if index else ...] = current


def commit_image(
    locator: StoreLocator,
    logical: str,
    axes: str | None,
    levels: int,
    config: ZarrConfig,
    *,
    name: str | None = None,
    data: np.ndarray | None = None,
    image_label: bool = False,
    compression: dict[str, Any] | None = None,
) -> None:
    """Write the image group's final metadata (``name`` defaults to the last path part): the write that shows it.

    An image with a channel axis gets ``omero`` channel metadata (names, colours, contrast windows from ``data``).
    """
    attrs: dict[str, Any] = {"hcsvfs": {"kind": "image"}}
    if compression is not None:
        attrs["hcsvfs"]["compression"] = compression
    if config.ome_metadata and axes:
        spacing = {a: config.axis_scale(a) for a in axes}
        attrs["ome"] = image_attrs(axes, levels, name or logical.rsplit("/", 1)[-1], spacing)
        if image_label:
            attrs["ome"]["image-label"] = {"source": {"image": "../../"}}
        elif "c" in axes and data is not None:
            attrs["ome"]["omero"] = channel_metadata(data, axes.index("c"), config)
    locator.write_meta(locator.key(logical), {"zarr_format": 3, "node_type": "group", "attributes": attrs})


def channel_metadata(data: np.ndarray, axis: int, config: ZarrConfig, start: int = 0) -> dict[str, Any]:
    """``omero`` for the channels along ``axis`` of ``data``, which are channels ``start``, ``start + 1``, ..."""
    count = data.shape[axis]
    names = [config.channel_name(start + i) for i in range(count)]
    return omero_attrs(names, [channel_window(np.take(data, i, axis=axis)) for i in range(count)], first=start)


def open_levels(locator: StoreLocator, logical: str, mode: str = "r", meta: dict[str, Any] | None = None) -> list[Any]:
    """The level arrays of the image at ``logical`` (whose group metadata may be passed in), full resolution first."""
    key = locator.key(logical)
    meta = meta if meta is not None else locator.read_meta(key) or {}
    return [open_array(locator, join_key(key, p), mode) for p in level_paths(meta)]


def level_paths(meta: dict[str, Any] | None) -> list[str]:
    """The dataset paths of an image's pyramid, full resolution first, from its multiscales (``0``, ``s0``,
    ``scale0/image``...: never assumed); ``["0"]`` for an image without multiscales (``ome_metadata=False``)."""
    multiscales = ngff(meta).get("multiscales")
    if not multiscales:
        return ["0"]
    return [d["path"] for d in multiscales[0]["datasets"]]


def open_array(locator: StoreLocator, key: str, mode: str = "r", *, meta: dict[str, Any] | None = None) -> Any:
    """The zarr array at store ``key``, built from metadata read by the locator (one event-loop hop fewer per open).

    ``meta``: the array's metadata when the caller has just read it (one store request fewer). zarr v2 arrays
    (NGFF 0.4) open the same way, from their ``.zarray`` and ``.zattrs``.
    """
    if mode == "r":
        # Within a batch the planes of one field share its array: zarr parses the metadata and builds the
        # codec pipeline (a Rust object under zarrs) once, not once per plane.
        return locator.derived(("array", key), lambda: _open_array(locator, key, mode, meta))
    return _open_array(locator, key, mode, meta)


def _open_array(locator: StoreLocator, key: str, mode: str, meta: dict[str, Any] | None) -> Any:
    meta = meta if meta is not None else locator.read_meta(key)
    if meta is None or meta.get("node_type") != "array":
        # Also what a reader sees when a racing mover or deleter took the image a moment ago.
        raise PathNotFoundError(f"no zarr array at {key!r} (moved or deleted meanwhile?)", path=key, backend="zarr")
    # zarr's public AsyncArray takes the parsed metadata document as it is: no second read of it.
    if meta.get("zarr_format") == 2:
        document: Any = cast("ArrayV2MetadataDict", {**meta["v2"], "attributes": meta.get("attributes") or {}})
    else:
        document = cast("ArrayMetadataJSON_V3", meta)
    return zarr.Array(zarr.AsyncArray(metadata=document, store_path=StorePath(locator.store, key)))
