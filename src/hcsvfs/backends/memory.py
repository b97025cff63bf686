"""The memory backend: live objects by logical path, no serialisation, no copy."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, MutableMapping, Sequence
from typing import Any

from .. import paths as P
from ..arrays import nbytes
from ..errors import PathNotADirectoryError
from .base import StatResult, StorageBackend, match_file, normalize_extensions

__all__ = ["MemoryStorageBackend", "DIRECTORY"]


class _Directory:
    """Marks an explicit directory in the store (so a shared dict holds both files and folders)."""

    _instance: _Directory | None = None

    def __new__(cls) -> _Directory:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "<directory>"

    def __reduce__(self) -> str:
        return "DIRECTORY"  # unpickles to the module singleton


DIRECTORY = _Directory()
_ROOTS = (".", "/")
_ABSENT = object()


class MemoryStorageBackend(StorageBackend):
    """Keeps objects in a dict: ``load`` returns the very object that was saved.

    Directories are explicit entries. One re-entrant lock guards every
    operation, so a reader never sees half of a batch. Each instance is its own
    namespace unless you pass ``store=`` to share one mapping on purpose
    (``shared_dict=`` is the original system's name for it, e.g. a
    ``multiprocessing.Manager().dict()`` several processes see; the lock is
    this instance's, so writers in other processes are not serialised with it).
    """

    name = "memory"

    def __init__(
        self, store: MutableMapping[str, Any] | None = None, *, shared_dict: MutableMapping[str, Any] | None = None
    ) -> None:
        if store is not None and shared_dict is not None:
            raise ValueError("give the memory backend store= or shared_dict= (the same thing), not both")
        store = store if store is not None else shared_dict
        #: A mapping given on purpose travels with the backend when it is pickled (a Manager dict reconnects);
        #: the backend's own dict does not (a worker gets an empty namespace).
        self._given_store = store is not None
        self._store: MutableMapping[str, Any] = store if store is not None else {}
        self._mtimes: dict[str, float] = {}
        self._lock = threading.RLock()

    def __reduce__(self) -> tuple[Any, ...]:
        # Live objects do not cross processes: a pickled memory backend arrives empty, unless its mapping was
        # given (store= / shared_dict=), which travels as it pickles (a multiprocessing Manager dict reconnects).
        return (MemoryStorageBackend, (self._store,) if self._given_store else ())

    # ------------------------------------------------------------------ primitives
    def save(self, data: Any, path: P.PathLike, *, overwrite: bool = False, **options: Any) -> None:
        p = P.checked(path)
        if options:
            self._check_options("save", options, (), p)
        with self._lock:
            if not self._can_put(p, overwrite):
                self._check_target(p, overwrite)  # raises the precise, fail-loud error
            self._put(p, data)

    def save_batch(
        self, data_list: Sequence[Any], paths: Sequence[P.PathLike], *, overwrite: bool = False, **options: Any
    ) -> None:
        if options:
            self._check_options("save_batch", options, (), "")
        with self._lock:  # checked and inserted under one lock: all or nothing to readers
            logical = self._check_batch(data_list, paths, overwrite=overwrite)
            for data, p in zip(data_list, logical):
                self._put(p, data)

    def load(self, path: P.PathLike, **options: Any) -> Any:
        if options:
            self._check_options("load", options, (), str(path))
        with self._lock:
            # Stored keys are canonical, so a hit on the raw string is what normalize() would find.
            obj = self._store.get(path, _ABSENT) if type(path) is str else _ABSENT
            if obj is not _ABSENT and obj is not DIRECTORY:
                return obj
            p = P.checked(path)
            obj = self._store.get(p, _ABSENT)
            if obj is _ABSENT:
                if p in _ROOTS:
                    raise self._is_a_directory(p)
                self._raise_missing(p)
            if obj is DIRECTORY:
                raise self._is_a_directory(p)
            return obj

    def load_batch(self, paths: Sequence[P.PathLike], **options: Any) -> list[Any]:
        if options:
            self._check_options("load_batch", options, (), "")
        with self._lock:
            return [self.load(p) for p in paths]

    def stat(self, path: P.PathLike) -> StatResult:
        p = P.checked(path)
        with self._lock:
            if p in _ROOTS:
                return StatResult(p, "directory")
            try:
                obj = self._store[p]
            except KeyError:
                self._raise_missing(p)
            if obj is DIRECTORY:
                return StatResult(p, "directory", mtime=self._mtimes.get(p))
            return StatResult(
                p, "file", size=nbytes(obj), mtime=self._mtimes.get(p), extra={"type": type(obj).__name__}
            )

    def exists(self, path: P.PathLike) -> bool:
        p = P.checked(path)
        with self._lock:
            return p in _ROOTS or p in self._store

    def list_dir(self, path: P.PathLike = ".") -> list[str]:
        p = P.checked(path)
        with self._lock:
            self._require_dir(p)
            prefix = _prefix(p)
            return P.natural_sorted({k[len(prefix) :].split("/", 1)[0] for k in self._keys_below(p)})

    def list_files(
        self,
        path: P.PathLike = ".",
        pattern: str | None = None,
        extensions: Iterable[str] | str | None = None,
        recursive: bool = False,
    ) -> list[str]:
        base = P.checked(path)
        exts = normalize_extensions(extensions)
        prefix = _prefix(base)
        with self._lock:
            self._require_dir(base)
            out = []
            for key in self._keys_below(base):
                rest = key[len(prefix) :]
                wanted = (recursive or "/" not in rest) and self._store[key] is not DIRECTORY
                if wanted and match_file(P.basename(key), pattern, exts):
                    out.append(key)
            return P.natural_sorted(out)

    def ensure_directory(self, path: P.PathLike) -> None:
        p = P.checked(path)
        with self._lock:
            if p in _ROOTS or self._store.get(p) is DIRECTORY:
                return  # a directory entry implies its ancestors (they are created and removed together)
            for d in [*P.ancestors(p), p]:
                if d in _ROOTS:
                    continue
                current = self._store.get(d)
                if current is None:
                    self._store[d] = DIRECTORY
                    self._mtimes[d] = time.time()
                elif current is not DIRECTORY:
                    raise PathNotADirectoryError(
                        f"cannot create directory {p!r} on the memory backend: {d!r} is a file", path=p, backend=self.name
                    )

    # ------------------------------------------------------------------ mutation
    def delete(self, path: P.PathLike) -> None:
        with self._lock:
            super().delete(path)

    def delete_all(self, path: P.PathLike) -> None:
        p = P.checked(path)
        with self._lock:
            self.stat(p)
            self._check_not_root(p)
            for key in list(self._keys_below(p)):
                self._drop(key)
            self._drop(p)

    def move(self, src: P.PathLike, dst: P.PathLike, *, overwrite: bool = False) -> None:
        s, d = P.checked(src), P.checked(dst)
        with self._lock:  # a rename of keys: atomic to readers and zero-copy
            st = self.stat(s)
            self._check_transfer(s, d, st, overwrite)
            moved = [(k, d + k[len(s) :]) for k in [s, *self._keys_below(s)]]
            for old, new in moved:
                self._store[new] = self._store[old]
                self._mtimes[new] = self._mtimes.get(old, time.time())
            for old, _ in moved:
                self._drop(old)

    def copy(self, src: P.PathLike, dst: P.PathLike, *, overwrite: bool = False) -> None:
        # Copies are shallow (the same live objects under a second name), like every other memory op.
        with self._lock:
            super().copy(src, dst, overwrite=overwrite)

    def _delete_file(self, path: str) -> None:
        self._drop(path)

    def _delete_empty_dir(self, path: str) -> None:
        self._drop(path)

    # ------------------------------------------------------------------ internals
    def _can_put(self, path: str, overwrite: bool) -> bool:
        """The save rules' common cases in two dict lookups; False sends the caller to the full check."""
        current = self._store.get(path, _ABSENT)
        if current is _ABSENT:
            head, sep, _ = path.rpartition("/")
            parent_ok = not sep or head == "" or self._store.get(head) is DIRECTORY
            return parent_ok and path not in _ROOTS
        return overwrite and current is not DIRECTORY

    def _put(self, path: str, data: Any) -> None:
        self._store[path] = data
        self._mtimes[path] = time.time()

    def _drop(self, path: str) -> None:
        self._store.pop(path, None)
        self._mtimes.pop(path, None)

    def _keys_below(self, path: str) -> list[str]:
        prefix = _prefix(path)
        if path == ".":
            return [k for k in self._store if not k.startswith("/")]
        return [k for k in self._store if k.startswith(prefix)]

    def _raise_missing(self, path: str) -> None:
        # A file where a parent should be reads better as "not a directory" than "not found".
        for anc in P.ancestors(path):
            if self._store.get(anc, DIRECTORY) is not DIRECTORY:
                raise PathNotADirectoryError(
                    f"{path!r} cannot exist on the memory backend: {anc!r} is a file", path=path, backend=self.name
                )
        raise self._not_found(path)

    def __len__(self) -> int:
        with self._lock:
            return sum(1 for v in self._store.values() if v is not DIRECTORY)

    def __repr__(self) -> str:
        return f"<MemoryStorageBackend {len(self)} objects>"


def _prefix(path: str) -> str:
    if path == ".":
        return ""
    return path if path.endswith("/") else path + "/"
