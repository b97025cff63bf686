"""A process-shared memory backend: array bytes in ``multiprocessing.shared_memory``, a small index on tmpfs.

Any process that holds (or unpickles) the backend sees the same namespace and
reads arrays zero-copy from the shared segments. The index is a folder of tiny
JSON records (segment name, dtype, shape) handled by the disk backend's code,
so save rules, listings, moves and atomic replacement are the disk backend's.

Lifetime: segments are unregistered from Python's resource tracker (which on
3.11 would unlink a segment when *any* attaching process exits); the owner
unlinks every segment of its namespace on ``close()``, at interpreter exit, and
when a later owner finds a namespace whose owner is gone. "Gone" is told by a
lock the owner holds on a file in its index for as long as it lives (the kernel
drops it when the process dies), not by its PID: a process in another
container sharing ``/dev/shm`` has a PID this one cannot see. Segments of a
worker killed mid-write are found by their name prefix, not the index.
"""

from __future__ import annotations

import _posixshmem  # shm_unlink by name (POSIX; the segments live in /dev/shm on Linux)
import contextlib
import json
import os
import secrets
import shutil
import tempfile
import threading
import weakref
from multiprocessing import resource_tracker, shared_memory
from pathlib import Path
from typing import Any

import numpy as np

from .. import paths as P
from ..arrays import is_array, to_numpy
from ..errors import CorruptDataError, PathNotADirectoryError, UnsupportedTypeError
from .atomic import atomic_write
from .base import StatResult, StorageBackend
from .disk import DiskStorageBackend

__all__ = ["SharedMemoryStorageBackend"]

_SHM_DIR = Path("/dev/shm")
_INDEX_PREFIX = "hcsvfs-shm-"  # index folder: hcsvfs-shm-<owner pid>-<token>
_SEGMENT_PREFIX = "hcsvfs_"  # segment: hcsvfs_<token>_<random>
_OWNER_LOCK = P.RESERVED_PREFIX + "owner"  # in the index folder, locked by the owner while it lives


def _index_base() -> Path:
    """tmpfs where Linux has it (the index then lives in RAM too), else the temp folder."""
    return _SHM_DIR if _SHM_DIR.is_dir() else Path(tempfile.gettempdir())


def _untrack(shm: shared_memory.SharedMemory) -> None:
    # The namespace owner, not the resource tracker, decides when a segment dies.
    with contextlib.suppress(Exception):
        resource_tracker.unregister(shm._name, "shared_memory")  # type: ignore[attr-defined]


def _unlink_segment(name: str) -> None:
    # By name, without mapping it: a writer SIGKILLed between shm_open and ftruncate leaves an empty
    # segment that SharedMemory(name=...) cannot map ("cannot mmap an empty file"), and no tracker entry to undo.
    with contextlib.suppress(FileNotFoundError):
        _posixshmem.shm_unlink(name if name.startswith("/") else "/" + name)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class SharedMemoryStorageBackend(DiskStorageBackend):
    """NumPy-compatible arrays in shared memory, readable zero-copy by every process of a namespace.

    Create one in the parent (the owner); pass it to workers (it pickles as a
    handle to the same namespace). ``load`` returns a read-only view of the
    segment; other array types are copied to host NumPy on save.
    """

    name = "shared_memory"

    def __init__(self, namespace: str | None = None, *, owner: bool | None = None) -> None:
        if namespace is None:
            _reap_orphans()
            namespace = f"{os.getpid()}-{secrets.token_hex(4)}"
            owner = True if owner is None else owner
        self.namespace = namespace
        self.owner = bool(owner)
        self._token = namespace.rsplit("-", 1)[-1]
        self._index_dir = _index_base() / f"{_INDEX_PREFIX}{namespace}"
        super().__init__(self._index_dir, fsync=False, create_root=self.owner)
        if not self._index_dir.is_dir():
            raise FileNotFoundError(
                f"shared-memory namespace {namespace!r} does not exist (its owner closed it or never created it); "
                "create the backend in the parent process and pass it to the workers"
            )
        self._attached: dict[str, shared_memory.SharedMemory] = {}
        self._lock = threading.Lock()
        self._finalizer = None
        if self.owner:
            alive = _owner_lock(self._index_dir)
            alive.acquire()  # held until the namespace is destroyed, or the process dies
            self._finalizer = weakref.finalize(self, _destroy_namespace, self._index_dir, self._token, alive)

    def __reduce__(self) -> tuple[Any, ...]:
        return (SharedMemoryStorageBackend, (self.namespace,), None)

    def save_options(self, data: Any, path: str) -> frozenset[str]:
        return frozenset()  # the index records hold no format, so no format option applies

    def load_options(self, path: str) -> frozenset[str]:
        return frozenset()

    # ------------------------------------------------------------------ primitives
    def save(self, data: Any, path: P.PathLike, *, overwrite: bool = False, **options: Any) -> None:
        """Copy an array's bytes into a new segment and index it at ``path``."""
        p = P.normalize(path)
        self._check_options("save", options, (), p)
        if not is_array(data):
            raise UnsupportedTypeError(
                f"the shared_memory backend stores arrays only, not {type(data).__name__} (at {p!r}); "
                "use the memory backend for other objects",
                path=p,
                backend=self.name,
            )
        arr = np.ascontiguousarray(to_numpy(data))
        if arr.dtype.hasobject:
            raise UnsupportedTypeError(
                f"cannot put an object-dtype array in shared memory (at {p!r}); use the memory backend",
                path=p,
                backend=self.name,
            )
        replaced = self._check_target(p, overwrite)
        old = self._record(p)["segment"] if replaced else None
        seg = shared_memory.SharedMemory(
            create=True, size=max(arr.nbytes, 1), name=f"{_SEGMENT_PREFIX}{self._token}_{secrets.token_hex(8)}"
        )
        _untrack(seg)
        try:
            np.ndarray(arr.shape, arr.dtype, buffer=seg.buf)[...] = arr
            record = {"segment": seg.name, "dtype": arr.dtype.str, "shape": list(arr.shape), "pid": os.getpid()}
            body = json.dumps(record).encode()
            atomic_write(self._phys(p), lambda fh: fh.write(body), overwrite=overwrite, fsync=False, logical=p)
        except BaseException:
            seg.close()
            _unlink_segment(seg.name)
            raise
        seg.close()
        if old is not None and old != record["segment"]:
            self._forget(old)

    def load(self, path: P.PathLike, **options: Any) -> np.ndarray:
        """A read-only NumPy view of the segment (no copy)."""
        p = P.normalize(path)
        self._check_options("load", options, (), p)
        record = self._record(p)
        while True:
            try:
                seg = self._attach(record["segment"], p)
                break
            except CorruptDataError:
                # An overwrite may replace the index entry and unlink the old segment between our read
                # and the attach: that is a newer version, not damage. Read the entry again.
                newer = self._record(p)
                if newer["segment"] == record["segment"]:
                    raise
                record = newer
        view = np.ndarray(tuple(record["shape"]), np.dtype(record["dtype"]), buffer=seg.buf)
        view.flags.writeable = False
        return view

    def stat(self, path: P.PathLike) -> StatResult:
        st = super().stat(path)
        if st.is_dir:
            return st
        record = self._record(st.path)
        size = int(np.prod(record["shape"], dtype=np.int64)) * np.dtype(record["dtype"]).itemsize
        extra = {"dtype": record["dtype"], "shape": tuple(record["shape"]), "segment": record["segment"]}
        return StatResult(st.path, "file", size=size, mtime=st.mtime, extra=extra)

    # ------------------------------------------------------------------ mutation
    def delete_all(self, path: P.PathLike) -> None:
        StorageBackend.delete_all(self, path)  # file by file, so every segment is unlinked

    def copy(self, src: P.PathLike, dst: P.PathLike, *, overwrite: bool = False) -> None:
        StorageBackend.copy(self, src, dst, overwrite=overwrite)  # a copy owns a new segment

    def move(self, src: P.PathLike, dst: P.PathLike, *, overwrite: bool = False) -> None:
        d = P.normalize(dst)
        old = None
        if overwrite and self.is_file(d):
            old = self._record(d)["segment"]
        super().move(src, dst, overwrite=overwrite)
        if old is not None:
            self._forget(old)

    def _delete_file(self, path: str) -> None:
        segment = self._record(path)["segment"]
        super()._delete_file(path)
        self._forget(segment)

    # ------------------------------------------------------------------ lifetime
    def segments(self) -> list[str]:
        """Names of this namespace's segments that exist now (indexed or orphaned by a killed writer)."""
        if _SHM_DIR.is_dir():
            return sorted(n for n in os.listdir(_SHM_DIR) if n.startswith(f"{_SEGMENT_PREFIX}{self._token}_"))
        return sorted(self._record(f)["segment"] for f in self.list_files(".", recursive=True))

    def reap(self) -> int:
        """Unlink segments no index entry points to (left by a worker killed mid-save); returns how many."""
        live = {self._record(f)["segment"] for f in self.list_files(".", recursive=True)}
        orphans = [s for s in self.segments() if s not in live]
        for name in orphans:
            _unlink_segment(name)
        return len(orphans)

    def close(self) -> None:
        """Detach; the owner also unlinks every segment and the index (other processes' views stay valid)."""
        with self._lock:
            for seg in self._attached.values():
                with contextlib.suppress(BufferError):  # a live view still uses it; the mapping dies with it
                    seg.close()
            self._attached.clear()
        if self._finalizer is not None:
            self._finalizer()

    def __enter__(self) -> SharedMemoryStorageBackend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ helpers
    def _record(self, p: str) -> dict[str, Any]:
        target = self._phys(p)
        try:
            body = target.read_bytes()
        except FileNotFoundError:
            raise self._not_found(p) from None
        except IsADirectoryError:
            raise self._is_a_directory(p) from None
        except NotADirectoryError:
            raise PathNotADirectoryError(f"{p!r}: a parent of it is a file, not a directory", path=p, backend=self.name) from None
        try:
            return json.loads(body)
        except ValueError as exc:
            raise CorruptDataError(
                f"index entry {p!r} of shared-memory namespace {self.namespace!r} is unreadable ({exc}); delete it",
                path=p,
                backend=self.name,
            ) from exc

    def _attach(self, name: str, p: str) -> shared_memory.SharedMemory:
        with self._lock:
            seg = self._attached.get(name)
            if seg is None:
                try:
                    seg = shared_memory.SharedMemory(name=name)
                except FileNotFoundError:
                    raise CorruptDataError(
                        f"{p!r} is indexed but its shared-memory segment {name!r} is gone (its namespace was "
                        "closed); save it again",
                        path=p,
                        backend=self.name,
                    ) from None
                _untrack(seg)
                self._attached[name] = seg  # keep the mapping alive as long as views may use it
            return seg

    def _forget(self, name: str) -> None:
        with self._lock:
            seg = self._attached.pop(name, None)
        if seg is not None:
            # Views from load() keep only a reference to seg.buf, not a buffer export (NumPy's way), so
            # seg.close() would unmap memory that a reader may still be using: a segfault on its next read.
            # Disarm close() (also run by __del__) and let the mapping go when its last view does.
            seg._buf = None  # type: ignore[attr-defined]
            seg._mmap = None  # type: ignore[attr-defined]
        _unlink_segment(name)

    def __repr__(self) -> str:
        return f"<SharedMemoryStorageBackend namespace={self.namespace!r} owner={self.owner}>"


def _owner_lock(index_dir: Path) -> Any:
    from filelock import FileLock

    return FileLock(index_dir / _OWNER_LOCK, timeout=0, thread_local=False)


def _destroy_namespace(index_dir: Path, token: str, alive: Any = None) -> None:
    """Unlink every segment of a namespace and remove its index (owner close, exit, or orphan reaping);
    then let go of ``alive``, the owner lock held meanwhile."""
    prefix = f"{_SEGMENT_PREFIX}{token}_"
    names: set[str] = set()
    if _SHM_DIR.is_dir():
        names.update(n for n in os.listdir(_SHM_DIR) if n.startswith(prefix))
    for record in index_dir.rglob("*") if index_dir.is_dir() else ():
        if record.is_file():
            with contextlib.suppress(OSError, ValueError, KeyError):
                names.add(json.loads(record.read_bytes())["segment"])
    for name in names:
        _unlink_segment(name)
    shutil.rmtree(index_dir, ignore_errors=True)
    if alive is not None:
        alive.release()


def _reap_orphans() -> None:
    """Destroy namespaces whose owner died without closing them (e.g. SIGKILL)."""
    from filelock import Timeout

    base = _index_base()
    with contextlib.suppress(OSError):
        for entry in base.iterdir():
            if not entry.name.startswith(_INDEX_PREFIX):
                continue
            pid_text, _, token = entry.name[len(_INDEX_PREFIX) :].partition("-")
            if not (pid_text.isdigit() and token):
                continue
            if (entry / _OWNER_LOCK).exists():
                lock = _owner_lock(entry)
                try:
                    lock.acquire()  # only possible once the owner is gone, whatever PID namespace it ran in
                except Timeout:
                    continue
                _destroy_namespace(entry, token, lock)
            elif not _pid_alive(int(pid_text)):  # a namespace older than owner locks
                _destroy_namespace(entry, token)

