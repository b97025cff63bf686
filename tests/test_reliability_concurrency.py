"""Concurrency: threads and processes under one root lose nothing, tear nothing, deadlock never.

Thread tests run on every backend in backends_under_test.BACKENDS (via the
``backend`` fixture); process tests run on the backends whose state other
processes see (disk through the file system, shared memory through its
segments and index). Every join has a timeout, so a deadlock is a
failure, not a hung CI job.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from backends_under_test import BACKENDS
from hcsvfs.backends import StorageBackend
from hcsvfs.errors import StorageError
from reliability_helpers import payload, run_in_child, run_threads, start_together, temp_files, version_of

JOIN_S = 60  # far above the real run time; reaching it means a deadlock
ROUNDS = 25


def _one_winner(outcomes: list[Any], loser: type[BaseException]) -> int:
    winners = [i for i, o in enumerate(outcomes) if not isinstance(o, BaseException)]
    losers = [o for o in outcomes if isinstance(o, BaseException)]
    assert len(winners) == 1, f"expected exactly one winner, got outcomes {outcomes}"
    for exc in losers:
        assert isinstance(exc, loser) and isinstance(exc, StorageError), repr(exc)
    return winners[0]


# ---------------------------------------------------------------- racing creators
def test_racing_creator_threads_exactly_one_wins(backend: StorageBackend) -> None:
    backend.ensure_directory("race")
    for r in range(ROUNDS):
        path = f"race/r{r}.npy"
        outcomes = run_threads(4, lambda i: backend.save(payload(i + 1), path))
        winner = _one_winner(outcomes, FileExistsError)
        assert version_of(backend.load(path)) == winner + 1


# Backends whose state is visible to other processes (forked workers share it through the OS).
PROCESS_SHARED = [k for k in ("disk", "shared_memory", "zarr") if k in BACKENDS]


@pytest.fixture(params=PROCESS_SHARED)
def shared_backend(request: pytest.FixtureRequest, tmp_path: Path) -> StorageBackend:
    """A new backend of each kind that several processes can use at once."""
    return BACKENDS[request.param](tmp_path, request)


def test_racing_creator_processes_exactly_one_wins(shared_backend: StorageBackend) -> None:
    disk = shared_backend
    disk.ensure_directory("race")
    for r in range(ROUNDS):
        path = f"race/r{r}.tif"
        outcomes = start_together(4, lambda i, _b: disk.save(payload(i + 1), path))
        winner = _one_winner(outcomes, FileExistsError)
        assert version_of(disk.load(path)) == winner + 1
    if getattr(disk, "root", None) is not None:  # disk and zarr folders; shared memory keeps its index there too
        assert temp_files(disk.root) == []  # losers cleaned up their temp files
    print(f"\n[reliability] {ROUNDS} process races of 4 creators: one winner each")


def test_racing_mover_threads_exactly_one_wins(backend: StorageBackend) -> None:
    backend.ensure_directory("src")
    for r in range(ROUNDS):
        backend.save(payload(r), f"src/{r}.npy")
        outcomes = run_threads(3, lambda i: backend.move(f"src/{r}.npy", f"dst{i}_{r}.npy"))
        winner = _one_winner(outcomes, FileNotFoundError)
        assert not backend.exists(f"src/{r}.npy")
        assert [i for i in range(3) if backend.exists(f"dst{i}_{r}.npy")] == [winner]
        assert version_of(backend.load(f"dst{winner}_{r}.npy")) == r


def test_racing_mover_processes_exactly_one_wins(shared_backend: StorageBackend) -> None:
    disk = shared_backend
    disk.ensure_directory("src")
    for r in range(ROUNDS):
        disk.save(payload(r), f"src/{r}.npy")
        outcomes = start_together(3, lambda i, _b: disk.move(f"src/{r}.npy", f"dst{i}_{r}.npy"))
        winner = _one_winner(outcomes, FileNotFoundError)
        assert [i for i in range(3) if disk.exists(f"dst{i}_{r}.npy")] == [winner]
        assert version_of(disk.load(f"dst{winner}_{r}.npy")) == r


# ---------------------------------------------------------------- mixed workloads
def test_threads_save_load_list_move_delete_lose_nothing(backend: StorageBackend) -> None:
    """Writers overwrite their own keys while readers load and list; movers and deleters churn a scratch area."""
    writers, versions = 3, 40
    for w in range(writers):
        backend.ensure_directory(f"w{w}")
        backend.save(payload(0), f"w{w}/key.npy")
    backend.ensure_directory("scratch")
    stop = threading.Event()
    torn: list[str] = []
    reads = [0]

    def writer(w: int) -> None:
        for v in range(1, versions + 1):
            backend.save(payload(v), f"w{w}/key.npy", overwrite=True)
            backend.save(payload(v), f"w{w}/v{v}.npy")

    def reader() -> None:
        last = [0] * writers
        while not stop.is_set():
            for w in range(writers):
                v = version_of(backend.load(f"w{w}/key.npy"))  # raises on a torn object
                if v < last[w]:
                    torn.append(f"w{w}: version went back from {last[w]} to {v}")
                last[w] = v
                for p in backend.list_files(f"w{w}"):
                    if p.endswith(".npy") and "/v" in p:
                        assert version_of(backend.load(p)) == int(p.rsplit("/v", 1)[1][:-4])
                reads[0] += 1

    def churner() -> None:
        k = 0
        while not stop.is_set():
            backend.save(payload(k), f"scratch/a{k}.npy")
            backend.move(f"scratch/a{k}.npy", f"scratch/b{k}.npy")
            assert version_of(backend.load(f"scratch/b{k}.npy")) == k
            backend.delete(f"scratch/b{k}.npy")
            k += 1

    errors: list[BaseException] = []

    def guarded(fn: Callable[..., None], *args: Any) -> threading.Thread:
        def run() -> None:
            try:
                fn(*args)
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)
                stop.set()

        t = threading.Thread(target=run, daemon=True)
        t.start()
        return t

    background = [guarded(reader), guarded(reader), guarded(churner)]
    fore = [guarded(writer, w) for w in range(writers)]
    for t in fore:
        t.join(JOIN_S)
        assert not t.is_alive(), "a writer did not finish: deadlock"
    stop.set()
    for t in background:
        t.join(JOIN_S)
        assert not t.is_alive(), "a reader or churner did not stop: deadlock"
    assert not errors, errors
    assert not torn, torn
    for w in range(writers):  # no lost update
        assert version_of(backend.load(f"w{w}/key.npy")) == versions
        assert len(backend.list_files(f"w{w}", pattern="v*.npy")) == versions
    assert backend.list_dir("scratch") == []
    assert reads[0] > 0


def test_processes_share_a_root_without_loss(shared_backend: StorageBackend) -> None:
    """Four processes write their own objects and overwrite one shared key while a fifth only reads."""
    disk = shared_backend
    disk.ensure_directory("shared")
    disk.save(payload(0), "shared/key.tif")
    per_writer = 30

    def body(i: int, _barrier: Any) -> int:
        if i == 4:  # the reader: every load must be a whole version, never a torn or missing file
            loads = 0
            while loads < 300:
                version_of(disk.load("shared/key.tif"))
                assert all(".hcsvfs-tmp-" not in n for n in disk.list_dir("shared"))
                loads += 1
            return loads
        disk.ensure_directory(f"p{i}")
        for k in range(per_writer):
            disk.save(payload(i * 1000 + k), f"p{i}/o{k}.npy")
            disk.save(payload(i * 1000 + k), "shared/key.tif", overwrite=True)
        return per_writer

    outcomes = start_together(5, body)
    for o in outcomes:
        assert not isinstance(o, BaseException), repr(o)
    for i in range(4):
        assert [version_of(disk.load(f"p{i}/o{k}.npy")) for k in range(per_writer)] == [
            i * 1000 + k for k in range(per_writer)
        ]
    assert version_of(disk.load("shared/key.tif")) % 1000 == per_writer - 1  # one writer's last save won
    assert temp_files(disk.root) == []
    assert disk.list_dir("shared") == ["key.tif"]


def test_racing_ensure_directory_and_save_batch(backend: StorageBackend) -> None:
    """Many threads create the same parents and save disjoint batches into them: all succeed."""

    def body(i: int) -> None:
        backend.ensure_directory("plate/A/01")
        backend.save_batch([payload(i * 10 + f) for f in range(3)], [f"plate/A/01/t{i}_f{f}.npy" for f in range(3)])

    outcomes = run_threads(6, body)
    assert not any(isinstance(o, BaseException) for o in outcomes), outcomes
    assert len(backend.list_files("plate/A/01")) == 18


def test_a_loaded_shared_memory_view_survives_overwrite_and_delete(tmp_path: Path, request: pytest.FixtureRequest) -> None:
    """A reader's zero-copy view must stay readable after a writer replaces or deletes the entry.

    Run in a forked child: the bug this guards against was a segfault (unmapped memory), which
    would otherwise take the whole test session down.
    """
    shm = BACKENDS["shared_memory"](tmp_path, request)

    def body() -> list[int]:
        shm.save(payload(1, shape=(256, 256)), "x.npy")
        view = shm.load("x.npy")
        shm.save(payload(2, shape=(256, 256)), "x.npy", overwrite=True)
        first = version_of(view)  # still the old version, still mapped
        view2 = shm.load("x.npy")
        shm.delete("x.npy")
        return [first, version_of(view2), int(view.sum() // view.size)]

    assert run_in_child(body) == [1, 2, 1]
