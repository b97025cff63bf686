"""HCS naming: parse image file names into well, field, channel, z and t; well-name helpers.

A leaf module (no backend imports) shared by the zarr plate layout and the
pipeline's ingest. Parsers are pluggable: ``register_parser("mine", fn)``
where ``fn(name) -> HCSName | None``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

__all__ = [
    "HCSName",
    "Parser",
    "parse_filename",
    "image_name",
    "register_parser",
    "parsers",
    "parse_well",
    "well_name",
    "row_name",
    "row_index",
    "IMAGEXPRESS_PATTERN",
    "IMAGE_EXTENSIONS",
]

#: Extensions of image files (what ``FileManager.list_image_files`` lists by default), lower case.
IMAGE_EXTENSIONS: tuple[str, ...] = (".tif", ".tiff", ".png", ".jpg", ".jpeg", ".bmp", ".gif", ".npy")


@dataclass(frozen=True, order=True)
class HCSName:
    """One image plane's place in a plate; ``row``/``column`` are 0-based, the rest 1-based as in file names."""

    row: int
    column: int
    field: int
    channel: int
    z: int = 1
    t: int = 1

    @property
    def well(self) -> str:
        """The well as a name: ``A01``."""
        return well_name(self.row, self.column)


Parser = Callable[[str], "HCSName | None"]

#: ``A01_s1_w2_z003_t001.tif``: z and t optional, tokens case-insensitive, any (or no) extension.
IMAGEXPRESS_PATTERN = re.compile(
    r"^(?P<well>[A-Za-z]{1,2}\d{1,3})_s(?P<s>\d{1,4})_w(?P<w>\d{1,3})"
    r"(?:_z(?P<z>\d{1,5}))?(?:_t(?P<t>\d{1,5}))?(?:\.[A-Za-z0-9]+(?:\.[A-Za-z0-9]+)?)?$",
    re.IGNORECASE | re.ASCII,  # ASCII: \d must not match other scripts' digits
)


def _imagexpress(name: str) -> HCSName | None:
    m = IMAGEXPRESS_PATTERN.match(name)
    if m is None:
        return None
    try:
        row, col = parse_well(m["well"])
    except ValueError:
        return None  # column 00
    numbers = [int(m["s"]), int(m["w"]), int(m["z"] or 1), int(m["t"] or 1)]
    if min(numbers) < 1:
        return None  # the format counts from 1; s0 or w0 is not a valid ImageXpress name
    return HCSName(row, col, *numbers)


_PARSERS: dict[str, Parser] = {"imagexpress": _imagexpress}


def image_name(key: HCSName, ext: str = ".tif") -> str:
    """The ImageXpress name of a plane, every number written: ``A01_s1_w2_z001_t001.tif``."""
    return f"{key.well}_s{key.field}_w{key.channel}_z{key.z:03d}_t{key.t:03d}{ext}"


def register_parser(name: str, parser: Parser, *, replace: bool = False) -> None:
    """Make ``parser`` available as ``name`` (e.g. for ``ZarrConfig(filename_parser=name)``)."""
    if name in _PARSERS and not replace:
        raise ValueError(f"a filename parser named {name!r} exists; pass replace=True to swap it")
    _PARSERS[name] = parser


def parsers() -> list[str]:
    """Names of the registered filename parsers."""
    return sorted(_PARSERS)


def parse_filename(name: str, parser: str = "imagexpress") -> HCSName | None:
    """Parse a file name (no folders) with the named parser; None if it is not an HCS image name."""
    try:
        fn = _PARSERS[parser]
    except KeyError:
        raise ValueError(f"unknown filename parser {parser!r}; registered: {', '.join(parsers())}") from None
    return fn(name)


def row_name(index: int) -> str:
    """0 -> ``A``, 25 -> ``Z``, 26 -> ``AA`` (1536-well plates have 32 rows)."""
    if index < 0:
        raise ValueError(f"row index must be >= 0, got {index}")
    name = ""
    index += 1
    while index:
        index, rem = divmod(index - 1, 26)
        name = chr(ord("A") + rem) + name
    return name


def row_index(name: str) -> int:
    """``A`` -> 0, ``AA`` -> 26; the inverse of :func:`row_name`."""
    if not name.isascii() or not name.isalpha():
        raise ValueError(f"row name must be ASCII letters, got {name!r}")
    index = 0
    for ch in name.upper():
        index = index * 26 + (ord(ch) - ord("A") + 1)
    return index - 1


_WELL = re.compile(r"^([A-Za-z]{1,2})(\d{1,3})$", re.ASCII)


def parse_well(name: str) -> tuple[int, int]:
    """``A01``/``a1``/``AF48`` -> 0-based (row, column); ValueError for anything else."""
    m = _WELL.match(name)
    if m is None or int(m[2]) < 1:
        raise ValueError(f"{name!r} is not a well name; expected a row letter and a column number such as 'A01'")
    return row_index(m[1]), int(m[2]) - 1


def well_name(row: int, column: int) -> str:
    """0-based (row, column) -> ``A01`` (columns zero-padded to two digits)."""
    return f"{row_name(row)}{column + 1:02d}"
