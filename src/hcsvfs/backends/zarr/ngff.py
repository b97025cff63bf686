"""OME-NGFF metadata: build 0.5 image, well and plate attributes; read 0.4 and 0.5; classify nodes; validate.

Reading is wider than writing: NGFF 0.5 keeps its metadata in ``attributes.ome``
(zarr v3), 0.4 and older at the top level of the attributes (zarr v2, as the
IDR, ngio, ome-zarr-py's 0.4 writer and the original system store them).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ...errors import CorruptDataError

__all__ = [
    "NGFF_VERSION",
    "InvalidMetadataError",
    "default_axes",
    "image_attrs",
    "omero_attrs",
    "channel_window",
    "well_attrs",
    "plate_attrs",
    "node_kind",
    "ngff",
    "ngff_version",
    "validate_group",
]

NGFF_VERSION = "0.5"
_AXIS = {
    "t": {"name": "t", "type": "time", "unit": "second"},
    "c": {"name": "c", "type": "channel"},
    "z": {"name": "z", "type": "space", "unit": "micrometer"},
    "y": {"name": "y", "type": "space", "unit": "micrometer"},
    "x": {"name": "x", "type": "space", "unit": "micrometer"},
}
_DEFAULT_AXES = {2: "yx", 3: "zyx", 4: "czyx", 5: "tczyx"}


class InvalidMetadataError(CorruptDataError):
    """OME-NGFF metadata does not validate against the specification."""


def default_axes(ndim: int, axes: str | None = None) -> str | None:
    """The NGFF axis names for an ``ndim`` array (``axes`` overrides); None where NGFF cannot describe the rank."""
    if axes is None:
        return _DEFAULT_AXES.get(ndim)
    if len(axes) != ndim or set(axes) - set(_AXIS) or len(set(axes)) != ndim or not axes.endswith("yx"):
        raise ValueError(
            f"axes {axes!r} do not describe a {ndim}-D image; use {ndim} distinct letters from 'tczyx' in that "
            "order, ending in 'yx' (e.g. 'cyx')"
        )
    if "".join(a for a in "tczyx" if a in axes) != axes:
        raise ValueError(f"axes {axes!r} are out of NGFF order; NGFF wants time, then channel, then space (t, c, z, y, x)")
    return axes


def image_attrs(axes: str, levels: int, name: str, spacing: dict[str, float] | None = None) -> dict[str, Any]:
    """``attributes.ome`` of an image group with ``levels`` datasets named 0, 1, ... (each 2x smaller in y, x);
    ``spacing`` gives the physical size of one step along an axis (micrometres for z, y, x; 1 where absent)."""
    step = spacing or {}
    datasets = []
    for level in range(levels):
        scale = [step.get(a, 1.0) * (float(2**level) if a in "yx" else 1.0) for a in axes]
        datasets.append({"path": str(level), "coordinateTransformations": [{"type": "scale", "scale": scale}]})
    return {
        "version": NGFF_VERSION,
        "multiscales": [{"name": name, "axes": [dict(_AXIS[a]) for a in axes], "datasets": datasets}],
    }


#: Default channel colours (blue, green, red, magenta, cyan, yellow, then white), as viewers expect for HCS.
CHANNEL_COLOURS = ("0000FF", "00FF00", "FF0000", "FF00FF", "00FFFF", "FFFF00")


def channel_window(data: Any) -> dict[str, float]:
    """The ``omero`` window of one channel's pixels: display range from the 0.1-99.9 percentiles of a sample,
    data range from the dtype (integers) or the sample (floats)."""
    import numpy as np

    flat = np.asarray(data).reshape(-1)
    sample = flat[:: max(1, flat.size // 65536)]  # percentiles of ~65k pixels: a contrast, not a statistic
    if sample.size == 0:
        start, end = 0.0, 1.0
    else:
        start, end = (float(v) for v in np.percentile(sample, (0.1, 99.9)))
    if np.issubdtype(flat.dtype, np.integer) or flat.dtype == np.bool_:
        info = np.iinfo(np.uint8 if flat.dtype == np.bool_ else flat.dtype)
        low, high, step = float(info.min), float(info.max), 1.0
    else:
        low, high = (float(sample.min()), float(sample.max())) if sample.size else (0.0, 1.0)
        step = max(abs(start), 1.0) * 1e-6
    return {"start": start, "end": end if end > start else start + step, "min": low, "max": high}  # a flat channel too


def omero_attrs(names: list[str], windows: list[dict[str, float]], *, first: int = 0) -> dict[str, Any]:
    """The ``omero`` block of an image: one entry per channel with its name, colour and contrast window
    (``first``: the index of the first of these channels in the image, for its colour)."""
    channels = [
        {
            "label": name,
            "color": CHANNEL_COLOURS[first + i] if first + i < len(CHANNEL_COLOURS) else "FFFFFF",
            "window": window,
            "active": True,
            "coefficient": 1.0,
            "family": "linear",
            "inverted": False,
        }
        for i, (name, window) in enumerate(zip(names, windows))
    ]
    return {"channels": channels, "rdefs": {"defaultT": 0, "defaultZ": 0, "model": "color"}}


def well_attrs(fields: Iterable[str]) -> dict[str, Any]:
    """``attributes.ome`` of a well group listing its field images."""
    return {"version": NGFF_VERSION, "well": {"images": [{"path": f, "acquisition": 0} for f in fields]}}


def plate_attrs(
    name: str, rows: list[str], columns: list[str], wells: Iterable[tuple[int, int]], field_count: int
) -> dict[str, Any]:
    """``attributes.ome`` of a plate: ``wells`` are 0-based (row, column) indices into ``rows``/``columns``."""
    return {
        "version": NGFF_VERSION,
        "plate": {
            "name": name,
            "rows": [{"name": r} for r in rows],
            "columns": [{"name": c} for c in columns],
            "wells": [
                {"path": f"{rows[r]}/{columns[c]}", "rowIndex": r, "columnIndex": c} for r, c in sorted(wells)
            ],
            "field_count": max(field_count, 1),
            "acquisitions": [{"id": 0, "name": "hcsvfs"}],
        },
    }


def ngff(meta: dict[str, Any] | None) -> dict[str, Any]:
    """The OME-NGFF metadata of a node: ``attributes.ome`` (0.5), else the attributes themselves (0.4 and older)."""
    attrs = (meta or {}).get("attributes") or {}
    ome = attrs.get("ome")
    return ome if isinstance(ome, dict) else attrs


def own_attrs(meta: dict[str, Any] | None) -> dict[str, Any]:
    """hcsvfs's own attributes of a node (``attributes.hcsvfs``: kind, filename index, codec choices...)."""
    own = ((meta or {}).get("attributes") or {}).get("hcsvfs")
    return own if isinstance(own, dict) else {}


def axis_names(meta: dict[str, Any] | None, rank: int) -> list[str]:
    """The axis names of an image's arrays from its multiscales (NGFF 0.4+ dicts, 0.3 strings), or NGFF's
    order (``t, c, z, y, x``) for the rank where the metadata has none or a different count."""
    multiscales = ngff(meta).get("multiscales") or [{}]
    names = [a["name"] if isinstance(a, dict) else str(a) for a in multiscales[0].get("axes", [])]
    return names if len(names) == rank else list("tczyx"[-rank:])


def ngff_version(meta: dict[str, Any] | None) -> str | None:
    """The NGFF version a node declares (0.5: ``ome.version``; 0.4: the ``version`` of its multiscales, plate or well)."""
    ome = ngff(meta)
    if "version" in ome:
        return str(ome["version"])
    for key in ("multiscales", "plate", "well"):
        part = ome.get(key)
        part = part[0] if isinstance(part, list) and part else part
        if isinstance(part, dict) and "version" in part:
            return str(part["version"])
    return None


def node_kind(meta: dict[str, Any] | None) -> str | None:
    """What a node's metadata means to the VFS: image, array, plate, internal, dir; None for no node."""
    if meta is None:
        return None
    if meta.get("node_type") == "array":
        return "array"
    own = own_attrs(meta).get("kind")
    if own in ("internal", "pending"):
        return "internal"
    ome = ngff(meta)
    if "plate" in ome or own == "plate":
        return "plate"
    if "well" in ome:
        return "internal"
    if "multiscales" in ome or own == "image":
        return "image"
    return "dir"


def validate_group(group: Any, where: str) -> list[str]:
    """Validate an NGFF 0.4 or 0.5 image or plate (every well and field of it) with ome-zarr-models' models of
    that version; return what was checked."""
    import warnings

    from pydantic import ValidationError

    version = "0.5" if "ome" in dict(group.attrs) else "0.4"
    if version == "0.5":
        from ome_zarr_models.v05 import HCS, Image, Well
    else:
        from ome_zarr_models.v04 import HCS, Image, Well  # type: ignore[assignment]
    with warnings.catch_warnings():
        # ome-zarr-models warns that 0.5 plates carry no plate.version: in 0.5 the version lives in attributes.ome.
        warnings.filterwarnings("ignore", message=".*'version' field not specified.*")
        return _validate(group, where, version, (HCS, Image, Well), ValidationError)


def _validate(group: Any, where: str, version: str, models: tuple[Any, Any, Any], ValidationError: Any) -> list[str]:
    HCS, Image, Well = models
    checked: list[str] = []

    def ome(g: Any) -> dict[str, Any]:
        attrs = dict(g.attrs)
        return attrs.get("ome") or attrs

    try:
        meta = ome(group)
        if "plate" in meta:
            HCS.from_zarr(group)
            checked.append(where)
            for well in meta["plate"]["wells"]:
                wg = group[well["path"]]
                Well.from_zarr(wg)
                checked.append(f"{where}/{well['path']}")
                for image in ome(wg)["well"]["images"]:
                    Image.from_zarr(wg[image["path"]])
                    checked.append(f"{where}/{well['path']}/{image['path']}")
        elif "multiscales" in meta:
            Image.from_zarr(group)
            checked.append(where)
        else:
            raise InvalidMetadataError(
                f"{where!r} has no OME-NGFF image or plate metadata (multiscales or plate, in attributes.ome for 0.5)",
                path=where,
                backend="zarr",
            )
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = "/".join(map(str, first.get("loc", ()))) or "metadata"
        raise InvalidMetadataError(
            f"{where!r} is not valid OME-NGFF {version} after {len(checked)} valid group(s): {loc}: {first['msg']}",
            path=where,
            backend="zarr",
        ) from exc
    except (KeyError, ValueError, TypeError) as exc:
        if isinstance(exc, InvalidMetadataError):
            raise
        raise InvalidMetadataError(
            f"{where!r} is not valid OME-NGFF {version} after {len(checked)} valid group(s): {type(exc).__name__}: {exc}",
            path=where,
            backend="zarr",
        ) from exc
    return checked
