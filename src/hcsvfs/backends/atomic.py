"""Atomic file writes: a reader sees the old file or the new one, never half of one."""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import re
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from ..errors import PathExistsError, StorageFullError
from ..paths import RESERVED_PREFIX

__all__ = ["TEMP_PREFIX", "atomic_write", "exchange", "is_temp_name", "fsync_dir"]

#: Temp files start with this, so listings can hide them and clean-up can find them.
TEMP_PREFIX = RESERVED_PREFIX + "tmp-"


def is_temp_name(name: str) -> bool:
    """True for the name of an in-flight (or crashed) atomic write."""
    return name.startswith(TEMP_PREFIX)


def fsync_dir(directory: Path) -> None:
    """Make a rename in ``directory`` durable (a no-op where directories cannot be opened)."""
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _create_temp(folder: Path) -> tuple[Path, BinaryIO]:
    """A new, exclusively created temp file in ``folder`` and its buffered writer.

    Not ``mkstemp`` + reopen: reopening with O_TRUNC makes ext4 (auto_da_alloc) start
    writeback at close (~0.13 s per 0.5 GB, exactly what ``fsync=False`` asks to
    skip), and mkstemp's mode 0600 would make every saved file private to its owner;
    "xb" honours the umask. A real ``.name`` is kept for writers such as tifffile.
    """
    while True:
        tmp = folder / f"{TEMP_PREFIX}{secrets.token_hex(8)}.tmp"
        try:
            return tmp, open(tmp, "xb")
        except FileExistsError:
            continue


def atomic_write(
    target: Path,
    write: Callable[[BinaryIO], object],
    *,
    overwrite: bool,
    fsync: bool = True,
    logical: str | None = None,
) -> int:
    """Write ``target`` through ``write(fh)`` via a temp file in the same folder; return bytes written.

    With ``overwrite=False`` the commit is ``link()`` (fails if the name exists),
    so of two racing creators exactly one wins and the other gets
    FileExistsError. With ``overwrite=True`` it is ``rename()`` (atomic
    replace). A failure leaves no temp file behind and the old file intact.
    """
    shown = logical or str(target)
    tmp, fh = _create_temp(target.parent)
    try:
        with fh:
            write(fh)
            fh.flush()
            if fsync:
                os.fsync(fh.fileno())
            size = fh.tell()
        if overwrite:
            os.replace(tmp, target)
        else:
            try:
                os.link(tmp, target)
            except FileExistsError:
                raise PathExistsError(
                    f"{shown!r} was created by another writer while this one was saving; "
                    "pass overwrite=True to replace it",
                    path=shown,
                ) from None
            os.unlink(tmp)
        if fsync:
            fsync_dir(target.parent)
        return size
    except BaseException as exc:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        if _is_out_of_space(exc):
            raise StorageFullError(
                f"no space left to write {shown!r} ({getattr(exc, 'strerror', None) or exc}); the previous version, "
                "if any, is intact. "
                "Free space or point the backend at a larger volume",
                path=shown,
            ) from exc
        raise


_RENAME_EXCHANGE = 2  # linux/fs.h
_AT_FDCWD = -100


def _renameat2() -> Callable[..., int] | None:
    try:
        fn = ctypes.CDLL(None, use_errno=True).renameat2  # glibc >= 2.28
    except (AttributeError, OSError):
        return None
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    fn.restype = ctypes.c_int
    return fn


_RENAMEAT2 = _renameat2()


def exchange(a: Path, b: Path) -> bool:
    """Swap two existing paths in one atomic step (Linux ``renameat2(RENAME_EXCHANGE)``).

    Lets a folder (a zarr image) be replaced with no moment where neither
    version is there. Returns False where the platform or file system cannot
    do it, so the caller falls back to two renames.
    """
    if _RENAMEAT2 is None:
        return False
    if _RENAMEAT2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP, errno.EPERM):
        return False  # not supported here
    raise OSError(err, os.strerror(err), str(a), None, str(b))


# NumPy's tofile() (used by np.save and tifffile) reports a short write as a bare OSError without
# errno; the kernel writes short only when the device or the file-size limit is full.
_SHORT_WRITE = re.compile(r"\d+ requested and \d+ written")


def _is_out_of_space(exc: BaseException) -> bool:
    if not isinstance(exc, OSError):
        return False
    if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        return True
    return exc.errno is None and bool(_SHORT_WRITE.search(str(exc)))
