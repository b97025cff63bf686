"""A bounded, least-recently-used byte cache on local disk for reads from remote stores.

fsspec's own caches (``simplecache``, ``filecache``) never evict by size, so a
long run over a 100 GB plate fills the disk. This one keeps at most
``max_bytes`` in a folder that threads *and* processes can share: every entry
is a file written atomically, a hit refreshes the file's mtime (that is the LRU
order), and inserts and evictions hold an inter-process file lock (``filelock``).
Entries are keyed by the object's URL *and* its version (ETag, mtime...), so a
stale copy is never served even if another writer replaced the object.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import InvalidPathError
from .atomic import atomic_write, is_temp_name

__all__ = ["ByteCache", "CacheStats"]

_LOCK_NAME = ".hcsvfs-cache.lock"
#: A temp file older than this was left by a crashed writer and may be removed.
_STALE_TEMP_S = 300.0


@dataclass
class CacheStats:
    """Counters of this process's use of a cache (other processes keep their own)."""

    hits: int = 0
    misses: int = 0
    stores: int = 0
    evictions: int = 0
    too_large: int = 0


class ByteCache:
    """Bytes by (key, version) in ``directory``, never more than ``max_bytes`` in total.

    ``get``/``put``/``invalidate`` are safe from many threads and processes at
    once. An object larger than ``max_bytes`` is simply not cached.
    """

    def __init__(self, directory: str | os.PathLike[str] | None = None, max_bytes: int = 1 << 30) -> None:
        if max_bytes <= 0:
            raise InvalidPathError(f"cache max_bytes must be positive, got {max_bytes}; pass a size in bytes such as 2**30")
        self.directory = Path(directory) if directory is not None else Path(tempfile.gettempdir()) / "hcsvfs-cache"
        self.directory.mkdir(parents=True, exist_ok=True)
        self.max_bytes = int(max_bytes)
        self.stats = CacheStats()
        self._lock = self._make_lock()

    def _make_lock(self) -> Any:
        from filelock import FileLock  # lazy: only processes that cache need it

        # FileLock is re-entrant per object and thread-safe; the OS lock makes it process-safe.
        return FileLock(str(self.directory / _LOCK_NAME))

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        del state["_lock"]  # a lock is per process: the unpickled cache makes its own on the same file
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = self._make_lock()

    # ------------------------------------------------------------------ naming
    @staticmethod
    def _stem(key: str) -> str:
        return hashlib.sha256(key.encode()).hexdigest()

    def _entry(self, key: str, version: str) -> Path:
        tag = hashlib.sha256(version.encode()).hexdigest()[:16]
        return self.directory / f"{self._stem(key)}-{tag}"

    # ------------------------------------------------------------------ API
    def get(self, key: str, version: str) -> bytes | None:
        """The cached bytes of ``key`` at ``version``, or None."""
        entry = self._entry(key, version)
        try:
            with open(entry, "rb") as fh:  # an entry evicted while open stays readable (POSIX)
                data = fh.read()
        except FileNotFoundError:
            self.stats.misses += 1
            return None
        with contextlib.suppress(FileNotFoundError):
            os.utime(entry)  # mark as recently used
        self.stats.hits += 1
        return data

    def put(self, key: str, version: str, data: bytes) -> bool:
        """Store ``data`` as ``key`` at ``version`` (replacing other versions); False if it cannot fit."""
        size = len(data)
        if size > self.max_bytes:
            self.stats.too_large += 1
            return False
        with self._lock:
            self._drop(key)
            self._evict(self.max_bytes - size)
            atomic_write(self._entry(key, version), lambda fh: fh.write(data), overwrite=True, fsync=False)
        self.stats.stores += 1
        return True

    def invalidate(self, key: str) -> None:
        """Forget every cached version of ``key`` (called when it is overwritten or deleted)."""
        with self._lock:
            self._drop(key)

    def clear(self) -> None:
        """Remove every entry."""
        with self._lock:
            for path, _size, _mtime in self._entries():
                path.unlink(missing_ok=True)

    def total_bytes(self) -> int:
        """Bytes held right now (all processes' entries)."""
        return sum(size for _p, size, _m in self._entries())

    def __len__(self) -> int:
        return len(self._entries())

    # ------------------------------------------------------------------ internals (lock held)
    def _drop(self, key: str) -> None:
        for path in self.directory.glob(self._stem(key) + "-*"):
            path.unlink(missing_ok=True)

    def _evict(self, budget: int) -> None:
        entries = sorted(self._entries(), key=lambda e: e[2])  # oldest use first
        total = sum(size for _p, size, _m in entries)
        for path, size, _mtime in entries:
            if total <= budget:
                break
            path.unlink(missing_ok=True)
            total -= size
            self.stats.evictions += 1

    def _entries(self) -> list[tuple[Path, int, float]]:
        out: list[tuple[Path, int, float]] = []
        now = time.time()
        with os.scandir(self.directory) as it:
            for e in it:
                try:
                    st = e.stat()
                except FileNotFoundError:
                    continue
                if e.name == _LOCK_NAME:
                    continue
                if is_temp_name(e.name):
                    if now - st.st_mtime > _STALE_TEMP_S:
                        Path(e.path).unlink(missing_ok=True)
                    continue
                out.append((Path(e.path), st.st_size, st.st_mtime))
        return out

    def __repr__(self) -> str:
        return f"<ByteCache {str(self.directory)!r} max_bytes={self.max_bytes}>"
