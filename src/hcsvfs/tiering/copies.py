"""The persistent copies of a MemoryOverlay's entries: where each one is, and the I/O on them.

None of this I/O runs under the overlay's lock (a slow tier such as S3 must not
stall every load and save). So that it can run outside, two things are
recorded, under the lock: which entry's copy is at each persistent path (a
copy left behind by a failed relocation keeps its path from the next entry
there), and which paths have a delete or move in flight (a spill there now
would race it: the delayed delete would remove the new copy).
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections import Counter
from collections.abc import Iterable
from typing import Any

from .. import paths as P
from ..backends.base import StorageBackend
from ..errors import InvalidPathError
from .entry import Entry

__all__ = ["PersistentCopies", "Stale"]

#: Copies to drop outside the lock: (path, "file" or "tree"), each marked pending until dropped.
Stale = list[tuple[str, str]]


class PersistentCopies:
    """Bookkeeping (methods marked "lock held") and I/O (the others) for copies on ``tier``."""

    def __init__(self, tier: StorageBackend, cond: threading.Condition) -> None:
        self.tier = tier
        self._cond = cond
        self._owners: dict[str, Entry] = {}  # persistent path -> the entry whose copy is there
        self._files: Counter[str] = Counter()  # paths with a delete or move in flight
        self._trees: Counter[str] = Counter()  # folders being dropped

    # ------------------------------------------------------------------ bookkeeping (lock held)
    def may_write(self, entry: Entry) -> bool:
        """True if a write of ``entry`` to its path races nothing: no delete or move there, no other entry's copy."""
        p = entry.path
        if p in self._files or any(P.is_within(p, t) for t in self._trees):
            return False
        return self._owners.get(p, entry) is entry

    def adopt(self, entry: Entry, path: str) -> None:
        """Record that ``entry``'s copy is at ``path`` (found there, or just written there)."""
        entry.stored = path
        self._owners[path] = entry

    def written(self, entry: Entry) -> Stale:
        """After a write of ``entry`` to its path: the copy there is its own; an older one elsewhere goes."""
        stale = self.release(entry) if entry.stored not in (None, entry.path) else []
        self.adopt(entry, entry.path)
        return stale

    def release(self, entry: Entry, *, within: str | None = None) -> Stale:
        """Give up ``entry``'s copy, marked pending until dropped, unless it lies in folder ``within``
        (which the caller drops whole)."""
        where = entry.stored
        if where is None:
            return []
        entry.stored = None
        if self._owners.get(where) is entry:
            del self._owners[where]
        if within is not None and P.is_within(where, within):
            return []
        self.mark([where])
        return [(where, "file")]

    def mark(self, files: Iterable[str] = (), trees: Iterable[str] = ()) -> None:
        self._files.update(files)
        self._trees.update(trees)

    def unmark(self, files: Iterable[str] = (), trees: Iterable[str] = ()) -> None:
        self._files.subtract(files)
        self._trees.subtract(trees)
        self._files = +self._files  # drop zero counts: the tables stay as small as the work in flight
        self._trees = +self._trees
        self._cond.notify_all()

    def moved(self, entry: Entry, old: str, new: str) -> None:
        """After a relocation of ``entry``'s copy from ``old`` to ``new``."""
        if self._owners.get(old) is entry:
            del self._owners[old]
        self.adopt(entry, new)

    # ------------------------------------------------------------------ I/O (lock not held)
    def write(self, entry: Entry) -> tuple[Exception | None, float]:
        """Write a claimed entry to its path; the error (classified by the caller) and the seconds it took."""
        start = time.perf_counter()
        try:
            self.mkdirs(P.parent(entry.path))
            self.tier.save(entry.obj, entry.path, overwrite=True, **entry.options)
        except Exception as exc:  # never lost: the entry stays in memory
            return exc, time.perf_counter() - start
        return None, time.perf_counter() - start

    def read(self, entry: Entry, options: dict[str, Any]) -> Any:
        """Load a claimed entry's copy, wherever it is."""
        pickled = {"allow_pickle": True} if entry.options.get("allow_pickle") else {}
        return self.tier.load(entry.stored or entry.path, **{**pickled, **options})

    def relocate(self, old: str, new: str) -> bool:
        """Move a copy; False (and the copy still at ``old``) if the tier failed."""
        try:
            self.mkdirs(P.parent(new))
            self.tier.move(old, new, overwrite=True)
        except Exception:
            return False
        return True

    def drop(self, stale: Stale) -> None:
        """Delete copies (files or folders) marked pending under the lock, then clear their marks."""
        if not stale:
            return
        try:
            for path, kind in stale:
                if kind == "tree":
                    self.drop_tree(path)
                else:
                    with contextlib.suppress(FileNotFoundError, InvalidPathError):  # see drop_tree
                        self.tier.delete(path)
        finally:
            with self._cond:
                self.unmark([p for p, k in stale if k == "file"], [p for p, k in stale if k == "tree"])

    def drop_tree(self, p: str) -> None:
        """Remove what is left of folder ``p``; a name the tier refuses (too long) was never spilled there."""
        with contextlib.suppress(FileNotFoundError, InvalidPathError):
            if self.tier.is_dir(p):
                self.tier.delete_all(p)

    def mkdirs(self, directory: str) -> None:
        if directory not in (".", "/"):
            self.tier.ensure_directory(directory)
