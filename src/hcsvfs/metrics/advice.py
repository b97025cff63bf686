"""Tuning advice drawn from a metrics snapshot; every hint carries the numbers that triggered it.

Rules read only the plain-dict snapshot (``Metrics.snapshot()`` or a JSON dump),
so each can be tested with a scripted state and re-run offline by ``hcsvfs stats``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from math import prod
from typing import Any

__all__ = ["Advice", "advise", "RULES", "Thresholds", "chunk_advice"]


@dataclass(frozen=True)
class Advice:
    """One recommendation: which rule fired, what to do, and the measured evidence behind it."""

    rule: str
    message: str
    evidence: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"rule": self.rule, "message": self.message, "evidence": self.evidence}


@dataclass(frozen=True)
class Thresholds:
    """When rules fire; the defaults ask for enough operations that one slow call does not trigger advice."""

    small_file_bytes: int = 256 * 1024  #: a disk save below this is a "small file" (a SIZE_BOUNDS edge)
    small_file_min_saves: int = 200
    small_file_fraction: float = 0.5
    amplification_min_reads: int = 20
    amplification_ratio: float = 4.0  #: bytes decoded / bytes asked for
    spill_min_restores: int = 10
    spill_restore_fraction: float = 0.2  #: overlay loads that missed memory (had to restore)
    codec_share: float = 0.5  #: encode time / zarr write time
    codec_slow_mb_s: float = 200.0
    error_fraction: float = 0.05
    error_min_ops: int = 20


Rule = Callable[[dict[str, Any], Thresholds], Iterable[Advice]]


def _op(snap: dict[str, Any], backend: str, operation: str) -> dict[str, Any]:
    return snap.get("operations", {}).get(backend, {}).get(operation, {})


def _event(snap: dict[str, Any], source: str, event: str) -> dict[str, Any]:
    return snap.get("events", {}).get(source, {}).get(event, {})


def _below(hist: list[list[Any]], bound: float) -> int:
    """Observations <= ``bound`` from a cumulative ``[[edge, count], ...]`` histogram."""
    best = 0
    for edge, count in hist:
        if edge != "+Inf" and edge <= bound:
            best = count
    return int(best)


def many_small_disk_files(snap: dict[str, Any], t: Thresholds) -> Iterable[Advice]:
    """Many tiny files on disk: per-file overhead (open, fsync, rename, inode) dominates; zarr chunks batch them."""
    save = _op(snap, "disk", "save")
    n = save.get("count", 0) - save.get("errors", 0)
    if n < t.small_file_min_saves:
        return
    small = _below(save.get("size_histogram", []), t.small_file_bytes)
    if small / n >= t.small_file_fraction:
        yield Advice(
            "many-small-disk-files",
            f"{small} of {n} disk saves were <= {t.small_file_bytes // 1024} KiB; store them as arrays in one "
            "zarr store (Backend.ZARR, chunks per plane) to pay per-file overhead once per chunk, not per object.",
            {"disk_saves": n, "small_saves": small, "p50_latency_ms": round(save.get("p50_s", 0) * 1e3, 3)},
        )


def read_amplification(snap: dict[str, Any], t: Thresholds) -> Iterable[Advice]:
    """Reads decode far more than asked for: single-chunk arrays read plane by plane."""
    decoded = _event(snap, "zarr", "chunk_bytes_decoded")
    asked = _event(snap, "zarr", "bytes_requested")
    reads = asked.get("count", 0)
    if reads < t.amplification_min_reads or not asked.get("bytes"):
        return
    ratio = decoded.get("bytes", 0) / asked["bytes"]
    if ratio >= t.amplification_ratio:
        yield Advice(
            "read-amplification",
            f"partial zarr reads decoded {ratio:.1f}x the bytes they returned; re-chunk one chunk per image plane "
            "(ZarrConfig chunks of one plane, the default layout) so a random plane read decodes only that plane.",
            {"reads": reads, "bytes_requested": asked["bytes"], "bytes_decoded": decoded.get("bytes", 0)},
        )


def frequent_spills(snap: dict[str, Any], t: Thresholds) -> Iterable[Advice]:
    """A memory overlay keeps restoring spilled data: the working set does not fit the budget.

    Reads the overlay's own ``stats()`` figures (any source with ``restore_count``, ``hits`` and ``misses``).
    """
    for name, stats in snap.get("sources", {}).items():
        if not isinstance(stats, dict) or "restore_count" not in stats:
            continue
        restores, misses, hits = stats["restore_count"], stats.get("misses", 0), stats.get("hits", 0)
        loads = hits + misses
        if restores < t.spill_min_restores or not loads or misses / loads < t.spill_restore_fraction:
            continue
        keys = ("spill_count", "restore_count", "hits", "misses", "spill_bytes_total", "limit_bytes", "pauses")
        yield Advice(
            "frequent-spills",
            f"{misses} of {loads} loads from {name} had to bring spilled data back ({restores} restores); raise the "
            "memory budget, or make zarr the persistent tier (compressed, chunked restores are cheaper).",
            {"backend": name} | {k: stats[k] for k in keys if k in stats},
        )


def slow_codec(snap: dict[str, Any], t: Thresholds) -> Iterable[Advice]:
    """One codec's encode time is most of the zarr write time and it is slow per byte."""
    write_s = sum(_op(snap, "zarr", op).get("seconds", 0.0) for op in ("save", "save_batch"))
    if write_s <= 0:
        return
    for event, ev in snap.get("events", {}).get("zarr", {}).items():
        if not event.startswith("encode:") or ev.get("seconds", 0) <= 0:
            continue
        share = ev["seconds"] / write_s
        mb_s = ev.get("bytes", 0) / 1e6 / ev["seconds"]
        if share >= t.codec_share and mb_s < t.codec_slow_mb_s:
            codec = event.split(":", 1)[1]
            yield Advice(
                "slow-codec",
                f"encoding with {codec} took {share:.0%} of zarr write time at {mb_s:.0f} MB/s; use Blosc LZ4 "
                "level 1 with shuffle (the default) or a lower level, unless the smaller files are worth the time.",
                {"codec": codec, "encode_s": round(ev["seconds"], 4), "write_s": round(write_s, 4), "mb_per_s": round(mb_s, 1)},
            )


def failing_operations(snap: dict[str, Any], t: Thresholds) -> Iterable[Advice]:
    """A sizeable share of an operation fails: usually a logic error (e.g. saving over existing paths)."""
    for backend, ops in snap.get("operations", {}).items():
        for op, st in ops.items():
            count, errors = st.get("count", 0), st.get("errors", 0)
            if count >= t.error_min_ops and errors / count >= t.error_fraction:
                kinds = st.get("error_types", {})
                hint = ""
                if "PathExistsError" in kinds or "FileExistsError" in kinds:
                    hint = " Saves onto existing paths fail by design; pass overwrite=True if replacing is intended."
                yield Advice(
                    "failing-operations",
                    f"{errors} of {count} {backend}.{op} calls failed ({', '.join(sorted(kinds))}).{hint}",
                    {"backend": backend, "operation": op, "count": count, "errors": errors, "error_types": kinds},
                )


RULES: tuple[Rule, ...] = (many_small_disk_files, read_amplification, frequent_spills, slow_codec, failing_operations)


def advise(snapshot: dict[str, Any], thresholds: Thresholds | None = None) -> list[Advice]:
    """Every hint the rules find in ``snapshot`` (empty when nothing stands out)."""
    t = thresholds or Thresholds()
    return [a for rule in RULES for a in rule(snapshot, t)]


def chunk_advice(shape: Sequence[int], chunks: Sequence[int]) -> Advice | None:
    """Advice from a stored array's layout alone: several planes in one chunk make every plane read decode them all."""
    if len(shape) < 3 or len(chunks) != len(shape):
        return None
    planes_per_chunk = prod(min(c, s) for c, s in zip(chunks[:-2], shape[:-2]))
    if planes_per_chunk <= 1:
        return None
    return Advice(
        "multi-plane-chunks",
        f"each chunk holds {planes_per_chunk} image planes, so reading one plane decodes {planes_per_chunk}x the "
        "bytes it returns; store one chunk per plane (ZarrConfig chunks='plane', the default) for random access.",
        {"shape": list(shape), "chunks": list(chunks), "planes_per_chunk": planes_per_chunk},
    )
