"""A MemoryOverlay's thresholds (Dask's worker model): target, spill and pause, in bytes of a budget."""

from __future__ import annotations

from dataclasses import dataclass

from .pressure import MemoryBudget, MemoryMonitor

__all__ = ["Levels"]


@dataclass(frozen=True)
class Levels:
    """Where ``managed`` bytes (what the overlay holds) and, where measured, process memory stand."""

    budget: MemoryBudget | MemoryMonitor
    target: int
    spill: int
    pause: int

    @classmethod
    def of(cls, budget: MemoryBudget | MemoryMonitor, target: float, spill: float, pause: float) -> Levels:
        if not 0 < target <= spill <= pause <= 1:
            raise ValueError(f"thresholds must satisfy 0 < target <= spill <= pause <= 1, got {target}, {spill}, {pause}")
        return cls(budget, int(budget.limit * target), int(budget.limit * spill), int(budget.limit * pause))

    def fits(self, managed: int, size: int) -> bool:
        """``size`` more bytes stay at or below pause."""
        process = self.budget.process_used()
        return managed + size <= self.pause and (process is None or process <= self.pause)

    def above_spill(self, managed: int) -> bool:
        process = self.budget.process_used()
        return managed > self.spill or (process is not None and process > self.spill)

    def needs_spill(self, managed: int, *, sync: bool) -> bool:
        """Managed bytes above target, or process memory above spill; once a save has crossed spill
        (``sync``), process memory is brought back to target, as Dask's workers do."""
        process = self.budget.process_used()
        return managed > self.target or (process is not None and process > (self.target if sync else self.spill))
