"""The zarr backend's HCS plate layout: NGFF plates from ImageXpress names, batch writes, lookups, errors."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import numpy as np
import pytest
import zarr
from hypothesis import given, settings
from hypothesis import strategies as st

from hcsvfs import Backend, FileManager, StorageRegistry, ZarrConfig
from hcsvfs.backends.zarr import PlaneMismatchError, ZarrStorageBackend
from hcsvfs.backends.zarr.plate import PlateLayout
from hcsvfs.errors import InvalidPathError

PLATE = "out/plate.zarr"


def plane(seed: int, shape: tuple[int, int] = (24, 32), dtype: str = "uint16") -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 60000, shape).astype(dtype)


def names_for(wells: dict[str, int], channels: int = 2, zs: int = 1, ts: int = 1) -> list[str]:
    return [
        f"{PLATE}/{w}_s{s}_w{c}_z{z:03d}_t{t:03d}.tif"
        for w, fields in wells.items()
        for s in range(1, fields + 1)
        for c in range(1, channels + 1)
        for z in range(1, zs + 1)
        for t in range(1, ts + 1)
    ]


@pytest.fixture
def zb(tmp_path: Path) -> ZarrStorageBackend:
    b = ZarrStorageBackend(tmp_path / "root")
    b.ensure_directory(PLATE)
    return b


def write(zb: ZarrStorageBackend, names: list[str]) -> dict[str, np.ndarray]:
    data = {n: plane(i) for i, n in enumerate(names)}
    zb.save_batch(list(data.values()), list(data))
    return data


def attrs(zb: ZarrStorageBackend, logical: str) -> dict:
    return zb.locator.read_meta(zb.locator.key(logical))["attributes"]


def test_batch_writes_the_ngff_plate_layout(zb: ZarrStorageBackend, tmp_path: Path) -> None:
    data = write(zb, names_for({"A01": 2, "B03": 2}, channels=3, zs=2, ts=2))
    root = tmp_path / "root" / PLATE
    field = zarr.open_array(root / "B" / "3" / "1" / "0", mode="r")
    assert field.shape == (2, 3, 2, 24, 32) and list(field.metadata.dimension_names) == list("tczyx")
    plate = attrs(zb, PLATE)["ome"]["plate"]
    assert [r["name"] for r in plate["rows"]] == ["A", "B"] and [c["name"] for c in plate["columns"]] == ["1", "2", "3"]
    assert [(w["path"], w["rowIndex"], w["columnIndex"]) for w in plate["wells"]] == [("A/1", 0, 0), ("B/3", 1, 2)]
    assert plate["field_count"] == 2 and plate["acquisitions"]
    assert attrs(zb, f"{PLATE}/A/1")["ome"]["well"]["images"] == [{"path": "0", "acquisition": 0}, {"path": "1", "acquisition": 0}]
    assert zb.list_dir(PLATE) == sorted(n.rsplit("/", 1)[1] for n in data)
    for name, pixels in data.items():
        assert np.array_equal(np.asarray(zb.load(name)), pixels)
    # B03_s2_w3_z002_t002 is t=1, c=2, z=1 of field 1.
    assert np.array_equal(field[1, 2, 1], data[f"{PLATE}/B03_s2_w3_z002_t002.tif"])
    checked = zb.validate(PLATE)
    assert checked[0] == PLATE and f"{PLATE}/B/3/1" in checked and len(checked) == 1 + 2 + 4


@pytest.mark.filterwarnings("ignore:.*version. field not specified")
def test_ome_zarr_models_reads_the_plate(zb: ZarrStorageBackend, tmp_path: Path) -> None:
    from ome_zarr_models.v05 import HCS

    write(zb, names_for({"A01": 1, "A02": 1}))
    hcs = HCS.from_zarr(zarr.open_group(tmp_path / "root" / PLATE, mode="r"))
    assert [w.path for w in hcs.ome_attributes.plate.wells] == ["A/1", "A/2"]


def test_ome_zarr_py_reads_the_plate_pixel_exact(zb: ZarrStorageBackend, tmp_path: Path) -> None:
    from ome_zarr.io import parse_url
    from ome_zarr.reader import Plate, Reader

    data = write(zb, names_for({"A01": 1, "B02": 1}, channels=2))
    nodes = list(Reader(parse_url(str(tmp_path / "root" / PLATE)))())
    assert any(isinstance(s, Plate) for s in nodes[0].specs)
    grid = np.asarray(nodes[0].data[0])  # rows x columns stitched from field 0 of each well
    assert grid.shape == (1, 2, 1, 2 * 24, 2 * 32)
    assert np.array_equal(grid[0, 1, 0, 24:, 32:], data[f"{PLATE}/B02_s1_w2_z001_t001.tif"])
    field = next(iter(Reader(parse_url(str(tmp_path / "root" / PLATE / "A" / "1" / "0")))()))
    assert np.array_equal(np.asarray(field.data[0])[0, 0, 0], data[f"{PLATE}/A01_s1_w1_z001_t001.tif"])


def test_bioio_ome_zarr_opens_a_field(zb: ZarrStorageBackend, tmp_path: Path) -> None:
    from bioio_ome_zarr import Reader

    data = write(zb, names_for({"C05": 1}, channels=2, zs=3))
    reader = Reader(str(tmp_path / "root" / PLATE / "C" / "5" / "0"))
    pixels = np.asarray(reader.data)
    assert pixels.shape == (1, 2, 3, 24, 32)
    assert np.array_equal(pixels[0, 1, 2], data[f"{PLATE}/C05_s1_w2_z003_t001.tif"])


def test_missing_wells_and_uneven_field_counts(zb: ZarrStorageBackend) -> None:
    write(zb, names_for({"A01": 3, "C04": 1}, channels=1))
    info = zb.open_plate(PLATE)
    assert info.rows == ["A", "B", "C"] and info.columns == ["1", "2", "3", "4"]
    assert sorted(info.wells) == ["A01", "C04"] and info.field_count == 3
    assert info.wells["A01"].fields == ["0", "1", "2"] and info.wells["C04"].fields == ["0"]
    assert info.field("c04", 0).shape == (1, 1, 1, 24, 32)
    with pytest.raises(InvalidPathError, match="no field 1 in well"):
        info.field("C04", 1)
    assert len(zb.validate(PLATE)) == 1 + 2 + 4


def test_planes_saved_one_by_one_grow_the_field(zb: ZarrStorageBackend) -> None:
    data = {}
    for i, name in enumerate(["A01_s1_w1_z001.tif", "A01_s1_w2_z003.tif", "A01_s1_w1_z002_t002.tif"]):
        data[name] = plane(i)
        zb.save(data[name], f"{PLATE}/{name}")
    assert zb.open_plate(PLATE).field("A01").shape == (2, 2, 3, 24, 32)
    for name, pixels in data.items():
        assert np.array_equal(zb.load(f"{PLATE}/{name}", materialize=True), pixels)
    zb.validate(PLATE)


def test_existing_names_fail_loud_and_overwrite_replaces(zb: ZarrStorageBackend) -> None:
    name = f"{PLATE}/A01_s1_w1.tif"
    zb.save(plane(1), name)
    with pytest.raises(FileExistsError, match="overwrite=True"):
        zb.save(plane(2), name)
    with pytest.raises(FileExistsError):
        zb.save_batch([plane(2)], [name])
    zb.save(plane(2), name, overwrite=True)
    assert np.array_equal(zb.load(name, materialize=True), plane(2))


@pytest.mark.parametrize(
    ("bad", "match"),
    [(plane(9, (24, 33)), "does not match field"), (plane(9, dtype="float32"), "does not match field"), (np.zeros((2, 24, 32), "uint16"), "must be 2-D")],
)
def test_a_plane_that_does_not_fit_its_field_writes_nothing(zb: ZarrStorageBackend, bad: np.ndarray, match: str) -> None:
    zb.save(plane(1), f"{PLATE}/A01_s1_w1.tif")
    before = zb.list_dir(PLATE)
    with pytest.raises(PlaneMismatchError, match=match) as info:
        zb.save(bad, f"{PLATE}/A01_s1_w2.tif")
    assert isinstance(info.value, ValueError) and "A01_s1_w2.tif" in str(info.value)
    assert zb.list_dir(PLATE) == before and zb.open_plate(PLATE).field("A01").shape == (1, 1, 1, 24, 32)


def test_a_bad_plane_in_a_batch_writes_nothing(zb: ZarrStorageBackend) -> None:
    names = names_for({"A01": 2, "B01": 1})
    data = [plane(i) for i in range(len(names))]
    data[-1] = plane(0, (8, 8))
    with pytest.raises(PlaneMismatchError):
        zb.save_batch(data, names)
    assert zb.list_dir(PLATE) == [] and zb.list_dir("out") == ["plate.zarr"]


@pytest.mark.parametrize("name", ["notes.png", "A01_s1.tif", "Ä01_s1_w1.tif", "A01_s1_w1_z٣.tif", "A01 s1 w1.tif"])
def test_names_that_do_not_parse_are_refused_under_a_plate(zb: ZarrStorageBackend, name: str) -> None:
    with pytest.raises(InvalidPathError, match="not an HCS image name") as info:
        zb.save(plane(1), f"{PLATE}/{name}")
    assert "A01_s1_w2_z003_t001.tif" in str(info.value)
    zb.save(plane(1), f"{PLATE}/A01_s1_w1.tif")  # now an existing plate: still refused, whatever the folder's name
    zb.move(PLATE, "out/other.zarr")
    with pytest.raises(InvalidPathError, match="not an HCS image name"):
        zb.save(plane(1), f"out/other.zarr/{name}")


def test_non_hcs_names_under_other_zarr_folders_are_plain_images(zb: ZarrStorageBackend) -> None:
    zb.ensure_directory("res/images.zarr")
    zb.save(plane(1), "res/images.zarr/mask")
    with pytest.raises(InvalidPathError, match="already holds other entries"):
        zb.save(plane(1), "res/images.zarr/A01_s1_w1.tif")
    assert zb.list_dir("res/images.zarr") == ["mask"]


def test_a_missing_plate_folder_fails_like_any_missing_parent(tmp_path: Path) -> None:
    zb = ZarrStorageBackend(tmp_path)
    with pytest.raises(FileNotFoundError, match="ensure_directory"):
        zb.save(plane(1), "nope/plate.zarr/A01_s1_w1.tif")
    with pytest.raises(FileNotFoundError):
        zb.save_batch([plane(1)], ["nope/plate.zarr/A01_s1_w1.tif"])


def test_a_failed_field_leaves_its_well_unlisted(zb: ZarrStorageBackend, monkeypatch: pytest.MonkeyPatch) -> None:
    real = PlateLayout._write_field

    def flaky(self: PlateLayout, planes: list, *rest: object) -> None:
        if planes[0][0].field_path == "1":
            raise OSError("disk went away")
        real(self, planes, *rest)  # type: ignore[arg-type]

    monkeypatch.setattr(PlateLayout, "_write_field", flaky)
    names = names_for({"A01": 2})
    with pytest.raises(OSError, match="went away"):
        write(zb, names)
    # Field 0 was written, but the well's metadata never was: no name of the well is visible.
    assert zb.list_dir(PLATE) == [] and not zb.exists(names[0])
    with pytest.raises(FileNotFoundError):
        zb.load(names[0])


def test_batch_uses_a_bounded_pool_of_threads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    zb = ZarrStorageBackend(tmp_path, config=ZarrConfig(write_threads=2))
    zb.ensure_directory(PLATE)
    real = PlateLayout._write_field
    threads: set[str] = set()
    live, peak = [0], [0]
    lock = threading.Lock()
    both_running = threading.Barrier(2, timeout=5)

    def spy(self: PlateLayout, planes: list, *rest: object) -> None:
        with lock:
            threads.add(threading.current_thread().name)
            live[0] += 1
            peak[0] = max(peak[0], live[0])
        try:
            both_running.wait()  # proves two fields are written at the same time
        except threading.BrokenBarrierError:
            pass
        real(self, planes, *rest)  # type: ignore[arg-type]
        with lock:
            live[0] -= 1

    monkeypatch.setattr(PlateLayout, "_write_field", spy)
    write(zb, names_for({"A01": 4, "A02": 4}, channels=1))
    assert len(threads) == 2 and peak[0] == 2 and len(zb.list_dir(PLATE)) == 8


def test_delete_planes_then_wells(zb: ZarrStorageBackend) -> None:
    write(zb, names_for({"A01": 1, "B01": 1}, channels=2))
    zb.delete(f"{PLATE}/B01_s1_w2_z001_t001.tif")
    assert "B01_s1_w2_z001_t001.tif" not in zb.list_dir(PLATE)
    zb.delete(f"{PLATE}/B01_s1_w1_z001_t001.tif")
    assert sorted(zb.open_plate(PLATE).wells) == ["A01"]
    zb.validate(PLATE)
    zb.delete_all(PLATE)
    assert zb.list_dir("out") == []


def test_rebuild_restores_a_well_lost_by_a_racing_process(zb: ZarrStorageBackend) -> None:
    write(zb, names_for({"A01": 1, "B02": 2}))
    meta = zb.locator.read_meta(zb.locator.key(PLATE))
    meta["attributes"]["ome"]["plate"]["wells"] = meta["attributes"]["ome"]["plate"]["wells"][:1]
    zb.locator.write_meta(zb.locator.key(PLATE), meta)  # what a lost concurrent update looks like
    assert sorted(zb.open_plate(PLATE).wells) == ["A01"]
    assert zb.rebuild_plate_metadata(PLATE) == ["A01", "B02"]
    info = zb.open_plate(PLATE)
    assert sorted(info.wells) == ["A01", "B02"] and info.field_count == 2
    zb.validate(PLATE)


def test_copy_a_plate_keeps_names_and_pixels(zb: ZarrStorageBackend) -> None:
    data = write(zb, names_for({"A01": 1}))
    zb.copy(PLATE, "out/copy.zarr")
    assert zb.list_dir("out/copy.zarr") == zb.list_dir(PLATE)
    for name, pixels in data.items():
        assert np.array_equal(zb.load(name.replace("plate.zarr", "copy.zarr"), materialize=True), pixels)
    assert zb.stat("out/copy.zarr").extra["plate"]


def test_pyramids_on_plate_fields(tmp_path: Path) -> None:
    zb = ZarrStorageBackend(tmp_path, config=ZarrConfig(pyramid_levels=1))
    zb.ensure_directory(PLATE)
    data = write(zb, names_for({"A01": 1}, channels=1))
    zb.save(plane(5), f"{PLATE}/A01_s1_w2.tif")  # the single-plane path updates level 1 too
    level1 = zarr.open_array(tmp_path / PLATE / "A" / "1" / "0" / "1", mode="r")
    first = data[f"{PLATE}/A01_s1_w1_z001_t001.tif"]
    assert np.array_equal(level1[0, 0, 0], np.rint(first.reshape(12, 2, 16, 2).mean(axis=(1, 3))).astype(np.uint16))
    assert np.array_equal(level1[0, 1, 0], np.rint(plane(5).reshape(12, 2, 16, 2).mean(axis=(1, 3))).astype(np.uint16))
    assert np.array_equal(zb.load(f"{PLATE}/A01_s1_w2.tif", level=1, materialize=True), level1[0, 1, 0])
    with pytest.raises(InvalidPathError, match="no pyramid level 2"):
        zb.load(f"{PLATE}/A01_s1_w2.tif", level=2)
    zb.validate(PLATE)


def test_filemanager_contract_for_the_pipeline(tmp_path: Path) -> None:
    reg = StorageRegistry(discover=False)
    reg.register_backend(Backend.ZARR, ZarrStorageBackend(tmp_path))
    fm = FileManager(reg)
    fm.save(plane(1), "run/plate.zarr/A01_s1_w1_z001_t001.tif", Backend.ZARR)  # parents created by FileManager
    fm.save_batch([plane(2), plane(3)], ["run/plate.zarr/A01_s1_w2_z001_t001.tif", "run/plate.zarr/A02_s1_w1_z001_t001.tif"], Backend.ZARR)
    got = fm.load_batch(["run/plate.zarr/A01_s1_w2_z001_t001.tif", "run/plate.zarr/A02_s1_w1_z001_t001.tif"], Backend.ZARR)
    assert np.array_equal(np.asarray(got[0]), plane(2)) and np.array_equal(got[1][:], plane(3))
    plate_json = json.loads((tmp_path / "run" / "plate.zarr" / "zarr.json").read_text())
    assert [w["path"] for w in plate_json["attributes"]["ome"]["plate"]["wells"]] == ["A/1", "A/2"]


@settings(max_examples=15, deadline=None)
@given(
    st.sets(st.tuples(st.sampled_from(["A01", "B02", "H12"]), st.integers(1, 3), st.integers(1, 3), st.integers(1, 3), st.integers(1, 2)), min_size=1, max_size=12),
    st.booleans(),
)
def test_any_set_of_planes_round_trips_on_any_store(spots: set, batch: bool) -> None:
    zb = ZarrStorageBackend(store=zarr.storage.MemoryStore())
    zb.ensure_directory("p.zarr")
    data = {f"p.zarr/{w}_s{s}_w{c}_z{z:03d}_t{t:03d}.tif": plane(i, (6, 5)) for i, (w, s, c, z, t) in enumerate(sorted(spots))}
    if batch:
        zb.save_batch(list(data.values()), list(data))
    else:
        for name, pixels in data.items():
            zb.save(pixels, name)
    assert zb.list_dir("p.zarr") == sorted(n.split("/")[1] for n in data)
    for name, pixels in data.items():
        assert np.array_equal(zb.load(name, materialize=True), pixels)
    assert sorted(zb.open_plate("p.zarr").wells) == sorted({w for w, *_ in spots})
    zb.validate("p.zarr")


def test_batch_memory_is_bounded_by_fields_in_flight_not_the_plate(tmp_path: Path) -> None:
    import tracemalloc

    field_bytes = 3 * 128 * 128 * 2

    def peak_fields(wells: list[str], folder: str) -> float:
        zb = ZarrStorageBackend(tmp_path / folder)
        zb.ensure_directory("p.zarr")
        names = [f"p.zarr/{w}_s{s}_w{c}.tif" for w in wells for s in range(1, 9) for c in (1, 2, 3)]
        data = [np.full((128, 128), i, np.uint16) for i in range(len(names))]
        tracemalloc.start()
        try:
            zb.save_batch(data, names)
            return tracemalloc.get_traced_memory()[1] / field_bytes
        finally:
            tracemalloc.stop()

    small = peak_fields(["A01", "A02"], "small")  # 16 fields
    large = peak_fields(["A01", "A02", "B01", "B02", "C01", "C02", "D01", "D02"], "large")  # 64 fields
    # 2 threads x 2 queued tasks, each a field buffer plus its encoded shard: about 9 fields, whatever the plate size.
    assert large < 16 and large < 1.5 * small + 2, (small, large)  # the plate itself is 64 fields


def test_load_batch_reads_each_plate_well_and_field_metadata_once(zb: ZarrStorageBackend, monkeypatch: pytest.MonkeyPatch) -> None:
    """On an object store every metadata read is a request: a batch must not repeat them per plane."""
    data = write(zb, names_for({"A01": 2, "B03": 2}, channels=3))  # 2 wells x 2 fields x 3 channels
    reads: list[str] = []
    real = zb.locator._read_meta
    monkeypatch.setattr(zb.locator, "_read_meta", lambda key, v2: reads.append(key) or real(key, v2))
    got = zb.load_batch(list(data), materialize=True)
    assert all(np.array_equal(g, data[n]) for g, n in zip(got, data))
    assert len(reads) == len(set(reads)) == 1 + 2 + 4  # the plate, its wells, each field's array; 12 planes
    reads.clear()
    zb.load(next(iter(data)))
    single = len(reads)
    reads.clear()
    zb.load_batch(list(data)[:1])
    assert len(reads) == single  # a one-plane batch costs what one load costs
    zb.save(plane(99), f"{PLATE}/A01_s1_w1_z001_t001.tif", overwrite=True)  # no snapshot outlives the batch
    assert np.array_equal(zb.load_batch([f"{PLATE}/A01_s1_w1_z001_t001.tif"], materialize=True)[0], plane(99))


def test_a_batch_reads_a_field_it_mostly_covers_once(zb: ZarrStorageBackend, monkeypatch: pytest.MonkeyPatch) -> None:
    """Planes covering at least half of a field are cut from one read of the field; a lone plane is read alone."""
    import zarr

    data = write(zb, names_for({"A01": 1, "B02": 1}, channels=3, zs=2))  # 6 planes per field
    reads: list[tuple[str, object]] = []
    real = zarr.AsyncArray.getitem

    async def counted(self: zarr.AsyncArray, selection: object, *a: object, **k: object) -> object:
        reads.append((str(self.store_path).split("/")[-4], selection))  # the row of .../A/1/0/0
        return await real(self, selection, *a, **k)  # type: ignore[arg-type]

    monkeypatch.setattr(zarr.AsyncArray, "getitem", counted)
    a01 = [n for n in data if "/A01_" in n][:4]  # 4 of 6 planes: read as the field
    b02 = [n for n in data if "/B02_" in n][:1]  # 1 of 6: read as a plane
    views = zb.load_batch(a01 + b02)
    assert views[0].zarr is views[1].zarr  # one array object per field within the batch
    got = zb.load_batch(a01 + b02, materialize=True)
    assert all(np.array_equal(g, data[n]) for g, n in zip(got, a01 + b02))
    assert sorted(where for where, _ in reads) == ["A", "B"], reads  # one read each
    assert [sel for where, sel in reads if where == "A"] == [Ellipsis]
    got[0][0, 0] += 1  # each plane is its own to change
    assert np.array_equal(got[1], data[a01[1]])
