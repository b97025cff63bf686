"""Resource exhaustion: a full disk gives a clear error, keeps the old version and leaves no temp files.

A full disk is simulated per process with RLIMIT_FSIZE (the largest file a
process may write), in a forked child that ignores SIGXFSZ so the limit
surfaces as EFBIG from write(), as ENOSPC would on a really full volume.
"""

from __future__ import annotations

import resource
import signal
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from hcsvfs import FileManager
from hcsvfs.backends import DiskStorageBackend, MemoryStorageBackend
from hcsvfs.errors import StorageError, StorageFullError
from hcsvfs.registry import StorageRegistry
from reliability_helpers import payload, run_in_child, temp_files, version_of

LIMIT = 64 * 1024  # bytes: room for the small "old" objects, not for the big new ones
BIG = np.ones((256, 256), dtype=np.uint16)  # 128 KiB


def _limit_file_size() -> None:
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (LIMIT, LIMIT))


def _full(work: Any) -> StorageFullError:
    with pytest.raises(StorageFullError) as info:
        run_in_child(work, setup=_limit_file_size)
    return info.value


@pytest.mark.parametrize("name", ["x.npy", "x.tif", "x.ome.tif", "x.bin"])
def test_full_disk_on_overwrite_keeps_the_old_version(tmp_path: Path, name: str) -> None:
    disk = DiskStorageBackend(tmp_path / "root")
    disk.ensure_directory("d")
    old = payload(7) if name != "x.bin" else b"old"
    disk.save(old, f"d/{name}")
    new: Any = BIG if name != "x.bin" else BIG.tobytes()
    err = _full(lambda: disk.save(new, f"d/{name}", overwrite=True))
    assert isinstance(err, OSError) and isinstance(err, StorageError)
    assert f"d/{name}" in str(err) and "intact" in str(err)
    got = disk.load(f"d/{name}")
    assert got == b"old" if name == "x.bin" else version_of(got) == 7
    assert temp_files(disk.root) == []
    assert disk.list_dir("d") == [name]


def test_full_disk_on_new_file_leaves_nothing(tmp_path: Path) -> None:
    disk = DiskStorageBackend(tmp_path / "root")
    err = _full(lambda: disk.save(BIG, "new.npy"))
    assert "new.npy" in str(err) and err.path == "new.npy"
    assert not disk.exists("new.npy")
    assert temp_files(disk.root) == []


def test_full_disk_through_filemanager_save_batch_and_copy(tmp_path: Path) -> None:
    disk = DiskStorageBackend(tmp_path / "root")
    reg = StorageRegistry(discover=False)
    reg.register_backend("disk", disk)
    fm = FileManager(reg)
    fm.save(payload(1), "plate/A01/small.npy", "disk")
    # The batch's first object fits; the second does not: the first stays whole, the second is absent.
    _full(lambda: fm.save_batch([payload(2), BIG], ["plate/A02/a.npy", "plate/A02/b.npy"], "disk"))
    assert version_of(disk.load("plate/A02/a.npy")) == 2
    assert not disk.exists("plate/A02/b.npy")
    disk.save(BIG, "plate/big.npy")  # written by the parent, which has no limit
    _full(lambda: fm.copy("plate/big.npy", "plate/A01/copy.npy", "disk"))
    assert not disk.exists("plate/A01/copy.npy")
    assert temp_files(disk.root) == []
    # Once space is back, the same calls succeed.
    fm.save_batch([payload(2), BIG], ["plate/A02/a.npy", "plate/A02/b.npy"], "disk", overwrite=True)
    fm.copy("plate/big.npy", "plate/A01/copy.npy", "disk")
    assert np.array_equal(disk.load("plate/A01/copy.npy"), BIG)


def test_storage_full_error_survives_pickling_across_processes(tmp_path: Path) -> None:
    """The error reaches a parent process (pool, Dask) with its type, path and message."""
    disk = DiskStorageBackend(tmp_path / "root")
    err = _full(lambda: disk.save(BIG, "p.npy"))
    assert type(err) is StorageFullError and err.path == "p.npy" and err.errno is not None


# ---------------------------------------------------------------- memory overlay under pressure
def _vm_size() -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmSize in /proc/self/status")


def test_overlay_pause_threshold_prevents_out_of_memory(tmp_path: Path) -> None:
    """320 MiB through a 32 MiB overlay in a process that may grow by only 160 MiB: no MemoryError, nothing lost."""
    from hcsvfs.tiering import MemoryOverlay

    # 320 MiB of saves against 160 MiB of headroom: far more than any free heap the forked child inherits.
    headroom, count, size = 160 * 2**20, 80, 4 * 2**20

    def limit_memory() -> None:
        cap = _vm_size() + headroom
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))

    def work() -> dict[str, Any]:
        with MemoryOverlay(DiskStorageBackend(tmp_path / "spill", fsync=False), budget=32 * 2**20, pause_timeout=60) as ov:
            for k in range(count):
                ov.save(np.full(size // 8, k, dtype=np.float64), f"e{k}.npy")
            for k in range(count):  # every entry is whole, wherever it lives now
                got = ov.load(f"e{k}.npy")
                assert got.shape == (size // 8,) and got[0] == k and got[-1] == k
            return ov.stats()

    stats = run_in_child(work, timeout_s=120, setup=limit_memory)
    assert stats["spilled_entries"] > 0 and stats["memory_bytes"] <= stats["limit_bytes"]

    def control() -> None:  # the same workload without the overlay really does exhaust the limit
        mem = MemoryStorageBackend()
        for k in range(count):
            mem.save(np.full(size // 8, k, dtype=np.float64), f"e{k}.npy")

    with pytest.raises(MemoryError):
        run_in_child(control, setup=limit_memory)


def test_full_disk_during_spill_keeps_entries_in_memory(tmp_path: Path) -> None:
    """When spilling fails for lack of space, entries stay in memory and saves fail loud once memory is full."""
    from hcsvfs.tiering import MemoryOverlay

    def work() -> dict[str, Any]:
        ov = MemoryOverlay(DiskStorageBackend(tmp_path / "spill"), budget=64 * 1024, pause_timeout=0.5)
        saved, error = [], None
        try:
            for k in range(100):
                ov.save(np.full((64, 64), k, dtype=np.uint16), f"e{k}.npy")  # 8 KiB each, LIMIT is 64 KiB
                saved.append(k)
        except StorageError as exc:
            error = exc
        for k in saved:  # nothing that was accepted is lost
            assert version_of(ov.load(f"e{k}.npy")) == k
        out = {"saved": saved, "error": error, "stats": ov.stats()}
        ov.close()
        return out

    def tiny_files() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (1024, 1024))  # every spill write fails

    out = run_in_child(work, setup=tiny_files)
    assert 0 < len(out["saved"]) < 100
    assert isinstance(out["error"], MemoryError) and isinstance(out["error"], StorageError), repr(out["error"])
    assert f"e{len(out['saved'])}.npy" in str(out["error"])
    assert out["stats"]["last_spill_error"]  # the failing spill is reported, not swallowed
    assert temp_files(tmp_path / "spill") == []
