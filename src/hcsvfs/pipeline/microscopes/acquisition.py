"""What a microscope's metadata says about an acquisition, whichever instrument wrote it."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass, field

from ...filemanager import FileManager
from ...hcs import HCSName
from ...registry import BackendRef
from ..errors import IngestError

__all__ = ["Acquisition", "MicroscopeMetadataError", "FilenameParser", "read_text", "read_xml", "local_name"]

FilenameParser = Callable[[str], "HCSName | None"]


class MicroscopeMetadataError(IngestError):
    """A microscope's metadata file or image name is not in the form its instrument writes."""


@dataclass(frozen=True)
class Acquisition:
    """The facts a folder's metadata gives, for ingest and for the NGFF metadata of the plate made from it.

    Numbers follow the file names: channels, fields, z and t count from 1; ``pixel_size`` is (y, x) and
    ``z_spacing`` the step between planes, both in micrometres.
    """

    vendor: str
    parser: FilenameParser
    metadata_file: str | None = None
    channel_names: dict[int, str] = field(default_factory=dict)
    pixel_size: tuple[float, float] | None = None
    z_spacing: float | None = None
    plate_shape: tuple[int, int] | None = None  #: (rows, columns) of the plate, imaged or not
    wells: frozenset[str] | None = None  #: wells the run covered, where the metadata says (None: those with images)
    #: Every image the metadata lists (file name -> place), where it lists them: a listed file that is
    #: not in the folder is a missing image.
    listed: dict[str, HCSName] | None = None
    #: Places the instrument itself reports as failed (e.g. CellVoyager's ERR records), for the report.
    failed: tuple[HCSName, ...] = ()

    def __getstate__(self) -> dict[str, object]:
        # A plate layout travels to worker processes with its acquisition; the parser (perhaps a caller's
        # lambda) has done its work by then and stays behind.
        state = {f: getattr(self, f) for f in self.__dataclass_fields__}
        state["parser"] = _parser_left_behind
        return state

    def __setstate__(self, state: dict[str, object]) -> None:
        for name, value in state.items():
            object.__setattr__(self, name, value)


def _parser_left_behind(name: str) -> HCSName | None:
    raise RuntimeError(
        "this acquisition was sent from another process without its file-name parser; scan the folder here "
        "(scan_plate) to parse names"
    )


def read_text(fm: FileManager, path: str, backend: BackendRef) -> str:
    """A metadata file's text (any encoding a vendor uses: UTF-8 with or without BOM, else Latin-1)."""
    raw = fm.load(path, backend)
    if isinstance(raw, str):
        return raw
    data = bytes(raw)
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def read_xml(fm: FileManager, path: str, backend: BackendRef, *, root: str, what: str) -> ET.Element:
    """Parse an XML metadata file whose root element is ``root`` (any namespace); a clear error otherwise."""
    try:
        element = ET.fromstring(read_text(fm, path, backend))
    except ET.ParseError as exc:
        raise MicroscopeMetadataError(f"{path!r} is not well-formed XML ({exc}); expected {what}", path=path) from None
    if local_name(element.tag) != root:
        raise MicroscopeMetadataError(
            f"{path!r} has root element <{local_name(element.tag)}>; expected {what} (root <{root}>)", path=path
        )
    return element


def local_name(tag: str) -> str:
    """``{namespace}Name`` -> ``Name``: vendors change namespaces between software versions, not names."""
    return tag.rsplit("}", 1)[-1]
