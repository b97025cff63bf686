"""The object-store backend: objects as keys under any fsspec URL (s3://, gs://, memory://, file://).

Formats are the disk backend's (:mod:`hcsvfs.formats`): an object is
serialised into a local bytes buffer first and sent in one piece, so a reader
sees the old object or the complete new one, never half of one:

* S3 (s3fs): one PUT (or a multipart upload, which also appears only when
  complete). Fail-loud create is a conditional write (``If-None-Match: *``),
  enforced by the server, so of racing creators exactly one wins.
* Local files (file://): :func:`hcsvfs.backends.atomic.atomic_write` (temp file,
  then link or rename).
* Anything else (memory://, gs://, ...): upload to a hidden temp key next to
  the target, then move it onto the final key.

Object stores have no directories, so a directory is emulated by a hidden
marker object ``<dir>/.hcsvfs-dir``: empty directories survive, and a prefix
that holds objects (written by another tool) is a directory too.
"""

from __future__ import annotations

import contextlib
import copy
import io
import shutil
import threading
import time
import uuid
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from .. import paths as P
from ..errors import (
    InvalidPathError,
    PathExistsError,
    PathNotADirectoryError,
    PathNotFoundError,
    StorageError,
)
from ..formats import FormatRegistry
from ..formats import formats as default_formats
from ..formats.base import SNIFF_BYTES, read_object, write_object
from .atomic import TEMP_PREFIX, atomic_write
from .base import StatResult, StorageBackend, match_file, normalize_extensions
from .cache import ByteCache

__all__ = [
    "ObjectStoreBackend",
    "ObjectStoreError",
    "ObjectStorePermissionError",
    "DIR_MARKER",
    "S3_DEFAULT_OPTIONS",
    "fsspec_options",
    "fs_protocols",
]

#: Hidden object that makes a directory exist on a store without directories.
DIR_MARKER = ".hcsvfs-dir"

#: s3fs defaults: bounded timeouts and retries (a dead endpoint fails in seconds, not minutes),
#: and no listing cache (another process or worker may have changed the bucket).
S3_DEFAULT_OPTIONS: dict[str, Any] = {
    "use_listings_cache": False,
    "config_kwargs": {"connect_timeout": 5, "read_timeout": 30, "retries": {"max_attempts": 2, "mode": "standard"}},
}
#: s3fs's own attempts (around botocore's) for transient errors. Worst case for an endpoint that
#: accepts but never answers: 2 x 2 attempts x 30 s = 2 minutes; a blackholed one: 2 x 2 x 5 s.
_S3_RETRIES = 2

# memory:// is one process-wide store: its check-then-move commit is made exclusive here.
_STAGED_LOCK = threading.Lock()


class ObjectStoreError(StorageError, OSError):
    """The object store could not be reached or refused a request for another reason than permissions."""


class ObjectStorePermissionError(StorageError, PermissionError):
    """The object store refused the credentials or the request (HTTP 403, bad keys)."""


class ObjectStoreBackend(StorageBackend):
    """Objects under an fsspec URL root, in the disk backend's formats.

    ``url`` is any fsspec URL (``s3://bucket/prefix``, ``gs://b/p``,
    ``memory://name``, ``file:///abs/dir``). Credentials and endpoint come from
    arguments (``endpoint_url=``, ``key=``, ``secret=``, any fsspec/s3fs
    storage option) or the usual environment and config files (``AWS_*``,
    ``~/.aws``, ``AWS_ENDPOINT_URL``). ``cache`` (a :class:`ByteCache`) keeps
    recently read objects on local disk. Logical paths are relative to the
    root; ``..`` out of it and absolute paths are rejected.
    """

    name = "objectstore"

    def __init__(
        self,
        url: str,
        *,
        endpoint_url: str | None = None,
        cache: ByteCache | None = None,
        formats: FormatRegistry | None = None,
        claim_ttl: float = 60.0,
        **storage_options: Any,
    ) -> None:
        import fsspec

        protocol = fsspec.core.split_protocol(url)[0] or "file"
        self.url = url if url.endswith("://") else url.rstrip("/")
        options = dict(storage_options)
        if endpoint_url is not None:
            options["endpoint_url"] = endpoint_url
        self._is_s3 = protocol in ("s3", "s3a")
        options = fsspec_options(self.url, options)
        self._options = options  # may hold credentials: never printed, logged or put in a message
        self.fs, root = self._make_fs()
        self._root = root.rstrip("/") if root not in ("/", "") else root
        self._is_local = "file" in fs_protocols(self.fs)
        if self._is_s3 and not self._root.strip("/"):
            raise InvalidPathError(f"{self.url!r} names no bucket; mount a URL such as 's3://bucket/prefix'", path=self.url)
        self.cache = cache
        self.formats = formats if formats is not None else default_formats
        self.claim_ttl = claim_ttl
        self._batch = threading.local()  # per-thread folder listings while save_batch checks its paths
        if self._is_local:
            Path(self._root).mkdir(parents=True, exist_ok=True)

    # ------------------------------------------------------------------ paths
    @property
    def storage_options(self) -> dict[str, Any]:
        """The fsspec options this backend was built with (for zarr's FsspecStore); may hold credentials."""
        return dict(self._options)

    def url_for(self, path: P.PathLike = ".") -> str:
        """The full URL of logical ``path`` (e.g. to open it with zarr or another fsspec tool)."""
        p = self._logical(path)
        return self.url if p == "." else f"{self.url}/{p}"

    def _logical(self, path: P.PathLike) -> str:
        p = P.checked(path, escapes=False)  # reserved and over-long names; '..' and absolute paths are refused below
        if p.startswith("/"):
            raise InvalidPathError(
                f"absolute path {p!r} on the object store {self.url!r}; use a path relative to the mount root",
                path=p,
                backend=self.name,
            )
        if p == ".." or p.startswith("../"):
            raise InvalidPathError(
                f"path {str(path)!r} escapes the root of {self.url!r} with '..'; use a path inside it",
                path=str(path),
                backend=self.name,
            )
        if not _key_safe(p):
            raise InvalidPathError(
                f"path {p!r} has control characters or is not valid UTF-8; object keys with them break "
                "S3 tools and URLs, so rename it",
                path=repr(p),
                backend=self.name,
            )
        return p

    def _key(self, p: str) -> str:
        return self._root if p == "." else f"{self._root}/{p}"

    # ------------------------------------------------------------------ errors
    @contextlib.contextmanager
    def _io(self, operation: str, path: str) -> Iterator[None]:
        """Turn transport and permission failures into hcsvfs errors that name the URL, never the credentials."""
        try:
            yield
        except (StorageError, FileExistsError):
            raise  # FileExistsError is the conditional write losing a race: the caller words it
        except FileNotFoundError as exc:
            raise PathNotFoundError(
                f"{operation} {path!r} on {self.url!r}: not found ({exc}); it may have been removed meanwhile",
                path=path,
                backend=self.name,
            ) from None
        except (IsADirectoryError, NotADirectoryError) as exc:
            raise PathNotADirectoryError(
                f"{operation} {path!r} on {self.url!r}: a file and a directory are in each other's way ({exc})",
                path=path,
                backend=self.name,
            ) from None
        except PermissionError as exc:
            raise ObjectStorePermissionError(
                f"{operation} {path!r} on {self.url!r} was refused: {exc}. Check the credentials "
                "(key/secret arguments, AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, ~/.aws) and the bucket policy",
                path=path,
                backend=self.name,
            ) from None
        except Exception as exc:
            if _unreachable(exc):
                raise ObjectStoreError(
                    f"{operation} {path!r} on {self.url!r} failed: the store could not be reached "
                    f"({type(exc).__name__}: {exc}). Check that the endpoint is reachable; nothing half-written "
                    "is visible, so rerunning is safe",
                    path=path,
                    backend=self.name,
                ) from exc
            if isinstance(exc, OSError):  # s3fs/gcsfs turn what the server answered into OSErrors
                raise ObjectStoreError(
                    f"{operation} {path!r} on {self.url!r} failed: the store answered {type(exc).__name__}: {exc}. "
                    "Nothing half-written is visible; if the error is transient, rerunning is safe",
                    path=path,
                    backend=self.name,
                ) from exc
            raise  # not a storage failure (a wrong argument, a bug): shown as it is

    # ------------------------------------------------------------------ low-level store access
    def _info(self, key: str) -> dict[str, Any] | None:
        try:
            return self.fs.info(key)
        except (FileNotFoundError, NotADirectoryError):
            return None

    def _ls(self, key: str, *, detail: bool) -> list[Any]:
        """Entries of a directory already known to exist; an empty root prefix has no objects, so S3 says 404."""
        try:
            return self.fs.ls(key, detail=detail)
        except FileNotFoundError:
            return []

    def _put_bytes(self, key: str, data: bytes, *, overwrite: bool) -> None:
        """Make ``data`` the complete object at ``key``; FileExistsError if present and not ``overwrite``."""
        if self._is_s3:
            self.fs.pipe_file(key, data, mode="overwrite" if overwrite else "create")
        elif self._is_local:
            atomic_write(Path(key), lambda fh: fh.write(data), overwrite=overwrite)
        else:
            self._staged_put(key, data, overwrite=overwrite)

    def _staged_put(self, key: str, data: bytes, *, overwrite: bool) -> None:
        parent, _, _ = key.rpartition("/")
        temp = f"{parent}/{TEMP_PREFIX}{uuid.uuid4().hex}.tmp"
        self.fs.pipe_file(temp, data)
        try:
            with _STAGED_LOCK:
                if not overwrite and self.fs.exists(key):
                    raise FileExistsError(key)
                self.fs.mv(temp, key)
        finally:
            with contextlib.suppress(FileNotFoundError):
                self.fs.rm_file(temp)

    def _read_bytes(self, p: str) -> bytes:
        key = self._key(p)
        try:
            if self.cache is None:
                return self._get(key, None)
            info = self._info(key)
            if info is None or info.get("type") != "file":
                raise FileNotFoundError(key)
            version = _version(info)
            url = self.url_for(p)
            data = self.cache.get(url, version)
            if data is None:
                data = self._get(key, info.get("size"))
                if len(data) == info.get("size", len(data)):  # skip a copy torn by a concurrent overwrite
                    self.cache.put(url, version, data)
            return data
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            if self.is_dir(p):
                raise self._is_a_directory(p) from None
            raise self._not_found(p) from None

    def _get(self, key: str, size: int | None) -> bytes:
        """One GET; s3fs would first HEAD every object to decide on parallel ranged reads, which only pays
        for objects above its block size (so only when the size is known to be that large)."""
        if not self._is_s3:
            return self.fs.cat_file(key)
        if size is not None and size > self.fs.default_block_size:
            return self.fs.cat_file(key)
        return self.fs.cat_file(key, max_concurrency=1)

    def _invalidate(self, p: str) -> None:
        if self.cache is not None:
            self.cache.invalidate(self.url_for(p))

    # ------------------------------------------------------------------ options
    def save_options(self, data: Any, path: str) -> frozenset[str]:
        return self.formats.save_options(data, path)

    def load_options(self, path: str) -> frozenset[str]:
        return self.formats.load_options(path)

    # ------------------------------------------------------------------ primitives
    def save(
        self,
        data: Any,
        path: P.PathLike,
        *,
        overwrite: bool = False,
        allow_pickle: bool = False,
        **options: Any,
    ) -> None:
        p = self._logical(path)
        fmt = self.formats.for_save(data, p, allow_pickle=allow_pickle)
        self._check_options("save", options, fmt.options("save") | {"allow_pickle"}, p)
        with self._io("save", p):
            self._check_target(p, overwrite)
        self._commit(p, self._encode(fmt, data, p, options), overwrite=overwrite)

    def _encode(self, fmt: Any, data: Any, p: str, options: dict[str, Any]) -> bytes:
        buf = io.BytesIO()
        write_object(fmt, data, buf, options, path=p, backend=self.name)
        return buf.getvalue()

    def save_batch(
        self,
        data_list: Sequence[Any],
        paths: Sequence[P.PathLike],
        *,
        overwrite: bool = False,
        allow_pickle: bool = False,
        **options: Any,
    ) -> None:
        """Check every path first (one listing per folder), then write each object as save() does."""
        logical = [self._logical(p) for p in paths]
        fmts = [self.formats.for_save(d, p, allow_pickle=allow_pickle) for d, p in zip(data_list, logical)]
        for fmt, p in zip(fmts, logical):
            self._check_options("save_batch", options, fmt.options("save") | {"allow_pickle"}, p)
        self._batch.listings = {}
        try:
            self._check_batch(data_list, logical, overwrite=overwrite)
        finally:
            self._batch.listings = None
        for data, p, fmt in zip(data_list, logical, fmts):
            self._commit(p, self._encode(fmt, data, p, options), overwrite=overwrite)  # a racing creator still loses loudly here

    def _commit(self, p: str, data: bytes, *, overwrite: bool) -> None:
        self._invalidate(p)
        try:
            with self._io("save", p):
                self._put_bytes(self._key(p), data, overwrite=overwrite)
        except FileExistsError:
            raise PathExistsError(
                f"{p!r} was created on {self.url!r} by another writer while this one was saving; "
                "pass overwrite=True to replace it",
                path=p,
                backend=self.name,
            ) from None
        finally:
            self._invalidate(p)

    def load(self, path: P.PathLike, *, allow_pickle: bool = False, **options: Any) -> Any:
        p = self._logical(path)
        self._check_options("load", options, self.formats.load_options(p), p)
        with self._io("load", p):
            data = self._read_bytes(p)
        fmt = self.formats.for_load(p, data[:SNIFF_BYTES], allow_pickle=allow_pickle)
        return read_object(fmt, io.BytesIO(data), options, path=p, backend=self.name)

    def stat(self, path: P.PathLike) -> StatResult:
        p = self._logical(path)
        if p == ".":
            return StatResult(".", "directory")
        listing = getattr(self._batch, "listings", None)
        with self._io("stat", p):
            if listing is not None:  # inside save_batch: one listing per folder instead of two requests per path
                parent = P.parent(p)
                if parent not in listing:
                    listing[parent] = {P.basename(e["name"].rstrip("/")): e for e in self._ls(self._key(parent), detail=True)}
                info = listing[parent].get(P.basename(p))
            else:
                info = self._info(self._key(p))
        if info is None:
            raise self._not_found(p)
        if info.get("type") == "directory":
            return StatResult(p, "directory")
        extra = {"url": self.url_for(p), "version": _version(info)}
        return StatResult(p, "file", size=int(info.get("size") or 0), mtime=_mtime(info), extra=extra)

    def list_dir(self, path: P.PathLike = ".") -> list[str]:
        p = self._logical(path)
        self._require_dir(p)
        with self._io("list", p):
            names = {P.basename(e.rstrip("/")) for e in self._ls(self._key(p), detail=False)}
        return P.natural_sorted(n for n in names if not P.is_reserved_name(n))

    def list_files(
        self,
        path: P.PathLike = ".",
        pattern: str | None = None,
        extensions: Iterable[str] | str | None = None,
        recursive: bool = False,
    ) -> list[str]:
        base = self._logical(path)
        self._require_dir(base)
        exts = normalize_extensions(extensions)
        key = self._key(base)
        out: list[str] = []
        with self._io("list", base):
            if recursive:  # one paginated listing of the whole tree, not one per folder
                found = self.fs.find(key, withdirs=False, detail=False)
            else:
                found = [e["name"] for e in self._ls(key, detail=True) if e.get("type") == "file"]
        for full in found:
            rel = full[len(key) :].strip("/") if key else full.strip("/")
            parts = rel.split("/")
            if not rel or any(P.is_reserved_name(part) for part in parts):
                continue
            if match_file(parts[-1], pattern, exts):
                out.append(P.join(base, rel))
        return P.natural_sorted(out)

    def ensure_directory(self, path: P.PathLike) -> None:
        p = self._logical(path)
        if p == ".":
            return
        with self._io("ensure_directory", p):
            if self._info(self._marker(p)) is not None:
                return  # made by hcsvfs before: the usual case, one request
            for d in [*P.ancestors(p), p]:
                info = self._info(self._key(d))
                if info is not None and info.get("type") != "directory":
                    raise PathNotADirectoryError(
                        f"cannot create directory {p!r} on {self.url!r}: {d!r} is a file", path=p, backend=self.name
                    )
                if info is None or d == p:
                    self._make_dir(d)

    def _marker(self, p: str) -> str:
        return f"{self._key(p)}/{DIR_MARKER}"

    def _make_dir(self, p: str) -> None:
        if self._is_local:
            Path(self._key(p)).mkdir(parents=True, exist_ok=True)  # real folders: no marker needed
        else:
            self.fs.pipe_file(self._marker(p), b"")

    # ------------------------------------------------------------------ mutation
    def _delete_file(self, path: str) -> None:
        with self._io("delete", path):
            self.fs.rm_file(self._key(path))
        self._invalidate(path)

    def _delete_empty_dir(self, path: str) -> None:
        with self._io("delete", path):
            self._remove_tree(self._key(path))  # only hidden markers/temp keys are left

    def delete_all(self, path: P.PathLike) -> None:
        p = self._logical(path)
        st = self.stat(p)
        if st.is_file:
            self._delete_file(p)
            return
        self._check_not_root(p)
        key = self._key(p)
        with self._io("delete_all", p):
            removed = self._remove_tree(key)
        if self.cache is not None:
            for full in removed:
                self.cache.invalidate(self.url + "/" + full[len(self._root) :].strip("/"))

    def _remove_tree(self, key: str) -> list[str]:
        """Delete every object under ``key``; returns their keys.

        Not ``fs.rm(key, recursive=True)``: fsspec expands ``*?[`` in a path as a glob, so a
        folder named ``a[1]`` or ``b*`` would not be found, or worse, match others. ``find``
        lists by prefix, and the keys it returns are deleted as they are.
        """
        if self._is_local:
            shutil.rmtree(key)
            return []
        keys = self.fs.find(key, withdirs=False, detail=False)
        if self._is_s3:
            bucket = self.fs.split_path(key)[0]
            for start in range(0, len(keys), 1000):  # DeleteObjects takes 1000 keys a request
                objects = [{"Key": self.fs.split_path(k)[1]} for k in keys[start : start + 1000]]
                self.fs.call_s3("delete_objects", Bucket=bucket, Delete={"Objects": objects, "Quiet": True})
            self.fs.invalidate_cache(key)
        else:
            for k in keys:
                self.fs.rm_file(k)
            for d in sorted(self.fs.find(key, withdirs=True, detail=False), key=len, reverse=True):
                with contextlib.suppress(OSError):
                    self.fs.rmdir(d)  # pseudo-folders of stores that keep them (memory://)
            with contextlib.suppress(OSError):
                self.fs.rmdir(key)
        return keys

    def copy(self, src: P.PathLike, dst: P.PathLike, *, overwrite: bool = False) -> None:
        s, d = self._logical(src), self._logical(dst)
        st = self.stat(s)
        self._check_transfer(s, d, st, overwrite)
        if st.is_file:
            # Bytes as stored: no decode/encode round trip, and the same commit rules as save().
            with self._io("copy", s):
                data = self._read_bytes(s)
            self._commit(d, data, overwrite=overwrite)
            return
        self.ensure_directory(d)
        for entry in self.list_dir(s):
            self.copy(P.join(s, entry), P.join(d, entry), overwrite=overwrite)

    def move(self, src: P.PathLike, dst: P.PathLike, *, overwrite: bool = False) -> None:
        """Move via copy then delete; a claim object makes racing movers of one source have one winner."""
        s, d = self._logical(src), self._logical(dst)
        st = self.stat(s)
        self._check_transfer(s, d, st, overwrite)
        with self._claim(s):
            if not self.exists(s):  # a racing mover finished before we got the claim
                raise self._not_found(s)
            self.copy(s, d, overwrite=overwrite)
            self.delete_all(s)

    @contextlib.contextmanager
    def _claim(self, p: str) -> Iterator[None]:
        parent_key = self._key(P.parent(p))
        claim = f"{parent_key}/{TEMP_PREFIX}move-{P.basename(p)}"
        with self._io("move", p):
            for attempt in range(2):
                try:
                    self._put_bytes(claim, repr(time.time()).encode(), overwrite=False)
                    break
                except FileExistsError:
                    if attempt == 0 and self._claim_is_stale(claim):
                        with contextlib.suppress(FileNotFoundError):
                            self.fs.rm_file(claim)  # left by a mover that crashed
                        continue
                    raise PathNotFoundError(
                        f"{p!r} on {self.url!r} is being moved by another writer; it will not be here",
                        path=p,
                        backend=self.name,
                    ) from None
        try:
            yield
        finally:
            with contextlib.suppress(Exception):
                self.fs.rm_file(claim)

    def _claim_is_stale(self, claim: str) -> bool:
        try:
            started = float(self.fs.cat_file(claim))
        except (FileNotFoundError, ValueError):
            return True
        return time.time() - started > self.claim_ttl

    def _make_fs(self) -> tuple[Any, str]:
        """The file system and root path of the URL. On S3 a file system of our own (not fsspec's cached one
        for these options, which other code may share): its ``retries`` is set here, and s3fs has no option for it."""
        import fsspec

        if not self._is_s3:
            return fsspec.core.url_to_fs(self.url, **self._options)
        fs, root = fsspec.core.url_to_fs(self.url, skip_instance_cache=True, **self._options)
        fs.retries = _S3_RETRIES
        return fs, root

    def __getstate__(self) -> dict[str, Any]:
        # Picklable for process pools and Dask workers: the file system and per-thread batch state are rebuilt there.
        state = dict(self.__dict__)
        del state["_batch"], state["fs"]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self.fs, _ = self._make_fs()
        self._batch = threading.local()

    def __repr__(self) -> str:
        return f"<ObjectStoreBackend {self.url}>"  # the URL only: options may hold credentials


def fsspec_options(url: str, options: dict[str, Any]) -> dict[str, Any]:
    """``options`` for ``url`` with hcsvfs's defaults filled in (bounded timeouts, no listing cache on S3).

    Used by this backend and by the zarr backend's FsspecStore, so both see a bucket the same way.
    """
    import fsspec

    if fsspec.core.split_protocol(url)[0] not in ("s3", "s3a"):
        return dict(options)
    # Fresh copies every time: botocore edits config dicts in place.
    merged = copy.deepcopy(S3_DEFAULT_OPTIONS)
    config = {**merged.pop("config_kwargs"), **options.get("config_kwargs", {})}
    return {**merged, **options, "config_kwargs": copy.deepcopy(config)}


#: Exception classes (by name, anywhere in an error's MRO or cause chain) that mean "no answer from the store":
#: botocore's, aiohttp's and the standard library's share no base class, and importing them would load them all.
_UNREACHABLE = frozenset(
    {
        "ConnectionError",
        "TimeoutError",
        "gaierror",
        "EndpointConnectionError",
        "ConnectTimeoutError",
        "ReadTimeoutError",
        "ConnectionClosedError",
        "HTTPClientError",
        "ClientConnectorError",
        "ClientConnectionError",
        "ServerTimeoutError",
        "ServerDisconnectedError",
    }
)


def _unreachable(exc: BaseException | None) -> bool:
    """True if ``exc`` (or what caused it) says the store did not answer, rather than what it answered."""
    seen = 0
    while exc is not None and seen < 10:
        if any(cls.__name__ in _UNREACHABLE for cls in type(exc).__mro__):
            return True
        exc = exc.__cause__ or exc.__context__
        seen += 1
    return False


def _key_safe(p: str) -> bool:
    """False for control characters and lone surrogates, which S3 keys and URLs cannot carry cleanly."""
    if any(ord(c) < 32 or ord(c) == 127 for c in p):
        return False
    try:
        p.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def fs_protocols(fs: Any) -> tuple[str, ...]:
    """The protocol names of an fsspec file system (``("s3", "s3a")``, ``("file", "local")``...)."""
    proto = fs.protocol
    return (proto,) if isinstance(proto, str) else tuple(proto)


def _version(info: dict[str, Any]) -> str:
    """What changes when an object is replaced: ETag/generation where the store has one, else mtime and size."""
    for field in ("ETag", "etag", "generation", "md5Hash"):
        if info.get(field):
            return f"{field}={info[field]};size={info.get('size')}"
    return f"mtime={_mtime(info)};size={info.get('size')}"


def _mtime(info: dict[str, Any]) -> float | None:
    for field in ("LastModified", "mtime", "created", "updated"):
        value = info.get(field)
        if value is None:
            continue
        if hasattr(value, "timestamp"):
            return float(value.timestamp())
        with contextlib.suppress(TypeError, ValueError):
            return float(value)
    return None
