"""Small microscope folders in each vendor's documented layout (real-format names and metadata files),
written by the tests: Opera Phenix / Operetta CLS (Harmony export), ImageXpress (.HTD), CellVoyager."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import tifffile

SHAPE = (6, 8)


def pixels(well: str, field: int, channel: int, z: int, t: int = 1) -> np.ndarray:
    """A plane whose values encode its place (so a mix-up is caught)."""
    value = (ord(well[0]) - 64) * 10000 + int(well[1:]) * 1000 + field * 100 + channel * 10 + z + t
    return np.full(SHAPE, value, np.uint16)


def _well(row: int, col: int) -> str:
    return f"{chr(64 + row)}{col:02d}"


# ---------------------------------------------------------------- Harmony (Opera Phenix, Operetta CLS)
HARMONY_NS = {"Index.idx.xml": "http://www.perkinelmer.com/PEHH/HarmonyV5", "Index.xml": "http://www.perkinelmer.com/PEHH/HarmonyV6"}


def harmony_folder(root: Path, *, index_name: str = "Index.idx.xml", drop: tuple[str, ...] = ()) -> Path:
    """``Images/`` of a Harmony export: wells B03 and B04, 2 fields, 2 channels (DAPI, Alexa 488), 2 planes
    2 um apart, pixels 0.598 um, a 96-well plate; ``drop`` lists image files the index lists but the folder
    lacks (autofocus failures)."""
    images = root / "Images"
    images.mkdir(parents=True)
    entries = []
    for row, col in ((2, 3), (2, 4)):
        for f in (1, 2):
            for ch, name in ((1, "DAPI"), (2, "Alexa 488")):
                for p in (1, 2):
                    url = f"r{row:02d}c{col:02d}f{f:02d}p{p:02d}-ch{ch}sk1fk1fl1.tiff"
                    entries.append(
                        f"<Image Version=\"1\"><id>{row:02d}{col:02d}K1F{f}P{p}R{ch}</id><State>Ok</State>"
                        f"<URL>{url}</URL><Row>{row}</Row><Col>{col}</Col><FieldID>{f}</FieldID><PlaneID>{p}</PlaneID>"
                        f"<TimepointID>0</TimepointID><ChannelID>{ch}</ChannelID><ChannelName>{name}</ChannelName>"
                        "<ImageResolutionX Unit=\"m\">5.98E-07</ImageResolutionX>"
                        "<ImageResolutionY Unit=\"m\">5.98E-07</ImageResolutionY>"
                        f"<PositionZ Unit=\"m\">{(p - 1) * 2e-6:.1E}</PositionZ></Image>"
                    )
                    if url not in drop:
                        tifffile.imwrite(images / url, pixels(_well(row, col), f, ch, p))
    xml = (
        f'<?xml version="1.0" encoding="utf-8"?>\n<EvaluationInputData xmlns="{HARMONY_NS[index_name]}" Version="2">'
        "<User>lab</User><InstrumentType>Phenix</InstrumentType>"
        "<Plates><Plate><PlateID>p1</PlateID><PlateTypeName>96PerkinElmer</PlateTypeName>"
        "<PlateRows>8</PlateRows><PlateColumns>12</PlateColumns><Well id=\"0203\" /><Well id=\"0204\" /></Plate></Plates>"
        "<Wells><Well><id>0203</id><Row>2</Row><Col>3</Col></Well><Well><id>0204</id><Row>2</Row><Col>4</Col></Well></Wells>"
        "<Maps><Map><Entry ChannelID=\"1\"><ChannelName>DAPI</ChannelName></Entry>"
        "<Entry ChannelID=\"2\"><ChannelName>Alexa 488</ChannelName></Entry></Map></Maps>"
        f"<Images>{''.join(entries)}</Images></EvaluationInputData>"
    )
    (images / index_name).write_text(xml, encoding="utf-8")
    return images


# ---------------------------------------------------------------- ImageXpress (.HTD)
GUID = "A1B2C3D4-0000-1111-2222-333344445555"


def imagexpress_folder(root: Path, *, selected: tuple[str, ...] = ("B03", "B04"), written: tuple[str, ...] = ("B03", "B04")) -> Path:
    """A MetaXpress export: Plate1.HTD (96 wells, ``selected`` wells, 2 sites, wavelengths DAPI and FITC) and
    ``Plate1_<well>_s<site>_w<n><GUID>.tif`` images with MetaMorph calibration 0.645 um, for ``written`` wells."""
    root.mkdir(parents=True, exist_ok=True)
    lines = ['"HTSInfoFile", Version 1.0', '"Description", "test plate"', '"PlateType", 6', '"TimePoints", 1',
             '"ZSeries", FALSE', '"ZSteps", 1', '"XWells", 12', '"YWells", 8']
    for r in range(1, 9):
        flags = ["TRUE" if _well(r, c) in selected else "FALSE" for c in range(1, 13)]
        lines.append(f'"WellsSelection{r}", ' + ", ".join(flags))
    lines += ['"Sites", TRUE', '"XSites", 2', '"YSites", 1', '"SiteSelection1", TRUE, TRUE', '"Waves", TRUE',
              '"NWavelengths", 2', '"WaveName1", "DAPI"', '"WaveName2", "FITC"', '"WaveCollect1", 1',
              '"WaveCollect2", 1', '"UniquePlateIdentifier", "x"', '"EndFile"']
    (root / "Plate1.HTD").write_text("\r\n".join(lines) + "\r\n")
    desc = ('<MetaData><PlaneInfo><prop id="spatial-calibration-x" type="float" value="0.645"/>'
            '<prop id="spatial-calibration-y" type="float" value="0.645"/>'
            '<prop id="spatial-calibration-units" type="string" value="um"/></PlaneInfo></MetaData>')
    for well in written:
        for s in (1, 2):
            for w in (1, 2):
                tifffile.imwrite(root / f"Plate1_{well}_s{s}_w{w}{GUID}.tif", pixels(well, s, w, 1),
                                 description=desc, software="MetaSeries", metadata=None)
    return root


# ---------------------------------------------------------------- CellVoyager (.mlf / .mrf / .mes)
BTS = "http://www.yokogawa.co.jp/BTS/BTSSchema/1.0"


def cellvoyager_folder(root: Path, *, failed_well: str | None = None) -> Path:
    """A CV8000 measurement: well C05, 2 fields, channels 1 (DNA) and 2 (Actin), 2 z planes 3 um apart,
    pixels 0.325 um, a 384-well plate; ``failed_well`` adds an ERR record (and no images) for that well."""
    root.mkdir(parents=True, exist_ok=True)
    records = []
    for f in (1, 2):
        for ch in (1, 2):
            for z in (1, 2):
                name = f"PL1_C05_T0001F{f:03d}L01A{ch:02d}Z{z:02d}C{ch:02d}.tif"
                tifffile.imwrite(root / name, pixels("C05", f, ch, z))
                records.append(
                    f'<bts:MeasurementRecord bts:Type="IMG" bts:Time="2021-06-14T09:13:30+01:00" bts:Column="5" '
                    f'bts:Row="3" bts:TimePoint="1" bts:FieldIndex="{f}" bts:ZIndex="{z}" bts:TimelineIndex="1" '
                    f'bts:ActionIndex="{ch}" bts:Action="3D" bts:X="10.5" bts:Y="-2" bts:Z="{-8.5 + 3 * (z - 1)}" '
                    f'bts:Ch="{ch}">{name}</bts:MeasurementRecord>'
                )
    if failed_well is not None:
        row, col = ord(failed_well[0]) - 64, int(failed_well[1:])
        records.append(f'<bts:MeasurementRecord bts:Type="ERR" bts:Column="{col}" bts:Row="{row}">Autofocus failed</bts:MeasurementRecord>')
    (root / "MeasurementData.mlf").write_text(
        f'<?xml version="1.0" encoding="utf-8"?>\n<bts:MeasurementData bts:Version="1.0" xmlns:bts="{BTS}">'
        + "".join(records) + "</bts:MeasurementData>", encoding="utf-8")
    channels = "".join(
        f'<bts:MeasurementChannel bts:Ch="{ch}" bts:HorizontalPixelDimension="0.325" bts:VerticalPixelDimension="0.325" '
        f'bts:CameraNumber="1" bts:InputBitDepth="16" bts:HorizontalPixels="{SHAPE[1]}" bts:VerticalPixels="{SHAPE[0]}" />'
        for ch in (1, 2))
    (root / "MeasurementDetail.mrf").write_text(
        f'<?xml version="1.0" encoding="utf-8"?>\n<bts:MeasurementDetail bts:Version="1.0" bts:Title="T" '
        f'bts:MeasurementSettingFileName="S.mes" bts:ColumnCount="24" bts:RowCount="16" bts:TargetSystem="CV8000" '
        f'xmlns:bts="{BTS}"><bts:MeasurementSamplePlate bts:Name="PL1" />{channels}</bts:MeasurementDetail>',
        encoding="utf-8")
    (root / "S.mes").write_text(
        f'<?xml version="1.0" encoding="utf-8"?>\n<bts:MeasurementSetting xmlns:bts="{BTS}"><bts:ChannelList>'
        '<bts:Channel bts:Ch="1" bts:Target="DNA" bts:Objective="20x" />'
        '<bts:Channel bts:Ch="2" bts:Target="Actin" bts:Objective="20x" /></bts:ChannelList></bts:MeasurementSetting>',
        encoding="utf-8")
    return root
