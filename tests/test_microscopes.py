"""Real microscope folders in: Opera Phenix / Operetta CLS, ImageXpress .HTD, CellVoyager, a custom pattern;
missing images; metadata carried into the NGFF plate (channel names, scale, plate size)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from hcsvfs import FileManager
from hcsvfs.backends.zarr import ZarrStorageBackend
from hcsvfs.cli.app import app
from hcsvfs.hcs import HCSName
from hcsvfs.pipeline import IngestError, scan_plate
from hcsvfs.pipeline.microscopes import MicroscopeMetadataError, parse_cellvoyager, parse_harmony, pattern_parser
from microscope_folders import GUID, SHAPE, cellvoyager_folder, harmony_folder, imagexpress_folder, pixels

runner = CliRunner()


@pytest.fixture
def fm() -> FileManager:
    return FileManager()


def convert(src: Path, dst: Path, *args: str) -> None:
    result = runner.invoke(app, ["convert", str(src), str(dst), *args])
    assert result.exit_code == 0, (result.exit_code, result.stdout, result.stderr)


def field_attrs(plate: Path, well: str, field: int = 0) -> dict:
    return json.loads((plate / well[0] / str(int(well[1:])) / str(field) / "zarr.json").read_text())["attributes"]["ome"]


def plate_attrs(plate: Path) -> dict:
    return json.loads((plate / "zarr.json").read_text())["attributes"]["ome"]["plate"]


def well_own(plate: Path, well: str) -> dict:
    return json.loads((plate / well[0] / str(int(well[1:])) / "zarr.json").read_text())["attributes"]["hcsvfs"]


# ---------------------------------------------------------------- names
@pytest.mark.parametrize(
    "name, key",
    [
        ("r02c05f03p01-ch2sk1fk1fl1.tiff", HCSName(1, 4, 3, 2, 1, 1)),
        ("r16c24f09p25-ch4sk3fk1fl1.tif", HCSName(15, 23, 9, 4, 25, 3)),
    ],
)
def test_harmony_names(name: str, key: HCSName) -> None:
    assert parse_harmony(name) == key


def test_names_that_are_not_a_vendors_are_not_parsed() -> None:
    assert parse_harmony("A01_s1_w1.tif") is None and parse_harmony("r00c01f01p01-ch1sk1fk1fl1.tiff") is None
    assert parse_cellvoyager("PL1_B03_T0002F004L01A01Z07C03.tif") == HCSName(1, 2, 4, 3, 7, 2)
    assert parse_cellvoyager("PL1_B03_T0001F001L01A01Z01.tif") is None


# ---------------------------------------------------------------- Opera Phenix / Operetta CLS
@pytest.mark.parametrize("index_name", ["Index.idx.xml", "Index.xml"], ids=["phenix-harmony4", "operetta-harmony5"])
def test_a_harmony_export_converts_to_a_plate_with_names_scale_and_size(tmp_path: Path, fm: FileManager,
                                                                      index_name: str) -> None:
    images = harmony_folder(tmp_path / "export", index_name=index_name)
    layout = scan_plate(fm, str(images))
    acq = layout.acquisition
    assert acq is not None and acq.vendor == "harmony" and acq.metadata_file.endswith(index_name)
    assert (acq.channel_names, acq.pixel_size, acq.z_spacing, acq.plate_shape) == (
        {1: "DAPI", 2: "Alexa 488"}, (0.598, 0.598), 2.0, (8, 12))
    assert layout.wells == ["B03", "B04"] and layout.fields == [1, 2] and layout.channels == [1, 2] and len(layout) == 16
    out = tmp_path / "out.zarr"
    convert(images, out)  # validates the written plate with ome-zarr-models
    field = field_attrs(out, "B03")
    assert [c["label"] for c in field["omero"]["channels"]] == ["DAPI", "Alexa 488"]
    scale = field["multiscales"][0]["datasets"][0]["coordinateTransformations"][0]["scale"]
    assert scale[-3:] == [2.0, 0.598, 0.598]
    meta = plate_attrs(out)
    assert len(meta["rows"]) == 8 and len(meta["columns"]) == 12
    backend = ZarrStorageBackend(tmp_path)
    plane = backend.load("out.zarr/B04_s2_w2_z002_t001.tif", materialize=True)
    assert np.array_equal(plane, pixels("B04", 2, 2, 2))


def test_missing_images_are_named_or_filled_and_recorded(tmp_path: Path, fm: FileManager) -> None:
    dropped = ("r02c04f02p02-ch1sk1fk1fl1.tiff", "r02c04f02p02-ch2sk1fk1fl1.tiff")  # an autofocus failure
    images = harmony_folder(tmp_path / "export", drop=dropped)
    with pytest.raises(IngestError, match="2 image") as info:
        scan_plate(fm, str(images))
    assert all(name in str(info.value) for name in dropped) and "missing='fill'" in str(info.value)
    layout = scan_plate(fm, str(images), missing="fill")
    assert layout.missing == [HCSName(1, 3, 2, 1, 2), HCSName(1, 3, 2, 2, 2)] and len(layout) == 16
    stacks = dict(layout.stacks("B04"))
    stack = layout.load_stack(fm, stacks[HCSName(1, 3, 2, 1, 1)], "disk")
    assert stack.shape == (2, *SHAPE) and np.array_equal(stack[0], pixels("B04", 2, 1, 1)) and not stack[1].any()
    out = tmp_path / "out.zarr"
    result = runner.invoke(app, ["convert", str(images), str(out)])
    assert result.exit_code == 1 and "missing" in result.stderr
    convert(images, out, "--missing", "fill")
    assert well_own(out, "B04")["missing"] == ["B04_s2_w1_z002_t001.tif", "B04_s2_w2_z002_t001.tif"]
    assert "missing" not in well_own(out, "B03")
    info_ = ZarrStorageBackend(tmp_path).open_plate("out.zarr")
    assert info_.wells["B04"].missing == ["B04_s2_w1_z002_t001.tif", "B04_s2_w2_z002_t001.tif"]
    # a later real image replaces its stand-in and leaves the list
    backend = ZarrStorageBackend(tmp_path)
    backend.save(pixels("B04", 2, 1, 2), "out.zarr/B04_s2_w1_z002_t001.tif", overwrite=True)
    assert well_own(out, "B04")["missing"] == ["B04_s2_w2_z002_t001.tif"]


def test_mac_twins_and_thumbnails_beside_a_harmony_export_are_ignored(tmp_path: Path, fm: FileManager) -> None:
    images = harmony_folder(tmp_path / "export")
    (images / "._r02c03f01p01-ch1sk1fk1fl1.tiff").write_bytes(b"\x00\x05\x16\x07")
    (images / ".DS_Store").write_bytes(b"\x00")
    assert len(scan_plate(fm, str(images))) == 16


# ---------------------------------------------------------------- ImageXpress .HTD
def test_an_imagexpress_plate_with_its_htd(tmp_path: Path, fm: FileManager) -> None:
    folder = imagexpress_folder(tmp_path / "ix")
    layout = scan_plate(fm, str(folder))
    acq = layout.acquisition
    assert acq is not None and acq.vendor == "imagexpress"
    assert (acq.channel_names, acq.pixel_size, acq.plate_shape) == ({1: "DAPI", 2: "FITC"}, (0.645, 0.645), (8, 12))
    assert acq.wells == {"B03", "B04"} and layout.wells == ["B03", "B04"] and layout.fields == [1, 2]
    out = tmp_path / "ix.zarr"
    convert(folder, out)
    field = field_attrs(out, "B03", 1)
    assert [c["label"] for c in field["omero"]["channels"]] == ["DAPI", "FITC"]
    assert field["multiscales"][0]["datasets"][0]["coordinateTransformations"][0]["scale"][-2:] == [0.645, 0.645]
    assert len(plate_attrs(out)["columns"]) == 12
    plane = ZarrStorageBackend(tmp_path).load("ix.zarr/B04_s2_w1_z001_t001.tif", materialize=True)
    assert np.array_equal(plane, pixels("B04", 2, 1, 1))


def test_a_selected_well_without_images_is_missing(tmp_path: Path, fm: FileManager) -> None:
    folder = imagexpress_folder(tmp_path / "ix", written=("B03",))  # B04 selected in the HTD, never imaged
    with pytest.raises(IngestError, match=r"4 image\(s\).*B04 field 1 channel 1") as info:
        scan_plate(fm, str(folder))
    assert "B04 field 2 channel 2" in str(info.value)
    layout = scan_plate(fm, str(folder), missing="fill")
    assert layout.wells == ["B03", "B04"] and len(layout.missing) == 4


def test_a_broken_htd_says_which_file_and_what_it_expected(tmp_path: Path, fm: FileManager) -> None:
    folder = imagexpress_folder(tmp_path / "ix")
    htd = folder / "Plate1.HTD"
    htd.write_text(htd.read_text().replace('"XWells", 12', '"XWells", twelve'))
    with pytest.raises(MicroscopeMetadataError, match=r"Plate1.HTD.*XWells is 'twelve'; expected a positive whole"):
        scan_plate(fm, str(folder))
    htd.write_text("not an htd\n")
    with pytest.raises(MicroscopeMetadataError, match="does not start with \"HTSInfoFile\""):
        scan_plate(fm, str(folder))


# ---------------------------------------------------------------- CellVoyager
def test_a_cellvoyager_measurement_converts_with_its_metadata(tmp_path: Path, fm: FileManager) -> None:
    folder = cellvoyager_folder(tmp_path / "cv")
    layout = scan_plate(fm, str(folder))
    acq = layout.acquisition
    assert acq is not None and acq.vendor == "cellvoyager"
    assert (acq.channel_names, acq.pixel_size, acq.z_spacing, acq.plate_shape) == (
        {1: "DNA", 2: "Actin"}, (0.325, 0.325), 3.0, (16, 24))
    assert layout.wells == ["C05"] and len(layout) == 8
    out = tmp_path / "cv.zarr"
    convert(folder, out)
    field = field_attrs(out, "C05", 1)
    assert [c["label"] for c in field["omero"]["channels"]] == ["DNA", "Actin"]
    assert field["multiscales"][0]["datasets"][0]["coordinateTransformations"][0]["scale"][-3:] == [3.0, 0.325, 0.325]
    meta = plate_attrs(out)
    assert (len(meta["rows"]), len(meta["columns"])) == (16, 24)
    plane = ZarrStorageBackend(tmp_path).load("cv.zarr/C05_s2_w2_z002_t001.tif", materialize=True)
    assert np.array_equal(plane, pixels("C05", 2, 2, 2))


def test_a_cellvoyager_error_record_is_a_missing_well(tmp_path: Path, fm: FileManager) -> None:
    folder = cellvoyager_folder(tmp_path / "cv", failed_well="D06")
    with pytest.raises(IngestError, match=r"8 image\(s\).*D06 field 1 channel 1 z 1"):
        scan_plate(fm, str(folder))
    layout = scan_plate(fm, str(folder), missing="fill")
    assert layout.wells == ["C05", "D06"] and layout.acquisition.failed == (HCSName(3, 5, 1, 1),)


def test_broken_xml_metadata_says_which_file_and_what_it_expected(tmp_path: Path, fm: FileManager) -> None:
    folder = cellvoyager_folder(tmp_path / "cv")
    (folder / "MeasurementData.mlf").write_text("<bts:MeasurementData")
    with pytest.raises(MicroscopeMetadataError, match=r"MeasurementData.mlf' is not well-formed XML.*CellVoyager"):
        scan_plate(fm, str(folder))
    images = harmony_folder(tmp_path / "export")
    (images / "Index.idx.xml").write_text("<Something/>")
    with pytest.raises(MicroscopeMetadataError, match=r"root element <Something>; expected a Harmony export index"):
        scan_plate(fm, str(images))


def test_an_unknown_name_in_a_vendor_folder_names_the_expected_form(tmp_path: Path, fm: FileManager) -> None:
    images = harmony_folder(tmp_path / "export")
    np.save(images / "x.npy", np.zeros(1))  # not an image extension: ignored
    import tifffile

    tifffile.imwrite(images / "overview.tiff", np.zeros((2, 2), np.uint8))
    with pytest.raises(IngestError, match=r"r01c01f01p01-ch1sk1fk1fl1.tiff \(Opera Phenix.*'overview.tiff'"):
        scan_plate(fm, str(images))


# ---------------------------------------------------------------- a custom pattern
def test_a_custom_pattern_reads_any_naming(tmp_path: Path, fm: FileManager) -> None:
    import tifffile

    folder = tmp_path / "custom"
    folder.mkdir()
    for f in (1, 2):
        for c in (1, 3):
            tifffile.imwrite(folder / f"scan_row-B_col-7_pos{f}_chan{c}.tif", pixels("B07", f, c, 1))
    pattern = r"scan_row-(?P<row>[A-P])_col-(?P<col>\d+)_pos(?P<field>\d+)_chan(?P<channel>\d+)\.tif"
    layout = scan_plate(fm, str(folder), pattern=pattern)
    assert layout.wells == ["B07"] and layout.fields == [1, 2] and layout.channels == [1, 3]
    (folder / "scan_row-B_col-7_pos2_chan3.tif").unlink()  # field 2 of channel 3 was never taken
    with pytest.raises(IngestError, match=r"1 image\(s\).*B07 field 2 channel 3 z 1 t 1"):
        scan_plate(fm, str(folder), pattern=pattern)
    out = tmp_path / "custom.zarr"
    convert(folder, out, "--pattern", pattern, "--missing", "fill")
    assert well_own(out, "B07")["missing"] == ["B07_s2_w3_z001_t001.tif"]
    assert np.array_equal(ZarrStorageBackend(tmp_path).load("custom.zarr/B07_s2_w1_z001_t001.tif", materialize=True),
                          pixels("B07", 2, 1, 1))


def test_bad_patterns_say_what_a_pattern_needs() -> None:
    with pytest.raises(ValueError, match="must name a group 'well'"):
        pattern_parser(r"(?P<field>\d+)\.tif")
    with pytest.raises(ValueError, match=r"names groups \['site'\]"):
        pattern_parser(r"(?P<well>[A-P]\d\d)_(?P<site>\d)\.tif")
    with pytest.raises(ValueError, match="not a regular expression"):
        pattern_parser(r"(?P<well>[A-P")
    result = runner.invoke(app, ["convert", ".", "out.zarr", "--pattern", r"(?P<field>\d+)"])
    assert result.exit_code == 2 and "must name a group 'well'" in result.stderr


def test_two_plates_metadata_in_one_folder_is_an_error(tmp_path: Path, fm: FileManager) -> None:
    harmony_folder(tmp_path / "a")
    harmony_folder(tmp_path / "b")
    with pytest.raises(MicroscopeMetadataError, match="2 metadata files"):
        scan_plate(fm, str(tmp_path))


def test_imagexpress_names_still_work_without_metadata(tmp_path: Path, fm: FileManager) -> None:
    folder = imagexpress_folder(tmp_path / "ix")
    (folder / "Plate1.HTD").unlink()
    layout = scan_plate(fm, str(folder))
    assert layout.acquisition.vendor == "names" and layout.wells == ["B03", "B04"]
    assert layout.channel_names() == ("w1", "w2")
    assert GUID not in "".join(layout.wells)


# ---------------------------------------------------------------- the pieces under it
def test_tiff_metadata_without_pixels(tmp_path: Path, fm: FileManager) -> None:
    folder = imagexpress_folder(tmp_path / "ix")
    meta = fm.load(str(folder / f"Plate1_B03_s1_w1{GUID}.tif"), "disk", metadata=True)
    assert meta["shape"] == list(SHAPE) and meta["dtype"] == "uint16" and meta["pixel_size"] == (0.645, 0.645)
    fm.save(np.zeros((3, 3), np.uint8), str(tmp_path / "cm.tif"), "disk", resolution=(1e4 / 0.5, 1e4 / 0.25),
            resolutionunit=3)
    assert fm.load(str(tmp_path / "cm.tif"), "disk", metadata=True)["pixel_size"] == pytest.approx((0.25, 0.5))
    fm.save(np.zeros((3, 3), np.uint8), str(tmp_path / "plain.tif"), "disk")
    assert fm.load(str(tmp_path / "plain.tif"), "disk", metadata=True)["pixel_size"] is None


def test_zarr_config_checks_the_acquisition_fields() -> None:
    from hcsvfs import ZarrConfig

    config = ZarrConfig(pixel_size=(0.5, 0.25), z_spacing=2, plate_shape=(16, 24))
    assert [config.axis_scale(a) for a in "tczyx"] == [1.0, 1.0, 2.0, 0.5, 0.25]
    for bad in ({"pixel_size": (0.5,)}, {"pixel_size": (0, 1)}, {"z_spacing": -1}, {"plate_shape": (16, 0)},
                {"plate_shape": (16.0, 24)}):
        with pytest.raises(ValueError):
            ZarrConfig(**bad)


def test_filled_marks_only_plate_planes_of_the_batch(tmp_path: Path) -> None:
    from hcsvfs.errors import InvalidPathError

    backend = ZarrStorageBackend(tmp_path)
    backend.ensure_directory("p.zarr")
    plane = np.zeros(SHAPE, np.uint16)
    with pytest.raises(InvalidPathError, match="not a plate plane"):
        backend.save(plane, "image", filled=True)
    with pytest.raises(InvalidPathError, match="does not save"):
        backend.save_batch([plane], ["p.zarr/A01_s1_w1.tif"], filled=["p.zarr/A01_s1_w2.tif"])
    backend.save_batch([plane, plane], ["p.zarr/A01_s1_w1.tif", "p.zarr/A01_s1_w2.tif"], filled=["p.zarr/A01_s1_w2.tif"])
    assert backend.open_plate("p.zarr").wells["A01"].missing == ["A01_s1_w2.tif"]


def test_the_pipeline_runs_on_a_vendor_folder_with_stand_ins_for_missing_images(tmp_path: Path) -> None:
    from hcsvfs.pipeline import FunctionStep, Pipeline

    images = harmony_folder(tmp_path / "export", drop=("r02c04f02p02-ch1sk1fk1fl1.tiff",))
    out = str(tmp_path / "proj.zarr")
    pipeline = Pipeline([FunctionStep("max_projection")])
    with pytest.raises(IngestError, match="r02c04f02p02-ch1sk1fk1fl1.tiff"):
        pipeline.run(str(images), out)
    report = pipeline.run(str(images), out, missing="fill")
    assert report.ok and [r.well for r in report.completed] == ["B03", "B04"]
    backend = ZarrStorageBackend(tmp_path)
    projected = backend.load("proj.zarr/B04_s2_w1_z001_t001.tif", materialize=True)
    assert np.array_equal(projected, pixels("B04", 2, 1, 1))  # the max of the real plane and the zeros


def test_a_layout_travels_to_workers_without_its_parser(tmp_path: Path, fm: FileManager) -> None:
    """Process pools pickle the plate layout; a caller's lambda parser must not stop them."""
    import pickle

    folder = imagexpress_folder(tmp_path / "ix")
    layout = scan_plate(fm, str(folder), parser=lambda name: parse_harmony(name) or __import__(
        "hcsvfs.pipeline", fromlist=["parse_metaxpress"]).parse_metaxpress(name))
    copy = pickle.loads(pickle.dumps(layout))
    assert copy.wells == layout.wells and copy.acquisition.channel_names == {1: "DAPI", 2: "FITC"}
    with pytest.raises(RuntimeError, match="without its file-name parser"):
        copy.acquisition.parser("A01_s1_w1.tif")


def test_filled_into_a_folder_without_a_store_yet_and_on_result_files(tmp_path: Path) -> None:
    from hcsvfs.errors import InvalidPathError

    backend = ZarrStorageBackend(tmp_path)
    (tmp_path / "plain").mkdir()  # a folder the zarr backend has no store for yet
    backend.save(np.zeros(SHAPE, np.uint16), "plain/A01_s1_w1.tif", filled=True)
    assert backend.open_plate("plain").wells["A01"].missing == ["A01_s1_w1.tif"]
    with pytest.raises(InvalidPathError, match="not a plate plane"):
        backend.save_batch([np.zeros(SHAPE, np.uint16), "a,b\n"], ["plain/A01_s1_w2.tif", "plain/t.csv"],
                           filled=["plain/t.csv"])
    assert not (tmp_path / "plain" / "t.csv").exists() and "A01_s1_w2.tif" not in backend.list_dir("plain")
