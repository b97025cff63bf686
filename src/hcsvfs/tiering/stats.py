"""Counters a MemoryOverlay keeps about its tiers, as a plain dict for the metrics layer."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["OverlayCounters"]


def _mb_per_s(nbytes: int, seconds: float) -> float | None:
    return nbytes / 1e6 / seconds if seconds > 0 else None


@dataclass
class OverlayCounters:
    """Cumulative counts since the overlay was created (updated under the overlay's lock)."""

    spill_count: int = 0  #: entries written to the persistent tier and dropped from memory
    spill_bytes_total: int = 0
    spill_seconds: float = 0.0
    materialize_count: int = 0  #: entries written to the persistent tier and kept in memory
    materialize_bytes_total: int = 0
    restore_count: int = 0  #: spilled entries read back into memory
    restore_bytes_total: int = 0
    restore_seconds: float = 0.0
    hits: int = 0  #: loads served from memory
    misses: int = 0  #: loads that had to read the persistent tier
    unspillable: int = 0  #: entries the persistent tier refused (kept in memory)
    spill_errors: int = 0  #: transient write failures (the entry stayed in memory)
    pauses: int = 0  #: saves that had to wait at the pause threshold
    pause_seconds: float = 0.0
    budget_errors: int = 0  #: saves refused with MemoryBudgetError
    peak_memory_bytes: int = 0

    def spilled(self, nbytes: int, seconds: float) -> None:
        self.spill_count += 1
        self.spill_bytes_total += nbytes
        self.spill_seconds += seconds

    def materialized(self, nbytes: int) -> None:
        self.materialize_count += 1
        self.materialize_bytes_total += nbytes

    def restored(self, nbytes: int, seconds: float) -> None:
        self.restore_count += 1
        self.restore_bytes_total += nbytes
        self.restore_seconds += seconds

    def note_peak(self, resident: int) -> None:
        self.peak_memory_bytes = max(self.peak_memory_bytes, resident)

    def as_dict(self) -> dict[str, Any]:
        """Every counter plus spill and restore throughput in MB/s (None before the first one)."""
        out = asdict(self)
        out["spill_mb_per_s"] = _mb_per_s(self.spill_bytes_total, self.spill_seconds)
        out["restore_mb_per_s"] = _mb_per_s(self.restore_bytes_total, self.restore_seconds)
        return out
