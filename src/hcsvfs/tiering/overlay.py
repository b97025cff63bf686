"""MemoryOverlay: a memory tier over a persistent tier, spilling least-recently-used entries under pressure.

Thresholds follow Dask's worker model, as fractions of the budget:

* above ``target`` a background thread writes LRU entries to the persistent tier;
* above ``spill`` the saving (or restoring) thread spills synchronously, down to ``target``;
* above ``pause`` a save waits until memory is freed, and raises
  :class:`~hcsvfs.errors.MemoryBudgetError` after ``pause_timeout`` seconds.

An entry is written (atomically, by the persistent backend's own ``save``)
before it is dropped from memory, so it is always in at least one tier. The
namespace (directories, listings, save rules) lives in one index, so nothing
is ever listed twice. No persistent I/O runs under the overlay's lock: spills
and restores claim their entry, and deletes and moves of persistent copies
mark their paths pending (:mod:`.copies`), so a slow tier (S3) stalls only
operations on the same paths, never every load and save.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Iterable
from typing import Any

from .. import paths as P
from ..backends.base import StatResult, StorageBackend
from ..backends.memory import MemoryStorageBackend
from ..errors import MemoryBudgetError, UnsafeLoadError
from ..units import format_bytes
from .copies import PersistentCopies, Stale
from .entry import GONE, Entry
from .levels import Levels
from .pressure import MemoryBudget, MemoryMonitor, as_budget
from .sizing import sizeof
from .spiller import start_spiller
from .stats import OverlayCounters

__all__ = ["MemoryOverlay"]

log = logging.getLogger(__name__)

#: Errors that mean "the persistent tier can never store this object": keep it in memory for good.
_UNSTORABLE = (TypeError, ValueError, UnsafeLoadError)


class _OverlayIndex(MemoryStorageBackend):
    """The overlay's namespace: a memory backend whose contract errors say "on the overlay backend"."""

    name = "overlay"


class MemoryOverlay(StorageBackend):
    """Saves land in memory; under pressure the least-recently-used entries move to ``persistent``.

    ``budget`` is bytes (``"2GiB"``, an int, a :class:`MemoryBudget`) counted over
    the objects the overlay holds (deeply: a list of arrays counts its arrays), or
    None for a fraction of the process's effective memory limit measured by RSS
    (:class:`MemoryMonitor`). Loads of spilled entries bring them back
    transparently. ``adopt_existing=True`` indexes files already on the
    persistent tier (e.g. after a restart).
    """

    name = "overlay"

    def __init__(
        self,
        persistent: StorageBackend,
        budget: int | str | MemoryBudget | MemoryMonitor | None = None,
        *,
        target: float = 0.6,
        spill: float = 0.7,
        pause: float = 0.85,
        pause_timeout: float = 10.0,
        background: bool = True,
        adopt_existing: bool = False,
    ) -> None:
        self.persistent = persistent
        self._settings = {"target": target, "spill": spill, "pause": pause, "pause_timeout": pause_timeout,
                          "background": background}  # for __reduce__
        self.budget = as_budget(budget)
        self.levels = Levels.of(self.budget, target, spill, pause)
        self.limit = self.budget.limit
        self.target_bytes, self.spill_bytes, self.pause_bytes = self.levels.target, self.levels.spill, self.levels.pause
        self.pause_timeout = pause_timeout
        self._store: dict[str, Any] = {}
        self._index = _OverlayIndex(store=self._store)  # the namespace: path -> Entry or DIRECTORY
        self._cond = threading.Condition(threading.RLock())
        self._lru: OrderedDict[Entry, None] = OrderedDict()  # spill candidates, oldest use first
        self._copies = PersistentCopies(persistent, self._cond)
        self._resident = 0  # bytes of the objects held in memory
        self._reserved = 0  # bytes admitted by saves that are not inserted yet
        self._waiting: deque[object] = deque()  # saves paused at the threshold, first come first served
        self._freed = 0  # bumped whenever resident bytes fall: a paused save's clock restarts
        self._in_flight = 0
        self._counters = OverlayCounters()
        self._last_error: str | None = None
        self.closed = False
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        if adopt_existing:
            self._adopt()
        if background:
            self._thread = start_spiller(self, self._wake, self.budget.poll_s)

    def __reduce__(self) -> tuple[Any, ...]:
        # In another process: a new overlay over the same persistent tier, with the same budget, that adopts
        # what is there (spilled or materialised entries); objects held only in this process's memory stay here.
        return (_rebuild, (self.persistent, self.budget, self._settings))

    # ------------------------------------------------------------------ options
    def save_options(self, data: Any, path: str) -> frozenset[str]:
        return self.persistent.save_options(data, path)

    def load_options(self, path: str) -> frozenset[str]:
        return self.persistent.load_options(path)

    # ------------------------------------------------------------------ StorageBackend primitives
    def save(self, data: Any, path: P.PathLike, *, overwrite: bool = False, **options: Any) -> None:
        p = P.checked(path)
        # The options are for the persistent tier's save when this entry spills: check them now, not then.
        self._check_options("save", options, self.persistent.save_options(data, p), p)
        size = sizeof(data)
        self._admit(size, p, overwrite)
        with self._cond:
            try:
                old = self._idle_entry(p)
                entry = Entry(p, data, size, dict(options))
                self._index.save(entry, p, overwrite=overwrite)  # the contract's checks and errors
                stale = self._forget(old) if old is not None else []
                self._resident += size
                self._lru[entry] = None
                self._counters.note_peak(self._resident)
            finally:
                self._reserved -= size
        self._copies.drop(stale)
        self._relieve()

    def load(self, path: P.PathLike, **options: Any) -> Any:
        p = P.checked(path)
        self._check_options("load", options, self.persistent.load_options(p), p)
        return self._fetch(p, options, pin=False)

    def stat(self, path: P.PathLike) -> StatResult:
        p = P.checked(path)
        with self._cond:
            st = self._index.stat(p)
            if st.is_dir:
                return st
            entry: Entry = self._store[p]
            return StatResult(p, "file", size=entry.size, mtime=st.mtime, extra={"tier": entry.tier()})

    def exists(self, path: P.PathLike) -> bool:
        return self._index.exists(path)

    def list_dir(self, path: P.PathLike = ".") -> list[str]:
        return self._index.list_dir(path)

    def list_files(
        self,
        path: P.PathLike = ".",
        pattern: str | None = None,
        extensions: Iterable[str] | str | None = None,
        recursive: bool = False,
    ) -> list[str]:
        return self._index.list_files(path, pattern=pattern, extensions=extensions, recursive=recursive)

    def ensure_directory(self, path: P.PathLike) -> None:
        self._index.ensure_directory(path)

    # ------------------------------------------------------------------ mutation
    def delete(self, path: P.PathLike) -> None:
        p = P.checked(path)
        with self._cond:
            if self._index.stat(p).is_file:
                stale = self._remove_file(p)
            else:
                self._index.delete(p)  # raises DirectoryNotEmptyError for a non-empty one
                stale = self._tree_gone(p)
        self._copies.drop(stale)

    def delete_all(self, path: P.PathLike) -> None:
        p = P.checked(path)
        with self._cond:
            if self._index.stat(p).is_file:
                stale = self._remove_file(p)
            else:
                self._check_not_root(p)
                entries = self._idle_entries_below(p)
                self._index.delete_all(p)
                stale = [copy for entry in entries for copy in self._forget(entry, within=p)]
                stale += self._tree_gone(p)
        self._copies.drop(stale)

    def move(self, src: P.PathLike, dst: P.PathLike, *, overwrite: bool = False) -> None:
        """Move in the namespace at once; the persistent copies follow outside the lock.

        A copy that cannot be moved (the tier failed) stays where it is and is still found
        there (``Entry.stored``); after a crash each copy is under its old name or its new one.
        """
        s, d = P.checked(src), P.checked(dst)
        with self._cond:
            while True:  # checked again after every wait: the lock was released meanwhile
                st = self._index.stat(s)
                self._check_transfer(s, d, st, overwrite)
                moving = [self._store[s]] if st.is_file else self._entries_below(s)
                target = self._store.get(d) if st.is_file else None
                replaced = target if isinstance(target, Entry) else None
                if all(e.io is None for e in [*moving, *([replaced] if replaced else [])]):
                    break
                self._cond.wait()
            self._index.move(s, d, overwrite=overwrite)
            stale = self._forget(replaced) if replaced is not None else []
            relocations: list[tuple[Entry, str, str]] = []  # (entry, where its copy is, where it goes)
            for entry in moving:
                entry.path = d + entry.path[len(s) :]
                if entry.stored is not None and entry.stored != entry.path:
                    entry.io = "move"  # claimed: no spill or restore of it until its copy has moved
                    self._in_flight += 1
                    relocations.append((entry, entry.stored, entry.path))
            emptied = self._tree_gone(s) if st.is_dir else []  # folders the moved copies leave behind
        self._copies.drop(stale)  # first: a moved copy may take the replaced one's name
        stale = []
        moved: list[tuple[Entry, str, str]] = []
        kept: list[tuple[Entry, Any]] = []  # copies that could not move, read back into memory
        try:
            for entry, old, new in relocations:
                if self._copies.relocate(old, new):
                    moved.append((entry, old, new))
                    continue
                # The copy is still at ``old`` (and found there); bring it back so that name is free again.
                log.warning("moving the persistent copy of %r from %r failed; reading it back into memory", new, old)
                with contextlib.suppress(Exception):
                    kept.append((entry, entry.obj if entry.resident else self._copies.read(entry, {})))
        finally:
            with self._cond:
                for entry, old, new in moved:
                    self._copies.moved(entry, old, new)
                for entry, obj in kept:
                    if not entry.resident:
                        entry.obj = obj
                        self._resident += entry.size
                        self._lru[entry] = None
                    stale += self._copies.release(entry)
                for entry, _, _ in relocations:
                    entry.io = None
                    self._in_flight -= 1
                self._cond.notify_all()
            self._copies.drop([*stale, *emptied])

    def _delete_file(self, path: str) -> None:
        with self._cond:
            stale = self._remove_file(path)
        self._copies.drop(stale)

    def _delete_empty_dir(self, path: str) -> None:
        with self._cond:
            self._index.delete(path)
            stale = self._tree_gone(path)
        self._copies.drop(stale)

    # ------------------------------------------------------------------ tiering API
    def pin(self, path: P.PathLike) -> None:
        """Keep ``path`` in memory (restoring it first if it was spilled) until :meth:`unpin`."""
        p = P.checked(path)
        while True:
            with self._cond:
                self._file_entry(p)  # the contract's errors for a missing path or a directory
                entry = self._idle_entry(p)
                if entry is not None and entry.resident:
                    entry.pinned = True
                    self._lru.pop(entry, None)
                    return
            self._fetch(p, {}, pin=True)  # restores and pins in one step, so it cannot be spilled in between

    def unpin(self, path: P.PathLike) -> None:
        """Let ``path`` be spilled again."""
        with self._cond:
            entry = self._file_entry(P.checked(path))
            entry.pinned = False
            if entry.resident and entry.unspillable is None and entry.io is None:
                self._lru[entry] = None
            self._cond.notify_all()
        self._relieve()

    def materialize(self, path: P.PathLike) -> None:
        """Write ``path`` to the persistent tier now, keeping it in memory (durability without eviction).

        Raises the persistent tier's TypeError if it cannot store this object.
        """
        p = P.checked(path)
        with self._cond:
            self._file_entry(p)
            while True:
                entry = self._idle_entry(p)
                if entry is None or not entry.resident:
                    return  # already only on the persistent tier (or deleted meanwhile)
                if self._copies.may_write(entry):
                    break
                self._cond.wait()  # an older copy at this path is still being deleted or moved
            entry.io = "materialize"
            self._lru.pop(entry, None)
            self._in_flight += 1
        error, seconds = self._copies.write(entry)
        with self._cond:
            stale = self._finish_io(entry, error, seconds, drop=False)
        self._copies.drop(stale)
        if error is not None:
            raise error

    def materialize_all(self) -> list[str]:
        """Materialise every resident entry the persistent tier can store; returns the paths written."""
        with self._cond:
            paths = sorted(e.path for e in self._store.values() if isinstance(e, Entry) and e.resident and e.unspillable is None)
        written = []
        for p in paths:
            try:
                self.materialize(p)
            except FileNotFoundError:
                continue  # deleted meanwhile
            except _UNSTORABLE:
                continue  # now counted as unspillable
            written.append(p)
        return written

    def tier(self, path: P.PathLike) -> str:
        """Where a file lives now: ``"memory"``, ``"persistent"`` or ``"memory+persistent"``."""
        with self._cond:
            return self._file_entry(P.checked(path)).tier()

    def stats(self) -> dict[str, Any]:
        """Bytes and entries per tier, spill/restore counts, bytes and throughput (MB/s), hits, pauses."""
        with self._cond:
            entries = [e for e in self._store.values() if isinstance(e, Entry)]
            snapshot = {
                "limit_bytes": self.limit,
                "target_bytes": self.target_bytes,
                "spill_bytes": self.spill_bytes,
                "pause_bytes": self.pause_bytes,
                "memory_bytes": self._resident,
                "memory_entries": sum(1 for e in entries if e.resident),
                "spilled_bytes": sum(e.size for e in entries if not e.resident),
                "spilled_entries": sum(1 for e in entries if not e.resident),
                "pinned_bytes": sum(e.size for e in entries if e.pinned and e.resident),
                "unspillable_bytes": sum(e.size for e in entries if e.unspillable and e.resident),
                "unspillable_entries": sum(1 for e in entries if e.unspillable and e.resident),
                "io_in_flight": self._in_flight,
                "last_spill_error": self._last_error,
            }
            process = self.budget.process_used()
            snapshot["process_bytes"] = process
            snapshot.update(self._counters.as_dict())
            return snapshot

    def spill_to_target(self) -> None:
        """Spill LRU entries until memory is back at the target (half of it under PSI pressure): the spiller's job."""
        self._spill_down(sync=False, under_pressure=self.budget.under_pressure())

    def close(self) -> None:
        """Stop the background spiller (entries stay where they are)."""
        self.closed = True
        self._wake.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)

    def __enter__(self) -> MemoryOverlay:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ spilling
    def _admit(self, size: int, path: str, overwrite: bool) -> None:
        """Make room for ``size`` new bytes below the pause threshold, or raise MemoryBudgetError.

        Saves that must wait are served first come, first served: a save that arrives while
        another waits queues behind it (and restores are not cached meanwhile), so a busy
        writer cannot take every byte a spill frees. The clock runs only while nothing is
        freed: a save waiting behind spills that complete is never failed for being slow.
        """
        if size > self.pause_bytes:
            raise MemoryBudgetError(
                f"cannot keep {path!r} ({format_bytes(size)}) in the memory overlay: it alone exceeds the pause "
                f"threshold of {format_bytes(self.pause_bytes)}; save it to the persistent backend directly or raise "
                "the budget",
                path=path,
                backend=self.name,
            )
        with self._cond:
            if not self._waiting and self.levels.fits(self._resident + self._reserved, size):
                self._reserved += size  # held until save() inserts the entry
                return
            self._check_target(path, overwrite)  # a save that would fail anyway must not wait first
            ticket = object()
            self._waiting.append(ticket)
            self._counters.pauses += 1
            freed = self._freed
        paused_at = time.monotonic()
        deadline = paused_at + self.pause_timeout
        failures = 0
        try:
            while True:
                with self._cond:
                    if self._waiting[0] is ticket and self.levels.fits(self._resident + self._reserved, size):
                        self._reserved += size
                        self._counters.pause_seconds += time.monotonic() - paused_at
                        return
                    now = time.monotonic()
                    if self._freed != freed:  # progress: the clock starts again
                        freed, deadline = self._freed, now + self.pause_timeout
                    victim = self._claim_victim() if failures <= len(self._lru) else None
                    if victim is None:
                        if now >= deadline:
                            self._counters.budget_errors += 1
                            raise self._budget_error(size, path)
                        # Spills in flight, deletes and unpins notify; RSS can also fall without one.
                        self._cond.wait(min(deadline - now, 0.05))
                        continue
                failures = 0 if self._spill(victim) else failures + 1
        finally:
            with self._cond:
                self._waiting.remove(ticket)
                self._cond.notify_all()  # the next in line may go

    def _relieve(self) -> None:
        """Above ``spill``: spill synchronously down to ``target``; above ``target``: wake the background spiller."""
        with self._cond:
            if not self.levels.above_spill(self._resident):
                if self.levels.needs_spill(self._resident, sync=False) and self._thread is not None:
                    self._wake.set()
                return
        self._spill_down(sync=True)

    def _spill_down(self, *, sync: bool, under_pressure: bool = False) -> None:
        """Spill LRU entries until below target (half of it under PSI pressure), or nothing is left."""
        failures = 0
        while True:
            with self._cond:
                busy = self.levels.needs_spill(self._resident, sync=sync)
                if not busy and under_pressure:
                    busy = self._resident > self.target_bytes // 2
                if not busy or failures > len(self._lru):
                    return
                victim = self._claim_victim()
                if victim is None:
                    return
            failures = 0 if self._spill(victim) else failures + 1

    def _claim_victim(self) -> Entry | None:
        """Take the least-recently-used spillable entry off the LRU and mark it as being spilled (lock held).

        An entry whose path is still taken by another copy (being deleted, or of an entry moved away whose
        copy could not follow it) is passed over for now.
        """
        for entry in self._lru:
            if entry.io is None and self._copies.may_write(entry):
                del self._lru[entry]
                entry.io = "spill"
                entry.touched = False
                self._in_flight += 1
                return entry
        return None

    def _spill(self, entry: Entry) -> bool:
        """Write a claimed entry to the persistent tier, then drop it from memory; True on success."""
        error, seconds = self._copies.write(entry)
        with self._cond:
            stale = self._finish_io(entry, error, seconds, drop=True)
        self._copies.drop(stale)
        return error is None

    def _finish_io(self, entry: Entry, error: Exception | None, seconds: float, *, drop: bool) -> list[tuple[str, str]]:
        """Apply the outcome of a spill or materialise (lock held) and wake whoever waits.

        Returns an older copy the entry no longer needs (marked pending), for the caller to drop.
        """
        entry.io = None
        self._in_flight -= 1
        stale: list[tuple[str, str]] = []
        if error is None:
            stale = self._copies.written(entry)  # and the copy a failed relocation left behind goes
            if drop and (not entry.touched or entry.reprieved):
                self._counters.spilled(entry.size, seconds)
                entry.obj = GONE
                entry.reprieved = False
                self._resident -= entry.size
                self._freed += 1
            else:
                self._counters.materialized(entry.size)
                # Kept (once, for a spill): a reader took it during the write, and may have changed it since.
                entry.reprieved = entry.reprieved or drop
                if not entry.pinned:
                    self._lru[entry] = None
        elif isinstance(error, _UNSTORABLE):
            entry.unspillable = f"{type(error).__name__}: {error}"
            self._counters.unspillable += 1
            log.info("keeping %r in memory: the %s tier cannot store it (%s)", entry.path, self.persistent.name, error)
        else:
            self._last_error = f"{entry.path}: {type(error).__name__}: {error}"
            self._counters.spill_errors += 1
            log.warning("spilling %r failed, it stays in memory: %s", entry.path, error)
            if not entry.pinned:
                self._lru[entry] = None  # most recent end, so the next attempt picks another entry
        self._cond.notify_all()
        return stale

    # ------------------------------------------------------------------ restoring
    def _fetch(self, p: str, options: dict[str, Any], *, pin: bool) -> Any:
        """Return the object at ``p``, bringing it back from the persistent tier if it was spilled."""
        with self._cond:
            while True:
                entry = self._file_entry(p)
                if entry.resident:
                    self._counters.hits += 1
                    if entry.io is not None:
                        entry.touched = True
                    elif entry in self._lru:
                        self._lru.move_to_end(entry)
                    return entry.obj
                if entry.io is not None:  # being restored or moved by another thread: wait for it
                    self._cond.wait()
                    continue
                entry.io = "restore"
                self._counters.misses += 1
                break
        start = time.perf_counter()
        try:
            obj = self._copies.read(entry, options)
        except BaseException:
            with self._cond:
                entry.io = None
                self._cond.notify_all()
            raise
        size = sizeof(obj)
        with self._cond:
            self._counters.restored(size, time.perf_counter() - start)
            entry.io = None
            # Cached only within the pause threshold (a pin insists); otherwise the caller just gets the object.
            # Never ahead of a save paused for room.
            if pin or (
                not self._waiting
                and size <= self.target_bytes
                and self.levels.fits(self._resident + self._reserved, size)
            ):
                entry.obj, entry.size = obj, size
                self._resident += size
                self._counters.note_peak(self._resident)
                entry.pinned = entry.pinned or pin
                if not entry.pinned and entry.unspillable is None:
                    self._lru[entry] = None
            self._cond.notify_all()
        self._relieve()
        return obj

    # ------------------------------------------------------------------ bookkeeping (lock held)
    def _file_entry(self, p: str) -> Entry:
        """The entry at ``p``; FileNotFoundError / IsADirectoryError with the contract's messages otherwise."""
        entry: Entry = self._index.load(p)
        return entry

    def _idle_entry(self, p: str) -> Entry | None:
        """The file entry at ``p`` once no persistent I/O is in flight for it; None if no file is there."""
        while True:
            entry = self._store.get(p)
            if not isinstance(entry, Entry):
                return None
            if entry.io is None:
                return entry
            self._cond.wait()

    def _entries_below(self, p: str) -> list[Entry]:
        return [self._store[k] for k in self._index.list_files(p, recursive=True)]

    def _idle_entries_below(self, p: str) -> list[Entry]:
        """Every file entry under directory ``p`` once none has persistent I/O in flight."""
        while True:
            entries = self._entries_below(p)
            if all(e.io is None for e in entries):
                return entries
            self._cond.wait()

    def _remove_file(self, p: str) -> list[tuple[str, str]]:
        """Delete the file entry at ``p`` from the index and memory; what is left to drop on the persistent tier."""
        entry = self._idle_entry(p)
        self._index.delete(p)
        return self._forget(entry) if entry is not None else []

    def _forget(self, entry: Entry, *, within: str | None = None) -> Stale:
        """Drop a replaced or deleted entry from memory and give up its persistent copy (the caller drops it),
        unless that lies in folder ``within``, which the caller drops whole."""
        if entry.resident:
            self._resident -= entry.size
            self._freed += 1
            self._lru.pop(entry, None)
            entry.obj = GONE
        self._cond.notify_all()
        return self._copies.release(entry, within=within)

    def _tree_gone(self, p: str) -> Stale:
        """Folder ``p`` left the namespace: what is left of it on the persistent tier goes too."""
        self._copies.mark(trees=[p])
        return [(p, "tree")]

    def _adopt(self) -> None:
        """Index the files already on the persistent tier as spilled entries."""
        for f in self.persistent.list_files(".", recursive=True):
            parent = P.parent(f)
            if parent not in (".", "/"):
                self._index.ensure_directory(parent)
            entry = self._store[f] = Entry(f, GONE, self.persistent.stat(f).size)
            self._copies.adopt(entry, f)

    def _budget_error(self, size: int, path: str) -> MemoryBudgetError:
        entries = [e for e in self._store.values() if isinstance(e, Entry) and e.resident]
        pinned = sum(e.size for e in entries if e.pinned)
        unspillable = sum(e.size for e in entries if e.unspillable and not e.pinned)
        detail = f"; last spill error: {self._last_error}" if self._last_error else ""
        return MemoryBudgetError(
            f"cannot save {path!r} ({format_bytes(size)}): the memory overlay stayed above its pause threshold of "
            f"{format_bytes(self.pause_bytes)} for {self.pause_timeout:g} s with nothing left to spill "
            f"({format_bytes(pinned)} pinned, {format_bytes(unspillable)} the {self.persistent.name} tier cannot "
            f"store){detail}. Unpin or delete entries, raise the budget, or save to a persistent backend",
            path=path,
            backend=self.name,
        )

    def __repr__(self) -> str:
        return f"<MemoryOverlay over {self.persistent!r} limit={format_bytes(self.limit)}>"


def _rebuild(persistent: StorageBackend, budget: MemoryBudget | MemoryMonitor, settings: dict[str, Any]) -> MemoryOverlay:
    return MemoryOverlay(persistent, budget, adopt_existing=True, **settings)
