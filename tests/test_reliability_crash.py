"""Crash safety: a writer SIGKILLed at random points never loses what it reported saved.

Each test forks a worker that repeats one operation (save, save_batch, move)
and acknowledges every completed step through a pipe; the parent kills it after
a random delay, then checks that every acknowledged object loads exactly, that
nothing listed is half-written, and that re-running the interrupted step
finishes the job. ``KILLS`` kill points per operation; the counts asserted
here are the figures reported in docs/reliability.md.
"""

from __future__ import annotations

import random
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from hcsvfs import FileManager
from hcsvfs.backends import DiskStorageBackend
from hcsvfs.errors import StorageError
from hcsvfs.registry import StorageRegistry
from reliability_helpers import payload, run_and_kill, temp_files, version_of

KILLS = 50
MAX_DELAY_S = 0.04  # a few operations' worth: kills land at every stage of a write

pytestmark = pytest.mark.slow


def _fm(root: Path) -> tuple[FileManager, DiskStorageBackend]:
    disk = DiskStorageBackend(root)
    reg = StorageRegistry(discover=False)
    reg.register_backend("disk", disk)
    return FileManager(reg), disk


def _assert_listing_clean(disk: DiskStorageBackend) -> None:
    # Temp files from killed writers may stay on disk, but no listing may show them.
    for p in disk.list_files(".", recursive=True):
        assert ".hcsvfs-tmp-" not in p
        disk.load(p)  # every listed object is whole


@pytest.mark.parametrize("name", ["x.npy", "x.tif"])
def test_kill_during_overwrite_keeps_old_or_new(tmp_path: Path, name: str) -> None:
    rng = random.Random(8)
    fm, disk = _fm(tmp_path / "root")
    fm.save(payload(0), name, "disk")
    current, mid_write, acked_total = 0, 0, 0
    for _ in range(KILLS):
        start = current

        def work(conn: Connection, start: int = start) -> None:
            k = start
            while True:
                k += 1
                fm.save(payload(k), name, "disk", overwrite=True)
                conn.send(("ack", k))

        before = len(temp_files(disk.root))
        run = run_and_kill(work, max_delay_s=MAX_DELAY_S, rng=rng)
        mid_write += len(temp_files(disk.root)) > before
        last = run.acks[-1] if run.acks else start
        acked_total += len(run.acks)
        current = version_of(disk.load(name))
        # The file holds the last reported version, or the one in flight when the kill came.
        assert current in (last, last + 1), (current, last)
        assert disk.list_dir(".") == [name]
    _assert_listing_clean(disk)
    # A rerun after all those kills finishes normally.
    fm.save(payload(current + 1), name, "disk", overwrite=True)
    assert version_of(disk.load(name)) == current + 1
    assert acked_total > KILLS  # the worker really did work between kills
    assert mid_write > 0, "no kill landed inside a write; raise MAX_DELAY_S"
    print(f"\n[reliability] overwrite {name}: {KILLS} kills, {acked_total} acked saves, {mid_write} mid-write")


def test_kill_during_save_of_new_files(tmp_path: Path) -> None:
    rng = random.Random(9)
    fm, disk = _fm(tmp_path / "root")
    next_index, acked_total = 0, 0
    for _ in range(KILLS):
        start = next_index

        def work(conn: Connection, start: int = start) -> None:
            k = start
            while True:
                fm.save(payload(k), f"w{k % 7}/obj{k}.tif", "disk")  # parents created on the way
                conn.send(("ack", k))
                k += 1

        run = run_and_kill(work, max_delay_s=MAX_DELAY_S, rng=rng)
        acked_total += len(run.acks)
        in_flight = (run.acks[-1] + 1) if run.acks else start
        for k in run.acks:
            assert version_of(disk.load(f"w{k % 7}/obj{k}.tif")) == k
        path = f"w{in_flight % 7}/obj{in_flight}.tif"
        if disk.exists(path):  # committed just before the kill: then it is whole
            assert version_of(disk.load(path)) == in_flight
        # Rerun of the interrupted step finishes it.
        fm.save(payload(in_flight), path, "disk", overwrite=True)
        next_index = in_flight + 1
    listed = disk.list_files(".", recursive=True)
    assert len(listed) == next_index
    _assert_listing_clean(disk)
    print(f"\n[reliability] save new: {KILLS} kills, {acked_total} acked, {len(listed)} objects intact")


def test_kill_during_save_batch(tmp_path: Path) -> None:
    rng = random.Random(10)
    fm, disk = _fm(tmp_path / "root")
    size = 5
    next_batch, acked_total = 0, 0

    def batch(j: int) -> tuple[list[np.ndarray], list[str]]:
        return [payload(j * size + i) for i in range(size)], [f"b{j}/f{i}.npy" for i in range(size)]

    for _ in range(KILLS):
        start = next_batch

        def work(conn: Connection, start: int = start) -> None:
            j = start
            while True:
                fm.save_batch(*batch(j), "disk")
                conn.send(("ack", j))
                j += 1

        run = run_and_kill(work, max_delay_s=MAX_DELAY_S, rng=rng)
        acked_total += len(run.acks)
        for j in run.acks:
            data, paths = batch(j)
            assert [version_of(disk.load(p)) for p in paths] == [version_of(d) for d in data]
        in_flight = (run.acks[-1] + 1) if run.acks else start
        data, paths = batch(in_flight)
        for d, p in zip(data, paths):  # a crashed batch may be partial, but each member is whole
            if disk.exists(p):
                assert version_of(disk.load(p)) == version_of(d)
        fm.save_batch(data, paths, "disk", overwrite=True)  # the rerun completes it
        next_batch = in_flight + 1
    assert len(disk.list_files(".", recursive=True)) == next_batch * size
    _assert_listing_clean(disk)
    print(f"\n[reliability] save_batch: {KILLS} kills, {acked_total} acked batches of {size}")


def test_kill_during_move_never_loses_an_object(tmp_path: Path) -> None:
    rng = random.Random(11)
    fm, disk = _fm(tmp_path / "root")
    total = 4000
    disk.ensure_directory("src")
    disk.ensure_directory("dst")
    for i in range(total):
        disk.save(payload(i, shape=(4,)), f"src/{i}.npy")
    next_index, acked_total, duplicates = 0, 0, 0
    for _ in range(KILLS):
        start = next_index

        def work(conn: Connection, start: int = start) -> None:
            for i in range(start, total):
                fm.move(f"src/{i}.npy", f"dst/{i}.npy", "disk")
                conn.send(("ack", i))

        run = run_and_kill(work, max_delay_s=MAX_DELAY_S / 4, rng=rng)
        assert not run.finished, "the pool of files ran out; raise total"
        acked_total += len(run.acks)
        for i in run.acks:
            assert not disk.exists(f"src/{i}.npy")
            assert version_of(disk.load(f"dst/{i}.npy")) == i
        i = (run.acks[-1] + 1) if run.acks else start
        at_src, at_dst = disk.exists(f"src/{i}.npy"), disk.exists(f"dst/{i}.npy")
        assert at_src or at_dst, f"object {i} lost by a kill during move"
        for p in [f"src/{i}.npy"] * at_src + [f"dst/{i}.npy"] * at_dst:
            assert version_of(disk.load(p)) == i
        duplicates += at_src and at_dst
        if at_src:  # rerun: a copy already at the destination is the same object, so replace it
            fm.move(f"src/{i}.npy", f"dst/{i}.npy", "disk", overwrite=at_dst)
        next_index = i + 1
    assert len(disk.list_files("dst")) == next_index
    assert len(disk.list_files("src")) == total - next_index
    print(f"\n[reliability] move: {KILLS} kills, {acked_total} acked moves, {duplicates} link-before-unlink windows hit")


def test_kill_during_directory_move_is_all_or_nothing(tmp_path: Path) -> None:
    rng = random.Random(12)
    fm, disk = _fm(tmp_path / "root")
    wells = 1500
    for w in range(wells):
        disk.ensure_directory(f"plate/W{w}")
        for f in range(2):
            disk.save(payload(w * 2 + f, shape=(2,)), f"plate/W{w}/f{f}.npy")
    disk.ensure_directory("done")
    next_w = 0
    for _ in range(KILLS):
        start = next_w

        def work(conn: Connection, start: int = start) -> None:
            for w in range(start, wells):
                fm.move(f"plate/W{w}", f"done/W{w}", "disk")
                conn.send(("ack", w))

        run = run_and_kill(work, max_delay_s=MAX_DELAY_S / 4, rng=rng)
        assert not run.finished, "the pool of wells ran out; raise wells"
        w = (run.acks[-1] + 1) if run.acks else start
        where = [d for d in ("plate", "done") if disk.exists(f"{d}/W{w}")]
        assert len(where) == 1, f"well {w} is in {where}: a directory move must be all or nothing"
        assert [version_of(disk.load(f"{where[0]}/W{w}/f{f}.npy")) for f in range(2)] == [w * 2, w * 2 + 1]
        if where == ["plate"]:
            fm.move(f"plate/W{w}", f"done/W{w}", "disk")
        next_w = w + 1
    assert len(disk.list_dir("done")) == next_w


def test_kill_during_overlay_spills_keeps_every_spilled_entry(tmp_path: Path) -> None:
    """A worker saves into a tiny MemoryOverlay (so it spills constantly) and reports what reached disk."""
    from hcsvfs.tiering import MemoryOverlay

    rng = random.Random(13)
    root = tmp_path / "spill"
    entry = payload(0, shape=(32, 32))  # 2 KiB; the 16 KiB budget holds a handful
    next_index, spilled_total = 0, 0
    for _ in range(KILLS):
        start = next_index

        def work(conn: Connection, start: int = start) -> None:
            overlay = MemoryOverlay(DiskStorageBackend(root, fsync=False), budget=16 * 1024, pause_timeout=30)
            unconfirmed: list[int] = []
            k = start
            while True:
                overlay.save(payload(k, shape=(32, 32)), f"e{k}.npy")
                unconfirmed.append(k)
                still = []
                for j in unconfirmed:  # "persistent" or "memory+persistent": the spill write has completed
                    (still.append(j) if overlay.tier(f"e{j}.npy") == "memory" else conn.send(("ack", j)))
                unconfirmed = still
                k += 1

        run = run_and_kill(work, max_delay_s=MAX_DELAY_S, rng=rng)
        spilled_total += len(run.acks)
        # A new overlay adopting the spill folder finds every entry that was reported spilled, whole.
        fresh = MemoryOverlay(DiskStorageBackend(root, fsync=False), budget=16 * 1024, adopt_existing=True)
        try:
            on_disk = set(fresh.list_files("."))
            for j in run.acks:
                assert f"e{j}.npy" in on_disk, f"entry {j} was reported spilled but is gone after the kill"
            for j in run.acks[-3:]:  # restored through the overlay, transparently
                assert version_of(fresh.load(f"e{j}.npy")) == j % 60000
            disk = DiskStorageBackend(root)
            for p in on_disk:  # nothing half-written is visible
                assert version_of(disk.load(p)) == int(p[1:-4]) % 60000
        finally:
            fresh.close()
        next_index = start + 10_000  # the next worker uses fresh names: unspilled entries died with the process
    assert spilled_total > KILLS
    assert entry.nbytes == 2048
    print(f"\n[reliability] overlay spills: {KILLS} kills, {spilled_total} entries reported spilled, all loadable")


def test_kill_during_shared_memory_writes(tmp_path: Path, request: pytest.FixtureRequest) -> None:
    """Forked workers write into a namespace the test process owns; each is killed at a random point."""
    from backends_under_test import BACKENDS

    shm = BACKENDS["shared_memory"](tmp_path, request)
    rng = random.Random(14)
    shm.save(payload(0), "key.npy")
    current, next_new, acked_total = 0, 0, 0
    for _ in range(KILLS):
        start, first_new = current, next_new

        def work(conn: Connection, start: int = start, first_new: int = first_new) -> None:
            k, n = start, first_new
            while True:
                k += 1
                shm.save(payload(k), "key.npy", overwrite=True)
                shm.save(payload(n), f"new{n}.npy")
                conn.send(("ack", (k, n)))
                n += 1

        run = run_and_kill(work, max_delay_s=MAX_DELAY_S, rng=rng)
        acked_total += len(run.acks)
        last_k, last_n = run.acks[-1] if run.acks else (start, first_new - 1)
        current = version_of(shm.load("key.npy"))
        assert current in (last_k, last_k + 1), (current, last_k)
        for _, n in run.acks:
            assert version_of(shm.load(f"new{n}.npy")) == n
        if shm.exists(f"new{last_n + 1}.npy"):  # committed just before the kill: whole
            assert version_of(shm.load(f"new{last_n + 1}.npy")) == last_n + 1
        next_new = last_n + 2
    for p in shm.list_files("."):
        version_of(shm.load(p))  # everything listed is whole
    print(f"\n[reliability] shared memory: {KILLS} kills, {acked_total} acked save pairs")


PLATES = 8  # of 384 wells each: more than enough however fast the machine writes between kills


def _plate(w: int) -> str:
    return f"plate{w // 384}.zarr"


def _well(w: int) -> str:
    return f"{'ABCDEFGHIJKLMNOP'[w % 384 // 24]}{w % 24 + 1:02d}"


def _well_planes(w: int) -> tuple[list[np.ndarray], list[str]]:
    """Two fields x two channels of well number ``w`` (plates fill one after another), each plane its own version."""
    names = [f"{_plate(w)}/{_well(w)}_s{s}_w{c}.tif" for s in (1, 2) for c in (1, 2)]
    return [payload(w * 4 + i, shape=(16, 16)) for i in range(4)], names


def test_kill_during_zarr_plate_writes_never_lists_an_incomplete_well(tmp_path: Path) -> None:
    """The plate metadata lists a well only when all its fields are written; a rerun completes the rest."""
    from hcsvfs.backends.zarr import ZarrStorageBackend

    rng = random.Random(15)
    zb = ZarrStorageBackend(tmp_path / "root")
    for n in range(PLATES):
        zb.ensure_directory(f"plate{n}.zarr")
    next_w, acked_total, listed_incomplete = 0, 0, 0
    for _ in range(KILLS):
        start = next_w

        def work(conn: Connection, start: int = start) -> None:
            worker = ZarrStorageBackend(tmp_path / "root")
            for w in range(start, PLATES * 384):
                worker.save_batch(*_well_planes(w))
                conn.send(("ack", w))

        run = run_and_kill(work, max_delay_s=0.25, rng=rng)
        assert not run.finished, "all plates filled up; raise PLATES"
        acked_total += len(run.acks)
        in_flight = (run.acks[-1] + 1) if run.acks else start
        listed = {n: _wells(zb, n) for n in {_plate(w) for w in [*run.acks, in_flight]}}
        for w in [*run.acks, in_flight]:
            info = listed[_plate(w)].get(_well(w))
            if info is None:
                assert w == in_flight, f"acknowledged well {_well(w)} is missing from {_plate(w)}"
                continue
            listed_incomplete += sorted(info.fields) != ["0", "1"] or len(info.files) != 4
            data, names = _well_planes(w)
            assert [version_of(np.asarray(zb.load(n))) for n in names] == [version_of(d) for d in data]
        assert set(listed[_plate(in_flight)]) <= {_well(w) for w in range(in_flight - in_flight % 384, in_flight + 1)}
        zb.save_batch(*_well_planes(in_flight), overwrite=True)  # the rerun finishes the interrupted well
        next_w = in_flight + 1
    assert listed_incomplete == 0
    for n in range(next_w // 384 + 1):  # every plate: exactly the wells written, NGFF-valid after the kills
        written = [w for w in range(next_w) if w // 384 == n]
        if written:
            assert sorted(zb.open_plate(f"plate{n}.zarr").wells) == sorted(_well(w) for w in written)
            zb.validate(f"plate{n}.zarr")
    print(f"\n[reliability] zarr plate: {KILLS} kills, {acked_total} acked wells, {next_w} wells complete and valid")


def _wells(zb: Any, plate: str) -> dict[str, Any]:
    """The wells ``plate`` lists; none while its metadata does not exist yet (its first well still in flight)."""
    try:
        return zb.open_plate(plate).wells
    except StorageError:
        return {}
