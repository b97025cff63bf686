"""The disk backend: files under a root, written atomically, format by extension then type."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal

from .. import paths as P
from ..errors import PathExistsError, PathNotADirectoryError, StorageError
from ..formats import FormatRegistry
from ..formats import formats as default_formats
from ..formats.base import SNIFF_BYTES, read_object, write_object
from .atomic import atomic_write, is_temp_name
from .base import StatResult, StorageBackend, match_file, normalize_extensions

__all__ = ["DiskStorageBackend"]


class DiskStorageBackend(StorageBackend):
    """Objects as files on a local file system.

    ``root=None`` behaves like the original system: relative paths resolve
    against the current working directory and absolute paths are used as they
    are. An explicit ``root`` is a jail (see :class:`hcsvfs.paths.RootedPath`).
    Every write is atomic; ``fsync=False`` trades durability after a power cut
    (not after a process crash) for speed.
    """

    name = "disk"

    def __init__(
        self,
        root: P.PathLike | None = None,
        *,
        formats: FormatRegistry | None = None,
        fsync: bool = True,
        create_root: bool = True,
    ) -> None:
        self.paths = P.RootedPath(root)
        self.formats = formats if formats is not None else default_formats
        self.fsync = fsync
        if root is not None and create_root:
            self.paths.root.mkdir(parents=True, exist_ok=True)

    @property
    def root(self) -> Path:
        return self.paths.root

    def _phys(self, path: str) -> Path:
        return self.paths.physical(P.checked(path, escapes=False))

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
        p = P.normalize(path)
        target = self._phys(p)
        fmt = self.formats.for_save(data, p, allow_pickle=allow_pickle)
        self._check_options("save", options, fmt.options("save") | {"allow_pickle"}, p)
        self._check_target(p, overwrite)
        if target.is_symlink():
            # Replacing a link (even one inside the root) would write through it on some paths; refuse.
            raise StorageError(f"{p!r} is a symbolic link; hcsvfs does not write through links", path=p, backend=self.name)
        atomic_write(
            target,
            lambda fh: write_object(fmt, data, fh, options, path=p, backend=self.name),
            overwrite=overwrite,
            fsync=self.fsync,
            logical=p,
        )

    def load(self, path: P.PathLike, *, allow_pickle: bool = False, **options: Any) -> Any:
        p = P.normalize(path)
        self._check_options("load", options, self.formats.load_options(p), p)
        target = self._phys(p)
        try:
            fh = open(target, "rb")  # noqa: SIM115 - closed by the with-block below, once opening succeeded
        except FileNotFoundError:
            raise self._not_found(p) from None
        except IsADirectoryError:
            raise self._is_a_directory(p) from None
        except NotADirectoryError:
            raise PathNotADirectoryError(f"{p!r}: a parent of it is a file, not a directory", path=p) from None
        with fh:
            if target.is_dir():
                raise self._is_a_directory(p)
            head = fh.read(SNIFF_BYTES)
            fh.seek(0)
            fmt = self.formats.for_load(p, head, allow_pickle=allow_pickle)
            return read_object(fmt, fh, options, path=p, backend=self.name)

    def stat(self, path: P.PathLike) -> StatResult:
        p = P.normalize(path)
        target = self._phys(p)
        try:
            st = target.stat()
        except FileNotFoundError:
            raise self._not_found(p) from None
        except NotADirectoryError:
            raise PathNotADirectoryError(f"{p!r}: a parent of it is a file, not a directory", path=p) from None
        kind: Literal["file", "directory"] = "directory" if os.path.isdir(target) else "file"
        return StatResult(p, kind, size=st.st_size if kind == "file" else 0, mtime=st.st_mtime)

    def exists(self, path: P.PathLike) -> bool:
        return self._phys(P.normalize(path)).exists()

    def list_dir(self, path: P.PathLike = ".") -> list[str]:
        p = P.normalize(path)
        self._require_dir(p)
        return P.natural_sorted(n for n in os.listdir(self._phys(p)) if not P.is_reserved_name(n))

    def list_files(
        self,
        path: P.PathLike = ".",
        pattern: str | None = None,
        extensions: Iterable[str] | str | None = None,
        recursive: bool = False,
    ) -> list[str]:
        base = P.normalize(path)
        self._require_dir(base)
        exts = normalize_extensions(extensions)
        out: list[str] = []
        # os.scandir reuses the directory entry's type: one syscall a folder, not one a file.
        stack = [(base, self._phys(base))]
        while stack:
            logical_dir, phys_dir = stack.pop()
            with os.scandir(phys_dir) as it:
                for entry in it:
                    if P.is_reserved_name(entry.name):
                        continue
                    if entry.is_dir(follow_symlinks=False):
                        if recursive:
                            stack.append((P.join(logical_dir, entry.name), Path(entry.path)))
                    elif match_file(entry.name, pattern, exts):
                        out.append(P.join(logical_dir, entry.name))
        return P.natural_sorted(out)

    def ensure_directory(self, path: P.PathLike) -> None:
        p = P.normalize(path)
        target = self._phys(p)
        try:
            target.mkdir(parents=True, exist_ok=True)
        except (FileExistsError, NotADirectoryError):
            raise PathNotADirectoryError(
                f"cannot create directory {p!r} on the disk backend: a file is in the way", path=p, backend=self.name
            ) from None

    # ------------------------------------------------------------------ mutation
    def delete_all(self, path: P.PathLike) -> None:
        p = P.normalize(path)
        st = self.stat(p)
        target = self._phys(p)
        if st.is_file:
            target.unlink()
            return
        self._check_not_root(p)
        shutil.rmtree(target)

    def move(self, src: P.PathLike, dst: P.PathLike, *, overwrite: bool = False) -> None:
        s, d = P.normalize(src), P.normalize(dst)
        st = self.stat(s)
        self._check_transfer(s, d, st, overwrite)
        source, target = self._phys(s), self._phys(d)
        if st.is_dir or overwrite:
            if st.is_file and target.exists() and os.path.samefile(source, target):
                # A move killed between link and unlink leaves two links to one inode; rename()
                # is then a silent no-op (POSIX), so finish the move by dropping the source.
                source.unlink()
                return
            os.rename(source, target)  # atomic within one file system
            return
        try:
            os.link(source, target)  # fail-loud: never replace a file another writer just made
        except FileExistsError:
            raise self._exists_error(d) from None
        except FileNotFoundError:
            raise self._not_found(s) from None  # another mover took it first
        except OSError:  # no hard links here (another device, some network file systems)
            atomic_write(target, lambda fh: _copy_into(source, fh), overwrite=False, fsync=self.fsync, logical=d)
        try:
            source.unlink()
        except FileNotFoundError:
            # A racing mover linked the same source and unlinked it first: it won, so undo our link.
            target.unlink(missing_ok=True)
            raise self._not_found(s) from None

    def copy(self, src: P.PathLike, dst: P.PathLike, *, overwrite: bool = False) -> None:
        s, d = P.normalize(src), P.normalize(dst)
        st = self.stat(s)
        self._check_transfer(s, d, st, overwrite)
        source, target = self._phys(s), self._phys(d)
        if st.is_dir:
            self._refuse_links_out(s, source)  # before anything is copied: copytree reads through links
            shutil.copytree(source, target, ignore=lambda _d, names: [n for n in names if P.is_reserved_name(n)])
            return

        atomic_write(target, lambda fh: _copy_into(source, fh), overwrite=overwrite, fsync=self.fsync, logical=d)

    def _refuse_links_out(self, logical: str, folder: Path) -> None:
        """Raise InvalidPathError if a link under ``folder`` leads out of the jail (as a load of it would)."""
        if not self.paths.jailed:
            return
        seen: set[str] = set()
        for current, dirs, files in os.walk(folder, followlinks=True):
            real = os.path.realpath(current)
            if real in seen:  # a link loop: this folder was walked already
                dirs[:] = []
                continue
            seen.add(real)
            for name in [*dirs, *files]:
                entry = Path(current) / name
                if entry.is_symlink():
                    self.paths.physical(P.join(logical, entry.relative_to(folder).as_posix()))

    def _delete_file(self, path: str) -> None:
        self._phys(path).unlink()

    def _delete_empty_dir(self, path: str) -> None:
        target = self._phys(path)
        # Leftovers of crashed writes are hidden from list_dir, so they must not make an "empty" folder undeletable.
        for name in os.listdir(target):
            if is_temp_name(name):
                (target / name).unlink(missing_ok=True)
        target.rmdir()

    def _exists_error(self, path: str) -> PathExistsError:
        return PathExistsError(
            f"{path!r} already exists on the disk backend; pass overwrite=True to replace it", path=path, backend=self.name
        )

    def __repr__(self) -> str:
        return f"<DiskStorageBackend root={str(self.root) if self.paths.jailed else 'cwd'}>"


def _copy_into(source: Path, fh: Any) -> None:
    """Stream ``source`` into an open temp file (the body of an atomic copy)."""
    with open(source, "rb") as sf:
        shutil.copyfileobj(sf, fh, 1 << 22)
