"""The executor interface: run wells of a PlateJob, retry per policy, report each well's result or error."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence

from ..pipeline import PlateJob, RetryPolicy, WellResult

__all__ = ["Executor", "WellCallback", "Outcome"]

Outcome = WellResult | BaseException
WellCallback = Callable[[str, Outcome], None]


class Executor(ABC):
    """Runs :func:`hcsvfs.pipeline.run_well` for many wells; one failed well never stops the others."""

    @abstractmethod
    def run(
        self, job: PlateJob, wells: Sequence[str], retry: RetryPolicy, on_well: WellCallback | None = None
    ) -> dict[str, Outcome]:
        """Every well's final outcome: its WellResult, or the error of its last attempt."""
