"""Yokogawa CellVoyager (CV7000, CV8000, CQ1): ``MeasurementData.mlf`` and ``MeasurementDetail.mrf``.

Images are named ``<plate>_<well>_T<t:4>F<field:3>L<l:2>A<a:2>Z<z:2>C<channel:2>.tif``. The ``.mlf`` lists a
record per image (``bts:Type="IMG"``: row, column, field, z, timepoint, channel, position, and the file name as
text) and per failure (``ERR``); the ``.mrf`` gives the plate's rows and columns and each channel's pixel size
in micrometres, and names the settings file (``.mes``) whose ``bts:Channel bts:Target`` is the channel's name.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from ... import paths as P
from ...filemanager import FileManager
from ...hcs import HCSName, parse_well, register_parser
from ...registry import BackendRef
from .acquisition import Acquisition, MicroscopeMetadataError, local_name, read_xml

__all__ = ["MEASUREMENT_DATA", "parse_cellvoyager", "read_cellvoyager"]

MEASUREMENT_DATA = "MeasurementData.mlf"
_DETAIL = "MeasurementDetail.mrf"
_NAME = re.compile(
    r"_(?P<well>[A-Za-z]{1,2}\d{2})_T(?P<t>\d{4})F(?P<f>\d{3})L\d{2}A\d{2}Z(?P<z>\d{2})C(?P<c>\d{2})\.tiff?$",
    re.ASCII,
)


def parse_cellvoyager(name: str) -> HCSName | None:
    """``Plate_B03_T0001F002L01A01Z03C02.tif`` -> B03, field 2, channel 2, z 3, t 1; None for any other name."""
    m = _NAME.search(name)
    if m is None:
        return None
    numbers = [int(m["f"]), int(m["c"]), int(m["z"]), int(m["t"])]
    if min(numbers) < 1:
        return None
    row, column = parse_well(m["well"])
    return HCSName(row, column, *numbers)


register_parser("cellvoyager", parse_cellvoyager, replace=True)


def read_cellvoyager(fm: FileManager, mlf: str, backend: BackendRef) -> Acquisition:
    """Read the ``.mlf`` records and, where present beside it, the ``.mrf`` detail and its ``.mes`` settings."""
    data = read_xml(fm, mlf, backend, root="MeasurementData", what="CellVoyager measurement data (<bts:MeasurementData>)")
    listed: dict[str, HCSName] = {}
    failed: list[HCSName] = []
    z_positions: dict[int, float] = {}
    for record in data.iterfind("{*}MeasurementRecord"):
        kind = _attr(record, "Type")
        if kind == "ERR":
            if _attr(record, "Row") and _attr(record, "Column"):
                failed.append(HCSName(_number(record, "Row", mlf) - 1, _number(record, "Column", mlf) - 1, 1, 1))
            continue
        if kind != "IMG":
            continue
        name = (record.text or "").strip()
        if not name:
            raise MicroscopeMetadataError(f"{mlf!r}: an IMG record has no file name; expected its text to be one", path=mlf)
        key = HCSName(
            _number(record, "Row", mlf) - 1, _number(record, "Column", mlf) - 1, _number(record, "FieldIndex", mlf),
            _number(record, "Ch", mlf), _number(record, "ZIndex", mlf), _number(record, "TimePoint", mlf),
        )
        listed[name] = key
        z = _attr(record, "Z")
        if z is not None:
            z_positions.setdefault(key.z, float(z))
    folder = P.parent(mlf)
    detail_path = P.join(folder, _DETAIL) if folder not in (".", "") else _DETAIL
    names: dict[int, str] = {}
    pixel = shape = None
    if fm.exists(detail_path, backend):
        detail = read_xml(fm, detail_path, backend, root="MeasurementDetail",
                          what="CellVoyager measurement detail (<bts:MeasurementDetail>)")
        rows, columns = _attr(detail, "RowCount"), _attr(detail, "ColumnCount")
        if rows and columns:
            shape = (_number(detail, "RowCount", detail_path), _number(detail, "ColumnCount", detail_path))
        for channel in detail.iterfind("{*}MeasurementChannel"):
            h, v = _attr(channel, "HorizontalPixelDimension"), _attr(channel, "VerticalPixelDimension")
            if h and v and pixel is None:
                pixel = (float(v), float(h))
        settings = _attr(detail, "MeasurementSettingFileName")
        mes = P.join(folder, settings) if settings and folder not in (".", "") else settings
        if mes and fm.exists(mes, backend):
            setting = read_xml(fm, mes, backend, root="MeasurementSetting",
                               what="CellVoyager measurement settings (<bts:MeasurementSetting>)")
            for channel in setting.iterfind("{*}ChannelList/{*}Channel"):
                target = _attr(channel, "Target")
                if target:
                    names[_number(channel, "Ch", mes)] = target
    step = abs(z_positions[2] - z_positions[1]) if 1 in z_positions and 2 in z_positions else None
    return Acquisition(
        vendor="cellvoyager",
        parser=parse_cellvoyager,
        metadata_file=mlf,
        channel_names=names,
        pixel_size=pixel,
        z_spacing=round(step, 6) if step else None,
        plate_shape=shape,
        wells=frozenset(k.well for k in listed.values()) | frozenset(k.well for k in failed),
        listed=listed,
        failed=tuple(failed),
    )


def _attr(element: ET.Element, name: str) -> str | None:
    """A ``bts:`` attribute by its local name (the namespace URI has changed between CellVoyager versions)."""
    for key, value in element.attrib.items():
        if local_name(key) == name:
            return value
    return None


def _number(element: ET.Element, name: str, path: str) -> int:
    value = _attr(element, name)
    if value is None or not value.isdigit():
        raise MicroscopeMetadataError(
            f"{path!r}: bts:{name} is {value!r} in a <{local_name(element.tag)}>; expected a whole number",
            path=path,
        )
    return int(value)
