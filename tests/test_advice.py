"""Tuning advice: each rule fires on a scripted metrics state that shows the problem, and only then."""

from __future__ import annotations

import numpy as np

from hcsvfs import FileManager
from hcsvfs.metrics import Metrics
from hcsvfs.metrics.advice import Thresholds, advise


def rules(m: Metrics) -> dict[str, dict]:
    return {a.rule: a.evidence for a in advise(m.snapshot())}


def test_quiet_run_gives_no_advice() -> None:
    m = Metrics()
    for _ in range(500):
        m.record("disk", "save", 0.01, 8 * 1024 * 1024, None)
        m.record("memory", "load", 1e-6, 1000, None)
    assert advise(m.snapshot()) == []


def test_many_small_disk_files() -> None:
    m = Metrics()
    for i in range(300):
        m.record("disk", "save", 0.002, 4096 if i % 3 else 16 * 1024 * 1024, None)  # 200 of 300 are 4 KiB
    ev = rules(m)["many-small-disk-files"]
    assert ev["disk_saves"] == 300 and ev["small_saves"] == 200
    few = Metrics()
    for _ in range(50):  # too few saves to matter
        few.record("disk", "save", 0.002, 4096, None)
    assert "many-small-disk-files" not in rules(few)


def test_many_small_disk_files_through_filemanager(tmp_path) -> None:
    from hcsvfs import DiskStorageBackend, StorageRegistry

    reg = StorageRegistry(discover=False)
    reg.register_backend("disk", DiskStorageBackend(tmp_path))
    fm = FileManager(reg, metrics=True)
    for i in range(30):
        fm.save(np.zeros((8, 8), np.uint8), f"tiles/{i}.npy", "disk")
    hints = advise(fm.metrics.snapshot(), Thresholds(small_file_min_saves=20))
    assert [h.rule for h in hints] == ["many-small-disk-files"]
    assert hints[0].evidence["small_saves"] == 30


def test_read_amplification_from_single_chunk_arrays() -> None:
    m = Metrics()
    plane, array = 2 * 1024 * 1024, 64 * 2 * 1024 * 1024
    for _ in range(25):  # each plane read decodes the whole single-chunk array
        m.record_event("zarr", "bytes_requested", nbytes=plane)
        m.record_event("zarr", "chunk_bytes_decoded", nbytes=array)
    ev = rules(m)["read-amplification"]
    assert ev["reads"] == 25 and ev["bytes_decoded"] == 25 * array
    fine = Metrics()
    for _ in range(25):  # per-plane chunks: decode what is asked
        fine.record_event("zarr", "bytes_requested", nbytes=plane)
        fine.record_event("zarr", "chunk_bytes_decoded", nbytes=plane)
    assert "read-amplification" not in rules(fine)


def overlay_stats(restores: int, hits: int, misses: int) -> dict:
    """The shape of MemoryOverlay.stats() (tiering/stats.py counters plus tier sizes)."""
    return {"limit_bytes": 10**8, "spill_count": 40, "spill_bytes_total": 10**9, "restore_count": restores,
            "hits": hits, "misses": misses, "pauses": 0, "last_spill_error": None, "spill_mb_per_s": None}


def test_frequent_spills() -> None:
    m = Metrics()
    m.add_source("overlay", lambda: overlay_stats(restores=30, hits=70, misses=30))
    ev = rules(m)["frequent-spills"]
    assert ev == {"backend": "overlay", "spill_count": 40, "restore_count": 30, "hits": 70, "misses": 30,
                  "spill_bytes_total": 10**9, "limit_bytes": 10**8, "pauses": 0}
    calm = Metrics()
    calm.add_source("overlay", lambda: overlay_stats(restores=5, hits=95, misses=5))
    assert "frequent-spills" not in rules(calm)
    few = Metrics()
    few.add_source("overlay", lambda: overlay_stats(restores=3, hits=1, misses=3))
    assert "frequent-spills" not in rules(few)  # too few restores to call it a pattern


def test_frequent_spills_from_a_real_overlay(tmp_path) -> None:
    from hcsvfs import DiskStorageBackend, StorageRegistry
    from hcsvfs.tiering import MemoryOverlay

    overlay = MemoryOverlay(DiskStorageBackend(tmp_path), budget=1024 * 1024, background=False)  # spills synchronously
    reg = StorageRegistry(discover=False)
    reg.register_backend("overlay", overlay)
    fm = FileManager(reg, metrics=True)
    block = np.ones(256 * 1024, np.uint8)  # 256 KiB each, budget 1 MiB: cycling 16 of them thrashes
    for i in range(16):
        fm.save(block * i, f"w/{i}", "overlay")
    for _ in range(3):
        for i in range(16):
            fm.load(f"w/{i}", "overlay")
    snap = fm.metrics.snapshot()
    assert snap["sources"]["overlay"]["restore_count"] >= 10
    assert "frequent-spills" in [a.rule for a in advise(snap)]


def test_slow_codec_dominating_write_time() -> None:
    m = Metrics()
    for _ in range(10):
        m.record("zarr", "save", 1.0, 50 * 10**6, None)
    m.record_event("zarr", "encode:zstd-level-19", seconds=8.0, nbytes=500 * 10**6)  # 62 MB/s, 80 % of writes
    m.record_event("zarr", "encode:blosc-lz4", seconds=0.2, nbytes=500 * 10**6)
    hints = [a for a in advise(m.snapshot()) if a.rule == "slow-codec"]
    assert len(hints) == 1 and hints[0].evidence["codec"] == "zstd-level-19"
    assert hints[0].evidence["mb_per_s"] == 62.5


def test_failing_operations_name_the_error() -> None:
    m = Metrics()
    for i in range(40):
        m.record("memory", "save", 1e-5, 0, FileExistsError() if i % 4 == 0 else None)
    (hint,) = advise(m.snapshot())
    assert hint.rule == "failing-operations" and "overwrite=True" in hint.message
    assert hint.evidence["errors"] == 10 and hint.evidence["error_types"] == {"FileExistsError": 10}
    assert hint.as_dict()["rule"] == "failing-operations"


def test_chunk_advice_from_layout() -> None:
    from hcsvfs.metrics.advice import chunk_advice

    hint = chunk_advice((1, 3, 10, 512, 512), (1, 3, 10, 512, 512))  # one chunk per array
    assert hint is not None and hint.evidence["planes_per_chunk"] == 30
    assert chunk_advice((1, 3, 10, 512, 512), (1, 1, 1, 512, 512)) is None  # per plane
    assert chunk_advice((512, 512), (512, 512)) is None  # a single plane
    assert chunk_advice((4, 512, 512), (8, 256, 256)).evidence["planes_per_chunk"] == 4  # chunk larger than shape
