"""Ingest of ImageXpress-style folders: names, folders, thumbnails and every kind of bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from hcsvfs import FileManager
from hcsvfs.hcs import HCSName
from hcsvfs.pipeline import IngestError, output_name, parse_metaxpress, scan_plate


@pytest.fixture
def fm() -> FileManager:
    return FileManager()


def _tif(fm: FileManager, path: Path, value: int = 1) -> None:
    fm.save(np.full((4, 5), value, dtype="uint16"), str(path), "disk")


@pytest.mark.parametrize(
    "name, well, field, channel, z, t",
    [
        ("A01_s1_w2.tif", "A01", 1, 2, 1, 1),
        ("B03_s4_w1_z002_t003.tif", "B03", 4, 1, 2, 3),
        ("MyPlate_C12_s2_w3.TIF", "C12", 2, 3, 1, 1),
        ("Exp 7_P24_w2.tif", "P24", 1, 2, 1, 1),
        ("Plate_A05_s1_w1A1B2C3D4-0000-1111-2222-333344445555.tif", "A05", 1, 1, 1, 1),
    ],
)
def test_metaxpress_names_parse(name: str, well: str, field: int, channel: int, z: int, t: int) -> None:
    key = parse_metaxpress(name)
    assert key is not None and (key.well, key.field, key.channel, key.z, key.t) == (well, field, channel, z, t)


def test_thumbnails_and_other_names_are_not_images() -> None:
    assert parse_metaxpress("Plate_A01_s1_w1_thumb.tif") is None
    assert parse_metaxpress("notes.tif") is None


def test_output_names_round_trip_through_the_parser() -> None:
    key = HCSName(1, 2, 3, 2, 5, 7)
    assert output_name(key) == "B03_s3_w2_z005_t007.tif"
    assert parse_metaxpress(output_name(key)) == key


def test_scan_groups_wells_and_reads_timepoint_and_zstep_folders(fm: FileManager, tmp_path: Path) -> None:
    for t in (1, 2):
        for z in (1, 2):
            for well in ("A01", "B02"):
                _tif(fm, tmp_path / f"TimePoint_{t}" / f"ZStep_{z}" / f"P_{well}_s1_w1.tif")
    _tif(fm, tmp_path / "TimePoint_1" / "P_A01_s1_w1_thumb.tif")
    plate = scan_plate(fm, str(tmp_path))
    assert plate.wells == ["A01", "B02"] and len(plate) == 8 and plate.fields == [1] and plate.channels == [1]
    stacks = list(plate.stacks("A01"))
    assert [k.t for k, _ in stacks] == [1, 2] and all(len(recs) == 2 for _, recs in stacks)
    assert plate.load_stack(fm, stacks[0][1], "disk").shape == (2, 4, 5)


def test_pluggable_parser(fm: FileManager, tmp_path: Path) -> None:
    _tif(fm, tmp_path / "well-B7-field3-ch2.tif")

    def parse(name: str) -> HCSName | None:
        parts = name.removesuffix(".tif").split("-")
        return HCSName(ord(parts[1][0]) - ord("A"), int(parts[1][1:]) - 1, int(parts[2][5:]), int(parts[3][2:]))

    plate = scan_plate(fm, str(tmp_path), parser=parse)
    assert plate.wells == ["B07"] and plate.fields == [3] and plate.channels == [2]


def test_empty_folder_is_an_error(fm: FileManager, tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    fm.save("x", str(tmp_path / "readme.txt"), "disk")
    with pytest.raises(IngestError, match="holds no .tif") as info:
        scan_plate(fm, str(tmp_path))
    assert str(tmp_path) in str(info.value) and info.value.path is not None


def test_missing_folder_is_an_error(fm: FileManager, tmp_path: Path) -> None:
    with pytest.raises(IngestError, match="does not exist"):
        scan_plate(fm, str(tmp_path / "nope"))


def test_unparseable_names_are_listed(fm: FileManager, tmp_path: Path) -> None:
    _tif(fm, tmp_path / "P_A01_s1_w1.tif")
    _tif(fm, tmp_path / "scan0001.tif")
    _tif(fm, tmp_path / "image_final.tif")
    with pytest.raises(IngestError, match=r"2 file name\(s\).*'image_final.tif'.*parser="):
        scan_plate(fm, str(tmp_path))


def test_unknown_parser_name_is_an_error(fm: FileManager, tmp_path: Path) -> None:
    _tif(fm, tmp_path / "P_A01_s1_w1.tif")
    with pytest.raises(ValueError, match="unknown filename parser"):
        scan_plate(fm, str(tmp_path), parser="nikon")


def test_two_files_for_one_image_are_an_error(fm: FileManager, tmp_path: Path) -> None:
    _tif(fm, tmp_path / "P_A01_s1_w1.tif")
    _tif(fm, tmp_path / "Q_A01_s1_w1.tif")
    with pytest.raises(IngestError, match="remove one"):
        scan_plate(fm, str(tmp_path))


def test_files_an_os_leaves_beside_images_are_never_images(fm: FileManager, tmp_path: Path) -> None:
    """A plate copied from a Mac carries a ._ twin of every image (AppleDouble); Windows leaves Thumbs.db."""
    _tif(fm, tmp_path / "A01_s1_w1.tif", 7)
    (tmp_path / "._A01_s1_w1.tif").write_bytes(b"\x00\x05\x16\x07AppleDouble")  # not even a TIFF
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "._A01_s2_w1.tif").write_bytes(b"\x00\x05\x16\x07")
    (tmp_path / ".DS_Store").write_bytes(b"\x00")
    (tmp_path / "Thumbs.db").write_bytes(b"\x00")
    plate = scan_plate(fm, str(tmp_path))
    assert plate.wells == ["A01"] and len(plate) == 1 and plate.fields == [1]
    (recs,) = [r for _, r in plate.stacks("A01")]
    assert plate.load_stack(fm, recs, "disk")[0, 0] == 7


def test_wells_fields_and_listings_come_in_natural_order(fm: FileManager, tmp_path: Path) -> None:
    for s in (1, 2, 10):
        _tif(fm, tmp_path / f"A01_s{s}_w1.tif")
    assert [Path(p).name for p in fm.list_files(str(tmp_path), "disk")] == [
        "A01_s1_w1.tif", "A01_s2_w1.tif", "A01_s10_w1.tif"
    ]
    assert scan_plate(fm, str(tmp_path)).fields == [1, 2, 10]
