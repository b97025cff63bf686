"""The original system's calls, as its users write them: a dict of backends, their own enums, list_image_files,
find_file_recursive, ensure_directory's return value, shared_dict, and ZarrConfig's old field names."""

from __future__ import annotations

import enum
import multiprocessing as mp
import warnings
from pathlib import Path

import numpy as np
import pytest

from hcsvfs import Backend, FileManager, ZarrConfig
from hcsvfs.backends import DiskStorageBackend, MemoryStorageBackend
from hcsvfs.backends.zarr import ZarrStorageBackend
from hcsvfs.errors import StorageResolutionError
from hcsvfs.registry import StorageRegistry, canonical_name


class TheirBackend(enum.Enum):
    """A caller's own enum, as the original's code passes (not hcsvfs.Backend)."""

    MEMORY = "memory"
    DISK = "disk"
    ZARR = "zarr"


class ZarrCompressor(enum.Enum):
    BLOSC = "blosc"
    ZLIB = "zlib"


class ZarrChunkStrategy(enum.Enum):
    WELL = "well"
    FILE = "file"


def test_the_first_example_a_plain_dict_of_backend_instances(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    fm = FileManager({Backend.MEMORY: MemoryStorageBackend(), Backend.DISK: DiskStorageBackend(),
                      Backend.ZARR: ZarrStorageBackend()})
    data = np.arange(12, dtype=np.uint16).reshape(3, 4)
    fm.save(data, "intermediate/step1_output", Backend.MEMORY)
    fm.save(data, "results/final_output.tif", Backend.DISK)
    fm.save(data, "results/large_dataset", Backend.ZARR)
    assert fm.load("intermediate/step1_output", Backend.MEMORY) is data
    assert np.array_equal(fm.load("results/final_output.tif", Backend.DISK), data)
    assert np.array_equal(fm.load("results/large_dataset", Backend.ZARR, materialize=True), data)
    assert fm.registry.names() == ["disk", "memory", "zarr"]


def test_a_dict_of_classes_and_another_enum_name_the_same_backends(tmp_path: Path) -> None:
    fm = FileManager({TheirBackend.MEMORY: MemoryStorageBackend, "Disk": lambda: DiskStorageBackend(tmp_path)})
    fm.save(np.ones(3), "x.npy", TheirBackend.DISK)
    assert (tmp_path / "x.npy").is_file()
    fm.save("note", "n.txt", TheirBackend.MEMORY)
    assert fm.load("n.txt", "memory") == "note" and fm.get_backend(TheirBackend.MEMORY) is fm.get_backend(Backend.MEMORY)
    with pytest.raises(StorageResolutionError, match=r"no backend named 'zarr' .*known: disk, memory"):
        fm.load("x", TheirBackend.ZARR)


def test_bad_mappings_and_enums_say_what_is_wrong() -> None:
    with pytest.raises(TypeError, match="StorageBackend instance, class or factory, not int"):
        FileManager({Backend.DISK: 3})  # type: ignore[dict-item]
    with pytest.raises(TypeError, match="mapping of backend name to backend"):
        StorageRegistry.from_mapping([("disk", DiskStorageBackend)])  # type: ignore[arg-type]

    class Numbered(enum.Enum):
        ONE = 1

    with pytest.raises(StorageResolutionError, match="Enum member whose value is one"):
        canonical_name(Numbered.ONE)
    assert canonical_name(TheirBackend.ZARR) == "zarr"


def test_list_image_files_in_natural_order_without_os_junk(tmp_path: Path) -> None:
    fm = FileManager({Backend.DISK: DiskStorageBackend(tmp_path)})
    for name in ["A01_s10_w1.tif", "A01_s2_w1.tif", "A01_s1_w1.TIF", "notes.txt", "sub/A02_s1_w1.png"]:
        fm.save(np.zeros((2, 2), np.uint8) if not name.endswith(".txt") else "x", name, Backend.DISK)
    (tmp_path / "._A01_s1_w1.tif").write_bytes(b"\x00\x05\x16\x07")
    assert fm.list_image_files(".", Backend.DISK) == ["A01_s1_w1.TIF", "A01_s2_w1.tif", "A01_s10_w1.tif"]
    assert fm.list_image_files(".", Backend.DISK, recursive=True)[-1] == "sub/A02_s1_w1.png"
    assert fm.list_image_files(".", Backend.DISK, extensions={".png"}, recursive=True) == ["sub/A02_s1_w1.png"]
    assert fm.find_file_recursive(".", "A02_s1_w1.png", Backend.DISK) == "sub/A02_s1_w1.png"
    assert fm.find_file_recursive(".", "missing.tif", Backend.DISK) is None


def test_ensure_directory_returns_the_path() -> None:
    fm = FileManager()
    assert fm.ensure_directory("a//b/./c", Backend.MEMORY) == "a/b/c"
    assert fm.is_dir("a/b/c", Backend.MEMORY)


def _child_saves(shared: dict) -> None:
    backend = MemoryStorageBackend(shared_dict=shared)
    backend.ensure_directory("w")
    backend.save(np.arange(3), "w/from_child.npy")


def test_shared_dict_is_seen_by_another_process() -> None:
    with mp.get_context("spawn").Manager() as manager:
        shared = manager.dict()
        child = mp.get_context("spawn").Process(target=_child_saves, args=(shared,))
        child.start()
        child.join(60)
        assert child.exitcode == 0
        backend = MemoryStorageBackend(shared_dict=shared)
        assert backend.list_files("w") == ["w/from_child.npy"]
        assert np.array_equal(backend.load("w/from_child.npy"), np.arange(3))
    with pytest.raises(ValueError, match="not both"):
        MemoryStorageBackend({}, shared_dict={})


def test_zarr_config_takes_the_original_names_with_a_warning_naming_the_new_field(tmp_path: Path) -> None:
    with pytest.warns(DeprecationWarning) as caught:
        config = ZarrConfig(compressor=ZarrCompressor.ZLIB, compression_level=3, chunk_strategy=ZarrChunkStrategy.WELL)
    assert (config.compression, config.compression_level, config.chunks) == ("gzip", 3, None)
    messages = [str(w.message) for w in caught]
    assert any("compression='gzip'" in m for m in messages) and any("chunks=None" in m for m in messages)
    with pytest.warns(DeprecationWarning, match="chunks='plane'"):
        assert ZarrConfig(chunk_strategy="FILE").chunks == "plane"
    with pytest.warns(DeprecationWarning, match="compression='lz4'"):
        assert ZarrConfig(compressor=ZarrCompressor.BLOSC).compression == "lz4"
    with pytest.warns(DeprecationWarning, match="compression='gzip'"):
        assert ZarrConfig(compression="zlib").compression == "gzip"
    backend = ZarrStorageBackend(tmp_path, config=config)
    data = np.arange(24, dtype=np.uint16).reshape(2, 3, 4)
    backend.save(data, "img")
    assert np.array_equal(backend.load("img", materialize=True), data)
    assert "gzip" in backend.stat("img").extra["codec"]


def test_zarr_config_refuses_old_and_new_names_together_and_unknown_values() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        with pytest.raises(ValueError, match="compression= or the deprecated compressor="):
            ZarrConfig(compression="zstd", compressor="zlib")
        with pytest.raises(ValueError, match="chunks= or the deprecated chunk_strategy="):
            ZarrConfig(chunks=None, chunk_strategy="well")
        with pytest.raises(ValueError, match="unknown compressor 'brotli'"):
            ZarrConfig(compressor="brotli")
        with pytest.raises(ValueError, match="unknown chunk_strategy"):
            ZarrConfig(chunk_strategy="tile")


def _worker_reads(fm: FileManager) -> dict:
    """In a spawned process: what the unpickled FileManager sees, and a file it writes back."""
    seen = {
        "disk": fm.load("d/x.npy", "disk").tolist(),
        "zarr": fm.load("img", "zarr", materialize=True).tolist(),
        "shared": fm.load("s.npy", "shared_memory").tolist(),
        "overlay_materialized": fm.load("kept.npy", "overlay").tolist(),
        "overlay_memory_only": fm.exists("fleeting.npy", "overlay"),
        "memory": fm.list_files(".", "memory"),
    }
    fm.save(np.full(2, 7), "d/from_worker.npy", "disk")
    return seen


def test_a_filemanager_pickles_to_a_spawned_worker(tmp_path: Path) -> None:
    from hcsvfs.backends.shared_memory import SharedMemoryStorageBackend
    from hcsvfs.tiering import MemoryOverlay

    shared = SharedMemoryStorageBackend()
    overlay = MemoryOverlay(DiskStorageBackend(tmp_path / "spill", fsync=False), budget="8MiB")
    fm = FileManager({
        "disk": DiskStorageBackend(tmp_path / "disk"),
        "zarr": ZarrStorageBackend(tmp_path / "zarr", config=ZarrConfig(compression="zstd")),
        "memory": MemoryStorageBackend(),
        "shared_memory": shared,
        "overlay": overlay,
    }, metrics=True)
    try:
        fm.save(np.arange(3), "d/x.npy", "disk")
        fm.save(np.arange(6, dtype=np.uint16).reshape(2, 3), "img", "zarr")
        fm.save(np.arange(4), "s.npy", "shared_memory")
        fm.save(np.arange(5), "kept.npy", "overlay")
        overlay.materialize("kept.npy")
        fm.save(np.arange(2), "fleeting.npy", "overlay")
        fm.save("only here", "note.txt", "memory")
        with mp.get_context("spawn").Pool(1) as pool:
            seen = pool.apply(_worker_reads, (fm,))
        assert seen == {
            "disk": [0, 1, 2], "zarr": [[0, 1, 2], [3, 4, 5]], "shared": [0, 1, 2, 3],
            "overlay_materialized": [0, 1, 2, 3, 4], "overlay_memory_only": False, "memory": [],
        }
        assert fm.load("d/from_worker.npy", "disk").tolist() == [7, 7]
        assert fm.get_backend("zarr").config.compression == "zstd"
    finally:
        fm.close()
    import pickle

    with pytest.raises(TypeError, match="backend 'disk' was registered with a factory that cannot be pickled"):
        pickle.dumps(FileManager({"disk": lambda: DiskStorageBackend(tmp_path)}))


def test_results_saved_through_zarr_are_files_beside_the_plate(tmp_path: Path) -> None:
    import json as _json

    import pandas as pd
    import zarr as _zarr

    from hcsvfs.errors import InvalidPathError, UnsupportedTypeError

    fm = FileManager({Backend.ZARR: ZarrStorageBackend(tmp_path), Backend.DISK: DiskStorageBackend(tmp_path)})
    plane = np.arange(20, dtype=np.uint16).reshape(4, 5)
    fm.save(plane, "out/plate.zarr/A01_s1_w1.tif", Backend.ZARR)
    table = pd.DataFrame({"well": ["A01"], "cells": [12]})
    fm.save(table.to_csv(index=False), "out/plate.zarr/measurements.csv", Backend.ZARR)
    fm.save({"cells": 12}, "out/summary.json", Backend.ZARR)
    fm.save("run 1\n", "out/notes.txt", Backend.ZARR)
    roi = b"PK\x05\x06" + bytes(18)  # an (empty) ImageJ ROI set
    fm.save(roi, "out/plate.zarr/A01.roi.zip", Backend.ZARR)
    # plain files on disk, where the original system puts them, read by the disk backend too
    assert _json.loads((tmp_path / "out" / "summary.json").read_text()) == {"cells": 12}
    assert fm.load("out/plate.zarr/measurements.csv", Backend.DISK).equals(table)
    assert fm.load("out/plate.zarr/measurements.csv", Backend.ZARR).equals(table)
    assert fm.load("out/plate.zarr/A01.roi.zip", Backend.ZARR) == roi
    assert fm.list_dir("out/plate.zarr", Backend.ZARR) == ["A01.roi.zip", "A01_s1_w1.tif", "measurements.csv"]
    assert fm.list_files("out", Backend.ZARR, recursive=True) == [
        "out/notes.txt", "out/plate.zarr/A01.roi.zip", "out/plate.zarr/A01_s1_w1.tif",
        "out/plate.zarr/measurements.csv", "out/summary.json",
    ]
    zb = fm.get_backend(Backend.ZARR)
    assert zb.node_type("out/summary.json") == "file" and fm.stat("out/summary.json", Backend.ZARR).size > 0
    assert zb.validate("out/plate.zarr")  # the plate is still valid NGFF with files beside its wells
    with pytest.raises(FileExistsError):
        fm.save({"cells": 1}, "out/summary.json", Backend.ZARR)
    fm.move("out/notes.txt", "out/notes_old.txt", Backend.ZARR)
    assert (tmp_path / "out" / "notes_old.txt").read_text() == "run 1\n"
    with pytest.raises(InvalidPathError, match="do not turn into each other"):
        fm.move("out/summary.json", "out/summary", Backend.ZARR)
    fm.delete("out/plate.zarr/measurements.csv", Backend.ZARR)
    assert not (tmp_path / "out" / "plate.zarr" / "measurements.csv").exists()
    with pytest.raises(InvalidPathError, match="zarr.json is the store's own metadata"):
        fm.save(plane, "out/zarr.json", Backend.ZARR, overwrite=True)
    in_memory = ZarrStorageBackend(store=_zarr.storage.MemoryStore())
    with pytest.raises(UnsupportedTypeError, match="in-memory store; save it on the memory or disk backend"):
        in_memory.save("x", "notes.txt")


def test_the_migrated_script_in_the_docs_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import re
    import subprocess
    import sys

    doc = (Path(__file__).resolve().parents[1] / "docs" / "migrating.md").read_text()
    section = doc.split("## A migrated script", 1)[1]
    script = re.search(r"```python\n(.*?)```", section, re.S)
    assert script is not None
    (tmp_path / "script.py").write_text(script.group(1))
    result = subprocess.run([sys.executable, "script.py"], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "migrated script ran: ['final_output.tif', 'plate.zarr']" in result.stdout


def test_the_same_logical_paths_on_memory_disk_and_zarr_side_by_side(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The original's location transparency: one working directory, one logical path, three backends."""
    monkeypatch.chdir(tmp_path)
    fm = FileManager({Backend.MEMORY: MemoryStorageBackend(), Backend.DISK: DiskStorageBackend(),
                      Backend.ZARR: ZarrStorageBackend()})
    data = {b: np.full((4, 5), i, np.uint16) for i, b in enumerate((Backend.MEMORY, Backend.DISK, Backend.ZARR))}
    for b, arr in data.items():
        fm.save(arr, "processed/image.tif", b)
    for b, arr in data.items():
        assert np.array_equal(np.asarray(fm.load("processed/image.tif", b)), arr)
        assert fm.list_files("processed", b) == ["processed/image.tif"]
        assert fm.is_dir("processed", b) and fm.is_file("processed/image.tif", b)
    assert fm.list_dir(".", Backend.ZARR) == fm.list_dir(".", Backend.MEMORY) == ["processed"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["processed", "processed.zarr"]
    assert [p.name for p in (tmp_path / "processed").iterdir()] == ["image.tif"]  # disk's, untouched by zarr
    # deleting zarr's folder leaves disk's
    fm.delete_all("processed", Backend.ZARR)
    assert not (tmp_path / "processed.zarr").exists() and fm.list_files("processed", Backend.ZARR) == []
    # (the shared folder itself stays, holding disk's file: the working directory's folders are zarr's too)
    assert np.array_equal(fm.load("processed/image.tif", Backend.DISK), data[Backend.DISK])


def test_hcs_named_planes_in_any_folder_form_a_plate(tmp_path: Path) -> None:
    fm = FileManager({Backend.ZARR: ZarrStorageBackend(tmp_path)})
    planes = {f"run1/plate/{w}_s{s}_w1.tif": np.full((4, 4), i, np.uint16)
              for i, (w, s) in enumerate([("A01", 1), ("A01", 2), ("B02", 1)])}
    fm.save_batch(list(planes.values()), list(planes), Backend.ZARR)
    fm.save(np.zeros((4, 4), np.uint16), "run1/plate/B02_s2_w1.tif", Backend.ZARR)
    zb = fm.get_backend(Backend.ZARR)
    assert zb.node_type("run1/plate") == "plate" and fm.list_dir("run1", Backend.ZARR) == ["plate"]
    assert sorted(zb.open_plate("run1/plate").wells) == ["A01", "B02"]
    assert zb.validate("run1/plate")
    assert (tmp_path / "run1" / "plate.zarr" / "A" / "1").is_dir()
    for name, arr in planes.items():
        assert np.array_equal(fm.load(name, Backend.ZARR, materialize=True), arr)
    # a subfolder beside the plate's planes, and a move of the whole folder
    fm.save(np.ones((3, 3), np.uint16), "run1/plate/qc/mask", Backend.ZARR)
    assert fm.list_dir("run1/plate", Backend.ZARR)[-1] == "qc"
    fm.move("run1", "archive/run1", Backend.ZARR)
    assert zb.node_type("archive/run1/plate") == "plate" and not fm.exists("run1", Backend.ZARR)
    assert fm.list_files("archive", Backend.ZARR, recursive=True)[-1] == "archive/run1/plate/qc/mask"


def test_another_backends_file_at_the_root_is_named_not_blamed_on_a_writer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    fm = FileManager()
    fm.save(np.zeros((2, 2), np.uint8), "image.tif", Backend.DISK)
    with pytest.raises(FileExistsError) as info:
        fm.save(np.zeros((2, 2), np.uint8), "image.tif", Backend.ZARR)
    assert "not a zarr image (another backend's" in str(info.value) and "another writer" not in str(info.value)


def test_images_an_older_hcsvfs_wrote_where_their_name_is_still_load(tmp_path: Path) -> None:
    """Before folder stores, a.img lived at a/img (a zarr group in plain folder a): found, listed, loaded."""
    from hcsvfs.backends.zarr.image import write_image

    zb = ZarrStorageBackend(tmp_path)
    zb.locator.write_meta(zb.locator.key("a"), {"zarr_format": 3, "node_type": "group", "attributes": {}})
    old = np.arange(12, dtype=np.uint16).reshape(3, 4)
    write_image(zb.locator, "a/img", old, zb.config, "yx")
    zb.save(np.ones((2, 2), np.uint16), "a/new")
    assert zb.list_dir("a") == ["img", "new"] and zb.is_file("a/img")
    assert np.array_equal(zb.load("a/img", materialize=True), old)
    zb.delete("a/img")
    assert zb.list_dir("a") == ["new"]
