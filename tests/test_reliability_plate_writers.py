"""Many writers, one plate: threads and processes (local and on S3), racing creators, killed lock holders.

Every test checks every acknowledged plane afterwards: a writer that returned
without an error must find its plane, with its pixels, listed in the plate.
"""

from __future__ import annotations

import itertools
import os
import random
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from hcsvfs.backends.zarr import ZarrStorageBackend
from hcsvfs.config import ZarrConfig
from hcsvfs.errors import LockTimeoutError, StorageError
from reliability_helpers import _FORK, payload, run_and_kill, run_threads, start_together, version_of

TRIALS = 10
PLATE = "p.zarr"


def _fresh(tmp_path: Path, trial: int, **config: Any) -> ZarrStorageBackend:
    zb = ZarrStorageBackend(tmp_path / f"t{trial}", config=ZarrConfig(**config))
    zb.ensure_directory(PLATE)
    return zb


def _assert_planes(zb: ZarrStorageBackend, expected: dict[str, int]) -> None:
    """Each name loads with its version, and the plate lists every well that holds one."""
    for name, version in expected.items():
        assert version_of(zb.load(f"{PLATE}/{name}", materialize=True)) == version, name
    wells = {name.split("_")[0] for name in expected}
    assert wells <= set(zb.open_plate(PLATE).wells)
    assert sorted(zb.list_dir(PLATE)) == sorted(expected)
    zb.validate(PLATE)


# Each case: the names the threads write at once (one each), all into a fresh plate.
THREAD_CASES = {
    "same new field, other channels": [f"A01_s1_w{c}.tif" for c in range(1, 5)],
    "same new field, other z": [f"A01_s1_w1_z{z:03d}.tif" for z in range(1, 5)],
    "same well, other fields": [f"A01_s{s}_w1.tif" for s in range(1, 5)],
    "other wells": ["A01_s1_w1.tif", "A02_s1_w1.tif", "B01_s1_w1.tif", "C03_s2_w2.tif"],
    "mixed": ["A01_s1_w1.tif", "A01_s1_w2.tif", "A01_s2_w1.tif", "B01_s1_w1.tif"],
}


@pytest.mark.parametrize("case", sorted(THREAD_CASES))
@pytest.mark.parametrize("write_threads", [1, 2])
def test_threads_creating_planes_lose_none(tmp_path: Path, case: str, write_threads: int) -> None:
    names = THREAD_CASES[case]
    for trial in range(TRIALS):
        zb = _fresh(tmp_path, trial, write_threads=write_threads)
        outcomes = run_threads(len(names), lambda i: zb.save(payload(100 * trial + i), f"{PLATE}/{names[i]}"))
        assert all(o is None for o in outcomes), outcomes
        _assert_planes(zb, {n: 100 * trial + i for i, n in enumerate(names)})
    print(f"\n[reliability] plate threads, {case}, write_threads={write_threads}: {TRIALS} trials x "
          f"{len(names)} writers, {TRIALS * len(names)} acknowledged planes, all found with their pixels")


def test_thread_batches_overlapping_in_opposite_orders_never_deadlock(tmp_path: Path) -> None:
    """Two batches over the same four wells, listed in opposite orders, each into existing fields (overwrite)."""
    wells = ["A01", "A02", "B01", "B02"]
    zb = _fresh(tmp_path, 0)
    zb.save_batch([payload(0) for _ in wells], [f"{PLATE}/{w}_s1_w1.tif" for w in wells])
    for trial in range(TRIALS):
        orders = [wells, wells[::-1]]

        def write(i: int) -> None:
            names = [f"{PLATE}/{w}_s1_w{i + 1}.tif" for w in orders[i]]
            zb.save_batch([payload(1000 * (i + 1) + trial) for _ in names], names, overwrite=True)

        assert run_threads(2, write) == [None, None]
        expected = {f"{w}_s1_w1.tif": 1000 + trial for w in wells} | {f"{w}_s1_w2.tif": 2000 + trial for w in wells}
        _assert_planes(zb, expected)


def test_racing_creators_of_one_name_have_one_winner_and_its_pixels(tmp_path: Path) -> None:
    for trial in range(TRIALS):
        zb = _fresh(tmp_path, trial)
        outcomes = run_threads(4, lambda i: zb.save(payload(10 * trial + i), f"{PLATE}/A01_s1_w1.tif"))
        winners = [i for i, o in enumerate(outcomes) if o is None]
        assert len(winners) == 1, outcomes
        assert all(isinstance(o, FileExistsError) and isinstance(o, StorageError) for o in outcomes if o is not None)
        _assert_planes(zb, {"A01_s1_w1.tif": 10 * trial + winners[0]})
    print(f"\n[reliability] plate racing creators: {TRIALS} rounds of 4, one winner each, its pixels stored")


def test_racing_overwriters_and_creators_keep_every_acknowledged_plane(tmp_path: Path) -> None:
    """Overwrites of committed planes race creators of new channels in the same field."""
    for trial in range(TRIALS):
        zb = _fresh(tmp_path, trial)
        zb.save_batch([payload(1), payload(2)], [f"{PLATE}/A01_s1_w1.tif", f"{PLATE}/A01_s1_w2.tif"])

        def write(i: int) -> int:
            if i < 2:  # overwrite channel 1 and 2
                zb.save(payload(100 + i), f"{PLATE}/A01_s1_w{i + 1}.tif", overwrite=True)
            else:  # create channels 3 and 4
                zb.save(payload(100 + i), f"{PLATE}/A01_s1_w{i + 1}.tif")
            return i

        assert run_threads(4, write) == [0, 1, 2, 3]
        _assert_planes(zb, {f"A01_s1_w{c + 1}.tif": 100 + c for c in range(4)})


def test_a_plane_that_no_longer_fits_after_a_racing_write_is_refused(tmp_path: Path) -> None:
    """Two creators of one new field with different plane shapes: one wins, the other gets PlaneMismatchError."""
    from hcsvfs.backends.zarr import PlaneMismatchError

    for trial in range(TRIALS):
        zb = _fresh(tmp_path, trial)
        shapes = [(16, 16), (8, 8)]
        outcomes = run_threads(2, lambda i: zb.save(payload(i, shape=shapes[i]), f"{PLATE}/A01_s1_w{i + 1}.tif"))
        winners = [i for i, o in enumerate(outcomes) if o is None]
        assert len(winners) == 1 and isinstance(outcomes[1 - winners[0]], PlaneMismatchError), outcomes
        _assert_planes(zb, {f"A01_s1_w{winners[0] + 1}.tif": winners[0]})


def test_locks_do_not_accumulate(tmp_path: Path) -> None:
    zb = _fresh(tmp_path, 0)
    for w in range(1, 13):
        zb.save(payload(w), f"{PLATE}/A{w:02d}_s1_w1.tif")
    assert len(zb.locator._threads) == 0


def test_lock_timeout_names_the_well(tmp_path: Path) -> None:
    zb = _fresh(tmp_path, 0, lock_timeout=0.2)
    zb.save(payload(1), f"{PLATE}/A01_s1_w1.tif")
    holder = ZarrStorageBackend(tmp_path / "t0")
    with holder.locator.lock(PLATE, "well-A-1", timeout=1, lease_ttl=1):
        with pytest.raises(LockTimeoutError) as info:
            zb.save(payload(2), f"{PLATE}/A01_s1_w2.tif")
    assert isinstance(info.value, TimeoutError) and "well-A-1" in str(info.value) and PLATE in str(info.value)
    assert zb.list_dir(PLATE) == ["A01_s1_w1.tif"]


# ---------------------------------------------------------------- processes
def _process_names(i: int) -> list[str]:
    """Writer ``i`` of 4: six wells of its own, its own field of the shared well A01, and its channel of A01's field 1."""
    return [*(f"{row}{i + 1:02d}_s1_w1.tif" for row in "BCDEFG"), f"A01_s{i + 2}_w1.tif", f"A01_s1_w{i + 1}.tif"]


def _write_from_processes(make: Callable[[], ZarrStorageBackend], rounds: int) -> dict[str, int]:
    """4 forked writers x ``rounds`` batches; returns every name with its last version."""
    expected: dict[str, int] = {}
    for r in range(rounds):

        def body(i: int, _barrier: Any, r: int = r) -> None:
            zb = make()
            for k, name in enumerate(_process_names(i)):  # one save each: as many plate commits as possible
                zb.save(payload(1000 * r + 10 * i + k), f"{PLATE}/{name}", overwrite=True)

        outcomes = start_together(4, body)
        assert outcomes == [None] * 4, outcomes
        for i in range(4):
            for k, name in enumerate(_process_names(i)):
                expected[name] = 1000 * r + 10 * i + k
    return expected


def test_processes_writing_one_plate_list_every_well_without_a_rebuild(tmp_path: Path) -> None:
    ZarrStorageBackend(tmp_path / "root").ensure_directory(PLATE)
    expected = _write_from_processes(lambda: ZarrStorageBackend(tmp_path / "root"), rounds=5)
    _assert_planes(ZarrStorageBackend(tmp_path / "root"), expected)
    print(f"\n[reliability] plate processes (local): 4 processes x 5 rounds x 8 saves, {len(expected)} names in "
          f"{len({n.split('_')[0] for n in expected})} wells, every well listed without a rebuild")
    wells = ZarrStorageBackend(tmp_path / "root").open_plate(PLATE).wells
    assert sorted(wells) == sorted({n.split("_")[0] for n in expected})
    assert sorted(wells["A01"].fields) == ["0", "1", "2", "3", "4"]


@pytest.mark.s3
def test_processes_writing_one_plate_on_s3_list_every_well(tmp_path: Path) -> None:
    from s3_server import new_s3_url

    url, options = new_s3_url()
    ZarrStorageBackend(url, storage_options=options).ensure_directory(PLATE)
    expected = _write_from_processes(lambda: ZarrStorageBackend(url, storage_options=options), rounds=1)
    zb = ZarrStorageBackend(url, storage_options=options)
    _assert_planes(zb, expected)
    print(f"\n[reliability] plate processes (S3): 4 processes x 8 saves, {len(expected)} names, every well listed")
    assert sorted(zb.open_plate(PLATE).wells) == sorted({n.split("_")[0] for n in expected})


KILLS = 12


def test_a_killed_writer_never_blocks_or_corrupts_the_next(tmp_path: Path) -> None:
    """SIGKILL overwriters of one well at random points (often while they hold its lock): every plane still loads,
    old or new (never a torn shard), and the next writer gets both locks at once."""
    root = tmp_path / "root"
    names = [f"A01_s{s}_w{c}.tif" for s in (1, 2) for c in (1, 2)]
    first = ZarrStorageBackend(root)
    first.ensure_directory(PLATE)
    first.save_batch([payload(0)] * 4, [f"{PLATE}/{n}" for n in names])
    rng = random.Random(7)
    acked = 0
    for k in range(1, KILLS + 1):

        def work(conn: Any, k: int = k) -> None:
            zb = ZarrStorageBackend(root, config=ZarrConfig(lock_timeout=5))
            for n in itertools.count():
                zb.save_batch([payload(1000 * k + n)] * 4, [f"{PLATE}/{x}" for x in names], overwrite=True)
                conn.send(("ack", 1000 * k + n))

        before = version_of(first.load(f"{PLATE}/{names[0]}", materialize=True))
        run = run_and_kill(work, max_delay_s=0.3, rng=rng)
        last = run.acks[-1] if run.acks else before
        for n in names:  # each plane: the last acknowledged version or the one in flight, whole
            assert version_of(first.load(f"{PLATE}/{n}", materialize=True)) in (last, last + 1 if run.acks else 1000 * k)
        zb = ZarrStorageBackend(root, config=ZarrConfig(lock_timeout=5))
        start = time.monotonic()
        zb.save(payload(1), f"{PLATE}/B01_s1_w1.tif", overwrite=True)  # takes the plate lock
        zb.save_batch([payload(2)] * 4, [f"{PLATE}/{n}" for n in names], overwrite=True)  # takes the well lock
        assert time.monotonic() - start < 4, "a lock of the killed writer was still held"
        acked += len(run.acks)
    print(f"\n[reliability] plate overwriters killed: {KILLS} kills, {acked} acknowledged batches before them, "
          "every plane old or new, never a torn shard, locks free at once")
    _assert_planes(ZarrStorageBackend(root), {n: 2 for n in names} | {"B01_s1_w1.tif": 1})


@pytest.mark.s3
def test_a_killed_lease_holder_on_s3_is_broken_after_the_lease_time(tmp_path: Path) -> None:
    """The writer holding a well's lease on S3 is killed; the next writer waits about one lease, then writes."""
    from s3_server import new_s3_url

    url, options = new_s3_url()
    config = ZarrConfig(lease_seconds=1.0, lock_timeout=20)
    ZarrStorageBackend(url, storage_options=options).ensure_directory(PLATE)
    recv, send = _FORK.Pipe(duplex=False)

    def hold() -> None:
        zb = ZarrStorageBackend(url, storage_options=options, config=config)
        with zb.locator.lock(PLATE, "well-A-1", timeout=5, lease_ttl=1.0):
            send.send("held")
            time.sleep(60)

    proc = _FORK.Process(target=hold, daemon=True)
    proc.start()
    assert recv.poll(30) and recv.recv() == "held"
    time.sleep(1.5)  # the heartbeat keeps a live holder's lease: it must not be broken yet
    zb = ZarrStorageBackend(url, storage_options=options, config=ZarrConfig(lease_seconds=1.0, lock_timeout=0.5))
    with pytest.raises(LockTimeoutError):
        zb.save(payload(1), f"{PLATE}/A01_s1_w1.tif")
    os.kill(proc.pid, signal.SIGKILL)  # type: ignore[arg-type]
    proc.join(10)
    start = time.monotonic()
    ZarrStorageBackend(url, storage_options=options, config=config).save(payload(2), f"{PLATE}/A01_s1_w1.tif")
    waited = time.monotonic() - start
    assert 0.5 < waited < 10, waited
    print(f"\n[reliability] S3 lease of a killed writer (lease 1 s): broken after {waited:.1f} s; a live one was kept")
    _assert_planes(ZarrStorageBackend(url, storage_options=options), {"A01_s1_w1.tif": 2})


@pytest.mark.s3
def test_a_broken_lease_stops_the_commit(tmp_path: Path) -> None:
    """A holder whose lease was broken (its object deleted by a waiter) finds out at its next heartbeat and
    commits nothing: LeaseLostError, the well stays unlisted."""
    from hcsvfs.backends.locks import LeaseLostError
    from s3_server import new_s3_url

    url, options = new_s3_url()
    zb = ZarrStorageBackend(url, storage_options=options, config=ZarrConfig(lease_seconds=0.4))
    zb.ensure_directory(PLATE)
    fs = zb.locator.store.fs
    lock_key = f"{zb.locator.store.path}/{PLATE}/.hcsvfs-locks/well-A-1"
    real_write = zb.plates._write_field

    def write_then_lose(planes: Any, *rest: Any) -> None:
        real_write(planes, *rest)
        from zarr.core.sync import sync

        bucket, key, _ = fs.split_path(lock_key)
        sync(fs._call_s3("delete_object", Bucket=bucket, Key=key))  # what a waiter breaking the lease does
        time.sleep(0.4)  # more than one heartbeat

    zb.plates._write_field = write_then_lose  # type: ignore[method-assign]
    with pytest.raises(LeaseLostError) as info:
        zb.save(payload(1), f"{PLATE}/A01_s1_w1.tif")
    assert "well-A-1" in str(info.value)
    assert "A01" not in ZarrStorageBackend(url, storage_options=options).open_plate(PLATE).wells
