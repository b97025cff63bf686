"""The hcsvfs error hierarchy.

Every error is a :class:`StorageError` *and* the built-in exception a Python
user would already catch (``FileNotFoundError``, ``FileExistsError``, ...), so
code written against plain files keeps working. Messages name the path and say
what to do instead.
"""

from __future__ import annotations

import errno as _errno
from typing import Any

__all__ = [
    "StorageError",
    "StorageResolutionError",
    "PathNotFoundError",
    "PathExistsError",
    "PathIsADirectoryError",
    "PathNotADirectoryError",
    "DirectoryNotEmptyError",
    "InvalidPathError",
    "UnsupportedTypeError",
    "UnsafeLoadError",
    "CorruptDataError",
    "StorageFullError",
    "MemoryBudgetError",
    "LockTimeoutError",
    "UnknownOptionError",
    "ReadOnlyError",
]


class StorageError(Exception):
    """Base class of every hcsvfs error; ``path`` and ``backend`` say where it happened."""

    def __init__(self, message: str, *, path: str | None = None, backend: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.path = path
        self.backend = backend

    def __str__(self) -> str:  # OSError subclasses would otherwise print "[Errno ...]" tuples
        return self.message

    def __reduce__(self) -> tuple[Any, ...]:
        # Keep errors picklable across process pools and Dask workers.
        return (_rebuild, (type(self), self.message, self.path, self.backend))


def _rebuild(cls: type[StorageError], message: str, path: str | None, backend: str | None) -> StorageError:
    return cls(message, path=path, backend=backend)


class _OSStorageError(StorageError, OSError):
    """A StorageError that is also an OSError carrying a proper ``errno``."""

    errno_code: int = 0

    def __init__(self, message: str, *, path: str | None = None, backend: str | None = None) -> None:
        StorageError.__init__(self, message, path=path, backend=backend)
        # Last: StorageError's super().__init__ reaches OSError.__init__ with one argument, which clears errno.
        OSError.__init__(self, self.errno_code, message)
        self.filename = path


class StorageResolutionError(StorageError, LookupError):
    """An unknown backend name or enum member was asked for."""


class PathNotFoundError(_OSStorageError, FileNotFoundError):
    errno_code = _errno.ENOENT


class PathExistsError(_OSStorageError, FileExistsError):
    errno_code = _errno.EEXIST


class PathIsADirectoryError(_OSStorageError, IsADirectoryError):
    errno_code = _errno.EISDIR


class PathNotADirectoryError(_OSStorageError, NotADirectoryError):
    errno_code = _errno.ENOTDIR


class DirectoryNotEmptyError(_OSStorageError):
    errno_code = _errno.ENOTEMPTY


class StorageFullError(_OSStorageError):
    """The device ran out of space (or a file-size limit was hit); nothing was replaced."""

    errno_code = _errno.ENOSPC


class ReadOnlyError(_OSStorageError, PermissionError):
    """hcsvfs reads this data but does not write into it (e.g. a plate another tool wrote)."""

    errno_code = _errno.EROFS


class LockTimeoutError(_OSStorageError, TimeoutError):
    """Another writer held a lock this operation needs for longer than the lock timeout; nothing was written."""

    errno_code = _errno.ETIMEDOUT


class InvalidPathError(StorageError, ValueError):
    """A logical path is malformed or would leave the backend's root."""


class UnsupportedTypeError(StorageError, TypeError):
    """No format or backend can store this kind of object."""


class UnknownOptionError(StorageError, TypeError):
    """A keyword option that the backend or format does not take (a typo, or meant for another one)."""


class UnsafeLoadError(StorageError, PermissionError):
    """Loading would execute code (pickle) and the caller did not opt in."""


class CorruptDataError(StorageError, ValueError):
    """Stored bytes failed a checksum or could not be decoded."""


class MemoryBudgetError(StorageError, MemoryError):
    """The memory budget is exhausted and nothing can be spilled to make room."""
