"""FileManager: routing by enum or name, parent creation, batches, transfers, errors and the observer hook."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from hcsvfs import Backend, DiskStorageBackend, FileManager, MemoryStorageBackend, StorageRegistry
from hcsvfs.errors import InvalidPathError, StorageResolutionError, UnsupportedTypeError

IMG = np.arange(48, dtype=np.uint16).reshape(6, 8)


@pytest.fixture
def fm(tmp_path: Path) -> FileManager:
    reg = StorageRegistry(discover=False)
    reg.register_backend(Backend.MEMORY, MemoryStorageBackend())
    reg.register_backend(Backend.DISK, DiskStorageBackend(tmp_path / "disk"))
    return FileManager(reg)


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str, int, type | None]] = []

    def record(self, backend: str, operation: str, seconds: float, nbytes: int, error: BaseException | None) -> None:
        assert seconds >= 0
        self.calls.append((backend, operation, nbytes, type(error) if error else None))


def test_a_bare_filemanager_gets_a_private_registry() -> None:
    a, b = FileManager(), FileManager()
    assert a.registry is not b.registry
    a.save(1, "x", Backend.MEMORY)
    assert not b.exists("x", "memory")
    assert {"memory", "disk", "zarr"} <= set(a.registry.names())


@pytest.mark.parametrize("backend", [Backend.MEMORY, "memory", Backend.DISK, "DISK"])
def test_save_creates_missing_parents(fm: FileManager, backend: str) -> None:
    fm.save(IMG, "plate/A01/s1/img.tif", backend)
    assert fm.is_dir("plate/A01/s1", backend) and fm.is_file("plate/A01/s1/img.tif", backend)
    assert np.array_equal(fm.load("plate/A01/s1/img.tif", backend), IMG)
    assert fm.list_files("plate", backend, extensions="tif", recursive=True) == ["plate/A01/s1/img.tif"]
    assert fm.list_dir("plate/A01", backend) == ["s1"]
    with pytest.raises(FileExistsError):
        fm.save(IMG, "plate/A01/s1/img.tif", backend)
    fm.save(IMG * 2, "plate/A01/s1/img.tif", backend, overwrite=True)
    assert np.array_equal(fm.load("plate/A01/s1/img.tif", backend), IMG * 2)


@pytest.mark.parametrize("backend", ["memory", "disk"])
def test_parent_creation_can_be_turned_off(tmp_path: Path, backend: str) -> None:
    reg = StorageRegistry(discover=False)
    reg.register_backend("memory", MemoryStorageBackend())
    reg.register_backend("disk", DiskStorageBackend(tmp_path))
    strict = FileManager(reg, create_parents=False)
    with pytest.raises(FileNotFoundError):
        strict.save(IMG, "a/b.npy", backend)
    assert not strict.exists("a", backend)
    strict.save(IMG, "a/b.npy", backend, create_parents=True)  # per call wins over the default
    assert strict.is_file("a/b.npy", backend)


def test_unknown_backend_and_unsupported_type(fm: FileManager) -> None:
    with pytest.raises(StorageResolutionError, match="disk, memory"):
        fm.save(IMG, "x.npy", "s3")
    with pytest.raises(StorageResolutionError):
        fm.load("x.npy", 42)  # type: ignore[arg-type]
    with pytest.raises(UnsupportedTypeError, match="builtins.set"):
        fm.save({1, 2}, "x.json", Backend.DISK)
    with pytest.raises(InvalidPathError):
        fm.save(IMG, "../escape.npy", Backend.DISK)
    assert fm.list_files(".", Backend.DISK, recursive=True) == []


@pytest.mark.parametrize("backend", ["memory", "disk"])
def test_batches(fm: FileManager, backend: str) -> None:
    frames = [IMG + i for i in range(5)]
    paths = [f"w/A0{i}/f.npy" for i in range(5)]
    fm.save_batch(frames, paths, backend)
    got = fm.load_batch(paths, backend)
    assert all(np.array_equal(g, f) for g, f in zip(got, frames))
    with pytest.raises(FileExistsError):
        fm.save_batch([IMG, IMG], ["w/new.npy", paths[0]], backend)
    assert not fm.exists("w/new.npy", backend)  # checked up front: nothing written
    fm.save_batch([IMG, IMG], ["w/new.npy", paths[0]], backend, overwrite=True)
    assert fm.exists("w/new.npy", backend)


@pytest.mark.parametrize("backend", ["memory", "disk"])
def test_move_copy_delete(fm: FileManager, backend: str) -> None:
    fm.save(IMG, "a/x.npy", backend)
    fm.copy("a/x.npy", "b/c/x.npy", backend)  # destination parents are created
    fm.move("a", "moved/a", backend)
    assert fm.list_files(".", backend, recursive=True) == ["b/c/x.npy", "moved/a/x.npy"]
    fm.delete("moved/a/x.npy", backend)
    fm.delete("moved/a", backend)
    fm.delete_all("b", backend)
    assert fm.list_dir(".", backend) == ["moved"]
    fm.ensure_directory("e/f", backend)
    assert fm.stat("e/f", backend).is_dir


def test_transfer_copies_trees_between_backends(fm: FileManager) -> None:
    for i in range(3):
        fm.save(IMG + i, f"run/A0{i}/img", Backend.MEMORY)
    seen: list[str] = []
    written = fm.transfer("run", Backend.MEMORY, "archive/run", Backend.DISK, progress=seen.append)
    assert written == seen == [f"archive/run/A0{i}/img" for i in range(3)]
    for i in range(3):
        assert np.array_equal(fm.load(f"archive/run/A0{i}/img", Backend.DISK), IMG + i)
    fm.transfer("archive/run/A00/img", "disk", "back", "memory")
    assert np.array_equal(fm.load("back", "memory"), IMG)
    with pytest.raises(FileExistsError):
        fm.transfer("run", Backend.MEMORY, "archive/run", Backend.DISK)
    fm.transfer("run", Backend.MEMORY, "archive/run", Backend.DISK, overwrite=True)


def test_observer_sees_every_operation_with_bytes_and_errors(fm: FileManager) -> None:
    rec = Recorder()
    fm.observer = rec
    fm.save(IMG, "x.npy", Backend.DISK)
    fm.load("x.npy", "DISK")  # counted under one canonical name however the backend is spelled
    fm.save_batch([IMG, IMG], ["m1", "m2"], "memory")
    fm.load_batch(["m1", "m2"], " Memory ")
    fm.exists("x.npy", "disk")
    with pytest.raises(FileNotFoundError):
        fm.load("nope.npy", "disk")
    assert rec.calls[:5] == [
        ("disk", "save", IMG.nbytes, None),
        ("disk", "load", IMG.nbytes, None),
        ("memory", "save_batch", 2 * IMG.nbytes, None),
        ("memory", "load_batch", 2 * IMG.nbytes, None),
        ("disk", "exists", 0, None),
    ]
    backend, operation, counted, error = rec.calls[5]
    assert (backend, operation, counted) == ("disk", "load", 0) and error is not None
    assert issubclass(error, FileNotFoundError) and len(rec.calls) == 6
