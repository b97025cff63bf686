"""The StorageBackend contract that every backend implements.

The semantics are defined once, here and in ``tests/test_conformance.py``, and
hold on every backend: saving onto an existing path fails unless
``overwrite=True``; saving under a missing parent fails (FileManager creates
parents for you); paths are logical (see :mod:`hcsvfs.paths`).
"""

from __future__ import annotations

import fnmatch
from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from .. import paths as P
from ..errors import (
    DirectoryNotEmptyError,
    InvalidPathError,
    PathExistsError,
    PathIsADirectoryError,
    PathNotADirectoryError,
    PathNotFoundError,
)
from ..options import check_options

__all__ = ["StorageBackend", "StatResult", "normalize_extensions", "match_file"]


@dataclass(frozen=True)
class StatResult:
    """What a backend knows about one path without loading it."""

    path: str
    kind: Literal["file", "directory"]
    size: int = 0  #: bytes as stored (after compression) where known; 0 for directories
    mtime: float | None = None  #: seconds since the epoch, where the backend keeps it
    extra: dict[str, Any] = field(default_factory=dict)  #: backend-specific facts (dtype, shape, codec...)

    @property
    def is_file(self) -> bool:
        return self.kind == "file"

    @property
    def is_dir(self) -> bool:
        return self.kind == "directory"


def normalize_extensions(extensions: Iterable[str] | str | None) -> frozenset[str] | None:
    """``{"tif", ".TIFF"}`` -> ``{".tif", ".tiff"}``; None stays None (no filter)."""
    if extensions is None:
        return None
    if isinstance(extensions, str):
        extensions = [extensions]
    return frozenset(e.lower() if e.startswith(".") else "." + e.lower() for e in extensions)


def match_file(name: str, pattern: str | None, extensions: frozenset[str] | None) -> bool:
    """True if a file name passes the optional glob ``pattern`` and extension filter."""
    if pattern is not None and not fnmatch.fnmatchcase(name, pattern):
        return False
    if extensions is not None:
        lower = name.lower()
        return any(lower.endswith(ext) for ext in extensions)
    return True


class StorageBackend(ABC):
    """A place to save and load objects by logical path.

    Implementations provide the abstract primitives; the batch operations,
    ``copy``, ``move``, ``is_file``/``is_dir`` and listing filters have generic
    versions here that backends override where they can do better.
    """

    #: Registry name of the backend kind ("memory", "disk", ...).
    name: ClassVar[str] = "abstract"

    # ------------------------------------------------------------------ primitives
    @abstractmethod
    def save(self, data: Any, path: P.PathLike, *, overwrite: bool = False, **options: Any) -> None:
        """Store ``data`` at ``path``.

        Raises FileExistsError if something is there and ``overwrite`` is false,
        FileNotFoundError if the parent directory does not exist,
        IsADirectoryError if ``path`` is a directory, TypeError if the backend
        cannot store this kind of object.
        """

    @abstractmethod
    def load(self, path: P.PathLike, **options: Any) -> Any:
        """Return the object at ``path``; FileNotFoundError if absent, IsADirectoryError for a directory."""

    @abstractmethod
    def stat(self, path: P.PathLike) -> StatResult:
        """Facts about ``path``; FileNotFoundError if it does not exist."""

    @abstractmethod
    def list_dir(self, path: P.PathLike = ".") -> list[str]:
        """Sorted names (not paths) of the entries directly inside directory ``path``."""

    @abstractmethod
    def ensure_directory(self, path: P.PathLike) -> None:
        """Create ``path`` and any missing parents; a no-op if it exists; NotADirectoryError if a file is in the way."""

    @abstractmethod
    def _delete_file(self, path: str) -> None:
        """Remove one file known to exist."""

    @abstractmethod
    def _delete_empty_dir(self, path: str) -> None:
        """Remove one directory known to exist and be empty."""

    # ------------------------------------------------------------------ options
    def save_options(self, data: Any, path: str) -> frozenset[str]:
        """The keyword options ``save`` takes for ``data`` at ``path`` besides ``overwrite``; any other is refused."""
        return frozenset()

    def load_options(self, path: str) -> frozenset[str]:
        """The keyword options ``load`` takes for ``path``; any other is refused."""
        return frozenset()

    def _check_options(self, operation: str, options: dict[str, Any], valid: Iterable[str], path: str) -> None:
        """Refuse options ``operation`` does not take (``overwrite`` is listed for saves: it is a keyword of every save)."""
        if options:
            listed = {*valid, "overwrite"} if operation.startswith("save") else valid
            check_options(options, listed, what=f"{operation} on the {self.name} backend", path=path, backend=self.name)

    # ------------------------------------------------------------------ queries
    def exists(self, path: P.PathLike) -> bool:
        """True if a file or directory is at ``path``."""
        try:
            self.stat(path)
        except FileNotFoundError:
            return False
        except NotADirectoryError:
            return False
        return True

    def is_file(self, path: P.PathLike) -> bool:
        """True if a file (a stored object) is at ``path``."""
        try:
            return self.stat(path).is_file
        except (FileNotFoundError, NotADirectoryError):
            return False

    def is_dir(self, path: P.PathLike) -> bool:
        """True if a directory is at ``path``."""
        try:
            return self.stat(path).is_dir
        except (FileNotFoundError, NotADirectoryError):
            return False

    def list_files(
        self,
        path: P.PathLike = ".",
        pattern: str | None = None,
        extensions: Iterable[str] | str | None = None,
        recursive: bool = False,
    ) -> list[str]:
        """Sorted logical paths of the files in directory ``path``.

        ``pattern`` is a glob matched against the file name, ``extensions``
        filters by suffix (case-insensitive, dot optional), ``recursive``
        descends into subdirectories.
        """
        base = P.normalize(path)
        self._require_dir(base)
        exts = normalize_extensions(extensions)
        out: list[str] = []
        stack = [base]
        while stack:
            current = stack.pop()
            for entry in self.list_dir(current):
                child = P.join(current, entry)
                st = self.stat(child)
                if st.is_dir:
                    if recursive:
                        stack.append(child)
                elif match_file(entry, pattern, exts):
                    out.append(child)
        return P.natural_sorted(out)

    # ------------------------------------------------------------------ batches
    def save_batch(
        self,
        data_list: Sequence[Any],
        paths: Sequence[P.PathLike],
        *,
        overwrite: bool = False,
        **options: Any,
    ) -> None:
        """Save ``data_list[i]`` at ``paths[i]``; every path is checked before anything is written."""
        logical = self._check_batch(data_list, paths, overwrite=overwrite)
        for data, path in zip(data_list, logical):
            self.save(data, path, overwrite=overwrite, **options)

    def load_batch(self, paths: Sequence[P.PathLike], **options: Any) -> list[Any]:
        """Load every path, in order."""
        return [self.load(p, **options) for p in paths]

    # ------------------------------------------------------------------ mutation
    def delete(self, path: P.PathLike) -> None:
        """Remove a file or an empty directory; DirectoryNotEmptyError for a non-empty one."""
        p = P.normalize(path)
        st = self.stat(p)
        if st.is_dir:
            if self.list_dir(p):
                raise DirectoryNotEmptyError(
                    f"directory {p!r} is not empty on the {self.name} backend; use delete_all() to remove it "
                    "with everything inside",
                    path=p,
                    backend=self.name,
                )
            self._check_not_root(p)
            self._delete_empty_dir(p)
        else:
            self._delete_file(p)

    def delete_all(self, path: P.PathLike) -> None:
        """Remove ``path`` and, for a directory, everything below it."""
        p = P.normalize(path)
        st = self.stat(p)
        if st.is_file:
            self._delete_file(p)
            return
        self._check_not_root(p)
        for entry in self.list_dir(p):
            self.delete_all(P.join(p, entry))
        self._delete_empty_dir(p)

    def copy(self, src: P.PathLike, dst: P.PathLike, *, overwrite: bool = False) -> None:
        """Copy a file or a directory tree from ``src`` to ``dst`` within this backend."""
        s, d = P.normalize(src), P.normalize(dst)
        st = self.stat(s)
        self._check_transfer(s, d, st, overwrite)
        if st.is_file:
            self.save(self.load(s), d, overwrite=overwrite)
            return
        self.ensure_directory(d)
        for entry in self.list_dir(s):
            self.copy(P.join(s, entry), P.join(d, entry), overwrite=overwrite)

    def move(self, src: P.PathLike, dst: P.PathLike, *, overwrite: bool = False) -> None:
        """Move a file or directory tree; the source is removed only after the destination is complete."""
        s, d = P.normalize(src), P.normalize(dst)
        st = self.stat(s)
        self._check_transfer(s, d, st, overwrite)
        self.copy(s, d, overwrite=overwrite)
        self.delete_all(s)

    # ------------------------------------------------------------------ shared checks
    def _require_dir(self, path: str) -> None:
        st = self.stat(path)
        if not st.is_dir:
            raise PathNotADirectoryError(
                f"{path!r} is a file on the {self.name} backend, not a directory", path=path, backend=self.name
            )

    def _require_parent(self, path: str) -> None:
        """Raise unless the parent of ``path`` exists and is a directory (the fail-loud save rule)."""
        par = P.parent(path)
        try:
            st = self.stat(par)
        except FileNotFoundError:
            raise PathNotFoundError(
                f"cannot save {path!r} on the {self.name} backend: parent directory {par!r} does not exist; "
                "create it with ensure_directory() or save through FileManager, which creates parents",
                path=path,
                backend=self.name,
            ) from None
        if not st.is_dir:
            raise PathNotADirectoryError(
                f"cannot save {path!r} on the {self.name} backend: {par!r} is a file, not a directory",
                path=path,
                backend=self.name,
            )

    def _check_target(self, path: str, overwrite: bool) -> bool:
        """Apply the save rules to ``path``; return True if a file is already there (to be replaced)."""
        try:
            st = self.stat(path)
        except FileNotFoundError:
            self._require_parent(path)
            return False
        if st.is_dir:
            raise PathIsADirectoryError(
                f"cannot save to {path!r} on the {self.name} backend: it is a directory", path=path, backend=self.name
            )
        if not overwrite:
            raise PathExistsError(
                f"{path!r} already exists on the {self.name} backend; pass overwrite=True to replace it",
                path=path,
                backend=self.name,
            )
        return True

    def _check_batch(self, data_list: Sequence[Any], paths: Sequence[P.PathLike], *, overwrite: bool) -> list[str]:
        if len(data_list) != len(paths):
            raise InvalidPathError(
                f"save_batch got {len(data_list)} objects but {len(paths)} paths; give one path per object",
                backend=self.name,
            )
        logical = [P.normalize(p) for p in paths]
        seen: set[str] = set()
        for p in logical:
            if p in seen:
                raise InvalidPathError(
                    f"save_batch names {p!r} twice; every path in a batch must be distinct", path=p, backend=self.name
                )
            seen.add(p)
            self._check_target(p, overwrite)
        return logical

    def _check_transfer(self, src: str, dst: str, st: StatResult, overwrite: bool) -> None:
        if src == dst or P.is_within(dst, src):
            raise InvalidPathError(
                f"cannot copy or move {src!r} into itself ({dst!r}); choose a destination outside it",
                path=dst,
                backend=self.name,
            )
        if st.is_file:
            self._check_target(dst, overwrite)
        else:
            if self.exists(dst):
                raise PathExistsError(
                    f"cannot copy or move directory {src!r}: {dst!r} already exists on the {self.name} backend",
                    path=dst,
                    backend=self.name,
                )
            self._require_parent(dst)

    def _check_not_root(self, path: str) -> None:
        if path in (".", "/"):
            raise InvalidPathError(
                f"refusing to delete the root {path!r} of the {self.name} backend; delete what is inside it instead",
                path=path,
                backend=self.name,
            )

    def _not_found(self, path: str) -> PathNotFoundError:
        return PathNotFoundError(f"{path!r} does not exist on the {self.name} backend", path=path, backend=self.name)

    def _is_a_directory(self, path: str) -> PathIsADirectoryError:
        return PathIsADirectoryError(
            f"{path!r} is a directory on the {self.name} backend; load a file inside it, or list it with list_files()",
            path=path,
            backend=self.name,
        )

    def __repr__(self) -> str:
        return f"<{type(self).__name__}>"
