"""The planes of any plate's wells as named files, whoever wrote the plate.

hcsvfs's own wells carry a filename index (``attributes.hcsvfs.index``). For
the rest a well is read as it is laid out: its fields from the well metadata,
each field's pyramid and axis order from its multiscales (never assumed), and
the names either from a filename map the original system wrote on each field
array (``polystore_filename_map``, ``openhcs_filename_map``: name -> indices
along the leading axes) or synthesised in ImageXpress form
(``A01_s1_w2_z001_t001.tif``) from the axes and the shape.
"""

from __future__ import annotations

import enum
import itertools
from dataclasses import dataclass
from typing import Any, Final, Literal

from ...hcs import HCSName, image_name, parse_well
from .image import level_paths
from .ngff import axis_names, ngff
from .store import StoreLocator

__all__ = ["PlaneRef", "FILENAME_MAP_ATTRS", "well_label", "foreign_well_planes", "foreign_plane", "array_shape"]

class _Ask(enum.Enum):
    WELL = "ask the well"


#: What :func:`foreign_plane` says when only the whole well's catalog can answer.
ASK_THE_WELL: Final = _Ask.WELL

#: Attributes on a field's full-resolution array that map file names to plane indices (the original system's).
FILENAME_MAP_ATTRS = ("polystore_filename_map", "openhcs_filename_map")


@dataclass(frozen=True)
class PlaneRef:
    """Where one named plane is: a field image, its pyramid, and the plane's indices along the leading axes."""

    field: str  #: logical path of the field's image group
    index: tuple[int, ...]  #: indices along every axis before (y, x), in the array's order
    #: dataset paths of the pyramid, full resolution first; None for hcsvfs's own fields ("0", "1", ...)
    levels: tuple[str, ...] | None = None

    def level_path(self, level: int) -> str | None:
        """The dataset path of pyramid ``level``, or None if the field has no such level."""
        if self.levels is None:
            return str(level) if level >= 0 else None
        return self.levels[level] if 0 <= level < len(self.levels) else None


def well_label(path: str) -> str:
    """``A/1``, ``A/01`` -> ``A01`` (the well's name in file names)."""
    row, _, column = path.partition("/")
    return f"{row.upper()}{int(column):02d}" if column.isdigit() else f"{row}{column}"


def array_shape(meta: dict[str, Any] | None) -> tuple[int, ...]:
    """The shape of a zarr v3 or v2 array from its metadata."""
    doc = (meta or {}).get("v2") or meta or {}
    return tuple(int(n) for n in doc.get("shape", ()))


@dataclass(frozen=True)
class _Field:
    """What naming a field's planes needs from its metadata."""

    path: str
    levels: tuple[str, ...]
    axes: list[str]
    shape: tuple[int, ...]
    mapping: dict[str, Any] | None  #: the original system's filename map, where the field carries one


def _well_images(locator: StoreLocator, well: str) -> list[dict[str, Any]]:
    return locator.derived(
        ("images", well), lambda: (ngff(locator.read_meta(locator.key(well))).get("well") or {}).get("images") or []
    )


def _field(locator: StoreLocator, field: str) -> _Field | None:
    """A field's layout, read once per batch; None for a field listed but not (or no longer) there."""

    def read() -> _Field | None:
        fmeta = locator.read_meta(locator.key(field))
        levels = tuple(level_paths(fmeta))
        ameta = locator.read_meta(locator.key(f"{field}/{levels[0]}"))
        if ameta is None:
            return None
        attrs = ameta.get("attributes") or {}
        mapping = next((attrs[a] for a in FILENAME_MAP_ATTRS if isinstance(attrs.get(a), dict)), None)
        shape = array_shape(ameta)
        return _Field(field, levels, axis_names(fmeta, len(shape)), shape, mapping)

    return locator.derived(("field", field), read)


def foreign_well_planes(locator: StoreLocator, plate: str, well_path: str) -> dict[str, PlaneRef]:
    """Every plane of a well another tool wrote, by file name: from a filename map where its fields carry one,
    else synthesised from each field's axes and shape (field numbers follow the well's image list)."""
    well = f"{plate}/{well_path}"
    row, column = parse_well(well_label(well_path))
    out: dict[str, PlaneRef] = {}
    for n, image in enumerate(_well_images(locator, well)):
        f = _field(locator, f"{well}/{image['path']}")
        if f is None:
            continue  # nothing to name
        if f.mapping is not None:
            out.update({name: PlaneRef(f.path, tuple(int(i) for i in idx), f.levels) for name, idx in f.mapping.items()})
            continue
        for index, name in _synthesised(row, column, n, f.axes, f.shape):
            out[name] = PlaneRef(f.path, index, f.levels)
    return out


def foreign_plane(
    locator: StoreLocator, plate: str, well_path: str, filename: str, name: HCSName
) -> PlaneRef | Literal[_Ask.WELL] | None:
    """The plane an ImageXpress ``filename`` names in a well another tool wrote, read from that one field's
    metadata (a load by name costs what it costs in hcsvfs's own plates, not a whole well's catalog).

    None if there is no such plane; :data:`ASK_THE_WELL` where only the whole well can tell (a filename map
    on the field, or an axis that numbers extra fields).
    """
    images = _well_images(locator, f"{plate}/{well_path}")
    if not 1 <= name.field <= len(images):
        return ASK_THE_WELL  # it may be an extra field synthesised from another axis
    f = _field(locator, f"{plate}/{well_path}/{images[name.field - 1]['path']}")
    if f is None:
        return None
    if f.mapping is not None:
        return ASK_THE_WELL
    wanted = {"t": name.t - 1, "c": name.channel - 1, "z": name.z - 1}
    index = []
    for axis, size in zip(f.axes[:-2], f.shape[:-2]):
        if axis not in wanted:
            if size != 1:
                return ASK_THE_WELL
            index.append(0)
            continue
        if not 0 <= wanted[axis] < size:
            return None
        index.append(wanted.pop(axis))
    if any(wanted.values()) or image_name(name) != filename:
        return None  # an axis the field lacks asked for past 1, or not the name the listing gives
    return PlaneRef(f.path, tuple(index), f.levels)


def _synthesised(
    row: int, column: int, image: int, axes: list[str], shape: tuple[int, ...]
) -> list[tuple[tuple[int, ...], str]]:
    """(indices, ImageXpress name) of every plane of one field image.

    t, c and z give the name's _t, _w and _z; any other leading axis (a stage position, an
    acquisition) numbers extra fields after this image's, so no two planes share a name.
    """
    leading = axes[:-2]
    sizes = shape[:-2]
    others = [i for i, a in enumerate(leading) if a not in ("t", "c", "z")]
    extra = 1
    for i in others:
        extra *= sizes[i]
    out = []
    for index in itertools.product(*(range(s) for s in sizes)):
        pos = dict(zip(leading, index))
        flat = 0
        for i in others:
            flat = flat * sizes[i] + index[i]
        key = HCSName(row, column, image * extra + flat + 1, pos.get("c", 0) + 1, pos.get("z", 0) + 1, pos.get("t", 0) + 1)
        out.append((index, image_name(key)))
    return out

