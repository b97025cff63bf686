"""Reading any OME-Zarr image or plate for display (ls, info, preview), never the whole plate at once.

Works on NGFF stores written by other tools and picks pyramid levels, which the
zarr backend's read API (level 0 of hcsvfs plates) does not; validation is the
backend's ``validate``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .errors import CliError

__all__ = ["open_group", "ome_attrs", "plane", "plate_layout", "well_fields", "image_summary"]


def open_group(url: str) -> Any:
    """The zarr group at ``url`` (read-only); CliError if it is missing or not a group."""
    import zarr

    try:
        node = zarr.open(url, mode="r")
    except FileNotFoundError:
        raise CliError(f"no zarr store at {url}") from None
    if not isinstance(node, zarr.Group):
        raise CliError(f"{url} is a bare zarr array, not an OME-Zarr image or plate group")
    return node


def ome_attrs(group: Any) -> dict[str, Any]:
    """NGFF metadata of a group: ``attributes.ome`` (0.5) or the top-level attributes (0.4)."""
    attrs = dict(group.attrs)
    return attrs.get("ome", attrs)


def plane(image_group: Any, channel: int = 0, min_side: int = 0) -> np.ndarray:
    """A 2-D view of an NGFF image: t=0, one channel, max over z, from the coarsest level at least ``min_side`` wide."""
    ms = ome_attrs(image_group)["multiscales"][0]
    levels = [image_group[d["path"]] for d in ms["datasets"]]
    # Coarsest level that still fills the tile: reads a fraction of the bytes of level 0.
    arr = next((a for a in reversed(levels) if min(a.shape[-2:]) >= min_side), levels[0])
    axes = [a["name"] if isinstance(a, dict) else a for a in ms.get("axes", [])] or list("tczyx"[-arr.ndim :])
    index: list[Any] = []
    for name in axes[:-2]:
        if name == "c":
            if channel >= arr.shape[len(index)]:
                raise CliError(f"channel {channel} does not exist (the image has {arr.shape[len(index)]})")
            index.append(channel)
        elif name == "z":
            index.append(slice(None))
        else:
            index.append(0)
    data = np.asarray(arr[tuple(index)])
    return data.max(axis=0) if data.ndim == 3 else data


def plate_layout(plate_group: Any) -> tuple[list[str], list[str], dict[tuple[int, int], str]]:
    """Row names, column names and ``{(row, col): well path}`` from the plate metadata."""
    plate = ome_attrs(plate_group)["plate"]
    rows = [r["name"] for r in plate["rows"]]
    cols = [c["name"] for c in plate["columns"]]
    return rows, cols, {(w["rowIndex"], w["columnIndex"]): w["path"] for w in plate["wells"]}


def well_fields(plate_group: Any, well: str) -> list[Any]:
    """The field image groups of ``well`` (``A01``, ``A1`` or ``A/1``); CliError if the plate lacks it."""
    _, _, wells = plate_layout(plate_group)
    wanted = well.replace("/", "").upper()
    for path in wells.values():
        r, c = path.split("/")
        if f"{r}{c}".upper() == wanted or f"{r}{int(c):02d}".upper() == wanted if c.isdigit() else False:
            wg = plate_group[path]
            return [wg[i["path"]] for i in ome_attrs(wg)["well"]["images"]]
    raise CliError(f"well {well} is not in this plate (wells: {', '.join(sorted(wells.values())[:8])}...)")


def image_summary(image_group: Any) -> str:
    """``1x2x3x64x64 uint16 tczyx, 5 levels`` for an NGFF image group."""
    ms = ome_attrs(image_group)["multiscales"][0]
    arr = image_group[ms["datasets"][0]["path"]]
    axes = "".join(a["name"] if isinstance(a, dict) else a for a in ms.get("axes", []))
    return f"{'x'.join(map(str, arr.shape))} {arr.dtype} {axes}, {len(ms['datasets'])} level(s)"
