"""Backend.AUTO: choose memory, disk or zarr for one object from its type, size, path and the free memory.

The choice is a pure function of its inputs (object type and size, logical
path, bytes of free memory, the policy and the backends on offer), so it is
deterministic and testable; FileManager records each choice (``fm.where``).
Rules, first match wins:

1. Not an array: a file format the disk backend can write for this path and
   type (``.csv``, ``.json``, ``.txt`` ...) -> disk; anything else stays live in memory.
2. An HCS image name (``A01_s1_w2.tif``) under a plate folder, or a ``.zarr`` path -> zarr.
3. An explicit file extension (``.tif``, ``.npy``, ``.pt`` ...) -> disk.
4. At least ``large_bytes`` -> zarr (chunked and compressed).
5. Fits in ``memory_fraction`` of free memory -> memory (the policy's memory backend).
6. Otherwise -> zarr (or disk where zarr is not on offer).
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from typing import Any

from .. import paths as P
from ..arrays import is_array, nbytes
from ..errors import StorageError
from ..formats import formats as default_formats
from ..hcs import parse_filename
from ..units import parse_bytes

__all__ = ["AutoPolicy", "Placement", "choose_backend", "is_hcs_filename", "under_plate"]

_ZARR_EXTS = (".zarr", ".ome.zarr")


@dataclass(frozen=True)
class AutoPolicy:
    """The knobs of Backend.AUTO."""

    #: Arrays at least this large go to zarr, whatever the free memory (a string such as "1GiB" is converted).
    large_bytes: int = 256 << 20
    #: Keep an array in memory only while it is at most this fraction of the free memory.
    memory_fraction: float = 0.25
    #: The backend name used for "memory" choices ("overlay" gives spilling instead of a plain dict).
    memory_backend: str = "memory"
    #: Folder-name globs (case-insensitive) that mark a plate; any ``*.zarr`` folder is one too.
    plate_globs: tuple[str, ...] = ("*plate*",)
    #: The hcsvfs.hcs file-name parser that recognises HCS image names (the zarr plate layout uses the same).
    hcs_parser: str = "imagexpress"

    def __post_init__(self) -> None:
        object.__setattr__(self, "large_bytes", parse_bytes(self.large_bytes))
        if not 0 <= self.memory_fraction <= 1:
            raise ValueError(f"memory_fraction must be in [0, 1], got {self.memory_fraction}")


@dataclass(frozen=True)
class Placement:
    """A choice and the rule that made it (for logs and ``fm.where``)."""

    backend: str
    reason: str


def is_hcs_filename(path: P.PathLike, parser: str = "imagexpress") -> bool:
    """True for image names the zarr plate layout can place (``A01_s1_w2_z003.tif``), via :mod:`hcsvfs.hcs`."""
    return parse_filename(P.basename(path), parser) is not None


def under_plate(path: P.PathLike, plate_globs: tuple[str, ...] = AutoPolicy.plate_globs) -> bool:
    """True if a parent folder of ``path`` is a plate: a ``*.zarr`` folder or a name matching ``plate_globs``."""
    for folder in P.normalize(path).split("/")[:-1]:
        lower = folder.lower()
        if lower.endswith(_ZARR_EXTS) or any(fnmatch.fnmatchcase(lower, g.lower()) for g in plate_globs):
            return True
    return False


def _disk_can_write(obj: Any, path: str) -> bool:
    try:
        default_formats.for_save(obj, path)
    except (StorageError, TypeError):
        return False
    return True


def choose_backend(
    obj: Any,
    path: P.PathLike,
    *,
    available_memory: int,
    policy: AutoPolicy = AutoPolicy(),
    backends: frozenset[str] = frozenset({"memory", "disk", "zarr"}),
) -> Placement:
    """Where Backend.AUTO puts ``obj`` at ``path``; ``backends`` are the names on offer ("disk" is assumed)."""
    p = P.normalize(path)
    memory = policy.memory_backend
    persistent = "zarr" if "zarr" in backends else "disk"
    _stem, ext = P.split_ext(p)
    if not is_array(obj):
        if ext and _disk_can_write(obj, p):
            return Placement("disk", f"{type(obj).__name__} with a {ext} file format: a file on disk")
        return Placement(memory, f"{type(obj).__name__} is not an array and has no file format here: kept live")
    size = nbytes(obj)
    plate_image = is_hcs_filename(p, policy.hcs_parser) and under_plate(p, policy.plate_globs)
    if "zarr" in backends and (ext in _ZARR_EXTS or plate_image):
        return Placement("zarr", "an HCS image under a plate, or a .zarr path: the OME-Zarr plate layout")
    if ext and _disk_can_write(obj, p):
        return Placement("disk", f"the path asks for a {ext} file")
    if size >= policy.large_bytes:
        return Placement(persistent, f"{size} bytes >= large_bytes ({policy.large_bytes}): chunked, persistent storage")
    if size <= policy.memory_fraction * available_memory:
        return Placement(memory, f"{size} bytes fit in {policy.memory_fraction:g} of {available_memory} free bytes")
    return Placement(persistent, f"{size} bytes exceed {policy.memory_fraction:g} of {available_memory} free bytes")
