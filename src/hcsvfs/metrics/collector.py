"""Thread-safe operation metrics: count, bytes, errors and latency per backend and operation.

``Metrics`` implements FileManager's ``OperationObserver``. Backends and tiers
that know more than FileManager does (a codec's encode time, a spill) report
it through :func:`emit`; gauges such as the overlay's ``stats()`` are pulled
through :meth:`Metrics.add_source` when a snapshot is taken.
"""

from __future__ import annotations

import json
import os
import threading
import time
import weakref
from bisect import bisect_left
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .histogram import LATENCY_BOUNDS, SIZE_BOUNDS, Histogram

__all__ = ["Metrics", "emit", "SNAPSHOT_VERSION"]

SNAPSHOT_VERSION = 1

# Every enabled collector; emit() is a no-op when this is empty (the common case).
_LIVE: weakref.WeakSet[Metrics] = weakref.WeakSet()


def emit(source: str, event: str, *, seconds: float = 0.0, nbytes: int = 0, count: int = 1) -> None:
    """Report a domain event (e.g. ``emit("zarr", "encode:zstd", seconds=t, nbytes=n)``) to every live collector."""
    if not _LIVE:
        return
    for m in list(_LIVE):
        m.record_event(source, event, seconds=seconds, nbytes=nbytes, count=count)


# Per-(backend, operation) record, a plain list because record() runs on every FileManager call and
# list item updates are the cheapest thing CPython offers: [count, errors, bytes, seconds, min, max,
# latency bucket counts, size bucket counts, {error type: count}].
_COUNT, _ERRORS, _BYTES, _SECONDS, _MIN, _MAX, _LAT, _SIZE, _ERRTYPES = range(9)
_NLAT, _NSIZE = len(LATENCY_BOUNDS) + 1, len(SIZE_BOUNDS) + 1


def _new_op() -> list[Any]:
    return [0, 0, 0, 0.0, float("inf"), 0.0, [0] * _NLAT, [0] * _NSIZE, {}]


class _EventStats:
    __slots__ = ("bytes", "count", "seconds")

    def __init__(self) -> None:
        self.count = 0
        self.bytes = 0
        self.seconds = 0.0


class Metrics:
    """Per-(backend, operation) counters and latency histograms; ``snapshot()`` is a plain dict.

    ``enabled=False`` (or setting ``.enabled`` later) makes ``record`` a no-op.
    """

    def __init__(self, *, enabled: bool = True) -> None:
        self._lock = threading.Lock()
        # One dict of records per recording thread: record() needs no lock (a contended lock cost more than
        # the rest of record); snapshot() sums them. When a thread ends, its dict is folded into _retired,
        # so a process that runs many short-lived threads keeps one table, not one per thread it ever had.
        self._local = threading.local()
        self._per_thread: dict[int, dict[tuple[str, str], list[Any]]] = {}
        self._retired: dict[tuple[str, str], list[Any]] = {}
        self._events: dict[tuple[str, str], _EventStats] = {}
        self._sources: dict[str, Callable[[], dict[str, Any]]] = {}
        self._backend_lookup: Callable[[str], Any] | None = None
        self._started = time.time()
        self._enabled = False
        self.enabled = enabled

    # ------------------------------------------------------------------ switches
    @property
    def enabled(self) -> bool:
        """Whether operations and events are being recorded."""
        return self._enabled

    @enabled.setter
    def enabled(self, value: bool) -> None:
        self._enabled = bool(value)
        if self._enabled:
            _LIVE.add(self)
        else:
            _LIVE.discard(self)

    def reset(self) -> None:
        """Forget everything recorded so far (sources stay attached)."""
        with self._lock:
            for ops in self._per_thread.values():
                ops.clear()
            self._retired.clear()
            self._events.clear()
            self._started = time.time()

    # ------------------------------------------------------------------ recording
    def record(self, backend: str, operation: str, seconds: float, nbytes: int, error: BaseException | None) -> None:
        """Count one operation (FileManager calls this; ``nbytes`` is 0 when unknown or on error)."""
        if not self._enabled:
            return
        try:
            ops = self._local.ops
        except AttributeError:
            ops = self._new_thread_table()
        st = ops.get((backend, operation))
        if st is None:
            st = ops[(backend, operation)] = _new_op()
        st[_COUNT] += 1
        st[_SECONDS] += seconds
        st[_LAT][bisect_left(LATENCY_BOUNDS, seconds)] += 1
        if seconds < st[_MIN]:
            st[_MIN] = seconds
        if seconds > st[_MAX]:
            st[_MAX] = seconds
        if error is None:
            st[_BYTES] += nbytes
            if nbytes:
                st[_SIZE][bisect_left(SIZE_BOUNDS, nbytes)] += 1
        else:
            st[_ERRORS] += 1
            kind = type(error).__name__
            st[_ERRTYPES][kind] = st[_ERRTYPES].get(kind, 0) + 1

    def record_event(self, source: str, event: str, *, seconds: float = 0.0, nbytes: int = 0, count: int = 1) -> None:
        """Count a domain event on this collector only (see the module function :func:`emit`)."""
        if not self._enabled:
            return
        with self._lock:
            st = self._events.get((source, event))
            if st is None:
                st = self._events[(source, event)] = _EventStats()
            st.count += count
            st.bytes += nbytes
            st.seconds += seconds

    def add_source(self, name: str, stats: Callable[[], dict[str, Any]]) -> None:
        """Include ``stats()`` (a plain dict of figures) under ``snapshot()["sources"][name]``."""
        self._sources[name] = stats

    def watch_backends(self, get_backend: Callable[[str], Any]) -> None:
        """Include ``stats()`` of every backend that has one and was used (e.g. the memory overlay's spill figures)."""
        self._backend_lookup = get_backend

    def backends(self) -> list[str]:
        """Names of the backends that have recorded operations."""
        return sorted({b for b, _ in self._merged()})

    # ------------------------------------------------------------------ reading
    def snapshot(self) -> dict[str, Any]:
        """Everything recorded, as JSON-ready plain data (see docs/metrics.md for the shape)."""
        merged = self._merged()
        ops: dict[str, dict[str, Any]] = {}
        for (backend, op), st in sorted(merged.items()):
            ops.setdefault(backend, {})[op] = _op_dict(st)
        with self._lock:
            events: dict[str, dict[str, Any]] = {}
            for (source, event), ev in sorted(self._events.items()):
                events.setdefault(source, {})[event] = {"count": ev.count, "bytes": ev.bytes, "seconds": ev.seconds}
            sources = dict(self._sources)
        used = sorted({b for b, _ in merged})
        lookup = self._backend_lookup
        if lookup is not None:
            for name in used:
                stats = getattr(_quiet(lookup, name), "stats", None)
                if callable(stats) and name not in sources:
                    sources[name] = stats
        collected: dict[str, Any] = {}
        for name, fn in sources.items():  # outside the lock: a source may be slow or take its own locks
            try:
                collected[name] = fn()
            except Exception as exc:  # a broken gauge must not hide the counters
                collected[name] = {"error": f"{type(exc).__name__}: {exc}"}
        return {
            "version": SNAPSHOT_VERSION,
            "started": datetime.fromtimestamp(self._started, UTC).isoformat(timespec="seconds"),
            "elapsed_s": time.time() - self._started,
            "operations": ops,
            "events": events,
            "sources": collected,
        }

    def _new_thread_table(self) -> dict[tuple[str, str], list[Any]]:
        """This thread's table, registered; folded into the retired table when the thread ends."""
        ops: dict[tuple[str, str], list[Any]] = {}
        holder = _ThreadTable()
        self._local.ops = ops
        self._local.holder = holder  # dropped with the thread's locals, which runs the finalizer below
        with self._lock:
            self._per_thread[id(ops)] = ops
        weakref.finalize(holder, _retire, weakref.ref(self), ops)
        return ops

    def _merged(self) -> dict[tuple[str, str], list[Any]]:
        """Sum of the retired and the per-thread records (a thread still recording may be one operation ahead)."""
        out: dict[tuple[str, str], list[Any]] = {}
        with self._lock:
            for ops in [self._retired, *self._per_thread.values()]:
                _add_into(out, ops)
        return out

    def report(self) -> Any:
        """A rich renderable (table of operations, sources and advice); ``rich.print(fm.metrics.report())``."""
        from .report import render

        return render(self.snapshot())

    def to_json(self, path: str | os.PathLike[str] | None = None) -> str:
        """The snapshot as JSON text; also written atomically to ``path`` when given."""
        text = json.dumps(self.snapshot(), indent=2, default=str)
        if path is not None:
            target = Path(path)
            tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
            tmp.write_text(text)
            os.replace(tmp, target)  # readers (hcsvfs stats) never see half a file
        return text

    def __reduce__(self) -> tuple[Any, ...]:
        # Locks and thread-locals do not pickle; a FileManager sent to a worker process gets its own empty
        # collector there (counts from workers do not flow back on their own).
        return (Metrics, (), {"_enabled_state": self._enabled})

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.enabled = state["_enabled_state"]

    def __repr__(self) -> str:
        n = sum(st[_COUNT] for st in self._merged().values())
        return f"<Metrics {'enabled' if self._enabled else 'disabled'} operations={n}>"


class _ThreadTable:
    """Lives in one thread's locals: its collection (the thread's end) retires that thread's table."""

    __slots__ = ("__weakref__",)


def _retire(ref: weakref.ref[Metrics], ops: dict[tuple[str, str], list[Any]]) -> None:
    metrics = ref()
    if metrics is None:
        return
    with metrics._lock:
        _add_into(metrics._retired, ops)
        metrics._per_thread.pop(id(ops), None)


def _add_into(acc_table: dict[tuple[str, str], list[Any]], ops: dict[tuple[str, str], list[Any]]) -> None:
    """Add the records of ``ops`` into ``acc_table``."""
    for key, st in list(ops.items()):  # list() copies atomically under the GIL
        acc = acc_table.get(key)
        if acc is None:
            acc = acc_table[key] = _new_op()
        for i in (_COUNT, _ERRORS, _BYTES, _SECONDS):
            acc[i] += st[i]
        acc[_MIN], acc[_MAX] = min(acc[_MIN], st[_MIN]), max(acc[_MAX], st[_MAX])
        acc[_LAT] = [x + y for x, y in zip(acc[_LAT], st[_LAT])]
        acc[_SIZE] = [x + y for x, y in zip(acc[_SIZE], st[_SIZE])]
        for kind, n in list(st[_ERRTYPES].items()):
            acc[_ERRTYPES][kind] = acc[_ERRTYPES].get(kind, 0) + n


def _quiet(lookup: Callable[[str], Any], name: str) -> Any:
    try:
        return lookup(name)
    except Exception:  # a name recorded for a backend that is gone: no gauges, not a crash
        return None


def _op_dict(st: list[Any]) -> dict[str, Any]:
    lat = Histogram.from_counts(LATENCY_BOUNDS, st[_LAT], st[_SECONDS], st[_MIN], st[_MAX])
    sizes = Histogram.from_counts(SIZE_BOUNDS, st[_SIZE])
    seconds, count = st[_SECONDS], st[_COUNT]
    return {
        "count": count,
        "errors": st[_ERRORS],
        "error_types": dict(st[_ERRTYPES]),
        "bytes": st[_BYTES],
        "seconds": seconds,
        "mb_per_s": (st[_BYTES] / 1e6 / seconds) if seconds > 0 else 0.0,
        "min_s": st[_MIN] if count else 0.0,
        "max_s": st[_MAX] if count else 0.0,
        "p50_s": lat.quantile(0.50),
        "p95_s": lat.quantile(0.95),
        "p99_s": lat.quantile(0.99),
        "latency_histogram": lat.cumulative(),
        "size_histogram": sizes.cumulative(),
    }
