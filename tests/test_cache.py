"""ByteCache: bounded in bytes, least recently used first, shared by threads and processes, never stale."""

from __future__ import annotations

import multiprocessing as mp
import os
import threading
import uuid
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from hcsvfs.backends.cache import ByteCache
from hcsvfs.backends.objectstore import ObjectStoreBackend
from hcsvfs.errors import StorageError


def blob(key: str, size: int) -> bytes:
    return (key.encode() * (size // max(len(key), 1) + 1))[:size]


# ---------------------------------------------------------------- the byte bound and LRU order
@given(ops=st.lists(st.tuples(st.integers(0, 9), st.integers(0, 400)), min_size=1, max_size=40))
def test_never_exceeds_its_byte_limit(tmp_path_factory: pytest.TempPathFactory, ops: list[tuple[int, int]]) -> None:
    cache = ByteCache(tmp_path_factory.mktemp("c"), max_bytes=1000)
    for key, size in ops:
        cache.put(f"k{key}", "v1", blob(f"k{key}", size))
        assert cache.total_bytes() <= 1000
    last_key, last_size = ops[-1]
    assert cache.get(f"k{last_key}", "v1") == blob(f"k{last_key}", last_size)  # the newest entry always fits


def test_least_recently_used_is_evicted_first(tmp_path: Path) -> None:
    cache = ByteCache(tmp_path, max_bytes=300)
    for k in "abc":
        cache.put(k, "v", blob(k, 100))
        os.utime(cache._entry(k, "v"), (0, {"a": 1, "b": 2, "c": 3}[k]))  # distinct, ordered use times
    assert cache.get("a", "v") is not None  # "a" becomes the most recent
    cache.put("d", "v", blob("d", 100))
    assert cache.get("b", "v") is None
    assert [cache.get(k, "v") is not None for k in "acd"] == [True, True, True]
    assert cache.stats.evictions == 1


def test_too_large_objects_are_not_cached(tmp_path: Path) -> None:
    cache = ByteCache(tmp_path, max_bytes=100)
    assert cache.put("big", "v", b"x" * 101) is False
    assert cache.get("big", "v") is None and cache.stats.too_large == 1 and len(cache) == 0


def test_versions_are_distinct_and_invalidate_forgets_all(tmp_path: Path) -> None:
    cache = ByteCache(tmp_path, max_bytes=1000)
    cache.put("k", "etag1", b"old")
    assert cache.get("k", "etag2") is None  # another version is never served the old bytes
    cache.put("k", "etag2", b"new")
    assert cache.get("k", "etag1") is None and cache.get("k", "etag2") == b"new"  # put replaced the old version
    cache.invalidate("k")
    assert cache.get("k", "etag2") is None and len(cache) == 0


def test_a_pickled_cache_shares_the_folder(tmp_path: Path) -> None:
    import pickle

    cache = ByteCache(tmp_path, max_bytes=1000)
    cache.put("k", "v", b"abc")
    clone = pickle.loads(pickle.dumps(cache))
    assert clone.get("k", "v") == b"abc" and clone.max_bytes == 1000
    clone.put("k2", "v", b"x" * 998)
    assert cache.get("k", "v") is None  # evicted by the clone: one bound for both


def test_bad_size_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        ByteCache(tmp_path, max_bytes=0)


# ---------------------------------------------------------------- threads and processes
def test_threads_share_one_cache(tmp_path: Path) -> None:
    cache = ByteCache(tmp_path, max_bytes=5000)
    errors: list[BaseException] = []

    def work(t: int) -> None:
        try:
            for i in range(60):
                key = f"t{t}-{i % 15}"
                got = cache.get(key, "v")
                assert got is None or got == blob(key, 300)
                cache.put(key, "v", blob(key, 300))
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == [] and cache.total_bytes() <= 5000


def _process_worker(directory: str, worker: int) -> None:
    cache = ByteCache(directory, max_bytes=4000)
    for i in range(40):
        key = f"p{worker}-{i % 12}"
        got = cache.get(key, "v")
        if got is not None and got != blob(key, 250):
            raise SystemExit(3)  # a torn or foreign entry
        cache.put(key, "v", blob(key, 250))
        if cache.total_bytes() > 4000:
            raise SystemExit(4)


def test_processes_share_one_cache_within_the_bound(tmp_path: Path) -> None:
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_process_worker, args=(str(tmp_path), w)) for w in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert [p.exitcode for p in procs] == [0, 0, 0]
    cache = ByteCache(tmp_path, max_bytes=4000)
    assert 0 < cache.total_bytes() <= 4000
    assert not [n for n in os.listdir(tmp_path) if n.startswith(".hcsvfs-tmp-")]


# ---------------------------------------------------------------- the cache under the object-store backend
@pytest.fixture
def cached(tmp_path: Path) -> tuple[ObjectStoreBackend, ObjectStoreBackend]:
    """Two backends on one memory:// root: one with a cache, one plain (another writer)."""
    url = f"memory://cache-test-{uuid.uuid4().hex[:8]}"
    with_cache = ObjectStoreBackend(url, cache=ByteCache(tmp_path / "cache", max_bytes=1 << 20))
    yield with_cache, ObjectStoreBackend(url)
    with_cache.fs.rm(with_cache._root, recursive=True)


def test_hits_are_served_from_the_cache(cached) -> None:
    b, _ = cached
    b.save(np.arange(100), "x.npy")
    assert np.array_equal(b.load("x.npy"), np.arange(100))
    assert np.array_equal(b.load("x.npy"), np.arange(100))
    assert (b.cache.stats.misses, b.cache.stats.hits) == (1, 1)


def test_overwrite_and_delete_through_the_vfs_are_never_stale(cached) -> None:
    b, _ = cached
    b.save(np.arange(10), "x.npy")
    b.load("x.npy")
    b.save(np.arange(20), "x.npy", overwrite=True)
    assert np.array_equal(b.load("x.npy"), np.arange(20))
    b.ensure_directory("d")
    b.copy("x.npy", "d/y.npy")
    b.load("d/y.npy")
    b.delete_all("d")
    with pytest.raises(FileNotFoundError):
        b.load("d/y.npy")
    assert len(b.cache) == 1  # only x.npy's current version is held


def test_an_overwrite_by_another_writer_is_not_served_stale(cached) -> None:
    b, other = cached
    b.save(np.arange(10), "x.npy")
    b.load("x.npy")
    other.save(np.arange(10) * 7, "x.npy", overwrite=True)  # behind the cache's back
    assert np.array_equal(b.load("x.npy"), np.arange(10) * 7)


def test_a_directory_is_still_a_directory_with_a_cache(cached) -> None:
    b, _ = cached
    b.ensure_directory("d")
    with pytest.raises(IsADirectoryError) as info:
        b.load("d")
    assert isinstance(info.value, StorageError)
