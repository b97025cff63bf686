"""MemoryStorageBackend: live objects, separate namespaces, shared stores and thread safety."""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Iterator

import numpy as np
import pytest

from hcsvfs import MemoryStorageBackend
from hcsvfs.backends.memory import DIRECTORY
from hcsvfs.errors import DirectoryNotEmptyError, PathNotFoundError


@pytest.fixture
def fast_switching() -> Iterator[None]:
    """Make the interpreter switch threads as often as it can, so races show up in a short test."""
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        yield
    finally:
        sys.setswitchinterval(old)


def run_threads(targets: list[Callable[[], None]]) -> None:
    errors: list[BaseException] = []

    def wrap(fn: Callable[[], None]) -> Callable[[], None]:
        def run() -> None:
            try:
                fn()
            except BaseException as exc:  # surfaced in the main thread below
                errors.append(exc)

        return run

    threads = [threading.Thread(target=wrap(t)) for t in targets]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in threads), "a thread hung (deadlock?)"
    if errors:
        raise errors[0]


def test_load_returns_the_saved_object_without_copying() -> None:
    mem = MemoryStorageBackend()
    big = np.zeros((1024, 1024), np.float32)
    mem.save(big, "big")
    got = mem.load("big")
    assert got is big
    got[0, 0] = 5  # the live object: a mutation is visible to every holder, by design
    assert mem.load("big")[0, 0] == 5
    assert mem.stat("big").size == big.nbytes and mem.stat("big").extra["type"] == "ndarray"


def test_any_python_object_is_stored() -> None:
    mem = MemoryStorageBackend()
    objs = {"set": {1, 2}, "lambda": lambda x: x, "none": None, "gen": (i for i in range(3))}
    for name, obj in objs.items():
        mem.save(obj, name)
    assert all(mem.load(name) is obj for name, obj in objs.items())
    assert mem.is_file("none") and len(mem) == 4


def test_separate_instances_are_separate_namespaces() -> None:
    a, b = MemoryStorageBackend(), MemoryStorageBackend()
    a.save(1, "x")
    assert not b.exists("x")
    with pytest.raises(PathNotFoundError):
        b.load("x")


def test_an_external_dict_is_shared_on_purpose() -> None:
    store: dict[str, object] = {}
    a, b = MemoryStorageBackend(store), MemoryStorageBackend(store)
    a.ensure_directory("plate/A01")
    a.save("img", "plate/A01/x")
    assert b.load("plate/A01/x") == "img" and b.list_dir("plate") == ["A01"]
    assert store["plate/A01/x"] == "img" and store["plate"] is DIRECTORY


def test_directories_are_explicit() -> None:
    mem = MemoryStorageBackend()
    with pytest.raises(FileNotFoundError, match="ensure_directory"):
        mem.save(1, "a/b/x")
    assert not mem.exists("a")
    mem.ensure_directory("a/b")
    mem.save(1, "a/b/x")
    assert mem.is_dir("a") and mem.is_dir("a/b") and mem.list_dir("a") == ["b"]
    assert mem.list_files("a") == [] and mem.list_files("a", recursive=True) == ["a/b/x"]
    with pytest.raises(DirectoryNotEmptyError):
        mem.delete("a")
    with pytest.raises(NotADirectoryError):
        mem.load("a/b/x/deeper")
    with pytest.raises(IsADirectoryError):
        mem.load(".")


def test_absolute_paths_are_their_own_tree() -> None:
    mem = MemoryStorageBackend()
    mem.ensure_directory("/workspace/A01")
    mem.save(3, "/workspace/A01/x.tif")
    mem.save(4, "x.tif")
    assert mem.list_files("/workspace/A01") == ["/workspace/A01/x.tif"]
    assert mem.list_files(".", recursive=True) == ["x.tif"]
    assert mem.list_files("/", recursive=True) == ["/workspace/A01/x.tif"]


def test_move_renames_keys_without_copying() -> None:
    mem = MemoryStorageBackend()
    mem.ensure_directory("src/sub")
    obj = np.ones(4)
    mem.save(obj, "src/sub/x")
    mem.move("src", "dst")
    assert mem.load("dst/sub/x") is obj and not mem.exists("src")
    mem.copy("dst", "cp")
    assert mem.load("cp/sub/x") is obj  # copies are shallow: the same live object under a second name


# ---------------------------------------------------------------- threads
def test_many_threads_saving_and_loading_lose_nothing(fast_switching: None) -> None:
    mem = MemoryStorageBackend()
    mem.ensure_directory("w")
    n_threads, per_thread = 8, 300

    def writer(t: int) -> Callable[[], None]:
        def run() -> None:
            mem.ensure_directory(f"w/t{t}")
            for i in range(per_thread):
                obj = np.full(4, t * 10_000 + i)
                mem.save(obj, f"w/t{t}/{i}")
                assert mem.load(f"w/t{t}/{i}") is obj
                mem.save(obj, "w/shared", overwrite=True)
                assert isinstance(mem.load("w/shared"), np.ndarray)

        return run

    run_threads([writer(t) for t in range(n_threads)])
    files = mem.list_files("w", recursive=True)
    assert len(files) == n_threads * per_thread + 1
    for t in range(n_threads):
        for i in range(per_thread):
            assert mem.load(f"w/t{t}/{i}")[0] == t * 10_000 + i


def test_a_batch_is_all_or_nothing_to_readers(fast_switching: None) -> None:
    mem = MemoryStorageBackend()
    width, rounds = 64, 300
    paths = [f"p{j}" for j in range(width)]
    mem.save_batch([0] * width, paths)
    stop = threading.Event()
    torn: list[list[int]] = []
    partial: list[int] = []
    latest = [0]

    def batch_writer() -> None:
        for version in range(1, rounds + 1):
            mem.save_batch([version] * width, paths, overwrite=True)
            mem.ensure_directory(f"new{version}")
            latest[0] = version
            mem.save_batch([version] * width, [f"new{version}/{j}" for j in range(width)])
        stop.set()

    def value_reader() -> None:
        while not stop.is_set():
            values = mem.load_batch(paths)
            if len(set(values)) != 1:
                torn.append(values)

    def listing_reader() -> None:
        while not stop.is_set():
            # The directory exists before its batch lands, so it may be empty; it is never half full.
            count = len(mem.list_files(f"new{latest[0]}")) if latest[0] else 0
            if count not in (0, width):
                partial.append(count)

    run_threads([batch_writer, value_reader, value_reader, listing_reader])
    assert not torn, f"readers saw a half-applied batch: {torn[0]}"
    assert not partial, f"listings saw part of a batch: {partial[:3]}"
    assert mem.load_batch(paths) == [rounds] * width


def test_failed_batch_writes_nothing() -> None:
    mem = MemoryStorageBackend()
    mem.save("keep", "b")
    with pytest.raises(FileExistsError):
        mem.save_batch(["x", "y", "z"], ["a", "b", "c"])
    assert not mem.exists("a") and not mem.exists("c") and mem.load("b") == "keep"
    with pytest.raises(ValueError, match="twice"):
        mem.save_batch([1, 2], ["d", "d"])
    with pytest.raises(ValueError, match="2 objects but 1 paths"):
        mem.save_batch([1, 2], ["e"])
    assert sorted(mem.list_files(".")) == ["b"]


def test_concurrent_moves_and_deletes_keep_the_tree_consistent(fast_switching: None) -> None:
    mem = MemoryStorageBackend()
    n = 200
    for k in range(4):
        mem.ensure_directory(f"d{k}")
        mem.save_batch(list(range(n)), [f"d{k}/{i}" for i in range(n)])

    def mover(k: int) -> Callable[[], None]:
        def run() -> None:
            for r in range(30):
                src, dst = (f"d{k}", f"m{k}") if r % 2 == 0 else (f"m{k}", f"d{k}")
                mem.move(src, dst)

        return run

    def lister() -> None:
        for _ in range(300):
            for d in mem.list_dir("."):
                try:
                    assert len(mem.list_files(d)) == n
                except FileNotFoundError:
                    pass  # moved away between list_dir and list_files: fine, but never half moved

    run_threads([mover(k) for k in range(4)] + [lister, lister])
    assert sorted(mem.list_dir(".")) == [f"d{k}" for k in range(4)]
    assert len(mem) == 4 * n
