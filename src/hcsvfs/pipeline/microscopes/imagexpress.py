"""Molecular Devices ImageXpress / MetaXpress: the ``.HTD`` plate file beside the images.

The HTD is a text file of ``"Key", value, ...`` lines: the plate's wells (``XWells`` columns, ``YWells`` rows,
``WellsSelection<row>`` flags), the sites imaged per well (``XSites`` x ``YSites`` with ``SiteSelection<row>``
flags), the wavelengths (``NWavelengths``, ``WaveName<n>``), ``TimePoints`` and ``ZSteps``. Pixel size is not in
it: MetaXpress writes it into each TIFF (MetaMorph ``spatial-calibration-x/-y``), read from the first image.
"""

from __future__ import annotations

import csv

from ...filemanager import FileManager
from ...hcs import well_name
from ...registry import BackendRef
from .acquisition import Acquisition, FilenameParser, MicroscopeMetadataError, read_text

__all__ = ["read_htd"]

_WHAT = 'an ImageXpress .HTD plate file ("HTSInfoFile" lines of "Key", value)'


def read_htd(fm: FileManager, htd: str, backend: BackendRef, parser: FilenameParser, first_image: str | None) -> Acquisition:
    """Read an HTD: plate dimensions, wells selected, sites, wavelength names; pixel size from ``first_image``."""
    entries = _entries(read_text(fm, htd, backend), htd)
    columns, rows = _int(entries, "XWells", htd), _int(entries, "YWells", htd)
    wells: set[str] = set()
    for r in range(rows):
        flags = entries.get(f"WellsSelection{r + 1}")
        if flags is None:
            wells.update(well_name(r, c) for c in range(columns))  # no selection line: every well of the row
            continue
        if len(flags) != columns:
            raise MicroscopeMetadataError(
                f"{htd!r}: WellsSelection{r + 1} has {len(flags)} values for {columns} columns (XWells); expected {_WHAT}",
                path=htd,
            )
        wells.update(well_name(r, c) for c, flag in enumerate(flags) if _bool(flag, f"WellsSelection{r + 1}", htd))
    names: dict[int, str] = {}
    if _bool(entries.get("Waves", ["TRUE"])[0], "Waves", htd):
        for n in range(1, _int(entries, "NWavelengths", htd) + 1):
            value = entries.get(f"WaveName{n}")
            if value and value[0]:
                names[n] = value[0]
    pixel = None
    if first_image is not None:
        pixel = fm.load(first_image, backend, metadata=True).get("pixel_size")
    return Acquisition(
        vendor="imagexpress",
        parser=parser,
        metadata_file=htd,
        channel_names=names,
        pixel_size=pixel,
        plate_shape=(rows, columns),
        wells=frozenset(wells),
    )


def _entries(text: str, htd: str) -> dict[str, list[str]]:
    rows = list(csv.reader(text.splitlines(), skipinitialspace=True))
    if not rows or not rows[0] or rows[0][0] != "HTSInfoFile":
        raise MicroscopeMetadataError(f"{htd!r} does not start with \"HTSInfoFile\"; expected {_WHAT}", path=htd)
    return {row[0]: [v.strip() for v in row[1:]] for row in rows if row and row[0]}


def _int(entries: dict[str, list[str]], key: str, htd: str) -> int:
    value = (entries.get(key) or [""])[0]
    if not value.isdigit() or int(value) < 1:
        raise MicroscopeMetadataError(f"{htd!r}: {key} is {value!r}; expected a positive whole number ({_WHAT})", path=htd)
    return int(value)


def _bool(value: str, key: str, htd: str) -> bool:
    if value.upper() not in ("TRUE", "FALSE"):
        raise MicroscopeMetadataError(f"{htd!r}: {key} has {value!r}; expected TRUE or FALSE", path=htd)
    return value.upper() == "TRUE"
