"""Fixed-bucket histograms: O(1) memory, mergeable, and the same buckets Prometheus exposes."""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence
from typing import Any

__all__ = ["Histogram", "LATENCY_BOUNDS", "SIZE_BOUNDS"]

#: Latency bucket upper bounds in seconds: 1 us to ~1000 s, four buckets per factor of 2 (~19% wide),
#: so an estimated percentile is within ~10% of the true one.
LATENCY_BOUNDS: tuple[float, ...] = tuple(1e-6 * 2 ** (k / 4) for k in range(4 * 30 + 1))

#: Object size bucket upper bounds in bytes: 1 KiB to 4 GiB by factors of 4 (for "many small files" advice).
SIZE_BOUNDS: tuple[float, ...] = tuple(float(1024 * 4**k) for k in range(12))


class Histogram:
    """Counts of observations per bucket (``bounds`` are inclusive upper edges; one overflow bucket).

    Not locked: the owner (``Metrics``) serialises access.
    """

    __slots__ = ("bounds", "counts", "max", "min", "sum", "total")

    def __init__(self, bounds: Sequence[float]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)
        self.total = 0
        self.sum = 0.0
        self.min = float("inf")
        self.max = float("-inf")

    @classmethod
    def from_counts(
        cls, bounds: Sequence[float], counts: list[int], total_sum: float = 0.0, lo: float = 0.0, hi: float = 0.0
    ) -> Histogram:
        """A histogram over existing bucket ``counts`` (observed sum, min and max given separately)."""
        h = cls(bounds)
        h.counts = list(counts)
        h.total = sum(counts)
        h.sum, h.min, h.max = total_sum, (lo if h.total else float("inf")), (hi if h.total else float("-inf"))
        return h

    def add(self, value: float) -> None:
        """Count one observation."""
        self.counts[bisect_left(self.bounds, value)] += 1
        self.total += 1
        self.sum += value
        if value < self.min:
            self.min = value
        if value > self.max:
            self.max = value

    def quantile(self, q: float) -> float:
        """Estimated ``q``-quantile (0..1): linear inside the bucket, clamped to the observed min/max."""
        if not 0.0 <= q <= 1.0:
            raise ValueError(f"quantile must be within 0..1, got {q}")
        if self.total == 0:
            return 0.0
        rank = q * self.total
        seen = 0
        for i, c in enumerate(self.counts):
            if c and seen + c >= rank:
                lo = self.bounds[i - 1] if i > 0 else 0.0
                hi = self.bounds[i] if i < len(self.bounds) else self.max
                lo, hi = max(lo, self.min), min(hi, self.max)
                return lo + (hi - lo) * ((rank - seen) / c)
            seen += c
        return self.max

    def cumulative(self) -> list[list[Any]]:
        """``[[upper_bound, observations <= bound], ...]`` from the first to the last non-empty bucket
        (overflow as ``"+Inf"``)."""
        out: list[list[Any]] = []
        used = [i for i, c in enumerate(self.counts) if c]
        if not used:
            return out
        running = 0
        for i in range(used[0], used[-1] + 1):
            running += self.counts[i]
            out.append([self.bounds[i] if i < len(self.bounds) else "+Inf", running])
        return out

    def count_below(self, bound: float) -> int:
        """Observations in buckets whose upper edge is <= ``bound`` (exact when ``bound`` is a bucket edge)."""
        return sum(c for b, c in zip(self.bounds, self.counts) if b <= bound)
