"""ZarrStorageBackend: OME-Zarr images and HCS plates behind the StorageBackend contract."""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, overload

import numpy as np
import zarr
from zarr.abc.store import Store
from zarr.storage import StorePath

from ... import arrays
from ... import paths as P
from ...config import ZarrConfig
from ...errors import CorruptDataError, InvalidPathError, PathExistsError, PathNotADirectoryError, UnsupportedTypeError
from ..base import StatResult, StorageBackend
from .autocodec import CodecChooser
from .catalog import PlaneRef
from .codecs import describe_codecs
from .facts import compression_facts, image_facts
from .image import level_paths, open_array, open_levels, write_image
from .ngff import default_axes, ngff_version, node_kind, own_attrs, validate_group
from .plate import PlaneTarget, PlateInfo, PlateLayout, is_own, label_path
from .store import StoreLocator, join_key
from .view import ZarrArrayView, read_many

__all__ = ["ZarrStorageBackend"]

_GROUP = {"zarr_format": 3, "node_type": "group", "attributes": {}}
#: The store of a folder outside ``*.zarr`` folders (``<folder>.zarr``): listed under the folder's name.
_FOLDER_STORE = {"zarr_format": 3, "node_type": "group", "attributes": {"hcsvfs": {"kind": "dir", "folder": True}}}
_SAVE_OPTIONS = frozenset({"axes", "labels", "label", "filled"})
#: Results a pipeline writes beside its images (tables, notes, ImageJ ROI sets): stored as files in the
#: same folder as the plate or image, through the disk (or object-store) formats, as the original system does.
RESULT_EXTENSIONS = (".json", ".csv", ".txt", ".roi.zip", ".zip")
_LOAD_OPTIONS = frozenset({"materialize", "level", "label"})


class ZarrStorageBackend(StorageBackend):
    """Arrays as OME-Zarr (v3, NGFF 0.5) images; HCS-named planes under a ``*.zarr`` folder as an NGFF plate.

    ``root=None`` resolves relative paths against the working directory and
    takes absolute ones as they are; ``root=`` a folder is a jail, a URL
    (``s3://...``) goes through fsspec; ``store=`` takes any zarr Store. An
    image group is a file to the VFS, a plain group a directory; see docs/zarr.md.
    """

    name = "zarr"

    def __init__(
        self,
        root: P.PathLike | None = None,
        *,
        store: Store | None = None,
        config: ZarrConfig | None = None,
        storage_options: dict[str, Any] | None = None,
    ) -> None:
        self.config = config if config is not None else ZarrConfig()
        self._origin = (root, store, storage_options)  # what __reduce__ rebuilds it from in another process
        self.locator = StoreLocator(root, store, storage_options)
        self.codecs = CodecChooser(self.locator, self.config)
        self.plates = PlateLayout(self.locator, self.config, self.codecs)

    def __reduce__(self) -> tuple[Any, ...]:
        # Rebuilt from its description in another process (its locks, memo and codec probe are per process).
        root, store, storage_options = self._origin
        return (_rebuild, (root, store, storage_options, self.config))

    @property
    def root(self) -> Path | None:
        """The folder this backend is jailed in (None for the working-directory mode and for non-local stores)."""
        return self.locator.local_root

    @functools.cached_property
    def files(self) -> StorageBackend | None:
        """Where result files (:data:`RESULT_EXTENSIONS`) go: a disk backend over the same folder (a local
        store), an object-store backend over the same URL; None for other stores (an in-memory zarr store)."""
        root, store, storage_options = self._origin
        if store is not None:
            return None
        if isinstance(root, str) and "://" in root:
            from ..objectstore import ObjectStoreBackend

            return ObjectStoreBackend(root, **(storage_options or {}))
        from ..disk import DiskStorageBackend

        return DiskStorageBackend(root)

    def _result_files(self, p: str) -> StorageBackend:
        """The file backend for result file ``p``; a clear error where this store has none."""
        if self.files is None:
            raise UnsupportedTypeError(
                f"{p!r}: result files ({', '.join(RESULT_EXTENSIONS)}) are stored beside images on a folder or URL, "
                "and this zarr backend is over an in-memory store; save it on the memory or disk backend",
                path=p, backend=self.name,
            )
        return self.files

    # ------------------------------------------------------------------ resolution
    def _meta(self, logical: str) -> dict[str, Any] | None:
        return self.locator.read_meta(self.locator.key(logical))

    def _resolve(self, p: str) -> tuple[str | None, dict[str, Any] | None]:
        """("file" | "plane" | "dir" | "result" | None, the node's metadata or, for a plane, its plate's and its
        (field, index)); :meth:`_locate` also says where the node is."""
        kind, meta, _ = self._locate(p)
        return kind, meta

    def _locate(self, p: str) -> tuple[str | None, dict[str, Any] | None, str]:
        """What the logical path ``p`` is, its metadata, and where it is in the store (a store path: see
        :func:`node_path` and :func:`store_path`; a folder outside ``*.zarr`` folders is found at its store)."""
        if p in (".", "/"):
            return "dir", self._meta(p), p
        if _is_result(p):
            return ("result", None, p) if self._is_result_file(p) else (None, None, p)
        node = node_path(p)
        parent = P.parent(node)
        pmeta = self._meta(parent)
        pkind = node_kind(pmeta)
        if pkind == "plate":
            found = self.plates.lookup(parent, P.basename(p), pmeta)
            if found is not None:
                return "plane", {"plate": pmeta, "field": found}, node
            if node == p:
                return None, None, node
            pkind = None  # not a plane of the folder's plate: maybe one of its subfolders
        if pkind in ("image", "array"):
            raise PathNotADirectoryError(f"{p!r}: its parent {P.parent(p)!r} is a file, not a directory", path=p,
                                         backend=self.name)
        if pkind == "internal":
            return None, None, node
        store = store_path(p)
        if store != p:  # a folder outside *.zarr folders keeps its images and plates in its store
            try:
                smeta = self._meta(store)
            except CorruptDataError:
                smeta = None
            if node_kind(smeta) in ("plate", "dir"):
                return "dir", smeta, store
        # zarr v2 is probed only where the parent is not a v3 node (each probe is a request on S3).
        kind, meta = self._read_node(node, v2=pmeta is None or pmeta.get("zarr_format") == 2)
        if kind is None and node != p:
            # A plain folder (subfolders only, or the working directory's), or an image an hcsvfs before
            # folder stores wrote where its name is.
            lkind = node_kind(self._meta(P.parent(p)))
            if lkind in ("image", "array"):
                raise PathNotADirectoryError(f"{p!r}: its parent {P.parent(p)!r} is a file, not a directory", path=p,
                                             backend=self.name)
            if lkind in ("internal", "plate"):
                return None, None, node
            kind, meta = self._read_node(p, v2=True)
            return kind, meta, p
        return kind, meta, node

    def _read_node(self, where: str, *, v2: bool) -> tuple[str | None, dict[str, Any] | None]:
        """What the node at store path ``where`` is from its own metadata: file, dir or None."""
        key = self.locator.key(where)
        for fresh in (False, True):
            try:
                meta = self.locator.read_meta(key, v2=v2, fresh=fresh)
            except CorruptDataError:
                return "file", None  # a damaged node: a file to delete or replace; loading it says what is wrong
            kind = node_kind(meta)
            if kind in ("image", "array"):
                return "file", meta
            if kind in ("plate", "dir"):
                return "dir", meta
            if kind is not None or not self.locator.is_folder(key):
                return None, None
            # A folder without metadata (e.g. the working directory's), or a racer renamed a finished
            # node here between the two reads; looking once more tells them apart.
        return "dir", None

    def _ensure_store(self, folder: str) -> bool:
        """Make ``folder``'s store (``<folder>.zarr``, marked as the folder's) if it has none yet; True if made."""
        store = store_path(folder)
        if store == folder or node_kind(self._meta(store)) in ("plate", "dir"):
            return False
        # A raw metadata write: zarr's group creation would also write into every parent folder.
        self.locator.write_meta(self.locator.key(store), _FOLDER_STORE)
        return True

    def save_options(self, data: Any, path: str) -> frozenset[str]:
        return _SAVE_OPTIONS

    def load_options(self, path: str) -> frozenset[str]:
        return _LOAD_OPTIONS

    # ------------------------------------------------------------------ primitives
    def save(
        self,
        data: Any,
        path: P.PathLike,
        *,
        overwrite: bool = False,
        axes: str | None = None,
        labels: bool = False,
        label: str | None = None,
        filled: bool = False,
        **options: Any,
    ) -> None:
        """Save an array as an OME-Zarr image, or as one plane of a plate for an HCS name under a ``*.zarr`` folder.

        ``axes`` (e.g. ``"cyx"``) names the dimensions of a plain image; ``labels=True`` downsamples pyramids by nearest.
        ``label="cells"`` puts a plate plane into the NGFF label image ``cells`` of its field (``labels/cells``)
        instead of the field's image: a segmentation over the raw planes of the same name. ``filled=True`` marks
        a plate plane as a stand-in for an image the microscope did not deliver (listed in the well's
        ``missing``; ``save_batch`` takes ``filled=`` a collection of the batch's paths).
        """
        p = _logical(path)
        if _is_result(p):
            self._result_files(p).save(data, p, overwrite=overwrite, **options)
            return
        if P.basename(p) == "zarr.json":
            raise InvalidPathError(f"{p!r}: zarr.json is the store's own metadata; choose another name", path=p,
                                   backend=self.name)
        self._check_options("save", options, _SAVE_OPTIONS, p)
        arr = self._as_array(data, p)
        q = node_path(p)
        target = self.plates.target(q, self._meta(P.parent(q)), label=_label_name(label, p))
        if target is not None and label is not None:
            self._require_parent(p)  # the name is the raw plane's: the label index says whether this one exists
        else:
            self._check_target(p, overwrite)
        if target is None and self._ensure_store(P.parent(p)):
            # The folder's store was made just now: HCS names there make it a plate.
            target = self.plates.target(q, self._meta(P.parent(q)), label=_label_name(label, p))
        if filled:
            if target is None:
                raise InvalidPathError(
                    f"{p!r}: filled=True marks a stand-in for a missing plane of a plate; this is not a plate plane",
                    path=p, backend=self.name,
                )
            target = dataclasses.replace(target, filled=True)
        if target is not None:
            self.plates.check([(target, arr)], overwrite)
            self.plates.save([(target, arr)], overwrite=overwrite, labels=labels)
            return
        if label is not None:
            raise InvalidPathError(
                f"{p!r}: label= puts planes of a plate into a field's label image; this is not a plate plane",
                path=p,
                backend=self.name,
            )
        names = default_axes(arr.ndim, axes)
        self.config.chunk_shape(arr.shape)  # a chunk-rank mismatch fails here, before anything is written
        self._write_image(q, arr, names, labels, overwrite, logical=p)

    def _write_image(
        self, p: str, arr: np.ndarray, axes: str | None, labels: bool, overwrite: bool, *, logical: str
    ) -> None:
        """Write image ``logical`` at store path ``p``."""
        if self.locator.is_plain_file(self.locator.key(p)):
            raise PathExistsError(
                f"{logical!r} is taken by a file that is not a zarr image (another backend's, such as disk's, in the "
                "same folder); save under another name or give the backends different roots",
                path=logical,
                backend=self.name,
            )
        config, compression = self.codecs.for_image(P.parent(p), arr, labels)
        if self.locator.can_rename:
            # Write beside the target under a hidden name, then rename: readers see the old image or
            # the new one, and of racing creators exactly one wins.
            tmp = self.locator.temp_sibling(p)
            committed = False
            try:
                write_image(
                    self.locator, tmp, arr, config, axes, labels=labels, hide=False, name=P.basename(p),
                    compression=compression,
                )
                self.locator.rename_node(self.locator.key(tmp), self.locator.key(p), replace=overwrite)
                committed = True
            except FileExistsError:
                raise PathExistsError(
                    f"{logical!r} was created by another writer while this one was saving; pass overwrite=True to "
                    "replace it",
                    path=logical,
                    backend=self.name,
                ) from None
            finally:
                if not committed:
                    self.locator.delete_tree(self.locator.key(tmp))  # the half-written or losing temp image
            return
        key = self.locator.key(p)
        if self.locator.read_meta(key) is not None:
            self.locator.delete_tree(key)  # overwrite on stores without rename: the old image goes first
        try:
            write_image(self.locator, p, arr, config, axes, labels=labels, compression=compression)
        except BaseException:
            self.locator.delete_tree(key)  # nothing half-written stays behind
            raise

    def load(
        self, path: P.PathLike, *, materialize: bool = False, level: int = 0, label: str | None = None, **options: Any
    ) -> Any:
        """A lazy :class:`ZarrArrayView` (numpy with ``materialize=True``); ``level`` picks a pyramid level,
        ``label`` the plane of that name in its field's label image instead of the image."""
        p = _logical(path)
        if _is_result(p):
            return self._result_files(p).load(p, **options)
        self._check_options("load", options, _LOAD_OPTIONS, p)
        kind, meta, where = self._locate(p)
        if kind is None:
            raise self._not_found(p)
        if kind == "dir":
            raise self._is_a_directory(p)
        if kind == "plane":
            assert meta is not None
            ref: PlaneRef = meta["field"]
            if label is not None:
                image = label_path(ref.field, _label_name(label, p))
                image_meta = self.locator.read_meta(self.locator.key(image))
                if image_meta is None:
                    raise self._not_found(f"{p} (label {label!r})")
                ref = PlaneRef(image, ref.index, tuple(level_paths(image_meta)))
            dataset = ref.level_path(level)
            key = self.locator.key(f"{ref.field}/{dataset}") if dataset is not None else None
            level_meta = self.locator.read_meta(key) if key is not None else None
            if key is None or level_meta is None:
                raise InvalidPathError(f"{p!r} has no pyramid level {level}", path=p, backend=self.name)
            view = ZarrArrayView(open_array(self.locator, key, meta=level_meta), p, prefix=ref.index)
        else:
            if label is not None:
                raise InvalidPathError(f"{p!r}: label= applies to plate planes; this is an image", path=p, backend=self.name)
            levels = open_levels(self.locator, where, meta=meta)
            if not 0 <= level < len(levels):
                raise InvalidPathError(f"{p!r} has pyramid levels 0..{len(levels) - 1}, not {level}", path=p, backend=self.name)
            view = ZarrArrayView(levels[level], p)
        return view.read() if materialize else view

    def stat(self, path: P.PathLike) -> StatResult:
        p = _logical(path)
        kind, meta, where = self._locate(p)
        if kind is None:
            raise self._not_found(p)
        if kind == "dir":
            return StatResult(p, "directory", extra={"plate": node_kind(meta) == "plate"})
        if kind == "result":
            return self._result_files(p).stat(p)
        try:
            view = self.load(p)
        except CorruptDataError as exc:
            return StatResult(p, "file", size=self.locator.size(self.locator.key(where)), extra={"damaged": str(exc)})
        extra = {"shape": view.shape, "dtype": str(view.dtype), "codec": describe_codecs(view.zarr)}
        if kind == "plane":
            # A plane shares its field's shard: report its decoded size.
            return StatResult(p, "file", size=view.nbytes, extra={**extra, "plate": P.parent(p)})
        return StatResult(p, "file", size=self.locator.size(self.locator.key(where)), extra=extra)

    def list_dir(self, path: P.PathLike = ".") -> list[str]:
        p = _logical(path)
        kind, meta, where = self._locate(p)
        if kind is None:
            raise self._not_found(p)
        if kind != "dir":
            raise PathNotADirectoryError(f"{p!r} is a file on the zarr backend, not a directory", path=p, backend=self.name)
        names: set[str] = set()
        if node_kind(meta) == "plate":
            names.update(self.plates.names(where, meta))
            names.update(n for n in self.locator.children(self.locator.key(where)) if self._is_result_in(where, n))
        else:
            names.update(self._entries(where))
        if where != p:
            names.update(self._entries(p))  # the folder's subfolders, beside its store
        return P.natural_sorted(names)

    def _entries(self, folder: str) -> list[str]:
        """The logical names of what store path ``folder`` holds: nodes, folders (a folder's store ``X.zarr``
        as ``X``), result files."""
        key = self.locator.key(folder)
        out = []
        for name in self.locator.children(key):
            if name == "zarr.json":
                continue
            if self._is_result_in(folder, name):
                out.append(name)
                continue
            child = join_key(key, name)
            try:
                meta = self.locator.read_meta(child)
            except CorruptDataError:
                out.append(name)  # listed: loading it says what is wrong with it
                continue
            ck = node_kind(meta)
            if own_attrs(meta).get("folder") and name.lower().endswith(".zarr"):
                out.append(name[: -len(".zarr")])  # the store of folder X, made by hcsvfs
            elif ck in ("image", "array", "plate", "dir") or (ck is None and self.locator.is_folder(child)):
                out.append(name)
        return out

    def _is_result_in(self, folder: str, name: str) -> bool:
        return _is_result(name) and self._is_result_file(P.join(folder, name))

    def ensure_directory(self, path: P.PathLike) -> None:
        p = _logical(path)
        self.locator.key(p)  # a bad path (escape, over-long name) fails here, before any folder is made
        for d in [*P.ancestors(p), p]:
            kind, _ = self._resolve(d)
            if kind == "dir":
                continue
            if kind is not None:
                raise PathNotADirectoryError(
                    f"cannot create directory {p!r} on the zarr backend: {d!r} is a file", path=p, backend=self.name
                )
            if store_path(d) != d:
                # Outside *.zarr folders a folder is a plain folder, and the leaf gets its store.
                self.locator.make_folder(self.locator.key(d))
                if d == p:
                    self._ensure_store(d)
                continue
            # A raw metadata write: zarr's group creation would also write into every parent folder.
            self.locator.write_meta(self.locator.key(d), _GROUP)

    # ------------------------------------------------------------------ batches
    def save_batch(
        self, data_list: Sequence[Any], paths: Sequence[P.PathLike], *, overwrite: bool = False, **options: Any
    ) -> None:
        """Check every path first; then plate planes are written per field and plain images in parallel threads."""
        self._check_options("save_batch", options, _SAVE_OPTIONS, "")
        if len(data_list) != len(paths):
            self._check_batch(data_list, paths, overwrite=overwrite)  # raises the shared message
        logical = [_logical(p) for p in paths]
        if len(set(logical)) != len(logical):
            self._check_batch(data_list, paths, overwrite=overwrite)
        filled = {_logical(f) for f in options.get("filled") or ()}
        if filled - set(logical):
            stray = P.natural_sorted(filled - set(logical))[0]
            raise InvalidPathError(f"filled= names {stray!r}, which this batch does not save", path=stray, backend=self.name)
        # Tables and notes beside the images are files, saved one by one after the arrays.
        results = [(d, p) for d, p in zip(data_list, logical) if _is_result(p)]
        if results:
            kept = [(d, p) for d, p in zip(data_list, logical) if not _is_result(p)]
            data_list, logical = [d for d, _ in kept], [p for _, p in kept]
        for folder in {P.parent(p) for p in logical}:
            if store_path(folder) != folder and self.is_dir(folder):
                self._ensure_store(folder)  # so HCS names there form a plate in it (a missing one fails below)
        parents: dict[str, dict[str, Any] | None] = {}
        planes: list[tuple[PlaneTarget, np.ndarray]] = []
        plain: list[tuple[str, np.ndarray]] = []
        label = options.get("label")
        for data, p in zip(data_list, logical):
            q = node_path(p)
            parent = P.parent(q)
            if parent not in parents:
                parents[parent] = self._meta(parent)
            target = self.plates.target(q, parents[parent], label=_label_name(label, p))
            arr = self._as_array(data, p)
            if target is None:
                plain.append((p, arr))
            else:
                planes.append((dataclasses.replace(target, filled=True) if p in filled else target, arr))
        not_planes = [p for p, _ in plain] + [p for _, p in results]
        if filled & set(not_planes):
            stray = next(p for p in not_planes if p in filled)
            raise InvalidPathError(
                f"{stray!r}: filled= marks stand-ins for missing planes of a plate; this is not a plate plane",
                path=stray, backend=self.name,
            )
        if plain and label is not None:
            raise InvalidPathError(
                f"{plain[0][0]!r}: label= puts planes of a plate into their fields' label images; this is not a plate plane",
                path=plain[0][0],
                backend=self.name,
            )
        if plain:
            self._check_batch([a for _, a in plain], [p for p, _ in plain], overwrite=overwrite)
        axes = {p: default_axes(a.ndim, options.get("axes")) for p, a in plain}
        for _, a in plain:
            self.config.chunk_shape(a.shape)
        for parent in {t.plate for t, _ in planes}:
            self._require_parent(P.join(parent, "x"))
        self.plates.check(planes, overwrite)
        labels = bool(options.get("labels", False))
        if planes:
            self.plates.save(planes, overwrite=overwrite, labels=labels)
        if len(plain) > 1 and self.config.write_threads > 1:
            with ThreadPoolExecutor(self.config.write_threads, thread_name_prefix="hcsvfs-zarr") as pool:
                list(pool.map(
                    lambda item: self._write_image(node_path(item[0]), item[1], axes[item[0]], labels, overwrite,
                                                   logical=item[0]),
                    plain,
                ))
        else:
            for p, a in plain:
                self._write_image(node_path(p), a, axes[p], labels, overwrite, logical=p)
        for data, p in results:
            self._result_files(p).save(data, p, overwrite=overwrite)

    def load_batch(self, paths: Sequence[P.PathLike], *, materialize: bool = False, **options: Any) -> list[Any]:
        """Load every path against one snapshot of the metadata: each plate, well and field is read once.

        On an object store that is most of the requests (24 planes of one plate: 240 -> 74). With
        ``materialize=True`` the pixels of all paths are fetched concurrently (:func:`read_many`).
        """
        with self.locator.memo():
            views = [self.load(p, **options) for p in paths]
        return read_many(views) if materialize else views

    # ------------------------------------------------------------------ mutation
    def delete_all(self, path: P.PathLike) -> None:
        p = _logical(path)
        st = self.stat(p)
        if st.is_file:
            self._delete_file(p)
            return
        self._check_not_root(p)
        if store_path(p) == p:
            self.locator.delete_tree(self.locator.key(p))
            return
        # A folder outside *.zarr folders: what it holds, its store, then the folder if nothing else (another
        # backend's files in a shared folder) is left in it.
        for name in self.list_dir(p):
            self.delete_all(P.join(p, name))
        self.locator.delete_tree(self.locator.key(store_path(p)))
        if not self.locator.children(self.locator.key(p)):
            self.locator.delete_tree(self.locator.key(p))

    def move(self, src: P.PathLike, dst: P.PathLike, *, overwrite: bool = False) -> None:
        """Move a file or folder; on a local store one atomic rename (of racing movers exactly one wins)."""
        s, d = _logical(src), _logical(dst)
        kind, _ = self._resolve(s)
        if kind == "result" or _is_result(d):
            if kind != "result" or not _is_result(d):
                raise InvalidPathError(
                    f"cannot move {s!r} to {d!r}: result files ({', '.join(RESULT_EXTENSIONS)}) and images do not "
                    "turn into each other; keep the extension's kind",
                    path=d, backend=self.name,
                )
            self._result_files(s).move(s, d, overwrite=overwrite)
            return
        dq = node_path(d)
        plane_either_side = kind == "plane" or self.plates.target(dq, self._meta(P.parent(dq))) is not None
        st = self.stat(s)
        # Planes live inside fields, and a folder outside *.zarr folders is two places (itself and its store):
        # those are copied, then deleted.
        folder_of_two = st.is_dir and (store_path(s) != s or store_path(d) != d)
        if not self.locator.can_rename or plane_either_side or folder_of_two:
            super().move(s, d, overwrite=overwrite)
            return
        self._check_transfer(s, d, st, overwrite)
        _, _, where = self._locate(s)
        self._ensure_store(P.parent(d))
        try:
            self.locator.rename_node(self.locator.key(where), self.locator.key(dq), replace=overwrite and st.is_file)
        except FileNotFoundError:
            raise self._not_found(s) from None  # a racing mover took it first
        except FileExistsError:
            raise PathExistsError(
                f"{d!r} was created by another writer during this move; pass overwrite=True to replace it",
                path=d,
                backend=self.name,
            ) from None

    def _is_result_file(self, p: str) -> bool:
        files = self.files
        return files is not None and files.is_file(p)

    def _delete_file(self, path: str) -> None:
        kind, meta, where = self._locate(path)
        if kind == "result":
            self._result_files(path).delete(path)
        elif kind == "plane":
            assert meta is not None
            self.plates.remove(P.parent(where), P.basename(path), meta["plate"])
        else:
            self.locator.delete_tree(self.locator.key(where))

    def _delete_empty_dir(self, path: str) -> None:
        store = store_path(path)
        if store != path:
            self.locator.delete_tree(self.locator.key(store))
            if self.locator.children(self.locator.key(path)):
                return  # another backend's files in a shared folder stay, and so does the folder
        self.locator.delete_tree(self.locator.key(path))

    # ------------------------------------------------------------------ tools
    def open_plate(self, path: P.PathLike) -> PlateInfo:
        """Rows, columns, wells and fields of the plate at ``path``; ``.field(well, i)`` opens one field lazily."""
        p = _logical(path)
        kind, meta, where = self._locate(p)
        if kind != "dir" or node_kind(meta) != "plate":
            raise InvalidPathError(f"{p!r} is not a plate on the zarr backend", path=p, backend=self.name)
        assert meta is not None
        return self.plates.info(where, meta)

    def describe(self, path: P.PathLike) -> dict[str, Any]:
        """What is at ``path``, from its metadata alone (no pixel decoded), whoever wrote it and wherever it is:
        a plate (rows, columns, wells, fields, planes, NGFF version), an image (axes, shapes, dtype, levels,
        chunks, shards, codec, channel and label names), a plane of a plate, or a folder."""
        p = _logical(path)
        what, meta, where = self._node_type(p)
        if what == "plane":
            assert meta is not None
            ref: PlaneRef = meta["field"]
            facts = image_facts(self.locator, ref.field)
            return {**facts, "type": "plane", "field": ref.field, "index": list(ref.index), "field_shape": facts["shape"],
                    "shape": facts["shape"][-2:]}
        if what == "file":
            st = self._result_files(p).stat(p)
            return {"type": "file", "size": st.size, "stored_by": self._result_files(p).name}
        if what == "array":
            arr = open_array(self.locator, self.locator.key(where), meta=meta)
            return {"type": "array", "shape": list(arr.shape), "dtype": str(arr.dtype), "chunks": list(arr.chunks),
                    "codec": describe_codecs(arr)}
        if what == "image":
            return image_facts(self.locator, where, meta)
        if what == "plate":
            assert meta is not None
            info = self.plates.info(where, meta)
            return {
                "type": "plate",
                "format": f"zarr v{meta.get('zarr_format', 3)}",
                "ngff_version": ngff_version(meta),
                "written_by": "hcsvfs" if is_own(meta) else "another tool (read-only here)",
                "rows": len(info.rows),
                "columns": len(info.columns),
                "wells": len(info.wells),
                "fields_per_well": info.field_count,
                "planes": sum(len(w.files) for w in info.wells.values()),
                **compression_facts(meta),
            }
        return {"type": "folder", "entries": len(self.list_dir(p))}

    def node_type(self, path: P.PathLike) -> str:
        """What ``path`` is, from its own metadata only (cheaper than :meth:`describe`): ``"plate"``, ``"image"``,
        ``"plane"`` (of a plate), ``"array"``, ``"folder"`` or ``"file"`` (a result file stored beside them);
        PathNotFoundError if nothing is there."""
        return self._node_type(_logical(path))[0]

    def _node_type(self, p: str) -> tuple[str, dict[str, Any] | None, str]:
        kind, meta, where = self._locate(p)
        if kind is None:
            raise self._not_found(p)
        if kind == "file":
            return ("array" if node_kind(meta) == "array" else "image"), meta, where
        if kind == "dir":
            return ("plate" if node_kind(meta) == "plate" else "folder"), meta, where
        if kind == "result":
            return "file", meta, where
        return kind, meta, where

    def stored_bytes(self, path: P.PathLike) -> int:
        """Bytes stored under ``path`` (a plate, a well or field of it, an image), compressed, as the store holds them."""
        return self.locator.size(self.locator.key(self._locate(_logical(path))[2]))

    def validate(self, path: P.PathLike) -> list[str]:
        """Validate the image or plate at ``path`` with ome-zarr-models; returns what was checked, raises InvalidMetadataError."""
        p = _logical(path)
        kind, _, where = self._locate(p)
        if kind is None:
            raise self._not_found(p)
        if kind == "result":
            raise InvalidPathError(f"{p!r} is a result file, not an OME-Zarr image or plate", path=p, backend=self.name)
        if kind == "plane":
            where = P.parent(where)
        group = zarr.open_group(StorePath(self.locator.store, self.locator.key(where)), mode="r")
        return validate_group(group, where)

    def rebuild_plate_metadata(self, path: P.PathLike) -> list[str]:
        """Re-list the plate's complete wells from the wells themselves (after several processes wrote one plate)."""
        p = _logical(path)
        return self.plates.rebuild(store_path(p))

    # ------------------------------------------------------------------ helpers
    def _as_array(self, data: Any, p: str) -> np.ndarray:
        if isinstance(data, np.generic):
            data = np.asarray(data)
        if not arrays.is_array(data):
            raise UnsupportedTypeError(
                f"the zarr backend stores arrays, not {type(data).__name__} (at {p!r}); save it on the disk or memory backend",
                path=p,
                backend=self.name,
            )
        arr = arrays.to_numpy(data)
        if arr.dtype.kind not in "biufc":
            raise UnsupportedTypeError(
                f"the zarr backend stores numeric arrays; {p!r} has dtype {arr.dtype}. Use the disk backend (.npy) for it",
                path=p,
                backend=self.name,
            )
        return arr

    def __repr__(self) -> str:
        return f"<ZarrStorageBackend {self.locator.describe()} {self.config.compression}>"



def _in_store(p: str) -> bool:
    """At or inside a ``*.zarr`` folder: there, logical paths are store paths as they are."""
    return any(part.lower().endswith(".zarr") for part in p.split("/"))


def store_path(folder: str) -> str:
    """Where the images and plates of logical ``folder`` are: ``<folder>.zarr`` beside it, as in the original
    system (so disk's ``run/x.tif`` and zarr's ``run/x.tif`` never meet); the folder itself at the root and at
    or inside a ``*.zarr`` folder."""
    if folder in (".", "/", "") or _in_store(folder):
        return folder
    return folder + ".zarr"


def node_path(p: str) -> str:
    """Where the node (image, plate, plane) named by logical ``p`` is: in its folder's store."""
    parent = P.parent(p)
    if parent in (".", "/") or _in_store(p):
        return p
    return P.join(store_path(parent), P.basename(p))


def _is_result(p: str) -> bool:
    """A result file's path (zarr's own ``zarr.json`` is never one)."""
    return p.lower().endswith(RESULT_EXTENSIONS) and P.basename(p) != "zarr.json"


def _rebuild(root: Any, store: Any, storage_options: Any, config: ZarrConfig) -> ZarrStorageBackend:
    return ZarrStorageBackend(root, store=store, config=config, storage_options=storage_options)


def _logical(path: P.PathLike) -> str:
    """A user's path: normalised, reserved names refused (``..`` is the locator's to judge: cwd mode allows it),
    and names that are not text refused: zarr v3 keys are UTF-8 (a lone surrogate, what Python makes of a
    file name's invalid bytes, has no UTF-8 form)."""
    p = P.checked(path, escapes=False)
    try:
        p.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidPathError(
            f"{p!r} is not valid UTF-8 text, which zarr keys must be; rename it (disk and memory take such names)",
            path=p,
            backend="zarr",
        ) from None
    return p


@overload
def _label_name(label: str, p: str) -> str: ...
@overload
def _label_name(label: None, p: str) -> None: ...
def _label_name(label: str | None, p: str) -> str | None:
    """A label image's name: one plain path component (it becomes ``labels/<name>`` of a field)."""
    if label is not None and (not isinstance(label, str) or not label or "/" in label or P.is_reserved_name(label)):
        raise InvalidPathError(f"{p!r}: label must be a plain name such as 'cells', got {label!r}", path=p, backend="zarr")
    return label
