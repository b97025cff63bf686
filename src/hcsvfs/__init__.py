"""hcsvfs: a virtual file system for high-content-screening microscopy data.

``FileManager`` saves and loads live objects by logical path on memory, disk,
OME-Zarr and object-store backends. See DESIGN.md and the README for the tour.
"""

from __future__ import annotations

import importlib
from typing import Any

from .backends import DiskStorageBackend, MemoryStorageBackend, StatResult, StorageBackend
from .errors import StorageError, StorageResolutionError
from .filemanager import FileManager
from .registry import Backend, StorageRegistry, create_default_registry, storage_registry

__version__ = "0.1.0"

# Heavier pieces load on first touch so `import hcsvfs` stays fast.
_LAZY = {
    "ZarrStorageBackend": "hcsvfs.backends.zarr",
    "ZarrConfig": "hcsvfs.config",
    "FunctionStep": "hcsvfs.pipeline",
    "AbstractStep": "hcsvfs.pipeline",
}

__all__ = [
    "FileManager",
    "Backend",
    "StorageRegistry",
    "storage_registry",
    "create_default_registry",
    "StorageBackend",
    "StatResult",
    "MemoryStorageBackend",
    "DiskStorageBackend",
    "StorageError",
    "StorageResolutionError",
    *_LAZY,
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'hcsvfs' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
