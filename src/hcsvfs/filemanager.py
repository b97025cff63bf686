"""FileManager: one API to save and load objects by logical path on any registered backend."""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Protocol, TypeVar

from . import paths as P
from .arrays import nbytes
from .backends.base import StatResult, StorageBackend
from .errors import PathExistsError, PathNotFoundError, StorageResolutionError
from .hcs import IMAGE_EXTENSIONS
from .metrics.collector import Metrics
from .metrics.wiring import metrics_for
from .registry import Backend, BackendRef, StorageRegistry, canonical_name, create_default_registry
from .tiering.pressure import system_available
from .tiering.selection import AutoPolicy, Placement, choose_backend

__all__ = ["FileManager", "OperationObserver", "Backend"]

T = TypeVar("T")
log = logging.getLogger(__name__)
_AUTO = Backend.AUTO.value


class OperationObserver(Protocol):
    """Receives one call per FileManager operation (the metrics layer implements this)."""

    def record(self, backend: str, operation: str, seconds: float, nbytes: int, error: BaseException | None) -> None: ...


class FileManager:
    """Routes every storage operation to a backend named by enum or string.

    ``FileManager()`` gets a fresh, private registry (memory, disk, zarr);
    pass ``storage_registry`` to share the process-wide one, or a mapping of
    backend name (or enum member) to backend instance or class to use exactly
    those, as the original system's examples do. ``save`` creates
    missing parent directories unless ``create_parents=False``; everything
    else keeps the backend's fail-loud semantics.
    """

    def __init__(
        self,
        registry: StorageRegistry | Mapping[BackendRef, StorageBackend | type[StorageBackend]] | None = None,
        *,
        create_parents: bool = True,
        observer: OperationObserver | None = None,
        metrics: Metrics | bool | None = None,
        auto_policy: AutoPolicy | None = None,
    ) -> None:
        if registry is None:
            registry = create_default_registry()
        elif not isinstance(registry, StorageRegistry):
            registry = StorageRegistry.from_mapping(registry)  # the original's dict of backends
        self.registry: StorageRegistry = registry
        self.create_parents = create_parents
        #: Operation metrics (``metrics=True`` or a Metrics); None when off. See docs/metrics.md.
        self.metrics = metrics_for(metrics, self.get_backend)
        if self.metrics is not None and observer is not None:
            raise ValueError("pass either metrics= or observer=, not both (a Metrics is an observer)")
        self.observer = observer if self.metrics is None else self.metrics
        #: How Backend.AUTO chooses (see docs/tiering.md); its choices are recorded per path.
        self.auto_policy = auto_policy if auto_policy is not None else AutoPolicy()
        self._placements: dict[str, Placement] = {}
        self._usable: dict[str, bool] = {}
        self._auto_lock = threading.RLock()

    def __getstate__(self) -> dict[str, Any]:
        """A FileManager pickles (to process pools and Dask workers) with its registry: each backend is rebuilt
        there from its description (see docs/core.md, "Sending a FileManager to another process")."""
        state = dict(self.__dict__)
        del state["_auto_lock"]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._auto_lock = threading.RLock()

    # ------------------------------------------------------------------ routing
    def get_backend(self, backend: BackendRef) -> StorageBackend:
        """The backend instance for ``backend``; StorageResolutionError if unknown."""
        return self.registry.get_backend(backend)

    def mount(
        self,
        url: str,
        name: BackendRef | None = None,
        *,
        kind: str = "objectstore",
        replace: bool = False,
        **storage_options: Any,
    ) -> StorageBackend:
        """Register a backend over ``url`` (``s3://bucket/prefix``, ``gs://...``, ``memory://...``) under ``name``.

        ``kind="objectstore"`` stores files in the disk formats; ``storage_options``
        (``endpoint_url``, ``key``, ``secret``, ``cache``...) go to the backend.
        ``kind="zarr"`` makes an OME-Zarr backend over the URL (``config=`` a ZarrConfig).
        Returns the backend; ``name`` defaults to the URL itself.
        """
        # Lazy imports: fsspec (and s3fs for s3://) only when something is mounted.
        from .backends.objectstore import ObjectStoreBackend, fsspec_options

        backend: StorageBackend
        if kind == "objectstore":
            backend = ObjectStoreBackend(url, **storage_options)
        elif kind == "zarr":
            from .backends.zarr import ZarrStorageBackend

            config = storage_options.pop("config", None)
            backend = ZarrStorageBackend(url, config=config, storage_options=fsspec_options(url, storage_options))
        else:
            raise StorageResolutionError(
                f"mount() cannot make a {kind!r} backend over {url!r}; use kind='objectstore' or kind='zarr'"
            )
        self.registry.register_backend(name if name is not None else url, backend, replace=replace)
        return backend

    def _observe(
        self, backend: BackendRef, operation: str, fn: Callable[[], T], size: Callable[[T], int] | int = 0
    ) -> T:
        observer = self.observer
        if observer is None:  # zero cost when nobody is listening
            return fn()
        backend = canonical_name(backend)  # "DISK" and Backend.DISK are counted as one backend
        start = time.perf_counter()
        try:
            result = fn()
        except BaseException as exc:
            observer.record(backend, operation, time.perf_counter() - start, 0, exc)
            raise
        counted = size(result) if callable(size) else size
        observer.record(backend, operation, time.perf_counter() - start, counted, None)
        return result

    # ------------------------------------------------------------------ objects
    def save(
        self,
        data: Any,
        path: P.PathLike,
        backend: BackendRef,
        *,
        overwrite: bool = False,
        create_parents: bool | None = None,
        **options: Any,
    ) -> None:
        """Save ``data`` at ``path`` on ``backend``; FileExistsError if present unless ``overwrite``.

        ``Backend.AUTO`` chooses the backend (see :meth:`where`).
        """
        p = P.normalize(path)
        if canonical_name(backend) == _AUTO:
            self._auto_save(data, p, overwrite=overwrite, create_parents=create_parents, **options)
            return
        b = self.get_backend(backend)

        def run() -> None:
            self._ensure_parent(b, p, create_parents)
            b.save(data, p, overwrite=overwrite, **options)

        self._observe(backend, "save", run, lambda _: nbytes(data))  # sized only when someone observes

    def load(self, path: P.PathLike, backend: BackendRef, **options: Any) -> Any:
        """Load the object at ``path`` from ``backend`` (``Backend.AUTO``: wherever AUTO put it)."""
        backend = self._resolve(path, backend)
        b = self.get_backend(backend)
        return self._observe(backend, "load", lambda: b.load(path, **options), nbytes)

    def save_batch(
        self,
        data_list: Sequence[Any],
        paths: Sequence[P.PathLike],
        backend: BackendRef,
        *,
        overwrite: bool = False,
        create_parents: bool | None = None,
        **options: Any,
    ) -> None:
        """Save ``data_list[i]`` at ``paths[i]``; all paths are checked before anything is written."""
        b = self.get_backend(backend)
        logical = [P.normalize(p) for p in paths]

        def run() -> None:
            for par in sorted({P.parent(p) for p in logical}):
                self._ensure_dir(b, par, create_parents)
            b.save_batch(data_list, logical, overwrite=overwrite, **options)

        self._observe(backend, "save_batch", run, sum(nbytes(d) for d in data_list))

    def load_batch(self, paths: Sequence[P.PathLike], backend: BackendRef, **options: Any) -> list[Any]:
        """Load every path from ``backend``, in order."""
        b = self.get_backend(backend)
        return self._observe(
            backend, "load_batch", lambda: b.load_batch(paths, **options), lambda r: sum(nbytes(x) for x in r)
        )

    # ------------------------------------------------------------------ queries
    def exists(self, path: P.PathLike, backend: BackendRef) -> bool:
        """True if a file or directory is at ``path``."""
        if canonical_name(backend) == _AUTO:
            return self.where(path) is not None
        b = self.get_backend(backend)
        return self._observe(backend, "exists", lambda: b.exists(path))

    def is_file(self, path: P.PathLike, backend: BackendRef) -> bool:
        """True if an object (file) is at ``path``."""
        b = self.get_backend(backend)
        return self._observe(backend, "is_file", lambda: b.is_file(path))

    def is_dir(self, path: P.PathLike, backend: BackendRef) -> bool:
        """True if a directory is at ``path``."""
        b = self.get_backend(backend)
        return self._observe(backend, "is_dir", lambda: b.is_dir(path))

    def stat(self, path: P.PathLike, backend: BackendRef) -> StatResult:
        """Size, kind, time and backend-specific facts about ``path``."""
        backend = self._resolve(path, backend)
        b = self.get_backend(backend)
        return self._observe(backend, "stat", lambda: b.stat(path))

    def list_files(
        self,
        directory: P.PathLike,
        backend: BackendRef,
        pattern: str | None = None,
        extensions: Iterable[str] | str | None = None,
        recursive: bool = False,
    ) -> list[str]:
        """Sorted logical paths of files in ``directory`` (glob ``pattern``, ``extensions``, ``recursive``)."""
        b = self.get_backend(backend)
        return self._observe(
            backend, "list_files", lambda: b.list_files(directory, pattern=pattern, extensions=extensions, recursive=recursive)
        )

    def list_dir(self, directory: P.PathLike, backend: BackendRef) -> list[str]:
        """Sorted names of the entries directly inside ``directory``."""
        b = self.get_backend(backend)
        return self._observe(backend, "list_dir", lambda: b.list_dir(directory))

    def list_image_files(
        self,
        directory: P.PathLike,
        backend: BackendRef,
        pattern: str | None = None,
        extensions: Iterable[str] | str | None = IMAGE_EXTENSIONS,
        recursive: bool = False,
    ) -> list[str]:
        """The image files in ``directory`` (``IMAGE_EXTENSIONS`` unless given), in natural order
        (``s2`` before ``s10``); files an OS leaves beside images (``._*``, ``Thumbs.db``) are not listed."""
        files = self.list_files(directory, backend, pattern=pattern, extensions=extensions, recursive=recursive)
        return [f for f in files if not P.is_system_junk(P.basename(f))]

    def find_file_recursive(self, directory: P.PathLike, filename: str, backend: BackendRef) -> str | None:
        """The first file named ``filename`` at any depth under ``directory`` (natural order), or None."""
        for path in self.list_files(directory, backend, recursive=True):
            if P.basename(path) == filename:
                return path
        return None

    # ------------------------------------------------------------------ mutation
    def ensure_directory(self, directory: P.PathLike, backend: BackendRef) -> str:
        """Create ``directory`` and its parents if missing; returns its normalised path."""
        b = self.get_backend(backend)
        self._observe(backend, "ensure_directory", lambda: b.ensure_directory(directory))
        return P.normalize(directory)

    def delete(self, path: P.PathLike, backend: BackendRef) -> None:
        """Remove a file or an empty directory."""
        backend = self._resolve(path, backend)
        b = self.get_backend(backend)
        self._observe(backend, "delete", lambda: b.delete(path))
        with self._auto_lock:
            self._placements.pop(P.normalize(path), None)

    def delete_all(self, path: P.PathLike, backend: BackendRef) -> None:
        """Remove ``path`` and everything below it."""
        b = self.get_backend(backend)
        self._observe(backend, "delete_all", lambda: b.delete_all(path))

    def move(self, src: P.PathLike, dst: P.PathLike, backend: BackendRef, *, overwrite: bool = False) -> None:
        """Move within one backend; parents of ``dst`` are created like on save."""
        b = self.get_backend(backend)

        def run() -> None:
            self._ensure_parent(b, P.normalize(dst), None)
            b.move(src, dst, overwrite=overwrite)

        self._observe(backend, "move", run)

    def copy(self, src: P.PathLike, dst: P.PathLike, backend: BackendRef, *, overwrite: bool = False) -> None:
        """Copy within one backend; parents of ``dst`` are created like on save."""
        b = self.get_backend(backend)

        def run() -> None:
            self._ensure_parent(b, P.normalize(dst), None)
            b.copy(src, dst, overwrite=overwrite)

        self._observe(backend, "copy", run)

    def transfer(
        self,
        src: P.PathLike,
        src_backend: BackendRef,
        dst: P.PathLike,
        dst_backend: BackendRef,
        *,
        overwrite: bool = False,
        progress: Callable[[str], None] | None = None,
    ) -> list[str]:
        """Copy a file or a directory tree from one backend to another; returns the destination paths written.

        ``progress`` is called with each destination path after it is written
        (the CLI hangs its progress bar here).
        """
        sb, db = self.get_backend(src_backend), self.get_backend(dst_backend)
        s, d = P.normalize(src), P.normalize(dst)
        if sb.is_dir(s):
            pairs = [(f, P.join(d, f[len(s) + 1 :] if s != "." else f)) for f in sb.list_files(s, recursive=True)]
            self._ensure_dir(db, d, None)
        else:
            pairs = [(s, d)]
        written = []
        for source, target in pairs:
            obj = sb.load(source)
            self.save(obj, target, dst_backend, overwrite=overwrite)
            written.append(target)
            if progress is not None:
                progress(target)
        return written

    # ------------------------------------------------------------------ Backend.AUTO
    def where(self, path: P.PathLike) -> str | None:
        """The backend name holding ``path`` for Backend.AUTO: the recorded choice, else the first of
        the AUTO backends that has it; None if none does."""
        p = P.normalize(path)
        with self._auto_lock:
            placed = self._placements.get(p)
        if placed is not None:
            return placed.backend
        for name in self._auto_candidates():
            if self.get_backend(name).exists(p):
                return name
        return None

    def placement(self, path: P.PathLike) -> Placement | None:
        """The recorded AUTO choice for ``path`` and the rule that made it; None if AUTO never saved it."""
        with self._auto_lock:
            return self._placements.get(P.normalize(path))

    def _auto_candidates(self) -> list[str]:
        """The usable AUTO backends, memory tier first (the order ``where`` searches)."""
        names = dict.fromkeys([self.auto_policy.memory_backend, "memory", "disk", "zarr"])
        return [n for n in names if self._is_usable(n)]

    def _is_usable(self, name: str) -> bool:
        with self._auto_lock:
            if name not in self._usable:
                try:
                    self.get_backend(name)
                    self._usable[name] = True
                except (StorageResolutionError, ImportError):
                    self._usable[name] = False  # e.g. zarr not installed: AUTO falls back to disk
            return self._usable[name]

    def _auto_save(self, data: Any, p: str, *, overwrite: bool, create_parents: bool | None, **options: Any) -> None:
        choice = choose_backend(
            data,
            p,
            available_memory=system_available(),
            policy=self.auto_policy,
            backends=frozenset(self._auto_candidates()),
        )
        with self._auto_lock:
            previous = self.where(p)
            if previous is not None and previous != choice.backend and not overwrite:
                raise PathExistsError(
                    f"{p!r} already exists on the {previous} backend (placed by Backend.AUTO); pass overwrite=True "
                    "to replace it",
                    path=p,
                    backend=previous,
                )
            self.save(data, p, choice.backend, overwrite=overwrite, create_parents=create_parents, **options)
            if previous is not None and previous != choice.backend:
                with contextlib.suppress(FileNotFoundError):  # the object lives in one place only
                    self.get_backend(previous).delete(p)
            self._placements[p] = choice
        log.debug("Backend.AUTO put %r on %s: %s", p, choice.backend, choice.reason)

    def _resolve(self, path: P.PathLike, backend: BackendRef) -> BackendRef:
        """``backend`` itself, or for Backend.AUTO the backend that holds ``path`` (FileNotFoundError if none)."""
        if canonical_name(backend) != _AUTO:
            return backend
        found = self.where(path)
        if found is None:
            p = P.normalize(path)
            raise PathNotFoundError(
                f"{p!r} is on none of the Backend.AUTO backends ({', '.join(self._auto_candidates())})",
                path=p,
                backend=_AUTO,
            )
        return found

    # ------------------------------------------------------------------ helpers
    def _ensure_parent(self, b: StorageBackend, path: str, create_parents: bool | None) -> None:
        self._ensure_dir(b, P.parent(path), create_parents)

    def _ensure_dir(self, b: StorageBackend, directory: str, create_parents: bool | None) -> None:
        wanted = self.create_parents if create_parents is None else create_parents
        if wanted and directory not in (".", "/"):
            b.ensure_directory(directory)

    def close(self) -> None:
        """Close the backends of this FileManager's registry (see :meth:`StorageRegistry.close`)."""
        self.registry.close()

    def __enter__(self) -> FileManager:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<FileManager backends={self.registry.names()}>"


