"""Where the bytes live: one zarr Store and the mapping from logical paths to its keys.

This is the only module that knows whether the store is a local folder, an
fsspec URL or an in-memory store; everything else talks to zarr through the
``StorePath`` values it hands out.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import threading
import time
import uuid
from collections.abc import Callable, Hashable, Iterator
from pathlib import Path
from typing import Any, TypeVar, cast

import numpy as np
from zarr.abc.store import Store
from zarr.core.buffer import default_buffer_prototype
from zarr.core.sync import sync
from zarr.storage import FsspecStore, LocalStore, StorePath

from ... import paths as P
from ...errors import CorruptDataError, InvalidPathError, PathNotFoundError
from ..atomic import TEMP_PREFIX, atomic_write, exchange
from ..locks import KeyedLocks, S3Lease, file_lock
from ..objectstore import fs_protocols

__all__ = ["StoreLocator", "LOCKS_FOLDER", "join_key"]

T = TypeVar("T")

_META = "zarr.json"
#: Hidden folder of a node holding the lock files (or lease objects) of its writers.
LOCKS_FOLDER = P.RESERVED_PREFIX + "locks"


class StoreLocator:
    """Maps logical paths to keys of one zarr store.

    ``root=None``: a local store where relative paths resolve against the
    working directory and absolute paths are used as they are. ``root=`` a
    folder (a jail, as on the disk backend) or a URL (``s3://bucket/x``, via
    fsspec). ``store=`` any zarr Store, also a jail.
    """

    def __init__(
        self, root: P.PathLike | None = None, store: Store | None = None, storage_options: dict[str, Any] | None = None
    ) -> None:
        if root is not None and store is not None:
            raise ValueError("give the zarr backend a root or a store, not both")
        if isinstance(root, str) and "://" in root:
            store = FsspecStore.from_url(root, storage_options=storage_options or {})
            root = None
        self._rooted: P.RootedPath | None = None
        if store is None:
            self._rooted = P.RootedPath(root)
            if root is not None:
                self._rooted.root.mkdir(parents=True, exist_ok=True)
            # Keys are absolute physical paths without the leading "/", so one store serves cwd-relative and absolute paths.
            store = LocalStore("/")
        self.store: Store = store
        #: The folder of a local store, for the few metadata operations done without zarr's event loop.
        self._local: Path | None = Path(store.root) if isinstance(store, LocalStore) else None
        self._memo = threading.local()  # see memo()
        self._threads = KeyedLocks()

    @property
    def local_root(self) -> Path | None:
        """The folder of a local jail (None for the unjailed cwd mode and for other stores)."""
        return self._rooted.root if self._rooted is not None and self._rooted.jailed else None

    def describe(self) -> str:
        if self._rooted is not None:
            return str(self._rooted.root) if self._rooted.jailed else "cwd"
        return repr(self.store)

    # ------------------------------------------------------------------ mapping
    def key(self, logical: str) -> str:
        """The store key (no leading or trailing '/') of a normalised logical path; '' is the store root.

        Within :meth:`memo` each path is mapped (and checked for links out of a jail: a realpath, one
        lstat per component) once per batch.
        """
        keys = getattr(self._memo, "keys", None)
        if keys is None:
            return self._key(logical)
        found = keys.get(logical)
        if found is None:
            found = keys[logical] = self._key(logical, checked=self._checked_ancestor(logical, keys))
        return found

    @staticmethod
    def _checked_ancestor(logical: str, keys: dict[str, str]) -> str | None:
        """The nearest folder above ``logical`` that this batch has already mapped (and so checked)."""
        path, parent = logical, P.parent(logical)
        while parent != path:  # the parent of "." and of "/" is itself
            if parent in keys:
                return parent
            path, parent = parent, P.parent(parent)
        return None

    def derived(self, name: Hashable, compute: Callable[[], T]) -> T:
        """``compute()``, once per batch within :meth:`memo` (e.g. a plate's wells by label); always outside one."""
        table = getattr(self._memo, "derived", None)
        if table is None:
            return compute()
        if name not in table:
            table[name] = compute()
        return cast(T, table[name])

    def _key(self, logical: str, *, checked: str | None = None) -> str:
        if self._rooted is not None:
            # Below a folder this batch already checked, an lstat of each name under it proves the path
            # stays in the jail unless one of them is a link (then the full realpath check runs).
            physical = self._rooted.physical(logical, check_symlinks=checked is None)
            if checked is not None and self._rooted.jailed and _link_below(physical, logical, checked):
                physical = self._rooted.physical(logical)
            return physical.as_posix().lstrip("/")
        if logical == ".":
            return ""
        if logical.startswith(("/", "../")) or logical == "..":
            raise InvalidPathError(
                f"path {logical!r} leaves this zarr store; use a path relative to the store's root", path=logical
            )
        return logical

    def node(self, logical: str) -> StorePath | Store:
        """A store rooted *at* ``logical``, for creating nodes there.

        zarr writes group metadata into every missing parent of a new node; rooting the
        store at the node keeps that inside it (never ``/tmp/zarr.json`` in cwd mode).
        """
        if self._rooted is not None:
            return LocalStore(self._rooted.physical(logical))
        key = self.key(logical)
        if isinstance(self.store, FsspecStore) and key:
            # On an object store each parent zarr checks (and writes) is a request: ~6 per plate field.
            base = self.store.path.rstrip("/")
            return FsspecStore(self.store.fs, read_only=self.store.read_only, path=f"{base}/{key}" if base else key)
        return StorePath(self.store, key)

    # ------------------------------------------------------------------ raw access
    @contextlib.contextmanager
    def memo(self) -> Iterator[None]:
        """Within the block, this thread reads each node's metadata once (a batch sees one snapshot).

        Writes through :meth:`write_meta` update the snapshot, so a batch still sees its own writes.
        """
        if getattr(self._memo, "table", None) is not None:
            yield  # nested: the outer snapshot stays
            return
        self._memo.table, self._memo.keys, self._memo.derived = {}, {}, {}
        try:
            yield
        finally:
            self._memo.table = self._memo.keys = self._memo.derived = None

    def read_meta(self, key: str, *, v2: bool = True, fresh: bool = False) -> dict[str, Any] | None:
        """The metadata of the node at ``key``, or None if there is none.

        zarr v3: the parsed ``zarr.json``. zarr v2 (most NGFF 0.4 data), tried when there
        is no ``zarr.json`` and ``v2``: a dict of the same shape, ``{"zarr_format": 2,
        "node_type": "group" | "array", "attributes": <.zattrs>}``, plus ``"v2"``: the
        ``.zarray`` of an array. Callers that know the node is hcsvfs's own (v3) pass
        ``v2=False``: on an object store each probe is a request. ``fresh=True`` reads again
        past the batch memo (a node that may have appeared since).
        """
        table = getattr(self._memo, "table", None)
        if table is None:
            return self._read_meta(key, v2)
        cached = table.get(key)
        if fresh or cached is None or (v2 and cached[0] is None and not cached[1]):
            cached = table[key] = (self._read_meta(key, v2), v2)
        return cached[0]

    def _read_meta(self, key: str, v2: bool) -> dict[str, Any] | None:
        doc = self._read_json(key, _META)
        if doc is not None or not v2:
            return doc
        for name, node_type in ((".zarray", "array"), (".zgroup", "group")):
            doc = self._read_json(key, name)
            if doc is not None:
                attrs = self._read_json(key, ".zattrs") or {}
                meta: dict[str, Any] = {"zarr_format": 2, "node_type": node_type, "attributes": attrs}
                if node_type == "array":
                    meta["v2"] = doc
                return meta
        return None

    def _read_json(self, key: str, name: str) -> dict[str, Any] | None:
        """The JSON object stored at ``key/name``; None if absent, CorruptDataError if it does not parse."""
        if self._local is not None:
            # A plain file read: zarr's sync() hop to its event loop costs ~1-2 ms on a busy machine.
            try:
                raw = (self._local / join_key(key, name)).read_bytes()
            except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
                return None
        else:
            buf = sync(self.store.get(join_key(key, name), prototype=default_buffer_prototype()))
            if buf is None:
                return None
            raw = buf.to_bytes()
        try:
            doc = json.loads(raw)
        except ValueError as exc:
            raise self._corrupt(key, name, f"is not JSON ({exc})") from None
        if not isinstance(doc, dict):
            raise self._corrupt(key, name, f"holds a JSON {type(doc).__name__}, not an object")
        return doc

    def _corrupt(self, key: str, name: str, what: str) -> CorruptDataError:
        where = str(self._local / key / name) if self._local is not None else f"{self.store}/{join_key(key, name)}"
        return CorruptDataError(
            f"the zarr metadata {where!r} {what}; the node is damaged. Restore it from a copy, "
            "or delete the node and write it again",
            path=key,
            backend="zarr",
        )

    def write_meta(self, key: str, meta: dict[str, Any]) -> None:
        """Replace the ``zarr.json`` at ``key`` in one store write (the commit point of a node)."""
        data = json.dumps(meta, indent=2).encode()
        table = getattr(self._memo, "table", None)
        if table is not None:
            table[key] = (meta, True)
        if self._local is not None:
            # Temp file + rename: a reader sees the old metadata or the new, never half of it.
            target = self._local / join_key(key, _META)
            target.parent.mkdir(parents=True, exist_ok=True)
            atomic_write(target, lambda fh: fh.write(data), overwrite=True, fsync=False)
            return
        sync(self.store.set(join_key(key, _META), default_buffer_prototype().buffer.from_bytes(data)))

    def is_folder(self, key: str) -> bool:
        """A folder at ``key`` without zarr metadata: a local directory (empty or not), elsewhere a prefix
        with something under it (object stores have no empty folders)."""
        if self._local is not None:
            return (self._local / key).is_dir()
        return self.has_children(key)

    def make_folder(self, key: str) -> None:
        """A plain folder at ``key`` on a local store (elsewhere a folder exists once something is under it)."""
        if self._local is not None:
            (self._local / key).mkdir(parents=True, exist_ok=True)

    def is_plain_file(self, key: str) -> bool:
        """True where a local store has a file (not a folder) at ``key``: another backend's, never a zarr node."""
        return self._local is not None and (self._local / key).is_file()

    def children(self, key: str) -> list[str]:
        """Names directly below ``key`` in the store (files and prefixes alike); hcsvfs's own (temp files, locks) hidden."""
        if self._local is not None:
            try:
                names = os.listdir(self._local / key)
            except (FileNotFoundError, NotADirectoryError):
                return []
        else:
            names = sync(_collect(self.store.list_dir(key)))
        return [n for n in names if not P.is_reserved_name(n)]

    def has_children(self, key: str) -> bool:
        try:
            return bool(self.children(key))
        except (FileNotFoundError, NotADirectoryError):
            return False

    def size(self, key: str) -> int:
        """Bytes stored under ``key`` (a node and all it holds)."""
        try:
            return int(sync(self.store.getsize_prefix(key)))
        except FileNotFoundError:
            raise PathNotFoundError(
                f"{key!r} vanished while being measured (moved or deleted meanwhile)", path=key, backend="zarr"
            ) from None

    def delete_tree(self, key: str) -> None:
        """Remove ``key`` and everything below it."""
        sync(self.store.delete_dir(key))

    def delete_key(self, key: str) -> None:
        sync(self.store.delete(key))

    @property
    def can_rename(self) -> bool:
        """True where a whole node can be moved in one atomic step (a local folder)."""
        return self._local is not None

    def rename_node(self, src: str, dst: str, *, replace: bool) -> None:
        """Atomically move the node at key ``src`` to ``dst`` (local stores only).

        Without ``replace`` an existing ``dst`` raises FileExistsError (exactly one of
        racing creators wins); with it the two are exchanged atomically where Linux
        allows (readers see the old node or the new, never neither) and the old deleted.
        """
        assert self._local is not None, "rename_node needs a local store; check can_rename"
        source, target = self._local / src, self._local / dst
        if not replace:
            if target.exists():
                _raise_exists(dst)
            try:
                os.rename(source, target)  # onto a racer's finished image (never empty): ENOTEMPTY
            except OSError as exc:
                if exc.errno in (errno.EEXIST, errno.ENOTEMPTY, errno.EISDIR, errno.ENOTDIR):
                    _raise_exists(dst)
                raise
            return
        if not target.exists():
            os.rename(source, target)
            return
        try:
            swapped = exchange(source, target)
        except FileNotFoundError:  # a racing deleter took the old node a moment ago: nothing left to swap with
            os.rename(source, target)
            return
        if swapped:
            shutil.rmtree(source, ignore_errors=True)  # the old node now lives under the temp name
            return
        old = target.with_name(TEMP_PREFIX + "old-" + uuid.uuid4().hex)
        os.rename(target, old)
        os.rename(source, target)  # without RENAME_EXCHANGE readers miss the node between these two renames
        shutil.rmtree(old, ignore_errors=True)

    @contextlib.contextmanager
    def lock(self, logical: str, name: str, *, timeout: float, lease_ttl: float) -> Iterator[Callable[[], None]]:
        """Hold the lock ``name`` of node ``logical`` against every writer that can reach this store.

        Threads of this process, then: other processes through a file lock (a local store), other
        machines through an :class:`S3Lease` (S3). Other stores (a MemoryStore, ``memory://``) are
        reachable from one process only. Yields a check to call before committing: it raises if a
        lease was broken meanwhile.
        """
        key = join_key(join_key(self.key(logical), LOCKS_FOLDER), name)
        what = f"{logical} ({name} lock)"
        with self._threads.hold(key, timeout, what=what):
            if self._local is not None:
                with file_lock(self._local / key, timeout, what=what):
                    yield _held
                return
            if isinstance(self.store, FsspecStore) and "s3" in fs_protocols(self.store.fs):
                fs = self.store.fs
                bucket, path, _ = fs.split_path(join_key(self.store.path.rstrip("/"), key))

                def call(method: str, **kwargs: Any) -> dict[str, Any]:
                    return sync(fs._call_s3(method, **kwargs))  # zarr's loop owns this async client

                with S3Lease(call, bucket, path, ttl=lease_ttl, timeout=timeout, what=what) as lease:
                    yield lease.verify
                return
            yield _held

    def probe_bandwidth(self, nbytes: int = 8 << 20) -> float:
        """Bytes/s of writing ``nbytes`` into the store until they are stored, and reading them back.

        The probe is random bytes (incompressible, as compressed chunks are) under a hidden key at the
        store's root, deleted afterwards. On a local folder the write includes an fsync (a plate is
        larger than the page cache, so the disk's own speed is what its writes end up waiting for), and
        the figure is kept for the process: every backend on that device reuses it.
        """
        if self._local is None:
            return self._probe(nbytes)
        device = (self._local / self.key(".")).stat().st_dev
        with _LOCAL_SPEED_LOCK:  # one probe per local device and process: every backend there shares it
            if device not in _LOCAL_SPEED:
                _LOCAL_SPEED[device] = self._probe(nbytes)
            return _LOCAL_SPEED[device]

    def _probe(self, nbytes: int) -> float:
        key = join_key(self.key("."), f"{TEMP_PREFIX}bandwidth-{uuid.uuid4().hex}")
        payload = default_buffer_prototype().buffer.from_bytes(_random_bytes(nbytes))
        start = time.perf_counter()
        try:
            sync(self.store.set(key, payload))
            if self._local is not None:
                with open(self._local / key, "rb") as fh:
                    os.fsync(fh.fileno())
            sync(self.store.get(key, prototype=default_buffer_prototype()))
            return 2 * nbytes / max(time.perf_counter() - start, 1e-9)
        finally:
            sync(self.store.delete(key))

    def temp_sibling(self, logical: str) -> str:
        """A fresh logical path next to ``logical`` that listings hide (for write-then-rename)."""
        head, _, _ = logical.rpartition("/")
        name = f"{TEMP_PREFIX}{uuid.uuid4().hex}"
        return f"{head}/{name}" if head else name


#: Bytes/s of each local device (st_dev) probed in this process; see StoreLocator.probe_bandwidth.
_LOCAL_SPEED: dict[int, float] = {}
_LOCAL_SPEED_LOCK = threading.Lock()


def _random_bytes(n: int) -> bytes:
    """``n`` incompressible bytes, fast (os.urandom of a few MB costs more than the probe it feeds)."""
    return np.random.default_rng().integers(0, 256, n, dtype=np.uint8).tobytes()


def _held() -> None:
    """The commit check of a lock that cannot be lost while its holder lives (thread and file locks)."""


def _raise_exists(key: str) -> None:
    raise FileExistsError(errno.EEXIST, "exists", key)


def join_key(key: str, name: str) -> str:
    """The store key of ``name`` below ``key`` (``""`` is the store root)."""
    return f"{key}/{name}" if key else name


async def _collect(it: Any) -> list[str]:
    return [x async for x in it]


def _link_below(physical: Path, logical: str, checked: str) -> bool:
    """Whether any name of ``physical`` below its already checked ancestor ``checked`` is a symlink."""
    below = logical if checked == "." else logical[len(checked) :].strip("/")
    return any(p.is_symlink() for p in [physical, *physical.parents[: below.count("/")]])
