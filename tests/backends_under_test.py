"""Every backend the conformance suite runs against: add one factory per backend.

A factory takes ``(tmp_path, request)`` -- a fresh empty folder and the pytest
request (for fixtures such as a local S3 server) -- and returns a new, empty
backend.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from hcsvfs.backends import DiskStorageBackend, MemoryStorageBackend, StorageBackend

BackendFactory = Callable[[Path, Any], StorageBackend]


def _objectstore_on_s3(tmp: Path, request: Any) -> StorageBackend:
    """An ObjectStoreBackend on a fresh bucket of the tests' local moto S3 server (127.0.0.1)."""
    from s3_server import new_s3_url

    from hcsvfs.backends.objectstore import ObjectStoreBackend

    url, options = new_s3_url()
    return ObjectStoreBackend(url, **options)


def _overlay(tmp: Path, request: Any) -> StorageBackend:
    """A MemoryOverlay over disk with room for everything (nothing spills)."""
    from hcsvfs.tiering import MemoryOverlay

    return MemoryOverlay(DiskStorageBackend(tmp / "spill"), budget="64MiB")


def _overlay_tiny(tmp: Path, request: Any) -> StorageBackend:
    """A MemoryOverlay whose 2 KiB budget holds about two test arrays: most saves spill to disk."""
    from hcsvfs.tiering import MemoryOverlay

    return MemoryOverlay(DiskStorageBackend(tmp / "spill", fsync=False), budget=2048, target=0.25, spill=0.3, pause=0.9)


def _shared_memory(tmp: Path, request: Any) -> StorageBackend:
    """A SharedMemoryStorageBackend namespace of its own, unlinked when the test ends."""
    from hcsvfs.backends.shared_memory import SharedMemoryStorageBackend

    backend = SharedMemoryStorageBackend()
    request.addfinalizer(backend.close)
    return backend


def _zarr(tmp: Path, request: Any) -> StorageBackend:
    """A ZarrStorageBackend jailed in a fresh folder (OME-Zarr images, default LZ4 layout)."""
    from hcsvfs.backends.zarr import ZarrStorageBackend

    return ZarrStorageBackend(tmp / "root")


BACKENDS: dict[str, BackendFactory] = {
    "memory": lambda tmp, request: MemoryStorageBackend(),
    "disk": lambda tmp, request: DiskStorageBackend(tmp / "root"),
    "overlay": _overlay,
    "overlay-tiny": _overlay_tiny,
    "objectstore": _objectstore_on_s3,
    "shared_memory": _shared_memory,
    "zarr": _zarr,
}
