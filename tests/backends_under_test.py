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

BACKENDS: dict[str, BackendFactory] = {
    "memory": lambda tmp, request: MemoryStorageBackend(),
    "disk": lambda tmp, request: DiskStorageBackend(tmp / "root"),
}
