"""The process-shared memory backend: zero-copy reads across processes and segment clean-up in every ending."""

from __future__ import annotations

import multiprocessing as mp
import os
import pickle
import signal

import numpy as np
import pytest

from hcsvfs.backends.shared_memory import SharedMemoryStorageBackend
from hcsvfs.errors import StorageError, UnsupportedTypeError

SPAWN = mp.get_context("spawn")


@pytest.fixture
def shm():
    backend = SharedMemoryStorageBackend()
    yield backend
    backend.close()


def _child_sum(backend: SharedMemoryStorageBackend, path: str, queue) -> None:
    view = backend.load(path)
    queue.put((int(view.sum()), view.flags.owndata, view.flags.writeable))


def _child_save(backend: SharedMemoryStorageBackend, path: str) -> None:
    backend.save(np.full((64, 64), 7, dtype="uint16"), path)


def _child_save_then_die(backend: SharedMemoryStorageBackend) -> None:
    backend.save(np.ones((256, 256), dtype="float32"), "dying/a.npy")
    os.kill(os.getpid(), signal.SIGKILL)


def test_load_is_a_read_only_view_of_the_segment(shm: SharedMemoryStorageBackend) -> None:
    data = np.arange(1000, dtype="int32").reshape(10, 100)
    shm.save(data, "a.npy")
    got = shm.load("a.npy")
    assert np.array_equal(got, data) and not got.flags.owndata and not got.flags.writeable
    with pytest.raises(ValueError):
        got[0, 0] = 1
    assert shm.stat("a.npy").size == data.nbytes


def test_a_worker_process_reads_what_the_parent_saved_zero_copy(shm: SharedMemoryStorageBackend) -> None:
    shm.save(np.arange(4096, dtype="int64"), "x.npy")
    queue = SPAWN.Queue()
    proc = SPAWN.Process(target=_child_sum, args=(shm, "x.npy", queue))
    proc.start()
    total, owndata, writeable = queue.get(timeout=60)
    proc.join(60)
    assert total == int(np.arange(4096).sum()) and not owndata and not writeable


def test_what_a_worker_saved_outlives_the_worker(shm: SharedMemoryStorageBackend) -> None:
    shm.ensure_directory("w")
    proc = SPAWN.Process(target=_child_save, args=(shm, "w/x.npy"))
    proc.start()
    proc.join(60)
    assert proc.exitcode == 0
    assert shm.load("w/x.npy").sum() == 7 * 64 * 64


def test_close_unlinks_every_segment_and_the_index(shm: SharedMemoryStorageBackend) -> None:
    shm.ensure_directory("d/e")
    for i in range(3):
        shm.save(np.full(10, i), f"d/e/{i}.npy")
    assert len(shm.segments()) == 3
    index = shm.root
    shm.close()
    assert shm.segments() == [] and not index.exists()
    with pytest.raises(FileNotFoundError, match="namespace"):
        SharedMemoryStorageBackend(shm.namespace)


def test_delete_overwrite_and_move_leave_no_stray_segment(shm: SharedMemoryStorageBackend) -> None:
    shm.save(np.zeros(5), "a.npy")
    shm.save(np.ones(5), "a.npy", overwrite=True)
    shm.save(np.ones(6), "b.npy")
    shm.move("b.npy", "a.npy", overwrite=True)
    assert len(shm.segments()) == 1
    shm.copy("a.npy", "c.npy")
    assert len(shm.segments()) == 2
    shm.ensure_directory("t")
    shm.move("c.npy", "t/c.npy")
    shm.delete_all("t")
    shm.delete("a.npy")
    assert shm.segments() == []


def test_segments_of_a_worker_killed_mid_well_are_cleaned(shm: SharedMemoryStorageBackend) -> None:
    shm.ensure_directory("dying")
    proc = SPAWN.Process(target=_child_save_then_die, args=(shm,))
    proc.start()
    proc.join(60)
    assert proc.exitcode == -signal.SIGKILL
    assert len(shm.segments()) == 1  # the resource tracker did not unlink it behind the owner's back
    assert shm.load("dying/a.npy").sum() == 256 * 256
    shm.close()
    assert shm.segments() == []


def test_orphaned_segment_without_index_entry_is_reaped(shm: SharedMemoryStorageBackend) -> None:
    from multiprocessing import shared_memory

    stray = shared_memory.SharedMemory(create=True, size=16, name=f"hcsvfs_{shm.namespace.rsplit('-', 1)[-1]}_dead")
    stray.close()
    shm.save(np.zeros(3), "kept.npy")
    assert shm.reap() == 1
    assert len(shm.segments()) == 1 and shm.load("kept.npy").shape == (3,)


def test_empty_segment_of_a_writer_killed_before_sizing_it_is_reaped(shm: SharedMemoryStorageBackend) -> None:
    """A writer SIGKILLed between shm_open and ftruncate leaves a 0-byte segment, which cannot be mapped."""
    import _posixshmem

    name = f"/hcsvfs_{shm.namespace.rsplit('-', 1)[-1]}_unsized"
    os.close(_posixshmem.shm_open(name, os.O_CREAT | os.O_EXCL | os.O_RDWR, mode=0o600))
    assert os.path.getsize(f"/dev/shm{name}") == 0
    shm.close()  # used to raise "cannot mmap an empty file" while unlinking
    assert not os.path.exists(f"/dev/shm{name}") and shm.segments() == []


def test_namespace_of_a_dead_owner_is_destroyed_by_the_next_owner() -> None:
    ctx = mp.get_context("fork")
    receiver, sender = ctx.Pipe(duplex=False)

    def owner() -> None:
        b = SharedMemoryStorageBackend()
        b.save(np.zeros(100), "x.npy")
        sender.send((b.namespace, b.segments()))  # a pipe send is done before the kill, unlike a queue's
        os.kill(os.getpid(), signal.SIGKILL)

    proc = ctx.Process(target=owner)
    proc.start()
    assert receiver.poll(60)
    namespace, segments = receiver.recv()
    proc.join(60)
    assert len(segments) == 1
    fresh = SharedMemoryStorageBackend()
    try:
        with pytest.raises(FileNotFoundError):
            SharedMemoryStorageBackend(namespace)
        assert not any(os.path.exists(f"/dev/shm/{s}") for s in segments)
    finally:
        fresh.close()


def test_a_live_owner_in_another_pid_namespace_is_never_reaped() -> None:
    """A neighbouring container sharing /dev/shm has PIDs this process cannot see: its namespace looks orphaned
    by PID, but its owner lock is held, so it stays; and a dead owner whose PID was reused is reaped."""
    from hcsvfs.backends import shared_memory as shm_mod

    neighbour = SharedMemoryStorageBackend()  # stands in for the other container's owner: it holds the lock
    neighbour.save(np.ones(10), "x.npy")
    unseen = neighbour._index_dir.with_name(f"hcsvfs-shm-999999999-{neighbour._token}")  # a PID we cannot see
    os.rename(neighbour._index_dir, unseen)
    reused = SharedMemoryStorageBackend()  # a dead owner whose PID (ours) is alive again: lock free, PID alive
    _obj, _destroy, (_dir, _token, alive), _kw = reused._finalizer.detach()
    alive.release()  # as the kernel does when the owner dies
    reused_dir = reused._index_dir
    try:
        shm_mod._reap_orphans()
        assert unseen.is_dir() and neighbour.segments()  # the neighbour's live data is untouched
        assert not reused_dir.exists()  # reaped although a process with its PID is alive
    finally:
        os.rename(unseen, neighbour._index_dir)
        neighbour.close()


def test_pickles_as_a_handle_to_the_same_namespace(shm: SharedMemoryStorageBackend) -> None:
    shm.save(np.arange(3), "a.npy")
    twin = pickle.loads(pickle.dumps(shm))
    assert twin.namespace == shm.namespace and not twin.owner
    assert np.array_equal(twin.load("a.npy"), [0, 1, 2])


def test_non_arrays_are_refused_with_advice(shm: SharedMemoryStorageBackend) -> None:
    with pytest.raises(UnsupportedTypeError, match="memory backend") as info:
        shm.save({"a": 1}, "d.json")
    assert isinstance(info.value, StorageError) and info.value.path == "d.json"
    with pytest.raises(UnsupportedTypeError):
        shm.save(np.array([object()]), "o.npy")
    assert not shm.exists("d.json")


def test_torch_tensors_are_stored_as_host_arrays(shm: SharedMemoryStorageBackend) -> None:
    torch = pytest.importorskip("torch")
    shm.save(torch.arange(6, dtype=torch.float32).reshape(2, 3), "t.npy")
    got = shm.load("t.npy")
    assert got.dtype == np.float32 and got.shape == (2, 3) and got[1, 2] == 5
