"""MemoryOverlay: a memory tier over a persistent tier, spilling least-recently-used entries under pressure.

Thresholds follow Dask's worker model, as fractions of the budget:

* above ``target`` a background thread writes LRU entries to the persistent tier;
* above ``spill`` the saving (or restoring) thread spills synchronously, down to ``target``;
* above ``pause`` a save waits until memory is freed, and raises
  :class:`~hcsvfs.errors.MemoryBudgetError` after ``pause_timeout`` seconds.

An entry is written (atomically, by the persistent backend's own ``save``)
before it is dropped from memory, so it is always in at least one tier. The
namespace (directories, listings, save rules) lives in one index, so nothing
is ever listed twice. Persistent I/O runs outside the overlay's lock: a slow
spill blocks only operations on that same path.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from .. import paths as P
from ..arrays import nbytes
from ..backends.base import StatResult, StorageBackend
from ..backends.memory import MemoryStorageBackend
from ..errors import InvalidPathError, MemoryBudgetError, UnsafeLoadError
from ..units import format_bytes
from .pressure import MemoryBudget, MemoryMonitor, as_budget
from .stats import OverlayCounters

__all__ = ["MemoryOverlay"]

log = logging.getLogger(__name__)

_GONE = object()  # an entry's object once it lives only on the persistent tier
#: Errors that mean "the persistent tier can never store this object": keep it in memory for good.
_UNSTORABLE = (TypeError, ValueError, UnsafeLoadError)


def _sizeof(obj: Any) -> int:
    """Bytes an object holds: array data exactly, other objects by their shallow size."""
    return nbytes(obj) or sys.getsizeof(obj)


@dataclass(eq=False)
class _Entry:
    """One file of the overlay; identity (not path) keys the LRU so a move needs no re-keying."""

    path: str
    obj: Any
    size: int
    options: dict[str, Any] = field(default_factory=dict)
    persisted: bool = False  #: a copy is on the persistent tier (current unless the entry is resident)
    pinned: bool = False
    unspillable: str | None = None  #: why the persistent tier refused it
    io: str | None = None  #: "spill", "restore" or "materialize" while persistent I/O is in flight
    touched: bool = False  #: handed to a reader while a spill was writing it (it may have changed)

    @property
    def resident(self) -> bool:
        return self.obj is not _GONE

    def tier(self) -> str:
        if not self.resident:
            return "persistent"
        return "memory+persistent" if self.persisted else "memory"


class MemoryOverlay(StorageBackend):
    """Saves land in memory; under pressure the least-recently-used entries move to ``persistent``.

    ``budget`` is bytes (``"2GiB"``, an int, a :class:`MemoryBudget`) counted over
    the objects the overlay holds, or None for a fraction of the process's
    effective memory limit measured by RSS (:class:`MemoryMonitor`). Loads of
    spilled entries bring them back transparently. ``adopt_existing=True``
    indexes files already on the persistent tier (e.g. after a restart).
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
        if not 0 < target <= spill <= pause <= 1:
            raise ValueError(f"thresholds must satisfy 0 < target <= spill <= pause <= 1, got {target}, {spill}, {pause}")
        self.persistent = persistent
        self.budget = as_budget(budget)
        self.limit = self.budget.limit
        self.target_bytes = int(self.limit * target)
        self.spill_bytes = int(self.limit * spill)
        self.pause_bytes = int(self.limit * pause)
        self.pause_timeout = pause_timeout
        self._store: dict[str, Any] = {}
        self._index = MemoryStorageBackend(store=self._store)  # the namespace: path -> _Entry or DIRECTORY
        self._index.name = self.name  # its contract errors then say "on the overlay backend"
        self._cond = threading.Condition(threading.RLock())
        self._lru: OrderedDict[_Entry, None] = OrderedDict()  # spill candidates, oldest use first
        self._resident = 0  # bytes of the objects held in memory
        self._reserved = 0  # bytes admitted by saves that are not inserted yet
        self._in_flight = 0
        self._counters = OverlayCounters()
        self._last_error: str | None = None
        self._closed = False
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        if adopt_existing:
            self._adopt()
        if background:
            self._thread = threading.Thread(
                target=_background_spiller, args=(weakref.ref(self), self._wake), name="hcsvfs-overlay-spill", daemon=True
            )
            self._thread.start()

    def save_options(self, data: Any, path: str) -> frozenset[str]:
        return self.persistent.save_options(data, path)

    def load_options(self, path: str) -> frozenset[str]:
        return self.persistent.load_options(path)

    # ------------------------------------------------------------------ StorageBackend primitives
    def save(self, data: Any, path: P.PathLike, *, overwrite: bool = False, **options: Any) -> None:
        p = P.checked(path)
        # The options are for the persistent tier's save when this entry spills: check them now, not then.
        self._check_options("save", options, self.persistent.save_options(data, p), p)
        size = _sizeof(data)
        self._admit(size, p, overwrite)
        with self._cond:
            try:
                old = self._idle_entry(p)
                entry = _Entry(p, data, size, dict(options))
                self._index.save(entry, p, overwrite=overwrite)  # the contract's checks and errors
                if old is not None:
                    self._discard(old)
                self._resident += size
                self._lru[entry] = None
                self._counters.note_peak(self._resident)
            finally:
                self._reserved -= size
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
            entry: _Entry = self._store[p]
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
                self._delete_file(p)
                return
            self._index.delete(p)  # raises DirectoryNotEmptyError for a non-empty one
            self._drop_persistent_tree(p)

    def delete_all(self, path: P.PathLike) -> None:
        p = P.checked(path)
        with self._cond:
            if self._index.stat(p).is_file:
                self._delete_file(p)
                return
            self._check_not_root(p)
            entries = self._idle_entries_below(p)
            self._index.delete_all(p)
            for entry in entries:
                self._discard(entry, delete_persisted=False)
            self._drop_persistent_tree(p)

    def move(self, src: P.PathLike, dst: P.PathLike, *, overwrite: bool = False) -> None:
        s, d = P.checked(src), P.checked(dst)
        with self._cond:
            while True:  # checked again after every wait: the lock was released meanwhile
                st = self._index.stat(s)
                self._check_transfer(s, d, st, overwrite)
                moving = [self._store[s]] if st.is_file else self._entries_below(s)
                target = self._store.get(d) if st.is_file else None
                replaced = target if isinstance(target, _Entry) else None
                if all(e.io is None for e in [*moving, *([replaced] if replaced else [])]):
                    break
                self._cond.wait()
            # Persistent copies move first: a crash part-way leaves each one under its old or new name.
            if replaced is not None and replaced.persisted:
                self._persistent_delete(d)
            for entry in moving:
                if entry.persisted:
                    new = d + entry.path[len(s) :]
                    self._persistent_mkdirs(P.parent(new))
                    self.persistent.move(entry.path, new, overwrite=True)
            if st.is_dir:
                self._drop_persistent_tree(s)
            self._index.move(s, d, overwrite=overwrite)
            for entry in moving:
                entry.path = d + entry.path[len(s) :]
            if replaced is not None:
                self._discard(replaced, delete_persisted=False)

    def _delete_file(self, path: str) -> None:
        with self._cond:
            entry = self._idle_entry(path)
            self._index.delete(path)
            if entry is not None:
                self._discard(entry)

    def _delete_empty_dir(self, path: str) -> None:
        with self._cond:
            self._index.delete(path)
            self._drop_persistent_tree(path)

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
            entry = self._idle_entry(p)
            if entry is None or not entry.resident:
                return  # already only on the persistent tier (or deleted meanwhile)
            entry.io = "materialize"
            self._lru.pop(entry, None)
            self._in_flight += 1
        error, seconds = self._write_out(entry)
        with self._cond:
            self._finish_io(entry, error, seconds, drop=False)
        if error is not None:
            raise error

    def materialize_all(self) -> list[str]:
        """Materialise every resident entry the persistent tier can store; returns the paths written."""
        with self._cond:
            paths = sorted(e.path for e in self._store.values() if isinstance(e, _Entry) and e.resident and e.unspillable is None)
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
            entries = [e for e in self._store.values() if isinstance(e, _Entry)]
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

    def close(self) -> None:
        """Stop the background spiller (entries stay where they are)."""
        self._closed = True
        self._wake.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)

    def __enter__(self) -> MemoryOverlay:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ pressure levels (lock held)
    def _process(self) -> int | None:
        return self.budget.process_used()

    def _fits(self, size: int) -> bool:
        process = self._process()
        within = self._resident + self._reserved + size <= self.pause_bytes
        return within and (process is None or process <= self.pause_bytes)

    def _above_spill(self) -> bool:
        process = self._process()
        return self._resident > self.spill_bytes or (process is not None and process > self.spill_bytes)

    def _needs_spill(self, *, sync: bool) -> bool:
        """Managed bytes above target, or process memory (where measured) above spill; once a save has
        crossed spill (``sync``), process memory is brought back to target, as Dask's workers do."""
        process = self._process()
        process_limit = self.target_bytes if sync else self.spill_bytes
        return self._resident > self.target_bytes or (process is not None and process > process_limit)

    # ------------------------------------------------------------------ spilling
    def _admit(self, size: int, path: str, overwrite: bool) -> None:
        """Make room for ``size`` new bytes below the pause threshold, or raise MemoryBudgetError."""
        if size > self.pause_bytes:
            raise MemoryBudgetError(
                f"cannot keep {path!r} ({format_bytes(size)}) in the memory overlay: it alone exceeds the pause "
                f"threshold of {format_bytes(self.pause_bytes)}; save it to the persistent backend directly or raise "
                "the budget",
                path=path,
                backend=self.name,
            )
        deadline: float | None = None
        failures = 0
        while True:
            with self._cond:
                if self._fits(size):
                    self._reserved += size  # held until save() inserts the entry
                    if deadline is not None:
                        self._counters.pause_seconds += time.monotonic() - (deadline - self.pause_timeout)
                    return
                victim = self._claim_victim() if failures <= len(self._lru) else None
                if victim is None:
                    now = time.monotonic()
                    if deadline is None:
                        self._check_target(path, overwrite)  # a save that would fail anyway must not wait first
                        deadline = now + self.pause_timeout
                        self._counters.pauses += 1
                    if now >= deadline:
                        self._counters.budget_errors += 1
                        raise self._budget_error(size, path)
                    # Spills in flight, deletes and unpins notify; RSS can also fall without one.
                    self._cond.wait(min(deadline - now, 0.05))
                    continue
            failures = 0 if self._spill(victim) else failures + 1

    def _relieve(self) -> None:
        """Above ``spill``: spill synchronously down to ``target``; above ``target``: wake the background spiller."""
        with self._cond:
            if not self._above_spill():
                if self._needs_spill(sync=False) and self._thread is not None:
                    self._wake.set()
                return
        self._spill_down(sync=True)

    def _spill_down(self, *, sync: bool, under_pressure: bool = False) -> None:
        """Spill LRU entries until below target (half of it under PSI pressure), or nothing is left."""
        failures = 0
        while True:
            with self._cond:
                busy = self._needs_spill(sync=sync)
                if not busy and under_pressure:
                    busy = self._resident > self.target_bytes // 2
                if not busy or failures > len(self._lru):
                    return
                victim = self._claim_victim()
                if victim is None:
                    return
            failures = 0 if self._spill(victim) else failures + 1

    def _claim_victim(self) -> _Entry | None:
        """Take the least-recently-used spillable entry off the LRU and mark it as being spilled (lock held)."""
        if not self._lru:
            return None
        entry, _ = self._lru.popitem(last=False)
        entry.io = "spill"
        entry.touched = False
        self._in_flight += 1
        return entry

    def _spill(self, entry: _Entry) -> bool:
        """Write a claimed entry to the persistent tier, then drop it from memory; True on success."""
        error, seconds = self._write_out(entry)
        with self._cond:
            self._finish_io(entry, error, seconds, drop=True)
        return error is None

    def _write_out(self, entry: _Entry) -> tuple[Exception | None, float]:
        """The persistent write, outside the lock (the entry is claimed, so nobody else changes it)."""
        start = time.perf_counter()
        try:
            self._persistent_mkdirs(P.parent(entry.path))
            self.persistent.save(entry.obj, entry.path, overwrite=True, **entry.options)
        except Exception as exc:  # classified by _finish_io; never lost: the entry stays in memory
            return exc, time.perf_counter() - start
        return None, time.perf_counter() - start

    def _finish_io(self, entry: _Entry, error: Exception | None, seconds: float, *, drop: bool) -> None:
        """Apply the outcome of a spill or materialise (lock held) and wake whoever waits."""
        entry.io = None
        self._in_flight -= 1
        if error is None:
            entry.persisted = True
            if drop and not entry.touched:
                self._counters.spilled(entry.size, seconds)
                entry.obj = _GONE
                self._resident -= entry.size
            else:
                self._counters.materialized(entry.size)
                if not entry.pinned:
                    self._lru[entry] = None  # kept; if a reader took it during the write it may have changed
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

    # ------------------------------------------------------------------ restoring
    def _fetch(self, p: str, options: dict[str, Any], *, pin: bool) -> Any:
        """Return the object at ``p``, bringing it back from the persistent tier if it was spilled."""
        with self._cond:
            while True:
                entry = self._file_entry(p)
                if entry.io == "restore":
                    self._cond.wait()
                    continue
                if entry.resident:
                    self._counters.hits += 1
                    if entry.io is not None:
                        entry.touched = True
                    elif entry in self._lru:
                        self._lru.move_to_end(entry)
                    return entry.obj
                entry.io = "restore"
                self._counters.misses += 1
                break
        start = time.perf_counter()
        load_options = {"allow_pickle": True} if entry.options.get("allow_pickle") else {}
        try:
            obj = self.persistent.load(p, **{**load_options, **options})
        except BaseException:
            with self._cond:
                entry.io = None
                self._cond.notify_all()
            raise
        size = _sizeof(obj)
        with self._cond:
            self._counters.restored(size, time.perf_counter() - start)
            entry.io = None
            # Cached only within the pause threshold (a pin insists); otherwise the caller just gets the object.
            if pin or (size <= self.target_bytes and self._fits(size)):
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
    def _file_entry(self, p: str) -> _Entry:
        """The entry at ``p``; FileNotFoundError / IsADirectoryError with the contract's messages otherwise."""
        entry: _Entry = self._index.load(p)
        return entry

    def _idle_entry(self, p: str) -> _Entry | None:
        """The file entry at ``p`` once no persistent I/O is in flight for it; None if no file is there."""
        while True:
            entry = self._store.get(p)
            if not isinstance(entry, _Entry):
                return None
            if entry.io is None:
                return entry
            self._cond.wait()

    def _entries_below(self, p: str) -> list[_Entry]:
        return [self._store[k] for k in self._index.list_files(p, recursive=True)]

    def _idle_entries_below(self, p: str) -> list[_Entry]:
        """Every file entry under directory ``p`` once none has persistent I/O in flight."""
        while True:
            entries = self._entries_below(p)
            if all(e.io is None for e in entries):
                return entries
            self._cond.wait()

    def _discard(self, entry: _Entry, *, delete_persisted: bool = True) -> None:
        """Forget a replaced or deleted entry: its memory and, unless told otherwise, its persistent copy."""
        if entry.resident:
            self._resident -= entry.size
            self._lru.pop(entry, None)
            entry.obj = _GONE
        if entry.persisted and delete_persisted:
            self._persistent_delete(entry.path)
        self._cond.notify_all()

    def _persistent_delete(self, p: str) -> None:
        # InvalidPathError: a name the persistent tier refuses (e.g. too long) was never spilled there.
        with contextlib.suppress(FileNotFoundError, InvalidPathError):
            self.persistent.delete(p)

    def _persistent_mkdirs(self, directory: str) -> None:
        if directory not in (".", "/"):
            self.persistent.ensure_directory(directory)

    def _drop_persistent_tree(self, p: str) -> None:
        """Remove what is left of directory ``p`` on the persistent tier (only folders: its files were handled)."""
        with contextlib.suppress(FileNotFoundError, InvalidPathError):  # see _persistent_delete
            if self.persistent.is_dir(p):
                self.persistent.delete_all(p)

    def _adopt(self) -> None:
        """Index the files already on the persistent tier as spilled entries."""
        for f in self.persistent.list_files(".", recursive=True):
            parent = P.parent(f)
            if parent not in (".", "/"):
                self._index.ensure_directory(parent)
            self._store[f] = _Entry(f, _GONE, self.persistent.stat(f).size, persisted=True)

    def _budget_error(self, size: int, path: str) -> MemoryBudgetError:
        entries = [e for e in self._store.values() if isinstance(e, _Entry) and e.resident]
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


def _background_spiller(ref: weakref.ref[MemoryOverlay], wake: threading.Event) -> None:
    """Spill to target while the overlay lives; holds it only weakly so an unused overlay can be collected."""
    while True:
        overlay = ref()
        if overlay is None or overlay._closed:
            return
        try:
            overlay._spill_down(sync=False, under_pressure=overlay.budget.under_pressure())
        except Exception:  # the thread must survive a surprise; the saving thread still spills synchronously
            log.exception("background spill failed")
        del overlay
        wake.wait(0.25)
        wake.clear()

