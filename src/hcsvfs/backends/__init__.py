"""Storage backends: one contract (``base``), many places to keep objects."""

from .base import StatResult, StorageBackend
from .disk import DiskStorageBackend
from .memory import MemoryStorageBackend

__all__ = ["StorageBackend", "StatResult", "MemoryStorageBackend", "DiskStorageBackend"]
