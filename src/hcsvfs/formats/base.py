"""The Format contract and the registry that picks one by extension, type or magic bytes."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, BinaryIO, ClassVar

from ..errors import UnsafeLoadError, UnsupportedTypeError
from ..paths import PathLike, split_ext

__all__ = ["Format", "FormatRegistry", "CATCH_ALL_PRIORITY"]

#: Formats sniffing at or above this priority recognise content by elimination (text, JSON, raw bytes).
CATCH_ALL_PRIORITY = 70


class Format(ABC):
    """A serializer for one file format.

    Subclasses set ``name`` and ``extensions`` and implement ``accepts``,
    ``dump`` and ``load`` over binary file objects, so the same format serves
    local files, temp files and object-store streams alike.
    """

    name: ClassVar[str]
    extensions: ClassVar[tuple[str, ...]] = ()
    #: Loading runs code (pickle): both save and load need an explicit opt-in.
    unsafe: ClassVar[bool] = False
    #: Lower sniffs first on load; catch-alls (text, raw bytes) sniff last.
    sniff_priority: ClassVar[int] = 50

    @abstractmethod
    def accepts(self, obj: Any) -> bool:
        """True if ``dump`` can write ``obj`` without losing its meaning."""

    @abstractmethod
    def dump(self, obj: Any, fh: BinaryIO, **options: Any) -> None:
        """Write ``obj`` to the binary file object ``fh``."""

    @abstractmethod
    def load(self, fh: BinaryIO, **options: Any) -> Any:
        """Read an object back from ``fh``."""

    def sniff(self, head: bytes) -> bool:
        """True if a file starting with ``head`` is in this format (for paths without a known extension)."""
        return False

    def __repr__(self) -> str:
        return f"<Format {self.name} {'/'.join(self.extensions)}>"


class FormatRegistry:
    """Formats by name and extension; the order of registration is the order of preference by type."""

    def __init__(self) -> None:
        self._formats: dict[str, Format] = {}
        self._by_ext: dict[str, Format] = {}

    def register(self, fmt: Format, *, replace: bool = False) -> Format:
        """Add ``fmt``; an extension already taken needs ``replace=True``."""
        if not replace:
            taken = [e for e in fmt.extensions if e.lower() in self._by_ext]
            if fmt.name in self._formats or taken:
                raise ValueError(
                    f"format {fmt.name!r} clashes with a registered one (extensions {taken}); "
                    "pass replace=True to override it"
                )
        self._formats[fmt.name] = fmt
        for ext in fmt.extensions:
            self._by_ext[ext.lower()] = fmt
        return fmt

    def names(self) -> list[str]:
        return list(self._formats)

    def get(self, name: str) -> Format:
        try:
            return self._formats[name]
        except KeyError:
            raise ValueError(f"unknown format {name!r}; registered formats: {', '.join(self._formats)}") from None

    def by_extension(self, path: PathLike) -> Format | None:
        """The format registered for ``path``'s extension (``.ome.tif`` before ``.tif``), if any."""
        _, ext = split_ext(path)
        return self._by_ext.get(ext) if ext else None

    def accepting(self, obj: Any, *, allow_pickle: bool = False) -> list[Format]:
        """Every format that can write ``obj``, in order of preference."""
        return [f for f in self._formats.values() if (allow_pickle or not f.unsafe) and f.accepts(obj)]

    def for_save(self, obj: Any, path: PathLike, *, allow_pickle: bool = False) -> Format:
        """The format to write ``obj`` at ``path``: by extension first, then by type."""
        fmt = self.by_extension(path)
        if fmt is not None:
            if fmt.unsafe and not allow_pickle:
                raise UnsafeLoadError(
                    f"{str(path)!r}: the {fmt.name} format runs code when loaded; pass allow_pickle=True "
                    "on save and on load if you trust every reader and writer of this file",
                    path=str(path),
                )
            if not fmt.accepts(obj):
                raise UnsupportedTypeError(self._type_message(obj, path, fmt, allow_pickle), path=str(path))
            return fmt
        candidates = self.accepting(obj, allow_pickle=allow_pickle)
        if not candidates:
            raise UnsupportedTypeError(self._type_message(obj, path, None, allow_pickle), path=str(path))
        return candidates[0]

    def for_load(self, path: PathLike, head: bytes, *, allow_pickle: bool = False) -> Format:
        """The format to read ``path``: by extension, else by sniffing its first bytes.

        Magic bytes of another format beat the extension (a file copied or moved
        to a new name keeps its bytes: ``x.npy`` moved to ``x.tif`` is still NPY).
        """
        fmt = self.by_extension(path)
        if fmt is None:
            fmt = self._sniff(head, magic_only=False)
        elif head and not fmt.sniff(head):
            magic = self._sniff(head, magic_only=True)
            if magic is not None and not isinstance(magic, type(fmt)) and not isinstance(fmt, type(magic)):
                fmt = magic
        if fmt is None:
            raise UnsupportedTypeError(
                f"{str(path)!r}: no registered format recognises this file "
                f"(formats: {', '.join(self._formats)}); give the path a known extension",
                path=str(path),
            )
        if fmt.unsafe and not allow_pickle:
            raise UnsafeLoadError(
                f"{str(path)!r} is a {fmt.name} file and loading it would run code; "
                "pass allow_pickle=True only if you trust whoever wrote it",
                path=str(path),
            )
        return fmt

    def _sniff(self, head: bytes, *, magic_only: bool) -> Format | None:
        ordered = sorted(self._formats.values(), key=lambda f: f.sniff_priority)
        if magic_only:  # catch-alls (JSON, text, raw bytes) match by elimination, never by magic
            ordered = [f for f in ordered if f.sniff_priority < CATCH_ALL_PRIORITY]
        return next((f for f in ordered if f.sniff(head)), None)

    def _type_message(self, obj: Any, path: PathLike, fmt: Format | None, allow_pickle: bool) -> str:
        kind = f"{type(obj).__module__}.{type(obj).__qualname__}"
        detail = f" with dtype {obj.dtype}" if hasattr(obj, "dtype") else ""
        takers = self.accepting(obj, allow_pickle=True)
        safe = [f for f in takers if not f.unsafe]
        where = f"as {fmt.name} ({', '.join(fmt.extensions)})" if fmt else "in any registered format"
        if safe:
            hint = "formats that take it: " + ", ".join(f"{f.name} ({', '.join(f.extensions)})" for f in safe)
        elif takers and not allow_pickle:
            hint = "only pickle takes it: save with allow_pickle=True and a .pkl path if you trust the readers"
        else:
            hint = "register a Format for it (see hcsvfs.formats)"
        return f"{str(path)!r}: cannot store {kind}{detail} {where}; {hint}"
