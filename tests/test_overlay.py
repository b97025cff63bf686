"""MemoryOverlay: spilling, restoring, pinning, the pause threshold, crash safety, threads and peak RSS."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from hcsvfs.backends import DiskStorageBackend, MemoryStorageBackend
from hcsvfs.errors import MemoryBudgetError, StorageError
from hcsvfs.tiering import MemoryOverlay

KiB = 1024
SRC = str(Path(__file__).resolve().parents[1] / "src")


def block(i: int, n: int = 16 * KiB) -> np.ndarray:
    """``n`` bytes whose content encodes ``i`` (so a mix-up between entries is caught)."""
    return np.full(n // 4, i, np.int32)


def overlay(tmp: Path, budget: int = 64 * KiB, **kw) -> MemoryOverlay:
    kw.setdefault("background", False)
    return MemoryOverlay(DiskStorageBackend(tmp / "spill", fsync=False), budget=budget, **kw)


def check_invariants(ov: MemoryOverlay) -> None:
    """Every file is in memory or on the persistent tier; the byte count matches the entries."""
    s = ov.stats()
    assert s["io_in_flight"] == 0
    files = ov.list_files(".", recursive=True)
    assert len(files) == len(set(files)) == s["memory_entries"] + s["spilled_entries"]
    for f in files:
        if ov.tier(f) == "persistent":
            assert ov.persistent.is_file(f)


# ---------------------------------------------------------------- basics
def test_saves_land_in_memory_as_live_objects(tmp_path: Path) -> None:
    ov = overlay(tmp_path)
    a = block(1)
    ov.save(a, "x")
    assert ov.load("x") is a and ov.tier("x") == "memory"
    assert not ov.persistent.exists("x")
    s = ov.stats()
    assert s["memory_bytes"] == a.nbytes and s["spilled_bytes"] == 0 and s["hits"] == 1


def test_lru_entries_spill_first_and_come_back(tmp_path: Path) -> None:
    ov = overlay(tmp_path, budget=64 * KiB)  # target 38 KiB, spill 44 KiB: two 16 KiB blocks stay
    ov.ensure_directory("w")
    for i in range(6):
        ov.save(block(i), f"w/{i}.npy")
    tiers = [ov.tier(f"w/{i}.npy") for i in range(6)]
    assert tiers == ["persistent"] * 4 + ["memory"] * 2
    assert ov.stats()["memory_bytes"] <= ov.target_bytes
    assert np.array_equal(ov.persistent.load("w/0.npy"), block(0))  # readable straight from the tier
    got = ov.load("w/0.npy")  # a miss: restored, and now most recently used
    assert np.array_equal(got, block(0)) and ov.tier("w/0.npy") != "persistent"
    s = ov.stats()
    assert (s["misses"], s["restore_count"], s["restore_bytes_total"]) == (1, 1, 16 * KiB)
    assert s["spill_count"] >= 4 and s["spill_bytes_total"] >= 4 * 16 * KiB and s["spill_mb_per_s"] > 0
    assert ov.tier("w/4.npy") == "persistent"  # the oldest resident one made room
    assert ov.list_files("w") == [f"w/{i}.npy" for i in range(6)]  # one namespace, nothing twice
    check_invariants(ov)


def test_recently_loaded_entries_stay(tmp_path: Path) -> None:
    ov = overlay(tmp_path, budget=64 * KiB)
    ov.save(block(0), "a")
    ov.save(block(1), "b")
    ov.load("a")  # a is now more recent than b
    ov.save(block(2), "c")
    assert ov.tier("b") == "persistent" and ov.tier("a") == "memory"


def test_background_spiller_works_below_the_spill_threshold(tmp_path: Path) -> None:
    ov = overlay(tmp_path, budget=100 * KiB, target=0.3, spill=0.9, pause=1.0, background=True)
    for i in range(4):  # 64 KiB: above target (30 KiB), below spill (90 KiB)
        ov.save(block(i), f"e{i}")
    deadline = time.monotonic() + 10
    while ov.stats()["memory_bytes"] > ov.target_bytes and time.monotonic() < deadline:
        time.sleep(0.02)
    assert ov.stats()["memory_bytes"] <= ov.target_bytes
    assert all(np.array_equal(ov.load(f"e{i}"), block(i)) for i in range(4))
    ov.close()
    assert not ov._thread.is_alive()


# ---------------------------------------------------------------- what cannot spill
def test_objects_the_persistent_tier_cannot_store_stay_in_memory(tmp_path: Path) -> None:
    ov = overlay(tmp_path, budget=64 * KiB)
    thing = {"callback": lambda x: x, "payload": list(range(10))}
    ov.save(thing, "state")
    for i in range(8):
        ov.save(block(i), f"b{i}")
    assert ov.load("state") is thing and ov.tier("state") == "memory"
    s = ov.stats()
    assert s["unspillable_entries"] == 1 and s["unspillable"] == 1 and s["unspillable_bytes"] > 0
    assert all(np.array_equal(ov.load(f"b{i}"), block(i)) for i in range(8))
    with pytest.raises(TypeError):
        ov.materialize("state")
    check_invariants(ov)


def test_pause_with_everything_pinned_raises_not_hangs(tmp_path: Path) -> None:
    ov = overlay(tmp_path, budget=64 * KiB, pause_timeout=0.3)
    for i in range(3):
        ov.save(block(i), f"p{i}")
        ov.pin(f"p{i}")
    ov.ensure_directory("one/too")
    start = time.monotonic()
    with pytest.raises(MemoryBudgetError) as info:
        ov.save(block(9), "one/too/many")
    waited = time.monotonic() - start
    assert 0.25 <= waited < 5
    err = info.value
    assert isinstance(err, MemoryError) and isinstance(err, StorageError)
    assert "one/too/many" in str(err) and "pinned" in str(err) and "Unpin" in str(err)
    assert not ov.exists("one/too/many")
    s = ov.stats()
    assert s["budget_errors"] == 1 and s["pauses"] == 1 and s["pinned_bytes"] == 48 * KiB


def test_pause_unblocks_when_memory_is_freed(tmp_path: Path) -> None:
    ov = overlay(tmp_path, budget=64 * KiB, pause_timeout=10)
    for i in range(3):
        ov.save(block(i), f"p{i}")
        ov.pin(f"p{i}")
    threading.Timer(0.2, ov.unpin, args=("p0",)).start()
    start = time.monotonic()
    ov.save(block(9), "late")  # waits for the unpin, then spills p0
    assert 0.15 <= time.monotonic() - start < 5
    assert ov.tier("p0") == "persistent" and np.array_equal(ov.load("late"), block(9))
    assert ov.stats()["pause_seconds"] > 0.1


def test_an_object_larger_than_the_budget_is_refused_at_once(tmp_path: Path) -> None:
    ov = overlay(tmp_path, budget=64 * KiB, pause_timeout=30)
    start = time.monotonic()
    with pytest.raises(MemoryBudgetError) as info:
        ov.save(block(0, 128 * KiB), "huge")
    assert time.monotonic() - start < 1 and "huge" in str(info.value) and "persistent backend" in str(info.value)


def test_spill_errors_keep_the_entry(tmp_path: Path) -> None:
    class Failing(DiskStorageBackend):
        def save(self, data, path, **kw):
            raise OSError(5, "simulated I/O error")

    ov = MemoryOverlay(Failing(tmp_path / "spill"), budget=64 * KiB, background=False, pause_timeout=0.2)
    for i in range(3):
        ov.save(block(i), f"f{i}")
    with pytest.raises(MemoryBudgetError) as info:
        for i in range(3, 6):
            ov.save(block(i), f"f{i}")
    assert "simulated I/O error" in str(info.value)
    s = ov.stats()
    assert s["spill_errors"] > 0 and s["spilled_entries"] == 0
    assert all(np.array_equal(ov.load(f"f{i}"), block(i)) for i in range(3))


# ---------------------------------------------------------------- pin and materialize
def test_pin_restores_and_protects(tmp_path: Path) -> None:
    ov = overlay(tmp_path, budget=64 * KiB)
    ov.save(block(0), "hot")
    for i in range(4):
        ov.save(block(i + 1), f"cold{i}")
    assert ov.tier("hot") == "persistent"
    ov.pin("hot")
    assert ov.tier("hot") != "persistent"
    for i in range(4, 10):
        ov.save(block(i + 1), f"cold{i}")
    assert ov.tier("hot") != "persistent"
    ov.unpin("hot")
    for i in range(10, 13):
        ov.save(block(i + 1), f"cold{i}")
    assert ov.tier("hot") == "persistent"
    with pytest.raises(FileNotFoundError):
        ov.pin("nope")


def test_materialize_persists_without_dropping(tmp_path: Path) -> None:
    ov = overlay(tmp_path, budget=1024 * KiB)
    ov.ensure_directory("d")
    a = block(5)
    ov.save(a, "d/a.npy")
    ov.save(block(6), "d/b.npy")
    ov.materialize("d/a.npy")
    assert ov.tier("d/a.npy") == "memory+persistent" and ov.load("d/a.npy") is a
    assert np.array_equal(ov.persistent.load("d/a.npy"), a)
    ov.save("text is stored too", "d/c.txt")
    ov.save(object(), "d/obj")
    assert sorted(ov.materialize_all()) == ["d/a.npy", "d/b.npy", "d/c.txt"]
    assert ov.persistent.list_files("d") == ["d/a.npy", "d/b.npy", "d/c.txt"]
    assert ov.stats()["materialize_count"] == 4 and ov.stats()["unspillable_entries"] == 1


# ---------------------------------------------------------------- one namespace
def test_overwrite_delete_and_move_keep_tiers_consistent(tmp_path: Path) -> None:
    ov = overlay(tmp_path, budget=64 * KiB)
    ov.ensure_directory("a/sub")
    for i in range(5):
        ov.save(block(i), f"a/sub/{i}.npy")
    assert ov.tier("a/sub/0.npy") == "persistent"
    with pytest.raises(FileExistsError):
        ov.save(block(99), "a/sub/0.npy")
    ov.save(block(42), "a/sub/0.npy", overwrite=True)  # a spilled entry replaced by a resident one
    assert np.array_equal(ov.load("a/sub/0.npy"), block(42))
    ov.delete("a/sub/1.npy")  # spilled: its persistent copy goes too
    assert not ov.exists("a/sub/1.npy") and not ov.persistent.exists("a/sub/1.npy")
    ov.move("a", "b")
    assert not ov.exists("a") and not ov.persistent.exists("a")
    assert ov.list_files("b", recursive=True) == [f"b/sub/{i}.npy" for i in (0, 2, 3, 4)]
    assert [ov.load(f"b/sub/{i}.npy")[0] for i in (0, 2, 3, 4)] == [42, 2, 3, 4]
    ov.move("b/sub/2.npy", "b/sub/3.npy", overwrite=True)
    assert ov.load("b/sub/3.npy")[0] == 2 and not ov.exists("b/sub/2.npy")
    check_invariants(ov)
    ov.delete_all("b")
    assert ov.list_files(".", recursive=True) == [] and ov.persistent.list_files(".", recursive=True) == []
    assert ov.stats()["memory_bytes"] == 0


def test_any_backend_can_be_the_persistent_tier(tmp_path: Path) -> None:
    tier = MemoryStorageBackend()
    ov = MemoryOverlay(tier, budget=64 * KiB, background=False)
    for i in range(6):
        ov.save(block(i), f"m{i}")
    assert tier.is_file("m0") and ov.tier("m0") == "persistent"
    assert all(np.array_equal(ov.load(f"m{i}"), block(i)) for i in range(6))


def test_adopt_existing_sees_what_an_earlier_overlay_spilled(tmp_path: Path) -> None:
    first = overlay(tmp_path, budget=64 * KiB)
    first.ensure_directory("r")
    for i in range(6):
        first.save(block(i), f"r/{i}.npy")
    spilled = [f"r/{i}.npy" for i in range(6) if first.tier(f"r/{i}.npy") == "persistent"]
    second = overlay(tmp_path, budget=64 * KiB, adopt_existing=True)
    assert second.list_files("r") == spilled
    assert all(np.array_equal(second.load(p), block(int(p[2]))) for p in spilled)


def test_bad_thresholds(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        overlay(tmp_path, target=0.9, spill=0.5)
    with pytest.raises(ValueError):
        overlay(tmp_path, budget="lots")


# ---------------------------------------------------------------- threads
def test_concurrent_saves_and_loads_lose_nothing(tmp_path: Path) -> None:
    ov = overlay(tmp_path, budget=96 * KiB, background=True, pause_timeout=30)
    n_threads, per_thread = 4, 40
    errors: list[BaseException] = []

    def work(t: int) -> None:
        try:
            ov.ensure_directory(f"t{t}")
            for i in range(per_thread):
                ov.save(block(t * 1000 + i, 8 * KiB), f"t{t}/{i}")
                j = (i * 7) % (i + 1)  # reread an older entry of our own
                assert ov.load(f"t{t}/{j}")[0] == t * 1000 + j
                other = (t + 1) % n_threads
                if ov.exists(f"t{other}/0"):
                    assert ov.load(f"t{other}/0")[0] == other * 1000
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(n_threads)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(60)
    assert not errors, errors
    for t in range(n_threads):
        for i in range(per_thread):
            assert np.array_equal(ov.load(f"t{t}/{i}"), block(t * 1000 + i, 8 * KiB))
    s = ov.stats()
    assert s["spill_count"] > 0 and s["peak_memory_bytes"] <= ov.pause_bytes
    ov.close()
    check_invariants(ov)


def test_a_slow_spill_does_not_block_loads_of_other_entries(tmp_path: Path) -> None:
    gate = threading.Event()

    class Slow(DiskStorageBackend):
        def save(self, data, path, **kw):
            gate.wait(10)
            super().save(data, path, **kw)

    ov = MemoryOverlay(Slow(tmp_path / "spill", fsync=False), budget=64 * KiB, background=False)
    ov.save(block(0), "victim")
    ov.save(block(1), "other")
    saver = threading.Thread(target=ov.save, args=(block(2), "third"))
    saver.start()  # crosses the spill threshold: spills "victim" synchronously, stuck in Slow.save
    deadline = time.monotonic() + 5
    while ov.stats()["io_in_flight"] == 0 and time.monotonic() < deadline:
        time.sleep(0.005)
    start = time.monotonic()
    assert ov.load("other")[0] == 1 and ov.load("victim")[0] == 0  # served from memory meanwhile
    assert ov.list_files(".") == ["other", "third", "victim"]
    assert time.monotonic() - start < 3  # not waiting for the gated write (10 s); generous for a loaded CI box
    gate.set()
    saver.join(10)
    assert ov.exists("third")
    assert ov.tier("victim") == "memory+persistent"  # it was read during its spill, so it was kept


def test_an_entry_read_during_every_spill_still_leaves_memory(tmp_path: Path) -> None:
    """A reader that takes an entry while it is being written keeps it once; the next spill drops it.

    Before: a hot entry (read during each of its spills) was kept every time, so a save
    that needed its room spilled it again and again, for ever.
    """

    writes: list[str] = []

    class ReadDuringWrite(DiskStorageBackend):
        def save(self, data, path, **kw):
            writes.append(path)
            if len(writes) <= 100:  # bounded, so a regression fails below instead of hanging the suite
                assert ov.load(path) is data  # a reader gets the live object mid-write
            super().save(data, path, **kw)

    ov = MemoryOverlay(ReadDuringWrite(tmp_path / "spill", fsync=False), budget=64 * KiB, background=False)
    for i in range(3):
        ov.save(block(i), f"e{i}")
    ov.save(block(9), "more")
    assert len(writes) <= 2 * 3, f"entries read during their spills were written again and again: {writes}"
    assert ov.tier("e0") == "persistent"  # kept after its first spill, dropped by its second
    s = ov.stats()
    assert s["spill_count"] >= 1 and s["materialize_count"] >= 1 and s["memory_bytes"] <= ov.target_bytes
    for i in range(3):
        assert np.array_equal(ov.load(f"e{i}"), block(i))
    check_invariants(ov)


def test_saves_paused_behind_slow_spills_wait_their_turn_and_are_not_refused(tmp_path: Path) -> None:
    """Many savers, a tier slower than pause_timeout allows for all of them in turn: none is refused,
    because a paused save's clock restarts whenever memory is freed, and none is overtaken for ever."""

    one_at_a_time = threading.Lock()

    class SlowDisk(DiskStorageBackend):  # one connection, 60 ms a write
        def save(self, data, path, **kw):
            with one_at_a_time:
                time.sleep(0.06)
                super().save(data, path, **kw)

    ov = MemoryOverlay(SlowDisk(tmp_path / "spill", fsync=False), budget=64 * KiB, pause_timeout=0.2,
                       target=0.25, spill=0.5, pause=0.8)
    n_threads, per_thread = 6, 8
    errors: list[BaseException] = []
    waits: list[float] = []

    def work(t: int) -> None:
        try:
            for i in range(per_thread):
                start = time.monotonic()
                ov.save(block(t * 100 + i), f"t{t}_{i}")
                waits.append(time.monotonic() - start)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(t,), daemon=True) for t in range(n_threads)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(60)
        assert not th.is_alive()
    assert not errors, errors
    assert max(waits) > ov.pause_timeout  # some saves did wait longer than pause_timeout in all ...
    s = ov.stats()
    assert s["pauses"] > 0 and s["budget_errors"] == 0  # ... and none was refused for it
    for t in range(n_threads):
        for i in range(per_thread):
            assert np.array_equal(ov.load(f"t{t}_{i}"), block(t * 100 + i))
    ov.close()
    check_invariants(ov)


# ---------------------------------------------------------------- crash and RSS, in child processes
_CRASH_CHILD = """
import sys, numpy as np
from hcsvfs.backends import DiskStorageBackend
from hcsvfs.tiering import MemoryOverlay
ov = MemoryOverlay(DiskStorageBackend(sys.argv[1], fsync=True), budget=256 * 1024, background=True)
ov.ensure_directory("c")
i = 0
while True:
    ov.save(np.full(16384, i, np.int32), f"c/{i}.npy")  # 64 KiB each
    i += 1
"""


def test_sigkill_during_spilling_leaves_spilled_entries_loadable(tmp_path: Path) -> None:
    spill = tmp_path / "spill"
    child = subprocess.Popen(
        [sys.executable, "-c", _CRASH_CHILD, str(spill)], env={**os.environ, "PYTHONPATH": SRC}, stderr=subprocess.PIPE
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and child.poll() is None:
            if (spill / "c").is_dir() and len(os.listdir(spill / "c")) >= 30:
                break
            time.sleep(0.01)
        assert child.poll() is None, child.stderr.read().decode() if child.stderr else ""
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(10)
    tier = DiskStorageBackend(spill)
    names = tier.list_files("c")  # in-flight temp files are hidden
    assert len(names) >= 25
    for name in names:
        i = int(name[2:-4])
        assert np.array_equal(tier.load(name), np.full(16384, i, np.int32)), name
    again = MemoryOverlay(tier, budget=256 * 1024, background=False, adopt_existing=True)
    assert again.list_files("c") == names
    assert again.load(names[-1])[0] == int(names[-1][2:-4])


_RSS_CHILD = """
import json, resource, sys, numpy as np
from hcsvfs.backends import DiskStorageBackend
from hcsvfs.tiering import MemoryOverlay
budget, item, rounds = int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
def kib_peak():  # VmHWM is this process's own peak; ru_maxrss can carry the forking parent's over exec
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
ov = MemoryOverlay(DiskStorageBackend(sys.argv[1], fsync=False), budget=budget)
warm = np.full(item // 4, 7, np.int32); ov.save(warm, "warm"); ov.load("warm"); ov.delete("warm"); del warm
base = kib_peak()
n = rounds * budget // item
for i in range(n):
    a = np.full(item // 4, i, np.int32)
    ov.save(a, f"x{i}")
    del a
bad = [i for i in range(n) if not bool((ov.load(f"x{i}") == i).all())]
ov.close()
print(json.dumps({"base": base * 1024, "peak": kib_peak() * 1024, "n": n, "bad": bad, "stats": ov.stats()}))
"""


def test_three_budgets_of_arrays_round_trip_with_peak_rss_near_the_budget(tmp_path: Path) -> None:
    budget, item = 48 * 1024**2, 2 * 1024**2
    margin = 16 * 1024**2  # stated margin: two items in flight (one being made, one being read) plus allocator slack
    out = subprocess.run(
        [sys.executable, "-c", _RSS_CHILD, str(tmp_path / "spill"), str(budget), str(item), "3"],
        env={**os.environ, "PYTHONPATH": SRC},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    r = json.loads(out.stdout)
    assert r["n"] == 72 and r["bad"] == []
    assert r["stats"]["spill_bytes_total"] >= 2 * budget  # most of it really went through the disk
    assert r["stats"]["restore_count"] >= r["n"] // 2
    grown = r["peak"] - r["base"]
    assert grown <= budget + margin, f"peak RSS grew {grown / 2**20:.1f} MiB over a {budget / 2**20:.0f} MiB budget"


def test_zarr_as_the_persistent_tier(tmp_path: Path) -> None:
    from hcsvfs.backends.zarr import ZarrStorageBackend

    tier = ZarrStorageBackend(tmp_path / "z")
    ov = MemoryOverlay(tier, budget=64 * KiB, background=False)
    ov.ensure_directory("w")
    ov.save({"not": "an array"}, "w/state")
    for i in range(6):
        ov.save(np.full((64, 64), i, np.int32), f"w/{i}")
    assert tier.list_files("w") == ["w/0", "w/1", "w/2", "w/3"]
    assert [int(np.asarray(ov.load(f"w/{i}"))[0, 0]) for i in range(6)] == list(range(6))
    assert ov.load("w/state") == {"not": "an array"} and ov.stats()["unspillable_entries"] == 1
    ov.delete_all("w")
    assert not tier.exists("w/0")


def test_rss_mode_spills_and_pauses_on_process_memory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from hcsvfs.tiering import MemoryMonitor

    monitor = MemoryMonitor(0.5)
    rss = {"value": 0}
    monkeypatch.setattr(monitor, "process_used", lambda: rss["value"])
    ov = MemoryOverlay(DiskStorageBackend(tmp_path / "spill", fsync=False), budget=monitor, background=False,
                       pause_timeout=0.2)
    assert ov.limit == monitor.limit
    for i in range(3):
        ov.save(block(i), f"r{i}")
    assert ov.stats()["spilled_entries"] == 0 and ov.stats()["process_bytes"] == 0
    rss["value"] = int(ov.spill_bytes) + 1  # the process is above spill although the overlay holds little
    ov.save(block(3), "r3")
    assert ov.stats()["memory_entries"] == 0  # everything it could spill went, synchronously
    rss["value"] = int(ov.pause_bytes) + 1  # and above pause with nothing left to spill: a clear error
    with pytest.raises(MemoryBudgetError):
        ov.save(block(4), "r4")
    rss["value"] = 0
    ov.save(block(4), "r4")
    assert [ov.load(f"r{i}")[0] for i in range(5)] == list(range(5))


def test_a_save_that_breaks_the_rules_fails_before_pausing(tmp_path: Path) -> None:
    ov = overlay(tmp_path, budget=64 * KiB, pause_timeout=30)
    for i in range(3):
        ov.save(block(i), f"p{i}")
        ov.pin(f"p{i}")
    start = time.monotonic()
    with pytest.raises(FileNotFoundError):
        ov.save(block(9), "missing/x")
    with pytest.raises(FileExistsError):
        ov.save(block(9), "p0")
    assert time.monotonic() - start < 5


# ---------------------------------------------------------------- persistent I/O outside the lock
class GatedDisk(DiskStorageBackend):
    """A disk tier whose deletes and moves wait for a gate (a slow object store)."""

    def __init__(self, root: Path, gate: threading.Event) -> None:
        super().__init__(root, fsync=False)
        self.gate = gate

    def delete(self, path, *a, **k):
        self.gate.wait(10)
        return super().delete(path, *a, **k)

    def move(self, src, dst, **k):
        self.gate.wait(10)
        return super().move(src, dst, **k)


@pytest.mark.parametrize("slow_op", ["delete", "overwrite", "move", "delete_all"])
def test_slow_persistent_deletes_and_moves_do_not_stall_other_entries(tmp_path: Path, slow_op: str) -> None:
    gate = threading.Event()
    ov = MemoryOverlay(GatedDisk(tmp_path / "spill", gate), budget=64 * KiB, background=False)
    ov.ensure_directory("d")
    ov.save(block(0), "d/victim")
    ov.materialize("d/victim")  # it has a persistent copy, so the op below must touch the tier
    ov.save(block(1), "other")
    ops = {
        "delete": lambda: ov.delete("d/victim"),
        "overwrite": lambda: ov.save(block(5), "d/victim", overwrite=True),
        "move": lambda: ov.move("d/victim", "moved"),
        "delete_all": lambda: ov.delete_all("d"),
    }
    worker = threading.Thread(target=ops[slow_op])
    worker.start()
    time.sleep(0.1)  # the worker is now inside the gated persistent call
    start = time.monotonic()
    assert ov.load("other")[0] == 1
    ov.save(block(2), "new")
    assert ov.list_files(".") == sorted(["new", "other"] + (["moved"] if slow_op == "move" else []))
    assert time.monotonic() - start < 3  # not waiting for the gated call (10 s)
    gate.set()
    worker.join(10)
    assert not worker.is_alive()
    check_invariants(ov)


def test_a_new_copy_is_never_removed_by_the_late_delete_of_an_old_one(tmp_path: Path) -> None:
    """Overwrite a spilled entry while the tier is slow to delete the old copy: the new entry's spill waits for
    that delete, so the file left on the tier is the new version."""
    gate = threading.Event()
    ov = MemoryOverlay(GatedDisk(tmp_path / "spill", gate), budget=64 * KiB, background=False)
    ov.save(block(1), "x.npy")
    ov.materialize("x.npy")
    writer = threading.Thread(target=ov.save, args=(block(2), "x.npy"), kwargs={"overwrite": True})
    writer.start()
    time.sleep(0.1)  # the old copy's delete is gated
    spiller = threading.Thread(target=ov.materialize, args=("x.npy",))
    spiller.start()
    time.sleep(0.2)
    assert spiller.is_alive()  # waiting for the old copy's delete, not racing it
    gate.set()
    writer.join(10)
    spiller.join(10)
    assert np.array_equal(DiskStorageBackend(tmp_path / "spill").load("x.npy"), block(2))
    assert ov.tier("x.npy") == "memory+persistent"


def test_a_copy_that_cannot_move_is_read_back_not_lost(tmp_path: Path) -> None:
    class NoMove(DiskStorageBackend):
        def move(self, *a, **k):
            raise OSError(5, "the tier refused the move")

    ov = MemoryOverlay(NoMove(tmp_path / "spill", fsync=False), budget=64 * KiB, background=False)
    for i in range(5):
        ov.save(block(i), f"e{i}")  # the first ones spill
    assert ov.tier("e0") == "persistent"
    ov.move("e0", "moved")
    assert ov.tier("moved") == "memory" and ov.load("moved")[0] == 0  # read back from where its copy was
    assert not ov.persistent.exists("e0")  # and that name is free again
    ov.save(block(9), "e0")
    ov.materialize("e0")
    assert ov.persistent.load("e0")[0] == 9 and ov.load("moved")[0] == 0
    check_invariants(ov)


def test_containers_are_sized_deeply(tmp_path: Path) -> None:
    ov = overlay(tmp_path, budget=256 * KiB)
    ov.save([block(i) for i in range(3)], "list")  # 48 KiB of arrays in a list
    ov.save({"a": block(1), "b": [block(2)]}, "dict")
    assert ov.stats()["memory_bytes"] >= 5 * 16 * KiB
    with pytest.raises(MemoryBudgetError):
        ov.save([block(i) for i in range(16)], "too-big")  # 256 KiB of arrays: above the pause threshold alone


def test_the_spiller_sleeps_until_woken(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ov = overlay(tmp_path, budget=100 * KiB, target=0.3, spill=0.9, pause=1.0, background=True)
    time.sleep(0.2)  # its first look at start-up
    calls = []
    real = ov.spill_to_target
    monkeypatch.setattr(ov, "spill_to_target", lambda: (calls.append(time.monotonic()), real()))
    time.sleep(1.0)
    assert calls == []  # no polling with a budget of bytes (it looked every 250 ms before)
    for i in range(3):
        ov.save(block(i), f"e{i}")  # 48 KiB: above target
    deadline = time.monotonic() + 5
    while ov.stats()["memory_bytes"] > ov.target_bytes and time.monotonic() < deadline:
        time.sleep(0.01)
    assert calls and ov.stats()["memory_bytes"] <= ov.target_bytes
    ov.close()
