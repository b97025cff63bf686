"""PerkinElmer/Revvity Opera Phenix and Operetta CLS (Harmony export): ``Index.idx.xml`` / ``Index.xml``.

Images are named ``r<row>c<col>f<field>p<plane>-ch<channel>sk<timepoint>fk<n>fl<n>.tiff`` (all 1-based).
The index lists every image with its well, field, plane, timepoint and channel, the channels' names and
pixel sizes (in metres), and the plate's dimensions.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from ...filemanager import FileManager
from ...hcs import HCSName, register_parser
from ...registry import BackendRef
from .acquisition import Acquisition, MicroscopeMetadataError, local_name, read_xml

__all__ = ["INDEX_NAMES", "parse_harmony", "read_harmony"]

#: The index file of a Harmony export (Index.idx.xml up to Harmony 4.9, Index.xml after).
INDEX_NAMES = ("Index.idx.xml", "Index.xml")

_NAME = re.compile(
    r"^r(?P<r>\d{2,3})c(?P<c>\d{2,3})f(?P<f>\d{2,4})p(?P<p>\d{2,4})-ch(?P<ch>\d+)sk(?P<sk>\d+)fk\d+fl\d+\.tiff?$",
    re.IGNORECASE | re.ASCII,
)
_WHAT = "a Harmony export index (<EvaluationInputData> with <Images>)"


def parse_harmony(name: str) -> HCSName | None:
    """``r02c05f03p01-ch2sk1fk1fl1.tiff`` -> B05, field 3, channel 2, z 1, t 1; None for any other name."""
    m = _NAME.match(name)
    if m is None or min(int(m[g]) for g in ("r", "c", "f", "p", "ch", "sk")) < 1:
        return None
    return HCSName(int(m["r"]) - 1, int(m["c"]) - 1, int(m["f"]), int(m["ch"]), int(m["p"]), int(m["sk"]))


register_parser("harmony", parse_harmony, replace=True)


def read_harmony(fm: FileManager, index: str, backend: BackendRef) -> Acquisition:
    """Read a Harmony index: the images it lists, channel names, pixel size, z step and plate dimensions."""
    root = read_xml(fm, index, backend, root="EvaluationInputData", what=_WHAT)
    children = {local_name(c.tag): c for c in root}
    if "Images" not in children:
        raise MicroscopeMetadataError(f"{index!r} has no <Images> list; expected {_WHAT}", path=index)
    names: dict[int, str] = {}
    pixel: tuple[float, float] | None = None
    for entry in root.iterfind("{*}Maps/{*}Map/{*}Entry"):
        channel = _int_attr(entry, "ChannelID", index)
        if channel is not None and _text(entry, "ChannelName"):
            names[channel] = _text(entry, "ChannelName") or ""
        pixel = pixel or _resolution(entry, index)
    listed: dict[str, HCSName] = {}
    z_positions: dict[int, float] = {}
    for image in children["Images"]:
        url = _text(image, "URL")
        if not url:
            raise MicroscopeMetadataError(f"{index!r}: an <Image> has no <URL> (its file name); expected {_WHAT}", path=index)
        numbers = {tag: _int_text(image, tag, index) for tag in ("Row", "Col", "FieldID", "PlaneID", "TimepointID", "ChannelID")}
        key = HCSName(
            numbers["Row"] - 1, numbers["Col"] - 1, numbers["FieldID"], numbers["ChannelID"], numbers["PlaneID"],
            numbers["TimepointID"] + 1,  # Harmony counts timepoints from 0 (sk1 in the file name is timepoint 0)
        )
        listed[url.rsplit("/", 1)[-1]] = key
        if _text(image, "ChannelName"):
            names.setdefault(key.channel, _text(image, "ChannelName") or "")
        pixel = pixel or _resolution(image, index)
        z = _metres(image, "PositionZ", index)
        if z is not None:
            z_positions.setdefault(key.z, z)
    rows = _plate_number(root, "PlateRows", index)
    columns = _plate_number(root, "PlateColumns", index)
    wells = {k.well for k in listed.values()}
    return Acquisition(
        vendor="harmony",
        parser=parse_harmony,
        metadata_file=index,
        channel_names=names,
        pixel_size=pixel,
        z_spacing=_step(z_positions),
        plate_shape=(rows, columns) if rows and columns else None,
        wells=frozenset(wells) if wells else None,
        listed=listed,
    )


def _text(element: ET.Element, tag: str) -> str | None:
    found = element.find(f"{{*}}{tag}")
    return found.text.strip() if found is not None and found.text and found.text.strip() else None


def _int_text(element: ET.Element, tag: str, index: str) -> int:
    text = _text(element, tag)
    if text is None or not text.lstrip("-").isdigit():
        raise MicroscopeMetadataError(
            f"{index!r}: an <Image> has <{tag}> {text!r}; expected a whole number ({_WHAT})", path=index
        )
    return int(text)


def _int_attr(element: ET.Element, name: str, index: str) -> int | None:
    value = element.get(name)
    if value is None:
        return None
    if not value.isdigit():
        raise MicroscopeMetadataError(f"{index!r}: {name}={value!r}; expected a whole number", path=index)
    return int(value)


def _metres(element: ET.Element, tag: str, index: str) -> float | None:
    """A length element in micrometres; Harmony writes metres (``Unit="m"``)."""
    found = element.find(f"{{*}}{tag}")
    if found is None or not (found.text or "").strip():
        return None
    unit = found.get("Unit", "m")
    scale = {"m": 1e6, "um": 1.0, "µm": 1.0}.get(unit)
    try:
        value = float((found.text or "").strip())
    except ValueError:
        scale = None
    if scale is None:
        raise MicroscopeMetadataError(
            f"{index!r}: <{tag} Unit={unit!r}> {found.text!r}; expected a number in m (or um)", path=index
        )
    return value * scale


def _resolution(element: ET.Element, index: str) -> tuple[float, float] | None:
    x, y = _metres(element, "ImageResolutionX", index), _metres(element, "ImageResolutionY", index)
    return (round(y, 6), round(x, 6)) if x and y else None


def _plate_number(root: ET.Element, tag: str, index: str) -> int | None:
    found = root.find(f"{{*}}Plates/{{*}}Plate/{{*}}{tag}")
    if found is None or not (found.text or "").strip():
        return None
    if not (found.text or "").strip().isdigit():
        raise MicroscopeMetadataError(f"{index!r}: <{tag}> {found.text!r}; expected a whole number", path=index)
    return int((found.text or "").strip())


def _step(positions: dict[int, float]) -> float | None:
    """The z step from the first two planes' positions (micrometres), where the index gives them."""
    if 1 in positions and 2 in positions and positions[2] != positions[1]:
        return round(abs(positions[2] - positions[1]), 6)
    return None
