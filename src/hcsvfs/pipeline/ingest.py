"""Ingest: turn an ImageXpress-style folder of TIFFs into a plate layout (wells -> fields x channels x z x t).

The filename parser is pluggable: a name registered in :mod:`hcsvfs.hcs` or
any callable ``file name -> HCSName | None`` (None for files that belong to no
well, such as thumbnails). Files are listed and read through FileManager, so
the folder may live on any backend.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np

from .. import paths as P
from ..filemanager import FileManager
from ..hcs import HCSName, image_name, parse_filename, parse_well, register_parser
from ..registry import BackendRef
from .errors import IngestError

__all__ = ["ImageRecord", "PlateLayout", "FilenameParser", "parse_metaxpress", "scan_plate", "output_name"]

FilenameParser = Callable[[str], "HCSName | None"]

# MetaXpress exports: <plate>_<well>[_s<site>]_w<channel>[<GUID>].tif, optionally in TimePoint_t/ZStep_z folders.
_METAXPRESS = re.compile(
    r"(?:^|_)(?P<well>[A-Pa-p]\d{2})(?:_s(?P<site>\d+))?_w(?P<channel>\d+)"
    r"(?:[0-9A-Fa-f]{8}-[0-9A-Fa-f-]{27})?(?:_z(?P<z>\d+))?(?:_t(?P<t>\d+))?\.tiff?$",
    re.IGNORECASE | re.ASCII,
)
_FOLDER = re.compile(r"^(?P<kind>TimePoint|ZStep)_(?P<n>\d+)$", re.IGNORECASE)


def parse_metaxpress(name: str) -> HCSName | None:
    """Parse ``A01_s2_w1_z003_t001.tif`` and MetaXpress's ``Plate_A01_s2_w1<GUID>.tif``; None for thumbnails."""
    if "_thumb" in name.lower():
        return None
    strict = parse_filename(name)
    if strict is not None:
        return strict
    m = _METAXPRESS.search(name)
    if m is None:
        return None
    row, column = parse_well(m["well"])
    return HCSName(row, column, int(m["site"] or 1), int(m["channel"]), int(m["z"] or 1), int(m["t"] or 1))


register_parser("metaxpress", parse_metaxpress, replace=True)


def output_name(key: HCSName) -> str:
    """The hcsvfs name of an image in an output plate: ``A01_s1_w2_z001_t001.tif``."""
    return image_name(key)


@dataclass(frozen=True)
class ImageRecord:
    """One input file: its plate coordinates and its path on the input backend."""

    key: HCSName
    path: str


@dataclass
class PlateLayout:
    """A plate's images grouped by well, with the fields, channels, z and t it contains."""

    root: str
    images: dict[str, list[ImageRecord]] = field(default_factory=dict)

    @property
    def wells(self) -> list[str]:
        return sorted(self.images, key=parse_well)

    def _values(self, attr: str) -> list[int]:
        return sorted({getattr(r.key, attr) for recs in self.images.values() for r in recs})

    @property
    def fields(self) -> list[int]:
        return self._values("field")

    @property
    def channels(self) -> list[int]:
        return self._values("channel")

    @property
    def rows(self) -> list[int]:
        return self._values("row")

    @property
    def columns(self) -> list[int]:
        return self._values("column")

    def stacks(self, well: str) -> Iterator[tuple[HCSName, list[ImageRecord]]]:
        """Per (field, channel, t) of ``well``: the key (z=1) and its z planes in order."""
        groups: dict[HCSName, list[ImageRecord]] = {}
        for rec in self.images.get(well, []):
            groups.setdefault(dataclasses.replace(rec.key, z=1), []).append(rec)
        for key in sorted(groups):
            yield key, sorted(groups[key], key=lambda r: r.key.z)

    def load_stack(self, fm: FileManager, records: list[ImageRecord], backend: BackendRef) -> np.ndarray:
        """One image (2-D) or a z-stack (3-D) read through ``fm`` (the "load from disk" step)."""
        planes = [np.asarray(fm.load(r.path, backend)) for r in records]
        return planes[0] if len(planes) == 1 else np.stack(planes)

    def __len__(self) -> int:
        return sum(len(v) for v in self.images.values())


def scan_plate(
    fm: FileManager,
    folder: str,
    backend: BackendRef = "disk",
    *,
    parser: str | FilenameParser = "metaxpress",
    extensions: tuple[str, ...] = (".tif", ".tiff"),
) -> PlateLayout:
    """List every TIFF under ``folder`` and group them by well with ``parser``.

    Files that operating systems leave beside images (macOS ``._*``, ``.DS_Store``,
    ``Thumbs.db``) and thumbnails are skipped. Raises IngestError if the folder is
    missing or holds no TIFF, if a name
    cannot be parsed, or if two files claim the same well, field, channel, z and t.
    """
    parse = (lambda name: parse_filename(name, parser)) if isinstance(parser, str) else parser
    root = P.normalize(folder)
    if not fm.is_dir(root, backend):
        raise IngestError(f"input folder {folder!r} does not exist on the {backend} backend", path=root)
    files = fm.list_files(root, backend, extensions=list(extensions), recursive=True)
    if not files:
        raise IngestError(
            f"input folder {folder!r} holds no {'/'.join(extensions)} files; point ingest at the folder that "
            "contains the plate's images (TimePoint_*/ZStep_* subfolders are searched too)",
            path=root,
        )
    layout = PlateLayout(root)
    bad: list[str] = []
    seen: dict[HCSName, str] = {}
    for path in files:
        name = P.basename(path)
        if P.is_system_junk(name) or "_thumb" in name.lower():
            continue  # macOS ._ twins, Thumbs.db, the microscope's thumbnails: never images of the plate
        key = parse(name)
        if key is None:
            bad.append(name)
            continue
        key = _with_folders(key, path[len(root) + 1 :] if path.startswith(root + "/") else path)
        if key in seen:
            raise IngestError(f"{path!r} and {seen[key]!r} are both {key}; remove one of them", path=path)
        seen[key] = path
        layout.images.setdefault(key.well, []).append(ImageRecord(key, path))
    if bad:
        raise IngestError(
            f"{len(bad)} file name(s) in {folder!r} do not parse as <plate>_<well>_s<field>_w<channel>.tif, e.g. "
            f"{', '.join(repr(b) for b in bad[:3])}; rename them or pass parser= (a function: name -> HCSName)",
            path=root,
        )
    if not layout.images:
        raise IngestError(f"input folder {folder!r} holds only thumbnails", path=root)
    return layout


def _with_folders(key: HCSName, relative: str) -> HCSName:
    """Apply ImageXpress's TimePoint_t / ZStep_z folder levels to a key parsed from the bare name."""
    for part in relative.split("/")[:-1]:
        folder = _FOLDER.match(part)
        if folder and folder["kind"].lower() == "timepoint":
            key = dataclasses.replace(key, t=int(folder["n"]))
        elif folder:
            key = dataclasses.replace(key, z=int(folder["n"]))
    return key
