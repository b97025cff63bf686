"""Logical paths: normalisation, validation and mapping onto a physical root.

A logical path is a POSIX-style string (``A01/step1_out/x.tif``). The same
logical path names the same object on every backend; each backend maps it to
its own physical place. :class:`RootedPath` does that mapping for backends that
live on a file system, and enforces the *jail* when a backend has an explicit
root: nothing may resolve outside it.
"""

from __future__ import annotations

import os
import posixpath
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Union

from .errors import InvalidPathError

__all__ = [
    "PathLike",
    "normalize",
    "join",
    "parent",
    "basename",
    "split_ext",
    "ancestors",
    "is_within",
    "RootedPath",
    "RESERVED_PREFIX",
    "is_reserved_name",
    "checked",
    "natural_key",
    "natural_sorted",
    "is_system_junk",
]

PathLike = Union[str, "os.PathLike[str]"]

# Multi-part extensions are matched first so "x.ome.tif" is OME-TIFF, not plain TIFF.
_COMPOUND_EXTS = (".ome.tiff", ".ome.tif", ".ome.zarr", ".tar.gz")

#: Names starting with this belong to hcsvfs itself (temp files, locks, directory markers); listings hide them.
RESERVED_PREFIX = ".hcsvfs-"

# Longest file name (in bytes) that ext4, XFS, btrfs, tmpfs, APFS and NTFS all accept.
_NAME_MAX = 255


def normalize(path: PathLike) -> str:
    """Return the canonical logical form of ``path``.

    Separators are POSIX, repeated ``/`` and ``.`` segments vanish, ``x/..``
    pairs cancel lexically, trailing slashes go. A leading ``/`` is kept
    (absolute paths stay absolute). ``..`` that cannot cancel is kept so that a
    rooted backend can reject it. Empty paths and NUL bytes are always rejected.
    """
    if type(path) is str and _is_canonical(path):
        return path  # the common case, on every save and load: skip the split and rejoin
    if isinstance(path, os.PathLike):
        path = os.fspath(path)
    if not isinstance(path, str):
        raise InvalidPathError(
            f"logical path must be a str or os.PathLike, got {type(path).__name__}: {path!r}",
            path=repr(path),
        )
    if "\x00" in path:
        raise InvalidPathError(f"path {path!r} contains a NUL byte; remove it", path=path)
    text = path.replace("\\", "/") if os.sep == "\\" else path
    if text.strip() == "":
        raise InvalidPathError("path is empty; give a logical path such as 'plate/A01/x.tif'", path=path)
    absolute = text.startswith("/")
    out: list[str] = []
    for part in text.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if out and out[-1] != "..":
                out.pop()
            elif absolute:
                continue  # "/.." is "/" on POSIX
            else:
                out.append("..")
            continue
        out.append(part)
    body = "/".join(out)
    if absolute:
        return "/" + body
    if body and body.strip() == "":
        # " /" or "\r/." would normalise to a blank name, which is refused as empty on its own:
        # refuse it here too, so normalize() stays idempotent.
        raise InvalidPathError(f"path {path!r} is blank; give a logical path such as 'plate/A01/x.tif'", path=path)
    return body if body else "."


def is_reserved_name(name: str) -> bool:
    """True for a name hcsvfs keeps for its own objects (see :data:`RESERVED_PREFIX`)."""
    return name.startswith(RESERVED_PREFIX)


_DIGITS = re.compile(r"(\d+)", re.ASCII)


def natural_key(name: str) -> tuple[object, ...]:
    """Sort key that orders runs of digits by value: ``s2`` before ``s10``, ``A2`` before ``A10``.

    Text runs compare as text and digit runs as (value, text), so equal values written
    differently (``01``, ``1``) still sort in one fixed order.
    """
    parts = _DIGITS.split(name)  # text, digits, text, ...: every odd index holds digits
    return tuple((int(part), part) if i % 2 else part for i, part in enumerate(parts))


def natural_sorted(names: Iterable[str]) -> list[str]:
    """``names`` in natural order (see :func:`natural_key`); every listing of every backend uses it."""
    return sorted(names, key=natural_key)


#: Files that operating systems and file browsers leave beside images: never images themselves.
_JUNK_NAMES = frozenset({".ds_store", "thumbs.db", "desktop.ini", "ehthumbs.db"})


def is_system_junk(name: str) -> bool:
    """True for a file name an OS or file browser made (macOS ``._*`` resource forks, ``.DS_Store``,
    Windows ``Thumbs.db``), which must never count as an image of a plate."""
    return name.startswith("._") or name.lower() in _JUNK_NAMES


def checked(path: PathLike, *, escapes: bool = True) -> str:
    """``normalize(path)``, refusing what no backend stores: names reserved for hcsvfs (``.hcsvfs-*``),
    names longer than file systems allow, and (``escapes=True``: backends with no folder of their own,
    such as memory) a ``..`` that climbs out of the root. Every backend refuses the same paths."""
    if type(path) is str and len(path) <= _NAME_MAX and _is_canonical(path):
        # The hot path: a canonical path has no '.'-leading component at all ('/.' and a leading '.'
        # are not canonical), so neither '..' nor a reserved name, and it is too short for a long name.
        return path
    p = normalize(path)
    if escapes and (p == ".." or p.startswith("../")):
        raise InvalidPathError(
            f"path {str(path)!r} climbs out of the backend's root with '..'; use a path inside it", path=str(path)
        )
    if RESERVED_PREFIX in p:
        for part in p.split("/"):
            if is_reserved_name(part):
                raise InvalidPathError(
                    f"path {p!r} uses the name {part!r}, reserved for hcsvfs's own files ({RESERVED_PREFIX}*); rename it",
                    path=p,
                )
    if len(p) > _NAME_MAX:
        check_name_lengths(p)
    return p


def check_name_lengths(logical: str) -> None:
    """Refuse a component longer than file systems allow (the OS would raise a bare "File name too long")."""
    for part in logical.split("/"):
        size = len(os.fsencode(part))
        if size > _NAME_MAX:
            raise InvalidPathError(
                f"path {logical[:80]!r}... has a component of {size} bytes; file systems allow at most "
                f"{_NAME_MAX}. Use a shorter name",
                path=logical,
            )


def _is_canonical(path: str) -> bool:
    """A cheap, conservative test that ``normalize`` would return ``path`` unchanged (False means: do the work)."""
    return (
        os.sep == "/"
        and path != ""
        and path[0] != "."
        and not path[0].isspace()
        and path[-1] != "/"
        and "//" not in path
        and "/." not in path
        and "\x00" not in path
    )


def join(*parts: PathLike) -> str:
    """Join logical path parts and normalise; a later absolute part wins, as in posixpath."""
    return normalize(posixpath.join(*[os.fspath(p) for p in parts]))


def parent(path: PathLike) -> str:
    """The logical parent: ``"."`` for a top-level relative name, ``"/"`` for a top-level absolute one."""
    p = normalize(path)
    if p in (".", "/"):
        return p
    head, sep, _ = p.rpartition("/")  # p is canonical: no trailing or doubled slashes to strip
    if not sep:
        return "."
    return head or "/"


def basename(path: PathLike) -> str:
    """The last component of a logical path."""
    return posixpath.basename(normalize(path))


def split_ext(path: PathLike) -> tuple[str, str]:
    """Split into (stem, extension), lower-casing the extension and knowing ``.ome.tif`` and friends."""
    name = basename(path)
    lower = name.lower()
    for ext in _COMPOUND_EXTS:
        if lower.endswith(ext) and len(lower) > len(ext):
            return name[: -len(ext)], ext
    stem, ext = posixpath.splitext(name)
    return stem, ext.lower()


def ancestors(path: PathLike) -> list[str]:
    """Every proper ancestor directory of ``path``, nearest last, excluding the root (``.`` or ``/``)."""
    p = normalize(path)
    out: list[str] = []
    cur = parent(p)
    while cur not in (".", "/") and cur != p:
        out.append(cur)
        cur = parent(cur)
    out.reverse()
    return out


def is_within(path: PathLike, directory: PathLike) -> bool:
    """True when logical ``path`` equals ``directory`` or lies below it."""
    p, d = normalize(path), normalize(directory)
    if d == ".":
        return not p.startswith("/") and p != ".." and not p.startswith("../")
    if d == "/":
        return p.startswith("/")
    return p == d or p.startswith(d + "/")


class RootedPath:
    """Maps logical paths to physical ones under a root.

    With ``root=None`` the mapping behaves like the original system: relative
    paths resolve against the current working directory *at call time* and
    absolute paths are taken as they are. With an explicit root the backend is
    a jail: ``..`` escapes, absolute paths outside the root and symlinks that
    lead out are rejected, so nothing is ever read or written outside it.
    """

    def __init__(self, root: PathLike | None = None) -> None:
        self.jailed = root is not None
        self._root = Path(os.fspath(root)).expanduser().absolute() if root is not None else None
        self._real_root = Path(os.path.realpath(self._root)) if self._root is not None else None

    @property
    def root(self) -> Path:
        """The physical root: the explicit one, or the current working directory."""
        return self._root if self._root is not None else Path.cwd()

    def __repr__(self) -> str:
        return f"RootedPath({str(self._root)!r})" if self.jailed else "RootedPath(cwd)"

    def physical(self, path: PathLike, *, check_symlinks: bool = True) -> Path:
        """The physical path for ``path``; raises InvalidPathError if it would leave a jail."""
        logical = normalize(path)
        check_name_lengths(logical)
        if not self.jailed:
            return Path(logical) if logical.startswith("/") else self.root / logical
        assert self._root is not None and self._real_root is not None
        if logical.startswith("/"):
            candidate = Path(logical)
            inside = self._relative_to(candidate, self._root) or self._relative_to(candidate, self._real_root)
            if inside is None:
                raise InvalidPathError(
                    f"absolute path {logical!r} is outside this backend's root {str(self._root)!r}; "
                    "use a path relative to the root",
                    path=logical,
                )
            candidate = self._root / inside
        else:
            if logical == ".." or logical.startswith("../"):
                raise InvalidPathError(
                    f"path {str(path)!r} escapes the root {str(self._root)!r} with '..'; "
                    "use a path inside the root",
                    path=str(path),
                )
            candidate = self._root if logical == "." else self._root / logical
        if check_symlinks:
            self._check_symlinks(candidate, logical)
        return candidate

    @staticmethod
    def _relative_to(path: Path, root: Path) -> str | None:
        try:
            return "" if path == root else path.relative_to(root).as_posix()
        except ValueError:
            return None

    def _check_symlinks(self, candidate: Path, logical: str) -> None:
        # realpath follows every link on the way, including a dangling last component,
        # so a link anywhere in the path that leads out of the root is caught.
        assert self._real_root is not None
        real = Path(os.path.realpath(candidate))
        if real != self._real_root and self._relative_to(real, self._real_root) is None:
            raise InvalidPathError(
                f"path {logical!r} resolves through a symlink to {str(real)!r}, outside the root "
                f"{str(self._root)!r}; hcsvfs never follows links out of a rooted backend",
                path=logical,
            )
