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
