"""Backend.AUTO: the selection policy (hcsvfs.tiering.selection) and FileManager's recorded choices."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from hcsvfs import Backend, DiskStorageBackend, FileManager, MemoryStorageBackend, StorageRegistry
from hcsvfs.tiering import MemoryOverlay
from hcsvfs.tiering.selection import AutoPolicy, choose_backend, is_hcs_filename, under_plate

MiB = 1024**2
FREE = 1024 * MiB  # 1 GiB free: the memory rule keeps arrays up to 256 MiB (fraction 0.25)
ALL = frozenset({"memory", "disk", "zarr"})


def arr(nbytes: int) -> np.ndarray:
    return np.zeros((10, nbytes // 10), np.uint8)  # 2-D, so every image format accepts it


def big(nbytes: int) -> np.ndarray:
    # A broadcast view: .nbytes reports the full size with one element of real memory.
    return np.broadcast_to(np.zeros(1, np.uint8), (nbytes,))


def choose(obj: object, path: str, free: int = FREE, policy: AutoPolicy = AutoPolicy(), backends=ALL) -> str:
    return choose_backend(obj, path, available_memory=free, policy=policy, backends=backends).backend


# ---------------------------------------------------------------- the rules
@pytest.mark.parametrize(
    "obj, path, expected",
    [
        (arr(1000), "intermediate/step1", "memory"),  # small array, no extension: live in memory
        (big(300 * MiB), "intermediate/step1", "zarr"),  # >= large_bytes (256 MiB)
        (big(200 * MiB), "intermediate/step1", "memory"),  # fits 0.25 x 1 GiB free
        (arr(1000), "results/out.tif", "disk"),  # an explicit file format
        (arr(1000), "results/out.npy", "disk"),
        (arr(1000), "plate.zarr/A/1/A01_s1_w2_z003.tif", "zarr"),  # HCS name under a plate
        (arr(1000), "my_plate_1/A01_s1_w2.tif", "zarr"),
        (arr(1000), "misc/A01_s1_w2.tif", "disk"),  # HCS name but not under a plate
        (arr(1000), "results/volume.ome.zarr", "zarr"),
        (pd.DataFrame({"a": [1, 2]}), "tables/wells.csv", "disk"),
        ({"sigma": 2.0}, "config/params.json", "disk"),
        ("notes", "logs/run.txt", "disk"),
        ({"sigma": 2.0}, "state/params", "memory"),  # no file format asked for: kept live
        (object(), "state/thing.json", "memory"),  # JSON cannot hold it: kept live
        (lambda x: x, "state/fn", "memory"),
    ],
)
def test_rules(obj: object, path: str, expected: str) -> None:
    assert choose(obj, path) == expected


def test_free_memory_decides_between_memory_and_persistent() -> None:
    size = 10 * MiB
    assert choose(big(size), "x", free=4 * size) == "memory"  # exactly 0.25 of free: still memory
    assert choose(big(size), "x", free=4 * size - 1) == "zarr"
    assert choose(big(size), "x", free=4 * size - 1, backends=frozenset({"memory", "disk"})) == "disk"


def test_zarr_rules_fall_back_to_disk_without_zarr() -> None:
    no_zarr = frozenset({"memory", "disk"})
    assert choose(arr(1000), "plate.zarr/A/1/A01_s1_w1.tif", backends=no_zarr) == "disk"
    assert choose(big(300 * MiB), "x", backends=no_zarr) == "disk"


def test_policy_knobs() -> None:
    policy = AutoPolicy(large_bytes="1MiB", memory_fraction=0.5, memory_backend="overlay", plate_globs=("scan*",))
    assert policy.large_bytes == MiB
    assert choose(arr(1000), "x", policy=policy) == "overlay"
    assert choose(big(MiB), "x", policy=policy) == "zarr"
    assert choose(arr(1000), "scan_007/B02_s1_w1.tif", policy=policy) == "zarr"
    assert choose(arr(1000), "my_plate/B02_s1_w1.tif", policy=policy) == "disk"  # default glob replaced
    with pytest.raises(ValueError):
        AutoPolicy(memory_fraction=1.5)
    with pytest.raises(ValueError):
        AutoPolicy(large_bytes="lots")


def test_every_choice_has_a_reason() -> None:
    placement = choose_backend(big(300 * MiB), "x", available_memory=FREE)
    assert placement.backend == "zarr" and "large_bytes" in placement.reason


@pytest.mark.parametrize(
    "name, hcs", [("A01_s1_w2_z003.tif", True), ("P24_s12_w3.tif", True), ("AF48_s1_w1_t002.tif", True),
                  ("A01.tif", False), ("image_s1_w1.tif", False), ("A01_x1.tif", False), ("results.csv", False),
                  ("A00_s1_w1.tif", False)]
)
def test_hcs_filenames(name: str, hcs: bool) -> None:
    assert is_hcs_filename(f"some/dir/{name}") is hcs


def test_under_plate() -> None:
    assert under_plate("plate.zarr/A/1/x.tif") and under_plate("P.OME.ZARR/A01_s1_w1.tif")
    assert under_plate("runs/Plate_07/A01_s1_w1.tif")
    assert not under_plate("runs/plate.tif") and not under_plate("x.tif")


_paths = st.sampled_from(
    ["x", "a/b/c", "r/out.tif", "r/out.npy", "plate.zarr/A/1/A01_s1_w1.tif", "t/wells.csv", "c/p.json", "v.ome.zarr"]
)
_objs = st.one_of(
    st.integers(0, 2**31).map(big),
    st.just({"k": 1}),
    st.just("text"),
    st.just(pd.DataFrame({"a": [1]})),
)


@given(_objs, _paths, st.integers(0, 2**36), st.sampled_from([ALL, frozenset({"memory", "disk"})]))
def test_decisions_are_deterministic(obj: object, path: str, free: int, backends: frozenset[str]) -> None:
    first = choose_backend(obj, path, available_memory=free, backends=backends)
    again = choose_backend(obj, path, available_memory=free, backends=backends)
    assert first == again
    assert first.backend in backends | {"memory"}


# ---------------------------------------------------------------- FileManager
@pytest.fixture()
def fm(tmp_path: Path) -> FileManager:
    """memory, disk and (standing in for the zarr backend, which this test does not exercise) a second disk root."""
    reg = StorageRegistry(discover=False)
    reg.register_backend("memory", MemoryStorageBackend())
    reg.register_backend("disk", DiskStorageBackend(tmp_path / "disk", fsync=False))
    reg.register_backend("zarr", DiskStorageBackend(tmp_path / "zarr", fsync=False))
    return FileManager(reg, auto_policy=AutoPolicy(large_bytes="64KiB"))


def test_auto_save_records_and_load_finds(fm: FileManager) -> None:
    small, large = np.arange(10), np.arange(20_000, dtype=np.int64)  # 80 bytes, 160 KB
    fm.save(small, "work/step1", Backend.AUTO)
    fm.save(large, "work/step2", Backend.AUTO)
    fm.save(pd.DataFrame({"a": [1, 2]}), "tables/w.csv", "auto")
    assert (fm.where("work/step1"), fm.where("work/step2"), fm.where("tables/w.csv")) == ("memory", "zarr", "disk")
    assert fm.load("work/step1", Backend.AUTO) is small  # the memory backend keeps the live object
    assert np.array_equal(fm.load("work/step2", Backend.AUTO), large)
    assert fm.get_backend("zarr").is_file("work/step2") and not fm.get_backend("disk").exists("work/step2")
    assert fm.placement("work/step2").reason.startswith("160000 bytes")
    assert fm.exists("work/step2", Backend.AUTO) and not fm.exists("work/none", Backend.AUTO)
    assert fm.stat("work/step2", Backend.AUTO).is_file


def test_a_fresh_filemanager_finds_objects_without_a_record(fm: FileManager) -> None:
    fm.save(np.arange(20_000), "work/big", Backend.AUTO)
    other = FileManager(fm.registry)
    assert other.placement("work/big") is None
    assert other.where("work/big") == "zarr"
    assert np.array_equal(other.load("work/big", Backend.AUTO), np.arange(20_000))


def test_overwrite_moves_the_object_and_keeps_one_copy(fm: FileManager) -> None:
    fm.save(np.arange(10), "w/x", Backend.AUTO)
    assert fm.where("w/x") == "memory"
    with pytest.raises(FileExistsError) as info:
        fm.save(np.arange(20_000), "w/x", Backend.AUTO)  # would go to zarr; memory already holds it
    assert "memory" in str(info.value) and "overwrite=True" in str(info.value)
    assert fm.where("w/x") == "memory"
    fm.save(np.arange(20_000), "w/x", Backend.AUTO, overwrite=True)
    assert fm.where("w/x") == "zarr"
    assert not fm.get_backend("memory").exists("w/x")
    assert np.array_equal(fm.load("w/x", Backend.AUTO), np.arange(20_000))


def test_auto_same_backend_overwrite_rules(fm: FileManager) -> None:
    fm.save(np.arange(10), "w/x", Backend.AUTO)
    with pytest.raises(FileExistsError):
        fm.save(np.arange(11), "w/x", Backend.AUTO)
    fm.save(np.arange(11), "w/x", Backend.AUTO, overwrite=True)
    assert np.array_equal(fm.load("w/x", Backend.AUTO), np.arange(11))


def test_auto_delete_and_missing(fm: FileManager) -> None:
    fm.save(np.arange(20_000), "w/x", Backend.AUTO)
    fm.delete("w/x", Backend.AUTO)
    assert fm.where("w/x") is None and fm.placement("w/x") is None
    with pytest.raises(FileNotFoundError) as info:
        fm.load("w/x", Backend.AUTO)
    assert "w/x" in str(info.value) and "AUTO" in str(info.value)
    with pytest.raises(FileNotFoundError):
        fm.delete("w/x", Backend.AUTO)


def test_auto_without_zarr_uses_disk(tmp_path: Path) -> None:
    reg = StorageRegistry(discover=False)
    reg.register_backend("memory", MemoryStorageBackend())
    reg.register_backend("disk", DiskStorageBackend(tmp_path / "d", fsync=False))
    reg.register_backend("zarr", lambda: __import__("hcsvfs_no_such_module"))  # a zarr that fails to import
    fm = FileManager(reg, auto_policy=AutoPolicy(large_bytes="1KiB"))
    fm.save(np.arange(1000), "plate.zarr/A/1/A01_s1_w1", Backend.AUTO)
    assert fm.where("plate.zarr/A/1/A01_s1_w1") == "disk"


def test_auto_memory_choices_can_go_to_an_overlay(tmp_path: Path) -> None:
    reg = StorageRegistry(discover=False)
    reg.register_backend("disk", DiskStorageBackend(tmp_path / "d", fsync=False))
    overlay = MemoryOverlay(DiskStorageBackend(tmp_path / "spill", fsync=False), budget="1MiB", background=False)
    reg.register_backend("overlay", overlay)
    fm = FileManager(reg, auto_policy=AutoPolicy(memory_backend="overlay"))
    for i in range(8):  # 8 x 256 KiB through a 1 MiB overlay: some spill, AUTO still finds all
        fm.save(np.full(65_536, i, np.int32), f"w/{i}", Backend.AUTO)
    assert {fm.where(f"w/{i}") for i in range(8)} == {"overlay"}
    assert overlay.stats()["spill_count"] > 0
    assert all(np.array_equal(fm.load(f"w/{i}", Backend.AUTO), np.full(65_536, i, np.int32)) for i in range(8))
    overlay.close()


def test_auto_with_the_real_zarr_backend(tmp_path: Path) -> None:
    from hcsvfs.backends.zarr import ZarrStorageBackend

    reg = StorageRegistry(discover=False)
    reg.register_backend("memory", MemoryStorageBackend())
    reg.register_backend("disk", DiskStorageBackend(tmp_path / "d", fsync=False))
    reg.register_backend("zarr", ZarrStorageBackend(tmp_path / "z"))
    fm = FileManager(reg, auto_policy=AutoPolicy(large_bytes="64KiB"))
    image = np.arange(64 * 64, dtype=np.uint16).reshape(64, 64)
    fm.save(image, "plate.zarr/A01_s1_w1.tif", Backend.AUTO)
    fm.save(np.arange(20_000), "work/big", Backend.AUTO)
    fm.save(np.arange(10), "work/small", Backend.AUTO)
    assert [fm.where(p) for p in ("plate.zarr/A01_s1_w1.tif", "work/big", "work/small")] == ["zarr", "zarr", "memory"]
    fresh = FileManager(reg)  # no records: found by searching
    assert np.array_equal(np.asarray(fresh.load("plate.zarr/A01_s1_w1.tif", Backend.AUTO)), image)
    assert np.array_equal(np.asarray(fresh.load("work/big", Backend.AUTO)), np.arange(20_000))
