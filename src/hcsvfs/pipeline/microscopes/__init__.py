"""Microscope folders: which instrument wrote a folder, and what its metadata says about the acquisition.

Readers for PerkinElmer/Revvity Opera Phenix and Operetta CLS (Harmony ``Index.idx.xml``), Molecular Devices
ImageXpress (``.HTD``), Yokogawa CellVoyager (``MeasurementData.mlf``), and a custom ``pattern`` for anything
else. :func:`read_acquisition` finds the metadata file among a folder's files and reads it.
"""

from __future__ import annotations

from dataclasses import replace

from ... import paths as P
from ...filemanager import FileManager
from ...hcs import parse_filename
from ...registry import BackendRef
from .acquisition import Acquisition, FilenameParser, MicroscopeMetadataError
from .cellvoyager import MEASUREMENT_DATA, parse_cellvoyager, read_cellvoyager
from .harmony import INDEX_NAMES, parse_harmony, read_harmony
from .imagexpress import read_htd
from .pattern import PATTERN_GROUPS, pattern_parser

__all__ = [
    "Acquisition",
    "MicroscopeMetadataError",
    "read_acquisition",
    "name_parser",
    "pattern_parser",
    "parse_harmony",
    "parse_cellvoyager",
    "PATTERN_GROUPS",
    "VENDOR_NAMES",
]

#: How each reader's images are named, for error messages.
VENDOR_NAMES = {
    "harmony": "r01c01f01p01-ch1sk1fk1fl1.tiff (Opera Phenix / Operetta CLS)",
    "cellvoyager": "<plate>_A01_T0001F001L01A01Z01C01.tif (CellVoyager)",
    "imagexpress": "<plate>_A01_s1_w1.tif (ImageXpress / MetaXpress)",
    "names": "<plate>_A01_s1_w1.tif (ImageXpress / MetaXpress)",
}


def read_acquisition(
    fm: FileManager,
    files: list[str],
    images: list[str],
    backend: BackendRef,
    *,
    parser: str | FilenameParser = "auto",
    pattern: str | None = None,
) -> Acquisition:
    """The acquisition behind a folder's ``files`` (every file under it): its instrument's metadata where one
    of theirs is there, and the parser for its ``images``' names (``pattern`` or ``parser`` override the one the
    metadata implies)."""
    chosen = name_parser(parser, pattern)
    by_name: dict[str, list[str]] = {}
    for f in files:
        by_name.setdefault(P.basename(f), []).append(f)
    index = _one(by_name, INDEX_NAMES)
    if index is not None:
        acq = read_harmony(fm, index, backend)
    elif (mlf := _one(by_name, (MEASUREMENT_DATA,))) is not None:
        acq = read_cellvoyager(fm, mlf, backend)
    else:
        htds = [f for f in files if f.lower().endswith(".htd")]
        if len(htds) > 1:
            raise MicroscopeMetadataError(
                f"{len(htds)} .HTD plate files in one folder ({', '.join(P.natural_sorted(htds))}); "
                "point ingest at the folder of one plate",
                path=htds[0],
            )
        metaxpress = chosen or (lambda name: parse_filename(name, "metaxpress"))
        if htds:
            acq = read_htd(fm, htds[0], backend, metaxpress, images[0] if images else None)
        else:
            acq = Acquisition(vendor="names", parser=metaxpress)
    if chosen is not None and acq.parser is not chosen:
        acq = replace(acq, parser=chosen, vendor=acq.vendor if pattern is None else f"{acq.vendor}+pattern")
    return acq


def name_parser(parser: str | FilenameParser, pattern: str | None) -> FilenameParser | None:
    """The parser the caller chose (``pattern`` first, then ``parser``), None for ``"auto"`` (the metadata
    decides); ValueError for a bad pattern or an unknown parser name."""
    if pattern is not None:
        return pattern_parser(pattern)
    if callable(parser):
        return parser
    if parser == "auto":
        return None
    parse_filename("", parser)  # an unknown name raises ValueError listing the registered ones
    return lambda name: parse_filename(name, parser)


def _one(by_name: dict[str, list[str]], names: tuple[str, ...]) -> str | None:
    found = [p for n in names for p in by_name.get(n, [])]
    if len(found) > 1:
        raise MicroscopeMetadataError(
            f"{len(found)} metadata files ({', '.join(P.natural_sorted(found))}) in one folder; "
            "point ingest at the folder of one plate's export",
            path=found[0],
        )
    return found[0] if found else None
