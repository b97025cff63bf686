"""Ingest: turn a microscope's folder of TIFFs into a plate layout (wells -> fields x channels x z x t).

The instrument is recognised from its metadata (see :mod:`hcsvfs.pipeline.microscopes`); the filename
parser is pluggable: a name registered in :mod:`hcsvfs.hcs`, any callable ``file name -> HCSName | None``
(None for files that belong to no well, such as thumbnails), or a ``pattern``. Files are listed and read
through FileManager, so the folder may live on any backend.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from .. import paths as P
from ..filemanager import FileManager
from ..hcs import HCSName, image_name, parse_filename, parse_well, register_parser
from ..registry import BackendRef
from .errors import IngestError
from .microscopes import VENDOR_NAMES, Acquisition, read_acquisition
from .microscopes.acquisition import FilenameParser

__all__ = [
    "ImageRecord", "PlateLayout", "FilenameParser", "MissingPolicy", "parse_metaxpress", "scan_plate", "output_name",
]

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
    """One input image: its plate coordinates and its path on the input backend (None: the microscope did not
    deliver it, and ingest was told to fill it with zeros)."""

    key: HCSName
    path: str | None


#: What ingest does about images an acquisition should have and the folder lacks (autofocus failures):
#: ``error`` names every one; ``fill`` stands zeros in and records their names.
MissingPolicy = Literal["error", "fill"]
MISSING_POLICIES = ("error", "fill")


@dataclass
class PlateLayout:
    """A plate's images grouped by well, with the fields, channels, z and t it contains, and what the
    instrument's metadata says about the acquisition (channel names, pixel size, plate dimensions)."""

    root: str
    images: dict[str, list[ImageRecord]] = field(default_factory=dict)
    acquisition: Acquisition | None = None
    #: Places the acquisition should have and the folder lacks, filled with zeros (``missing="fill"``).
    missing: list[HCSName] = field(default_factory=list)
    _template: tuple[tuple[int, ...], str] | None = field(default=None, repr=False)

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

    def channel_names(self) -> tuple[str, ...]:
        """Names of channels 1..n for the NGFF ``omero`` metadata: the instrument's, else ``w<n>``."""
        named = self.acquisition.channel_names if self.acquisition is not None else {}
        return tuple(named.get(c, f"w{c}") for c in range(1, max(self.channels, default=0) + 1))

    def stacks(self, well: str) -> Iterator[tuple[HCSName, list[ImageRecord]]]:
        """Per (field, channel, t) of ``well``: the key (z=1) and its z planes in order."""
        groups: dict[HCSName, list[ImageRecord]] = {}
        for rec in self.images.get(well, []):
            groups.setdefault(dataclasses.replace(rec.key, z=1), []).append(rec)
        for key in sorted(groups):
            yield key, sorted(groups[key], key=lambda r: r.key.z)

    def load_stack(self, fm: FileManager, records: list[ImageRecord], backend: BackendRef) -> np.ndarray:
        """One image (2-D) or a z-stack (3-D) read through ``fm`` (the "load from disk" step); a missing
        plane (``missing="fill"``) is zeros of the plate's plane shape and dtype."""
        planes = [self.load_plane(fm, r, backend) for r in records]
        return planes[0] if len(planes) == 1 else np.stack(planes)

    def load_plane(self, fm: FileManager, record: ImageRecord, backend: BackendRef) -> np.ndarray:
        """One plane; zeros shaped like the plate's planes where the record is a missing image."""
        if record.path is not None:
            plane = np.asarray(fm.load(record.path, backend))
            if self._template is None:
                self._template = (plane.shape, str(plane.dtype))
            return plane
        if self._template is None:
            first = next(r for recs in self.images.values() for r in recs if r.path is not None)
            self.load_plane(fm, first, backend)
        assert self._template is not None
        return np.zeros(self._template[0], self._template[1])

    def __len__(self) -> int:
        return sum(len(v) for v in self.images.values())


def scan_plate(
    fm: FileManager,
    folder: str,
    backend: BackendRef = "disk",
    *,
    parser: str | FilenameParser = "auto",
    pattern: str | None = None,
    missing: MissingPolicy = "error",
    extensions: tuple[str, ...] = (".tif", ".tiff"),
) -> PlateLayout:
    """List every image under ``folder``, read its instrument's metadata, and group the images by well.

    The instrument is found from its metadata file: Opera Phenix / Operetta CLS (``Index.idx.xml``),
    CellVoyager (``MeasurementData.mlf``), ImageXpress (``.HTD``); without one, names are read as
    ImageXpress/MetaXpress names. ``parser`` (a registered name or a function) or ``pattern`` (a regular
    expression with named groups, see :func:`~hcsvfs.pipeline.microscopes.pattern_parser`) override how
    names are read. Files that operating systems leave beside images (macOS ``._*``, ``.DS_Store``,
    ``Thumbs.db``) and thumbnails are skipped.

    Images the acquisition should have and the folder lacks (listed in the metadata, or missing from the
    plate's grid of wells x fields x channels x z x t) follow ``missing``: ``"error"`` raises IngestError
    naming every one; ``"fill"`` stands zeros in (:attr:`PlateLayout.missing`). Raises IngestError if the
    folder is missing or holds no image, if a name cannot be parsed, or if two files claim one place.
    """
    if missing not in MISSING_POLICIES:
        raise ValueError(f"missing must be one of {', '.join(MISSING_POLICIES)}, got {missing!r}")
    root = P.normalize(folder)
    if not fm.is_dir(root, backend):
        raise IngestError(f"input folder {folder!r} does not exist on the {backend} backend", path=root)
    every = fm.list_files(root, backend, recursive=True)
    wanted = tuple(e.lower() for e in extensions)
    images = [
        f for f in every
        if f.lower().endswith(wanted) and not P.is_system_junk(P.basename(f)) and "_thumb" not in P.basename(f).lower()
    ]  # macOS ._ twins, Thumbs.db, the microscope's thumbnails: never images of the plate
    if not images:
        raise IngestError(
            f"input folder {folder!r} holds no {'/'.join(extensions)} files; point ingest at the folder that "
            "contains the plate's images (TimePoint_*/ZStep_* subfolders are searched too)",
            path=root,
        )
    acq = read_acquisition(fm, every, images, backend, parser=parser, pattern=pattern)
    layout = PlateLayout(root, acquisition=acq)
    bad: list[str] = []
    seen: dict[HCSName, str] = {}
    for path in images:
        key = acq.parser(P.basename(path))
        if key is None:
            bad.append(P.basename(path))
            continue
        key = _with_folders(key, path[len(root) + 1 :] if path.startswith(root + "/") else path)
        if key in seen:
            raise IngestError(f"{path!r} and {seen[key]!r} are both {key}; remove one of them", path=path)
        seen[key] = path
        layout.images.setdefault(key.well, []).append(ImageRecord(key, path))
    if bad:
        expected = VENDOR_NAMES.get(acq.vendor, "the names --pattern describes")
        raise IngestError(
            f"{len(bad)} file name(s) in {folder!r} do not parse as {expected}, e.g. "
            f"{', '.join(repr(b) for b in bad[:3])}; rename them, pass parser= (a function: name -> HCSName) "
            "or pattern= (a regular expression with named groups well, field, channel, z, t)",
            path=root,
        )
    _account_for_missing(layout, acq, seen, missing, folder)
    return layout


def _account_for_missing(
    layout: PlateLayout, acq: Acquisition, seen: dict[HCSName, str], policy: MissingPolicy, folder: str
) -> None:
    """Find the places the acquisition should have and the folder lacks; raise or fill as ``policy`` says."""
    named: dict[HCSName, str] = {}  # missing place -> the file name the metadata gives it
    if acq.listed:
        present = {P.basename(p) for p in seen.values()}
        named = {key: name for name, key in acq.listed.items() if name not in present and key not in seen}
    keys = set(seen) | set(named)
    wells = set(acq.wells or ()) | {k.well for k in keys}
    axes = [sorted({getattr(k, a) for k in keys}) for a in ("field", "channel", "z", "t")]
    grid = (HCSName(*parse_well(w), f, c, z, t) for w in wells for f in axes[0] for c in axes[1] for z in axes[2]
            for t in axes[3])
    absent = sorted(key for key in grid if key not in seen)
    if not absent:
        return
    if policy == "error":
        described = [named.get(k) or f"{k.well} field {k.field} channel {k.channel} z {k.z} t {k.t}" for k in absent]
        raise IngestError(
            f"{len(absent)} image(s) of the acquisition in {folder!r} are missing: {', '.join(described)}; pass "
            "missing='fill' (--missing fill) to stand zeros in for them, recorded in each well's metadata",
            path=layout.root,
        )
    layout.missing = absent
    for key in absent:
        layout.images.setdefault(key.well, []).append(ImageRecord(key, None))


def _with_folders(key: HCSName, relative: str) -> HCSName:
    """Apply ImageXpress's TimePoint_t / ZStep_z folder levels to a key parsed from the bare name."""
    for part in relative.split("/")[:-1]:
        folder = _FOLDER.match(part)
        if folder and folder["kind"].lower() == "timepoint":
            key = dataclasses.replace(key, t=int(folder["n"]))
        elif folder:
            key = dataclasses.replace(key, z=int(folder["n"]))
    return key
