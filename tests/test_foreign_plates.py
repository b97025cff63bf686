"""Plates other tools wrote (NGFF 0.4 on zarr v2, 0.5 on zarr v3) open as folders of files.

Each peer writes the same small plate (tests/ngff_peers.py); hcsvfs lists it
under ImageXpress names (or the original system's own names), loads every
plane by name with its pixels, opens fields and pyramid levels, validates it,
and refuses to write into it.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

# ome-zarr-models before ngio: with ngio's pydantic-zarr classes made first, ome-zarr-models 1.7 rejects valid
# 0.4 plates (a pydantic generic-class clash between the two libraries; see docs/zarr.md, known limits).
import ome_zarr_models.v04  # noqa: F401
import ome_zarr_models.v05  # noqa: F401
import numpy as np
import pytest

from hcsvfs.backends.zarr import ZarrStorageBackend
from hcsvfs.errors import CorruptDataError, ReadOnlyError, StorageError
from ngff_peers import CHANNELS, FIELDS, WRITERS, ZS, expected

PEERS = sorted(WRITERS)


@pytest.fixture(scope="module")
def plates(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every peer's plate, written once for the module: ``<tool>_<version>.zarr``."""
    root = tmp_path_factory.mktemp("foreign")
    for (tool, version), write in WRITERS.items():
        write(root / f"{tool}_{version}.zarr", version)
    return root


def _name(peer: tuple[str, str]) -> str:
    return f"{peer[0]}_{peer[1]}.zarr"


@pytest.mark.parametrize("peer", PEERS, ids=[f"{t}-{v}" for t, v in PEERS])
def test_a_foreign_plate_is_a_folder_of_named_planes(plates: Path, peer: tuple[str, str]) -> None:
    zb = ZarrStorageBackend(plates)
    plate = _name(peer)
    want = expected()
    assert zb.list_dir(plate) == sorted(want)
    assert zb.list_files(plate, extensions=".tif") == [f"{plate}/{n}" for n in sorted(want)]
    for name, value in want.items():
        plane = zb.load(f"{plate}/{name}", materialize=True)
        assert plane.shape == (16, 16) and plane.dtype == np.uint16 and (plane == value).all(), name
    got = zb.load_batch([f"{plate}/{n}" for n in want], materialize=True)
    assert [int(g[0, 0]) for g in got] == list(want.values())
    st = zb.stat(f"{plate}/A01_s2_w1_z002_t001.tif")
    assert st.is_file and st.extra["shape"] == (16, 16) and st.extra["dtype"] == "uint16"
    assert zb.is_dir(plate) and zb.stat(plate).extra["plate"]


@pytest.mark.parametrize("peer", PEERS, ids=[f"{t}-{v}" for t, v in PEERS])
def test_open_plate_fields_and_validation(plates: Path, peer: tuple[str, str]) -> None:
    zb = ZarrStorageBackend(plates)
    info = zb.open_plate(_name(peer))
    assert sorted(info.wells) == ["A01", "B02"] and info.field_count == FIELDS
    assert all(len(w.fields) == FIELDS and len(w.files) == FIELDS * CHANNELS * ZS for w in info.wells.values())
    field = info.field("B02", 1)  # the second image of the well, in the axes its writer chose
    assert field.shape[-2:] == (16, 16) and int(np.asarray(field).max()) == 1000 + 100 + 10 + 1
    checked = zb.validate(_name(peer))  # ome-zarr-models of the plate's own version
    assert len(checked) == 1 + 2 + 2 * FIELDS


def test_pyramid_levels_come_from_the_multiscales(plates: Path) -> None:
    zb = ZarrStorageBackend(plates)
    plate = _name(("ngio", "0.4"))  # written with 2 levels
    assert zb.load(f"{plate}/A01_s1_w2_z001_t001.tif", level=1).shape == (8, 8)
    with pytest.raises(ValueError, match="level"):
        zb.load(f"{plate}/A01_s1_w2_z001_t001.tif", level=5)
    ngff_zarr = _name(("ngff-zarr", "0.5"))  # dataset path scale0/image, not "0"
    assert zb.open_plate(ngff_zarr).field("A01", 0).shape == (CHANNELS, ZS, 16, 16)


def test_the_original_systems_plate_lists_under_its_own_file_names(plates: Path) -> None:
    zb = ZarrStorageBackend(plates)
    plate = _name(("polystore", "0.4"))
    attrs = json.loads((plates / plate / "A" / "01" / "0" / "0" / ".zattrs").read_text())
    assert "polystore_filename_map" in attrs  # the names come from the map, not from a guess
    assert zb.list_dir(plate) == sorted(expected())


@pytest.mark.parametrize("peer", [("ngio", "0.4"), ("ome-zarr-py", "0.5")])
def test_foreign_plates_are_read_only(plates: Path, tmp_path: Path, peer: tuple[str, str]) -> None:
    copy = tmp_path / _name(peer)
    shutil.copytree(plates / _name(peer), copy)
    zb = ZarrStorageBackend(tmp_path)
    before = sorted(p.relative_to(copy) for p in copy.rglob("*"))
    for call in (
        lambda: zb.save(np.zeros((16, 16), np.uint16), f"{copy.name}/A01_s3_w1_z001_t001.tif"),
        lambda: zb.save_batch([np.zeros((16, 16), np.uint16)], [f"{copy.name}/C03_s1_w1.tif"]),
        lambda: zb.save(np.zeros((16, 16), np.uint16), f"{copy.name}/A01_s1_w1_z001_t001.tif", overwrite=True),
    ):
        with pytest.raises(ReadOnlyError) as info:
            call()
        assert "another tool" in str(info.value) and "hcsvfs convert" in str(info.value)
        assert isinstance(info.value, PermissionError)
    assert sorted(p.relative_to(copy) for p in copy.rglob("*")) == before


def test_damaged_foreign_plates_give_typed_errors_naming_the_path(plates: Path, tmp_path: Path) -> None:
    copy = tmp_path / "p.zarr"
    shutil.copytree(plates / _name(("ngio", "0.4")), copy)
    zb = ZarrStorageBackend(tmp_path)
    (copy / "A" / "01" / ".zattrs").write_text("{broken")
    with pytest.raises(CorruptDataError) as info:
        zb.list_dir("p.zarr")
    assert "A/01/.zattrs" in str(info.value)
    shutil.rmtree(copy / "B" / "02" / "1" / "0")  # a field array gone: its planes are not listed, the rest are
    (copy / "A" / "01" / ".zattrs").write_text(json.dumps({"well": {"images": [{"path": "0"}], "version": "0.4"}}))
    names = zb.list_dir("p.zarr")
    assert "B02_s2_w1_z001_t001.tif" not in names and "B02_s1_w1_z001_t001.tif" in names
    with pytest.raises(FileNotFoundError):
        zb.load("p.zarr/B02_s2_w1_z001_t001.tif")
    with pytest.raises(StorageError):
        zb.validate("p.zarr")


@pytest.mark.s3
@pytest.mark.parametrize("peer", [("ngio", "0.4"), ("ome-zarr-py", "0.5")])
def test_foreign_plates_on_s3(plates: Path, peer: tuple[str, str]) -> None:
    import s3fs

    from s3_server import new_s3_url

    url, options = new_s3_url()
    s3fs.S3FileSystem(**options).put(str(plates / _name(peer)), f"{url[5:]}/{_name(peer)}", recursive=True)
    zb = ZarrStorageBackend(url, storage_options=options)
    want = expected()
    assert zb.list_dir(_name(peer)) == sorted(want)
    got = zb.load_batch([f"{_name(peer)}/{n}" for n in want], materialize=True)
    assert [int(g[0, 0]) for g in got] == list(want.values())
    assert len(zb.validate(_name(peer))) == 1 + 2 + 2 * FIELDS


# ---------------------------------------------------------------- the other way: peers read what hcsvfs writes
@pytest.fixture(scope="module")
def own_plate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, int]]:
    """An hcsvfs plate (wells A01 and B02, 2 fields, channels DAPI and GFP, 2 z) and each plane's value."""
    from hcsvfs.config import ZarrConfig

    root = tmp_path_factory.mktemp("own")
    zb = ZarrStorageBackend(root, config=ZarrConfig(channel_names=("DAPI", "GFP")))
    zb.ensure_directory("p.zarr")
    want = expected()
    zb.save_batch([np.full((16, 16), v, np.uint16) for v in want.values()], [f"p.zarr/{n}" for n in want])
    labels = np.zeros((16, 16), np.int32)
    labels[2:6, 3:7] = 7
    zb.save_batch([labels] * 4, [f"p.zarr/{w}_s{s}_w1_z001_t001.tif" for w in ("A01", "B02") for s in (1, 2)],
                  label="cells")
    return root / "p.zarr", want


def _field_values(data: np.ndarray) -> list[int]:
    """The value of each (c, z) plane of a (t, c, z, y, x) field, in c-major order."""
    arr = np.asarray(data)
    return [int(arr[0, c, z, 0, 0]) for c in range(arr.shape[1]) for z in range(arr.shape[2])]


def _wanted(want: dict[str, int], well: str, field: int) -> list[int]:
    return [want[f"{well}_s{field + 1}_w{c + 1}_z{z + 1:03d}_t001.tif"] for c in range(CHANNELS) for z in range(ZS)]


FIELD_PATHS = [("A", "1", "A01", 0), ("A", "1", "A01", 1), ("B", "2", "B02", 0), ("B", "2", "B02", 1)]


def test_ome_zarr_py_reads_every_field_with_channel_names(own_plate: tuple[Path, dict[str, int]]) -> None:
    from ome_zarr.io import parse_url
    from ome_zarr.reader import Reader

    plate, want = own_plate
    for row, col, well, f in FIELD_PATHS:
        node = next(iter(Reader(parse_url(str(plate / row / col / str(f))))()))
        assert _field_values(node.data[0]) == _wanted(want, well, f)
        assert node.metadata["channel_names"] == ["DAPI", "GFP"]


def test_ngio_reads_every_field_with_channel_names(own_plate: tuple[Path, dict[str, int]]) -> None:
    import ngio

    plate, want = own_plate
    opened = ngio.open_ome_zarr_plate(str(plate))
    assert sorted(opened.images_paths()) == ["A/1/0", "A/1/1", "B/2/0", "B/2/1"]
    for row, col, well, f in FIELD_PATHS:
        container = opened.get_image(row, col, str(f))
        assert _field_values(container.get_image().get_as_numpy()) == _wanted(want, well, f)
        assert container.channel_labels == ["DAPI", "GFP"]


def test_ngff_zarr_reads_every_field_with_channel_names(own_plate: tuple[Path, dict[str, int]]) -> None:
    import ngff_zarr as nz

    plate, want = own_plate
    opened = nz.from_hcs_zarr(str(plate))
    for row, col, well, f in FIELD_PATHS:
        image = opened.get_well(row, col).get_image(f)
        assert _field_values(image.images[0].data) == _wanted(want, well, f)
        assert [c.label for c in image.metadata.omero.channels] == ["DAPI", "GFP"]


def test_bioio_reads_every_field_with_channel_names(own_plate: tuple[Path, dict[str, int]]) -> None:
    from bioio_ome_zarr import Reader

    plate, want = own_plate
    for row, col, well, f in FIELD_PATHS:
        reader = Reader(str(plate / row / col / str(f)))
        assert _field_values(reader.data) == _wanted(want, well, f)
        assert list(reader.channel_names) == ["DAPI", "GFP"]


def test_napari_ome_zarr_gives_layers_with_channel_names_and_labels(own_plate: tuple[Path, dict[str, int]]) -> None:
    """The reader napari calls for a dropped folder (no window: the layer data it returns)."""
    from napari_ome_zarr import napari_get_reader

    plate, _ = own_plate
    field = plate / "A" / "1" / "0"
    layers = napari_get_reader(str(field))(str(field))
    labels = [(data, kw) for data, kw, kind in layers if kind == "labels"]
    assert _channel_layer_names(layers) == ["DAPI", "GFP"]
    assert len(labels) == 1 and int(np.asarray(labels[0][0][0]).max()) == 7
    grid = napari_get_reader(str(plate))(str(plate))  # the whole plate: a grid of field 0 of every well
    assert _channel_layer_names(grid) == ["DAPI", "GFP"]


def _channel_layer_names(layers: list[tuple[Any, dict[str, Any], str]]) -> list[str]:
    """The channel names napari would show: napari-ome-zarr 0.10 (Python 3.11) gives one image layer with a
    channel axis and a list of names, 0.11 (3.12+) one image layer per channel; both say "<level>: <label>"."""
    names: list[str] = []
    for _, kw, kind in layers:
        if kind == "image":
            names += [str(n).split(": ")[-1] for n in (kw["name"] if isinstance(kw["name"], list) else [kw["name"]])]
    return names


def test_hcsvfs_reads_its_labels_back(own_plate: tuple[Path, dict[str, int]]) -> None:
    plate, _ = own_plate
    zb = ZarrStorageBackend(plate.parent)
    info = zb.open_plate("p.zarr")
    assert info.labels("B02", 1) == ["cells"]
    assert int(np.asarray(info.label("B02", 1, "cells")).max()) == 7
    assert int(zb.load("p.zarr/A01_s2_w1_z001_t001.tif", label="cells", materialize=True).max()) == 7
    with pytest.raises(FileNotFoundError):
        zb.load("p.zarr/A01_s2_w1_z001_t001.tif", label="nuclei")
    assert zb.list_dir("p.zarr") == sorted(expected())  # labels are not extra files


# ---------------------------------------------------------------- migration and the CLI on foreign plates
@pytest.mark.parametrize("peer", [("polystore", "0.4"), ("ngff-zarr", "0.5"), ("ngio", "0.4")])
def test_convert_migrates_a_plate_verifying_every_plane(plates: Path, tmp_path: Path, peer: tuple[str, str]) -> None:
    from typer.testing import CliRunner

    from hcsvfs.cli.app import app

    new = tmp_path / "new.zarr"
    result = CliRunner().invoke(app, ["convert", str(plates / _name(peer)), str(new)])
    assert result.exit_code == 0, result.output
    assert "every one read back equal" in result.output and "valid OME-NGFF 0.5" in result.output
    zb = ZarrStorageBackend(tmp_path)
    assert zb.describe("new.zarr")["written_by"] == "hcsvfs" and zb.describe("new.zarr")["ngff_version"] == "0.5"
    want = expected()
    assert zb.list_dir("new.zarr") == sorted(want)
    got = zb.load_batch([f"new.zarr/{n}" for n in want], materialize=True)
    assert [int(g[0, 0]) for g in got] == list(want.values())
    source = ZarrStorageBackend(plates).open_plate(_name(peer)).facts("A01", 0).get("channels")
    assert zb.open_plate("new.zarr").facts("A01", 0)["channels"] == (source or ["w1", "w2"])  # names carry over
    again = CliRunner().invoke(app, ["convert", str(plates / _name(peer)), str(new)])
    assert again.exit_code == 1 and "--overwrite" in again.output


@pytest.mark.parametrize("peer", [("ome-zarr-py", "0.4"), ("bioio-ome-zarr", "0.5")])
def test_ls_info_and_validate_read_foreign_plates_through_the_backend(plates: Path, peer: tuple[str, str]) -> None:
    from typer.testing import CliRunner

    from hcsvfs.cli.app import app

    plate = str(plates / _name(peer))
    runner = CliRunner()
    listing = runner.invoke(app, ["ls", plate], env={"COLUMNS": "200"})
    assert listing.exit_code == 0 and "plate 2x2, 2 wells" in listing.output and "2x2x16x16 uint16 czyx" in listing.output
    facts = json.loads(runner.invoke(app, ["info", "--json", plate]).output)
    assert facts["ngff_version"] == peer[1] and facts["planes"] == 16 and "another tool" in facts["written_by"]
    valid = runner.invoke(app, ["validate", plate], env={"COLUMNS": "300"})
    assert valid.exit_code == 0 and "7 group(s)" in valid.output
