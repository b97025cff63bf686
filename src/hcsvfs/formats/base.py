"""The Format contract and the registry that picks one by extension, type or magic bytes."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, BinaryIO, ClassVar, Literal

from ..errors import CorruptDataError, MemoryBudgetError, StorageError, UnsafeLoadError, UnsupportedTypeError
from ..options import check_options
from ..paths import PathLike, split_ext

__all__ = [
    "Format",
    "FormatRegistry",
    "CATCH_ALL_PRIORITY",
    "SNIFF_BYTES",
    "write_object",
    "read_object",
    "is_payload",
    "zip_first_member",
]

#: Formats sniffing at or above this priority recognise content by elimination (text, JSON, raw bytes).
CATCH_ALL_PRIORITY = 70
#: How many bytes of a file's start sniffing looks at (enough for a zip's first member name).
SNIFF_BYTES = 128


def zip_first_member(head: bytes) -> str:
    """The name of a zip's first member, from its local file header (the zip format's fixed offsets)."""
    if len(head) < 30:
        return ""
    size = int.from_bytes(head[26:28], "little")
    return head[30 : 30 + size].decode("utf-8", "replace")


def is_payload(obj: Any) -> bool:
    """True for an already-serialised payload: text or raw bytes."""
    return isinstance(obj, (str, bytes, bytearray, memoryview))


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
    #: Keyword options ``dump`` and ``load`` take; any other is refused before anything is written or read.
    save_options: ClassVar[frozenset[str]] = frozenset()
    load_options: ClassVar[frozenset[str]] = frozenset()
    #: A text format: it also takes an already-serialised payload (str or bytes) and writes it verbatim.
    verbatim: ClassVar[bool] = False

    def options(self, kind: Literal["save", "load"]) -> frozenset[str]:
        """The keyword options ``dump`` (``"save"``) or ``load`` (``"load"``) takes."""
        return self.save_options if kind == "save" else self.load_options

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
        """The format to write ``obj`` at ``path``: by extension, else (no extension) by type.

        Never one format under another's name: under an extension no format
        claims, only raw bytes are written (verbatim); anything else is refused.
        """
        fmt = self.by_extension(path)
        if fmt is not None:
            if fmt.unsafe and not allow_pickle:
                raise UnsafeLoadError(
                    f"{str(path)!r}: the {fmt.name} format runs code when loaded; pass allow_pickle=True "
                    "on save and on load if you trust every reader and writer of this file",
                    path=str(path),
                )
            if not (fmt.accepts(obj) or (fmt.verbatim and is_payload(obj))):
                raise UnsupportedTypeError(self._type_message(obj, path, fmt, allow_pickle), path=str(path))
            return fmt
        _, ext = split_ext(path)
        if ext:
            if isinstance(obj, (bytes, bytearray, memoryview)):
                return self.get("bytes")
            raise UnsupportedTypeError(self._unknown_extension_message(obj, path, ext), path=str(path))
        candidates = self.accepting(obj, allow_pickle=allow_pickle)
        if not candidates:
            raise UnsupportedTypeError(self._type_message(obj, path, None, allow_pickle), path=str(path))
        return candidates[0]

    def for_load(self, path: PathLike, head: bytes, *, allow_pickle: bool = False) -> Format:
        """The format to read ``path``: by extension, raw bytes for an extension no format claims, else by sniffing.

        Magic bytes of another format beat the extension (a file copied or moved
        to a new name keeps its bytes: ``x.npy`` moved to ``x.tif`` is still NPY).
        """
        fmt = self.by_extension(path)
        if fmt is None:
            fmt = self.get("bytes") if split_ext(path)[1] else self._sniff(head, magic_only=False)
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

    def save_options(self, obj: Any, path: PathLike) -> frozenset[str]:
        """What a backend's save of ``obj`` at ``path`` takes: the pickle opt-in and the chosen format's options."""
        try:
            fmt = self.for_save(obj, path, allow_pickle=True)
        except StorageError:
            return frozenset()  # nothing can store it: no option applies
        return fmt.options("save") | {"allow_pickle"}

    def load_options(self, path: PathLike) -> frozenset[str]:
        """What a backend's load of ``path`` takes: the pickle opt-in and its extension's format's options
        (every format's, for a path without an extension, whose format is known only from its bytes)."""
        fmt = self.by_extension(path)
        if fmt is None:
            formats = [self.get("bytes")] if split_ext(path)[1] else list(self._formats.values())
        else:
            formats = [fmt]
        return frozenset({"allow_pickle"}).union(*(f.options("load") for f in formats))

    def _sniff(self, head: bytes, *, magic_only: bool) -> Format | None:
        ordered = sorted(self._formats.values(), key=lambda f: f.sniff_priority)
        if magic_only:  # catch-alls (JSON, text, raw bytes) match by elimination, never by magic
            ordered = [f for f in ordered if f.sniff_priority < CATCH_ALL_PRIORITY]
        return next((f for f in ordered if f.sniff(head)), None)

    def _unknown_extension_message(self, obj: Any, path: PathLike, ext: str) -> str:
        known = sorted(e for e in self._by_ext if self._by_ext[e].accepts(obj) and not self._by_ext[e].unsafe)
        kind = f"{type(obj).__module__}.{type(obj).__qualname__}"
        where = " (a zarr store: save it on the zarr backend)" if ext in (".zarr", ".ome.zarr") else ""
        return (
            f"{str(path)!r}: no registered format writes {ext!r} files{where}, and hcsvfs never writes one format under "
            f"another's name. Save the {kind} under an extension that takes it ({', '.join(known) or 'none'}) or under "
            f"no extension, give bytes (stored verbatim), or register a Format for {ext!r} (hcsvfs.formats)"
        )

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


def write_object(fmt: Format, obj: Any, fh: BinaryIO, options: dict[str, Any], *, path: str, backend: str) -> None:
    """``fmt.dump`` (the backend has checked ``options``); its errors name ``path``."""
    try:
        fmt.dump(obj, fh, **options)
    except StorageError as exc:
        if exc.path is None:  # formats do not know the path: say which file it was
            raise type(exc)(f"{path!r}: {exc.message}", path=path, backend=backend) from exc
        raise


def read_object(fmt: Format, fh: BinaryIO, options: dict[str, Any], *, path: str, backend: str) -> Any:
    """``fmt.load`` after checking ``options`` against this format's (an extensionless path's format is known only
    now); any failure of its parser is CorruptDataError naming ``path``.

    The options were checked first, so a parser's TypeError means damaged bytes,
    as its ValueError, EOFError or zlib error do.
    """
    check_options(options, fmt.options("load"), what=f"a {fmt.name} load on the {backend} backend", path=path, backend=backend)
    try:
        return fmt.load(fh, **options)
    except StorageError as exc:
        if exc.path is None:
            raise type(exc)(f"{path!r}: {exc.message}", path=path, backend=backend) from exc
        raise
    except MemoryError as exc:
        raise MemoryBudgetError(
            f"{path!r}: reading it as {fmt.name} needs more memory than this process can get ({exc}). Either its "
            "header is damaged and claims a size it does not have, or it is too large to load whole: load a part of it",
            path=path,
            backend=backend,
        ) from exc
    except Exception as exc:
        if isinstance(exc, OSError) and exc.errno is not None:
            raise  # the device failed (EIO...), not the bytes: the caller sees the real OS error
        raise CorruptDataError(
            f"{path!r} could not be read as {fmt.name}: {type(exc).__name__}: {exc}. The file may be "
            "truncated or corrupt; restore it or save it again",
            path=path,
            backend=backend,
        ) from exc
