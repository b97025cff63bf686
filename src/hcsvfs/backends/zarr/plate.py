"""The HCS plate layout: ``plate.zarr/<row>/<col>/<field>/0`` with axes t,c,z,y,x, and a filename index per well.

A plane saved as ``plate.zarr/A01_s2_w3_z004_t001.tif`` lands at t=0, c=2,
z=3 of field 1 of well A/1; the well's ``attributes.hcsvfs.index`` maps the
name back. Order of writes: pixels, field metadata, well metadata and index,
plate metadata; a reader never sees a name or a well whose data is incomplete.

Writers of one well take turns under the well's lock, and the plate metadata
(every well's entry) is merged under the plate's lock; the locks reach as far
as the store does (threads, processes, machines on S3: see ``store.lock``).
"""

from __future__ import annotations

import contextlib
from collections import defaultdict
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ... import paths as P
from ...config import ZarrConfig
from ...errors import InvalidPathError, PathExistsError, ReadOnlyError, StorageError
from ...hcs import HCSName, parse_filename, row_index, row_name
from .autocodec import CodecChooser
from .catalog import ASK_THE_WELL, PlaneRef, foreign_plane, foreign_well_planes, well_label
from .facts import image_facts
from .image import level_paths, open_array, open_levels, write_image, write_levels
from .ngff import NGFF_VERSION, channel_window, ngff, node_kind, omero_attrs, own_attrs, plate_attrs, well_attrs
from .store import StoreLocator, join_key
from .view import ZarrArrayView

__all__ = ["PlaneMismatchError", "PlaneTarget", "PlateLayout", "PlateInfo", "WellInfo", "PLATE_FOLDER"]

#: A folder with this name (any case) holds a plate: names inside it must parse.
PLATE_FOLDER = "plate.zarr"
_FIELD_AXES = "tczyx"
_INTERNAL = {"hcsvfs": {"kind": "internal"}}


class PlaneMismatchError(StorageError, ValueError):
    """A plane does not fit the field it belongs to (shape, dtype or rank); nothing was written."""


@dataclass(frozen=True)
class PlaneTarget:
    """Where one HCS-named plane goes inside a plate."""

    plate: str
    filename: str
    name: HCSName
    #: The NGFF label image this plane belongs to (``labels/<label>`` of its field), None for the field's image.
    label: str | None = None
    #: A stand-in (zeros) for an image the microscope did not deliver; the well's metadata lists its name.
    filled: bool = False

    @property
    def row(self) -> str:
        return row_name(self.name.row)

    @property
    def column(self) -> str:
        return str(self.name.column + 1)

    @property
    def well(self) -> str:
        return f"{self.plate}/{self.row}/{self.column}"

    @property
    def field_path(self) -> str:
        return str(self.name.field - 1)

    @property
    def image(self) -> str:
        """The field's image group (where its raw planes are)."""
        return f"{self.well}/{self.field_path}"

    @property
    def field(self) -> str:
        """The image group the plane is written to: the field's image, or its label image."""
        return self.image if self.label is None else label_path(self.image, self.label)

    @property
    def index(self) -> tuple[int, int, int]:
        """(t, c, z), 0-based."""
        return self.name.t - 1, self.name.channel - 1, self.name.z - 1


@dataclass
class WellInfo:
    """One well of an opened plate."""

    row: str
    column: str
    fields: list[str]
    files: dict[str, PlaneRef] = field(default_factory=dict)  #: file name -> where the plane is
    #: Names whose planes are zeros standing in for images the microscope did not deliver (``missing="fill"``).
    missing: list[str] = field(default_factory=list)


@dataclass
class PlateInfo:
    """A plate's layout, read from its metadata; :meth:`field` opens one field lazily."""

    path: str
    rows: list[str]
    columns: list[str]
    wells: dict[str, WellInfo]
    field_count: int
    _layout: PlateLayout

    def labels(self, well: str, field: int | str = 0) -> list[str]:
        """The names of the NGFF label images over a field (its ``labels`` group), in their order."""
        image = self._image(well, field)
        loc = self._layout.locator
        return [str(n) for n in ngff(loc.read_meta(loc.key(f"{image}/labels"))).get("labels") or []]

    def label(self, well: str, field: int | str = 0, name: str = "", *, level: int = 0) -> ZarrArrayView:
        """The lazy array of label image ``name`` over a field (the first one if no name is given)."""
        names = self.labels(well, field)
        if not names or (name and name not in names):
            raise InvalidPathError(
                f"field {field} of well {well} in plate {self.path!r} has no label image {name or ''!r}; it has: "
                f"{', '.join(names) or 'none'}",
                path=self.path,
                backend="zarr",
            )
        return self._view(label_path(self._image(well, field), name or names[0]), level)

    def facts(self, well: str, field: int | str = 0) -> dict[str, Any]:
        """Axes, level shapes, dtype, chunks, codec, channel and label names of one field (metadata only)."""
        return image_facts(self._layout.locator, self._image(well, field))

    def stored_bytes(self, well: str | None = None, field: int | str | None = None) -> int:
        """Bytes the store holds for the plate, one well, or one field of it (compressed)."""
        loc = self._layout.locator
        if well is None:
            return loc.size(loc.key(self.path))
        if field is None:
            info = self.wells[well.upper()]
            return loc.size(loc.key(f"{self.path}/{info.row}/{info.column}"))
        return loc.size(loc.key(self._image(well, field)))

    def field(self, well: str, field: int | str = 0, *, level: int = 0) -> ZarrArrayView:
        """The lazy array of image ``field`` of ``well`` (``A01``): (t, c, z, y, x) in hcsvfs's plates, the axes
        its multiscales declare in others; ``field`` is a 0-based position in the well's image list or its path."""
        return self._view(self._image(well, field), level)

    def _image(self, well: str, field: int | str) -> str:
        """The logical path of image ``field`` of ``well`` (a 0-based position in its image list, or a path)."""
        info = self.wells.get(well.upper())
        path = info.fields[field] if info is not None and isinstance(field, int) and 0 <= field < len(info.fields) else str(field)
        if info is None or path not in info.fields:
            raise InvalidPathError(
                f"plate {self.path!r} has no field {field} in well {well!r}; wells: {', '.join(sorted(self.wells)) or 'none'}",
                path=self.path,
                backend="zarr",
            )
        return f"{self.path}/{info.row}/{info.column}/{path}"

    def _view(self, image: str, level: int) -> ZarrArrayView:
        loc = self._layout.locator
        levels = level_paths(loc.read_meta(loc.key(image)))
        if not 0 <= level < len(levels):
            raise InvalidPathError(f"{image!r} has pyramid levels 0..{len(levels) - 1}, not {level}", path=image)
        return ZarrArrayView(open_array(loc, loc.key(f"{image}/{levels[level]}")), image)


class PlateLayout:
    """Reads and writes planes of plates in one store."""

    def __init__(self, locator: StoreLocator, config: ZarrConfig, codecs: CodecChooser) -> None:
        self.locator = locator
        self.config = config
        self.codecs = codecs  #: the backend's, so plates and plain images share its measured bandwidth

    # ------------------------------------------------------------------ routing
    def target(self, logical: str, parent_meta: dict[str, Any] | None, *, label: str | None = None) -> PlaneTarget | None:
        """The plate target of ``logical`` (in the label image ``label`` of its field, if given), None for a plain
        image; InvalidPathError for a bad name inside a plate."""
        parent, filename = P.parent(logical), P.basename(logical)
        is_plate = node_kind(parent_meta) == "plate"
        if is_plate and not is_own(parent_meta):
            raise ReadOnlyError(
                f"cannot write {logical!r}: plate {parent!r} was written by another tool, and hcsvfs reads such "
                "plates but does not write into them (its layout is not hcsvfs's). Convert it first: "
                f"hcsvfs convert {parent} NEW.zarr",
                path=logical,
                backend="zarr",
            )
        parser = self._parser(parent_meta)
        parsed = parse_filename(filename, parser)
        if parsed is not None and (is_plate or parent.lower().endswith(".zarr")):
            return PlaneTarget(parent, filename, parsed, label)
        if parsed is None and (is_plate or P.basename(parent).lower() == PLATE_FOLDER):
            raise InvalidPathError(
                f"{filename!r} is not an HCS image name ({parser} parser), so it cannot go into plate {parent!r}. "
                "Name planes like 'A01_s1_w2_z003_t001.tif' (ASCII; z and t optional), or save other files outside the plate",
                path=logical,
                backend="zarr",
            )
        return None

    def _parser(self, plate_meta: dict[str, Any] | None) -> str:
        return own_attrs(plate_meta).get("parser", self.config.filename_parser)

    # ------------------------------------------------------------------ reading
    def _well_meta(self, well: str, *, v2: bool = False) -> dict[str, Any]:
        """A well's metadata; zarr v2 is probed only for other tools' plates (hcsvfs's are v3)."""
        return self.locator.read_meta(self.locator.key(well), v2=v2) or {}

    def lookup(self, plate: str, filename: str, plate_meta: dict[str, Any] | None) -> PlaneRef | None:
        """Where the plane named ``filename`` is in the plate, or None."""
        if is_own(plate_meta):
            parsed = parse_filename(filename, self._parser(plate_meta))
            if parsed is None:
                return None
            t = PlaneTarget(plate, filename, parsed)
            entry = _index(self._well_meta(t.well)).get(filename)
            return None if entry is None else PlaneRef(f"{t.well}/{entry[0]}", tuple(entry[1:]))
        parsed = parse_filename(filename)  # foreign names are ImageXpress (synthesised) or whatever a map says
        wells = _plate_wells(plate_meta)
        if parsed is not None:
            # {label: path}, once per batch: a 384-well plate is not scanned for every plane
            by_label = self.locator.derived(("wells", plate), lambda: {well_label(w): w for w in wells})
            path = by_label.get(parsed.well)
            if path is not None:
                found = foreign_plane(self.locator, plate, path, filename, parsed)
                if found is not ASK_THE_WELL:
                    return found
                wells = [path]
        for w in wells:
            found = self.well_planes(plate, w, plate_meta).get(filename)
            if found is not None:
                return found
        return None

    def well_planes(self, plate: str, well_path: str, plate_meta: dict[str, Any] | None) -> dict[str, PlaneRef]:
        """Every named plane of one well (``A/1``): its index in hcsvfs's plates, read or synthesised in others."""
        if not is_own(plate_meta):
            return foreign_well_planes(self.locator, plate, well_path)
        well = f"{plate}/{well_path}"
        return {name: PlaneRef(f"{well}/{e[0]}", tuple(e[1:])) for name, e in _index(self._well_meta(well)).items()}

    def names(self, plate: str, plate_meta: dict[str, Any] | None) -> list[str]:
        """Every plane name of the plate, sorted."""
        out: list[str] = []
        for well in _plate_wells(plate_meta):
            out.extend(self.well_planes(plate, well, plate_meta))
        return P.natural_sorted(out)

    def info(self, plate: str, plate_meta: dict[str, Any]) -> PlateInfo:
        meta = ngff(plate_meta).get("plate") or {}
        wells: dict[str, WellInfo] = {}
        for path in _plate_wells(plate_meta):
            r, c = path.split("/")
            wmeta = self._well_meta(f"{plate}/{path}", v2=not is_own(plate_meta))
            images = (ngff(wmeta).get("well") or {}).get("images", [])
            wells[well_label(path)] = WellInfo(
                r, c, [i["path"] for i in images], self.well_planes(plate, path, plate_meta),
                list(own_attrs(wmeta).get("missing") or []),
            )
        # field_count is optional in NGFF: the most fields any well lists, where the plate does not say.
        count = int(meta.get("field_count") or max((len(w.fields) for w in wells.values()), default=0))
        rows = [r["name"] for r in meta.get("rows", [])]
        return PlateInfo(plate, rows, [c["name"] for c in meta.get("columns", [])], wells, count, self)

    # ------------------------------------------------------------------ writing
    def check(self, items: Sequence[tuple[PlaneTarget, np.ndarray]], overwrite: bool) -> None:
        """Refuse, before anything is written, planes that exist (without overwrite) or do not fit their field."""
        for planes in _by_well(items).values():
            self._check_well(planes, overwrite)

    def _check_well(self, planes: Planes, overwrite: bool) -> None:
        """Check one well's planes against what is committed now (again under the well's lock, see :meth:`save`)."""
        label = planes[0][0].label
        wmeta = self._well_meta(planes[0][0].well)
        index = _index(wmeta) if label is None else _label_index(wmeta, label)
        if not overwrite:
            for t, _ in planes:
                if t.filename in index:
                    where = P.join(t.plate, t.filename)
                    raise PathExistsError(
                        f"{where!r} already exists on the zarr backend; pass overwrite=True to replace it",
                        path=where,
                        backend="zarr",
                    )
        for field_path, field_planes in _by_field(planes).items():
            first = field_planes[0][1]
            existing = self._committed_level0(field_path)
            shape, dtype = (tuple(existing["shape"][-2:]), existing["data_type"]) if existing else (first.shape, str(first.dtype))
            if label is not None and existing is None:
                shape = self._label_shape(field_planes[0][0], first)
            for t, data in field_planes:
                where = P.join(t.plate, t.filename)
                if data.ndim != 2:
                    raise PlaneMismatchError(
                        f"{where!r}: a plate plane must be 2-D (y, x), got shape {data.shape}; save each z, channel "
                        "and time point under its own name (_z, _w, _t)",
                        path=where,
                        backend="zarr",
                    )
                if tuple(data.shape) != tuple(shape) or str(data.dtype) != dtype:
                    raise PlaneMismatchError(
                        f"{where!r}: plane {data.shape} {data.dtype} does not match field {field_path!r} "
                        f"({tuple(shape)} {dtype}); every plane of a field needs the same shape and dtype",
                        path=where,
                        backend="zarr",
                    )

    def _committed_level0(self, image: str) -> dict[str, Any] | None:
        """The full-resolution array metadata of a committed image group (only a committed one constrains planes;
        an uncommitted one is rewritten, see _write_field)."""
        key = self.locator.key(image)
        if node_kind(self.locator.read_meta(key, v2=False)) != "image":
            return None
        return self.locator.read_meta(f"{key}/0", v2=False)

    def _label_shape(self, t: PlaneTarget, plane: np.ndarray) -> tuple[int, ...]:
        """A new label image takes its field's (y, x); labels are integers, over an image that exists."""
        where = P.join(t.plate, t.filename)
        if plane.dtype.kind not in "biu":
            raise PlaneMismatchError(
                f"{where!r}: label {t.label!r} planes must be integers (one id per object), got {plane.dtype}",
                path=where,
                backend="zarr",
            )
        image = self._committed_level0(t.image)
        if image is None:
            raise PlaneMismatchError(
                f"{where!r}: label {t.label!r} goes over field {t.image!r}, which has no image yet; save the image's "
                "planes first",
                path=where,
                backend="zarr",
            )
        return tuple(image["shape"][-2:])

    def save(self, items: Sequence[tuple[PlaneTarget, np.ndarray]], *, overwrite: bool, labels: bool = False) -> None:
        """Write checked planes well by well, each well under its lock: its fields in a thread pool, then its commit.

        The lock makes every writer of a well, in this process or another, wait for the
        one before it, which has either committed or left debris that the next one
        clears. Wells are locked in sorted order, so writers never deadlock; the checks
        run again under each lock, so a racing writer is seen (with an error) rather
        than overwritten.
        """
        wells = _by_well(items)
        for plate in sorted({t.plate for t, _ in items}):
            self._make_plate(plate)
        configs = self._codecs(items, labels)
        held: dict[str, tuple[contextlib.AbstractContextManager[Any], Any]] = {}
        fields_left: dict[str, int] = {}
        done: dict[str, list[PlaneTarget]] = defaultdict(list)

        def start(planes: Planes) -> list[Planes]:
            """Lock the well, check it again, and return its fields to write."""
            well = planes[0][0].well
            lock = self._well_lock(planes[0][0])
            held[well] = (lock, lock.__enter__())
            self._check_well(planes, overwrite)  # what another writer committed while we waited
            fields = list(_by_field(planes).values())
            fields_left[well] = len(fields)
            return fields

        def finish(planes: Planes) -> None:
            well = planes[0][0].well
            done[well].extend(t for t, _ in planes)
            fields_left[well] -= 1
            if fields_left[well] == 0:
                lock, verify = held.pop(well)
                try:
                    verify()  # a broken lease: another writer may have taken the well meanwhile
                    self._commit_well(done.pop(well))
                finally:
                    lock.__exit__(None, None, None)

        try:
            self._write_wells(list(wells.values()), start, finish, labels, configs)
        finally:
            for lock, _ in held.values():
                lock.__exit__(None, None, None)

    def _codecs(self, items: Sequence[tuple[PlaneTarget, np.ndarray]], labels: bool) -> dict[tuple[str, bool], ZarrConfig]:
        """The config each (plate, is-label) of ``items`` writes new fields with: ``auto`` resolved once per plate.

        The first writer of a plate runs the trial on planes of its first batch (one per channel, up to
        four) and records the choice in the plate's metadata under the plate's lock; every later writer,
        in this process or another, reads it from there, so all the plate's fields share one codec.
        """
        if not self.codecs.active:
            return {}
        groups: dict[tuple[str, bool], list[tuple[PlaneTarget, np.ndarray]]] = defaultdict(list)
        for t, data in items:
            groups[(t.plate, labels or t.label is not None)].append((t, data))
        return {key: self._plate_codec(key[0], key[1], group) for key, group in groups.items()}

    def _plate_codec(self, plate: str, is_label: bool, items: list[tuple[PlaneTarget, np.ndarray]]) -> ZarrConfig:
        kind = "labels" if is_label else "image"
        key = self.locator.key(plate)
        record = _compression_records(self.locator.read_meta(key)).get(kind)
        if record is None:
            with self._plate_lock(plate) as verify:
                meta = self.locator.read_meta(key) or {}
                records = _compression_records(meta)
                record = records.get(kind)
                if record is None:  # not decided by another writer while we waited
                    by_channel: dict[int, np.ndarray] = {}
                    for t, data in items:
                        by_channel.setdefault(t.index[1], data)
                    record = self.codecs.decide(np.stack(list(by_channel.values())[:4]))
                    verify()
                    attrs = meta.get("attributes") or {}
                    own = {**(attrs.get("hcsvfs") or {}), "compression": {**records, kind: record}}
                    self.locator.write_meta(key, {**meta, "attributes": {**attrs, "hcsvfs": own}})
        return self.codecs.resolve(record)

    def _write_wells(
        self,
        wells: list[Planes],
        start: Callable[[Planes], list[Planes]],
        finish: Callable[[Planes], None],
        labels: bool,
        configs: dict[tuple[str, bool], ZarrConfig],
    ) -> None:
        workers = self.config.write_threads
        if workers == 1 or sum(len(_by_field(w)) for w in wells) == 1:
            for planes in wells:
                for field_planes in start(planes):
                    self._write_field(field_planes, labels, configs)
                    finish(field_planes)
            return
        # A sliding window of 2 tasks per thread keeps at most that many field buffers alive.
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="hcsvfs-zarr") as pool:
            pending: dict[Future[None], Planes] = {}
            fields: list[Planes] = []
            well_queue = list(wells)
            while well_queue or fields or pending:
                while len(pending) < 2 * workers and (fields or well_queue):
                    if not fields:
                        fields = start(well_queue.pop(0))
                        continue
                    field_planes = fields.pop(0)
                    pending[pool.submit(self._write_field, field_planes, labels, configs)] = field_planes
                finished, _ = wait(pending, return_when=FIRST_COMPLETED)
                for fut in finished:
                    field_planes = pending.pop(fut)
                    fut.result()
                    finish(field_planes)

    def _write_field(self, planes: Planes, labels: bool, configs: dict[tuple[str, bool], ZarrConfig]) -> None:
        """Write one field's planes (the caller holds the well's lock); a new field gets its plate's codec."""
        field_path = planes[0][0].field
        first = planes[0][1]
        need = tuple(max(t.index[i] for t, _ in planes) + 1 for i in range(3))
        # Only a committed field is grown in place; one left pending by a killed writer is written afresh
        # (growing it would list the well with a field whose image metadata was never committed).
        key = self.locator.key(field_path)
        existing = node_kind(self.locator.read_meta(key, v2=False)) == "image"
        if not existing:
            if self.locator.has_children(key):
                self.locator.delete_tree(key)  # debris of that killed writer: zarr will not create over it
            # A new field: assemble it once and write it in one go (one shard in the default layout).
            full = len(planes) == need[0] * need[1] * need[2]
            # np.zeros only when some (t, c, z) slots stay empty: they must read back as 0, the fill value.
            buf = (np.empty if full else np.zeros)((*need, *first.shape), dtype=first.dtype)
            for t, data in planes:
                buf[t.index] = data
            label = planes[0][0].label
            is_label = labels or label is not None
            config = configs.get((planes[0][0].plate, is_label), self.config)
            write_image(
                self.locator, field_path, buf, config, _FIELD_AXES, labels=is_label, hide=False,
                image_label=label is not None,
            )
            return
        arrays = open_levels(self.locator, field_path, mode="r+")
        old = arrays[0].shape
        grown = tuple(max(a, b) for a, b in zip(old[:3], need))
        if grown != tuple(old[:3]):
            for level in arrays:
                level.resize((*grown, *level.shape[3:]))
        for t, data in planes:
            write_levels(arrays, data, t.index, labels=labels or t.label is not None)
        if grown[1] > old[1] and planes[0][0].label is None:
            self._add_channels(field_path, old[1], grown[1], planes)

    def _add_channels(self, field_path: str, first: int, count: int, planes: Planes) -> None:
        """Name the channels ``first`` .. ``count - 1`` a growing field gained in its ``omero`` metadata."""
        key = self.locator.key(field_path)
        meta = self.locator.read_meta(key, v2=False) or {}
        ome = (meta.get("attributes") or {}).get("ome")
        if not ome:
            return  # ome_metadata=False: nothing to name
        windows = []
        for c in range(first, count):
            mine = [data for t, data in planes if t.index[1] == c]
            windows.append(channel_window(np.stack(mine) if mine else np.zeros((1, 1), planes[0][1].dtype)))
        names = [self.config.channel_name(c) for c in range(first, count)]
        extra = omero_attrs(names, windows, first=first)
        kept = list((ome.get("omero") or {}).get("channels") or [])[:first]
        ome["omero"] = {**extra, "channels": kept + extra["channels"]}
        self.locator.write_meta(key, meta)

    def _make_plate(self, plate: str) -> None:
        """Mark ``plate`` (an existing, empty plain folder, or a plate) as a plate."""
        key = self.locator.key(plate)
        if node_kind(self.locator.read_meta(key)) == "plate":
            return
        with self._plate_lock(plate) as verify:
            if node_kind(self.locator.read_meta(key)) == "plate":
                return  # another writer made it while we waited
            others = [n for n in self.locator.children(key) if n != "zarr.json"]
            if others:
                raise InvalidPathError(
                    f"{plate!r} already holds other entries ({', '.join(sorted(others)[:5])}); a plate needs a folder of "
                    "its own. Save the planes under a new *.zarr folder",
                    path=plate,
                    backend="zarr",
                )
            verify()
            own: dict[str, Any] = {"kind": "plate", "parser": self.config.filename_parser}
            if own_attrs(self.locator.read_meta(key)).get("folder"):
                own["folder"] = True  # a folder's store: still listed under the folder's name
            attrs = {"hcsvfs": own}
            self.locator.write_meta(key, {"zarr_format": 3, "node_type": "group", "attributes": attrs})

    def _commit_well(self, targets: list[PlaneTarget]) -> None:
        """Add the names of a completed well to its index, then list the well in the plate (metadata last).

        The caller holds the well's lock; the plate's metadata is shared by every well, so it is
        read, merged and written under the plate's lock. Label planes go into the well's label
        index and their field's ``labels`` group instead (the well is listed already: its image exists).
        """
        first = targets[0]
        loc = self.locator
        row_key = loc.key(f"{first.plate}/{first.row}")
        if node_kind(loc.read_meta(row_key, v2=False)) != "internal":
            loc.write_meta(row_key, {"zarr_format": 3, "node_type": "group", "attributes": _INTERNAL})
        wkey = loc.key(first.well)
        wmeta = loc.read_meta(wkey, v2=False) or {}
        attrs = wmeta.get("attributes") or {}
        own = dict(attrs.get("hcsvfs") or {"kind": "well"})
        fields = {i["path"] for i in ((attrs.get("ome") or {}).get("well") or {}).get("images", [])}
        if first.label is not None:
            for image in sorted({t.image for t in targets}):
                self._list_label(image, first.label)
            labels = {name: dict(entries) for name, entries in (own.get("labels") or {}).items()}
            entries = labels.setdefault(first.label, {})
            for t in targets:
                entries[t.filename] = [t.field_path, *t.index]
            own["labels"] = labels
        else:
            index = dict(_index(wmeta))
            missing = set(own.get("missing") or [])
            for t in targets:
                index[t.filename] = [t.field_path, *t.index]
                fields.add(t.field_path)
                (missing.add if t.filled else missing.discard)(t.filename)  # a real image replaces a stand-in
            own["index"] = index
            if missing:
                own["missing"] = P.natural_sorted(missing)
            else:
                own.pop("missing", None)
        ordered = sorted(fields, key=int)
        attributes = {"ome": well_attrs(ordered), "hcsvfs": {**own, "kind": "well"}}
        loc.write_meta(wkey, {"zarr_format": 3, "node_type": "group", "attributes": attributes})
        if first.label is None:
            with self._plate_lock(first.plate) as verify:
                verify()
                self._update_plate(first.plate, {(first.name.row, first.name.column): len(ordered)})

    def _list_label(self, image: str, label: str) -> None:
        """Name ``label`` in the ``labels`` group of ``image`` (NGFF: what viewers look for)."""
        key = self.locator.key(f"{image}/labels")
        ome = ngff(self.locator.read_meta(key, v2=False))
        names = list(ome.get("labels") or [])
        if label not in names:
            names.append(label)
            attrs = {"ome": {"version": NGFF_VERSION, "labels": names}, "hcsvfs": {"kind": "internal"}}
            self.locator.write_meta(key, {"zarr_format": 3, "node_type": "group", "attributes": attrs})

    def _update_plate(self, plate: str, wells: dict[tuple[int, int], int], *, replace: bool = False) -> None:
        """Merge ``wells`` ((row, column) -> field count) into the plate's metadata; the caller holds the plate lock."""
        key = self.locator.key(plate)
        meta = self.locator.read_meta(key) or {}
        attrs = meta.get("attributes") or {}
        own = attrs.get("hcsvfs") or {"kind": "plate", "parser": self.config.filename_parser}
        before = _well_counts(attrs)
        counts: dict[tuple[int, int], int] = {} if replace else dict(before)
        counts.update(wells)
        if meta and counts == before:
            return  # the well is listed already, with as many fields: nothing to write
        if counts:
            shape = self.config.plate_shape or (0, 0)  # the whole plate where known, imaged or not
            rows = [row_name(i) for i in range(max(shape[0], max(r for r, _ in counts) + 1))]
            columns = [str(i + 1) for i in range(max(shape[1], max(c for _, c in counts) + 1))]
            own = {**own, "field_counts": {f"{rows[r]}/{columns[c]}": n for (r, c), n in sorted(counts.items())}}
            ome = plate_attrs(P.basename(plate), rows, columns, counts, max(counts.values()))
            attrs = {"ome": ome, "hcsvfs": own}
        else:
            attrs = {"hcsvfs": own}
        self.locator.write_meta(key, {"zarr_format": 3, "node_type": "group", "attributes": attrs})

    def remove(self, plate: str, filename: str, plate_meta: dict[str, Any] | None) -> None:
        """Forget one saved name; a well with no names left is dropped from the plate, then deleted."""
        t = PlaneTarget(plate, filename, parse_filename(filename, self._parser(plate_meta)))  # type: ignore[arg-type]
        with self._well_lock(t) as verify:
            wkey = self.locator.key(t.well)
            wmeta = self.locator.read_meta(wkey) or {}
            index = dict(_index(wmeta))
            index.pop(filename, None)
            verify()
            if index:
                wmeta["attributes"]["hcsvfs"]["index"] = index
                self.locator.write_meta(wkey, wmeta)
                return
            with self._plate_lock(plate):
                counts = _well_counts((self.locator.read_meta(self.locator.key(plate)) or {}).get("attributes") or {})
                counts.pop((t.name.row, t.name.column), None)
                self._update_plate(plate, counts, replace=True)  # unlist first, then delete: never a listed, missing well
            # Safe under the well's lock: no other writer of this well is between its write and its commit.
            self.locator.delete_tree(wkey)

    def rebuild(self, plate: str) -> list[str]:
        """Re-list every complete well of ``plate`` from the wells themselves (a repair tool: writers keep it listed)."""
        key = self.locator.key(plate)
        counts: dict[tuple[int, int], int] = {}
        found: list[str] = []
        with self._plate_lock(plate):
            for row in self.locator.children(key):
                if row == "zarr.json" or not row.isalpha():
                    continue
                for col in self.locator.children(join_key(key, row)):
                    if not col.isdigit():
                        continue
                    wm = self.locator.read_meta(self.locator.key(f"{plate}/{row}/{col}"))
                    ome = ((wm or {}).get("attributes") or {}).get("ome") or {}
                    if "well" in ome and _index(wm):
                        counts[(row_index(row), int(col) - 1)] = len(ome["well"]["images"])
                        found.append(f"{row}{int(col):02d}")
            self._update_plate(plate, counts, replace=True)
        return sorted(found)

    # ------------------------------------------------------------------ locks
    def _well_lock(self, t: PlaneTarget) -> contextlib.AbstractContextManager[Callable[[], None]]:
        return self._lock(t.plate, f"well-{t.row}-{t.column}")

    def _plate_lock(self, plate: str) -> contextlib.AbstractContextManager[Callable[[], None]]:
        return self._lock(plate, "plate")

    def _lock(self, plate: str, name: str) -> contextlib.AbstractContextManager[Callable[[], None]]:
        return self.locator.lock(plate, name, timeout=self.config.lock_timeout, lease_ttl=self.config.lease_seconds)


Planes = list[tuple[PlaneTarget, np.ndarray]]


def _by_well(items: Sequence[tuple[PlaneTarget, np.ndarray]]) -> dict[str, Planes]:
    """Planes grouped by well, wells in sorted order (the order every writer takes their locks in)."""
    out: dict[str, Planes] = defaultdict(list)
    for t, data in items:
        out[t.well].append((t, data))
    return {well: out[well] for well in sorted(out)}


def _by_field(items: Planes) -> dict[str, Planes]:
    out: dict[str, Planes] = defaultdict(list)
    for t, data in items:
        out[t.field].append((t, data))
    return dict(out)


def is_own(plate_meta: dict[str, Any] | None) -> bool:
    """True for a plate hcsvfs made (it writes into those only)."""
    return own_attrs(plate_meta).get("kind") == "plate"


def _compression_records(meta: dict[str, Any] | None) -> dict[str, Any]:
    """The ``auto`` codec choices a plate recorded, by kind (``image``, ``labels``)."""
    return dict(own_attrs(meta).get("compression") or {})


def _plate_wells(plate_meta: dict[str, Any] | None) -> list[str]:
    """The well paths (``A/1``) a plate lists."""
    return [w["path"] for w in (ngff(plate_meta).get("plate") or {}).get("wells", [])]


def label_path(image: str, label: str) -> str:
    """The NGFF place of label image ``label`` of ``image``."""
    return f"{image}/labels/{label}"


def _label_index(meta: dict[str, Any] | None, label: str) -> dict[str, list[Any]]:
    return (own_attrs(meta).get("labels") or {}).get(label) or {}


def _index(meta: dict[str, Any] | None) -> dict[str, list[Any]]:
    return own_attrs(meta).get("index") or {}


def _well_counts(attrs: dict[str, Any]) -> dict[tuple[int, int], int]:
    plate = (attrs.get("ome") or {}).get("plate") or {}
    counts = ((attrs.get("hcsvfs") or {}).get("field_counts")) or {}
    return {(w["rowIndex"], w["columnIndex"]): int(counts.get(w["path"], 1)) for w in plate.get("wells", [])}
