"""In-process executor: wells one after another in the calling process (the reference the others must match)."""

from __future__ import annotations

from collections.abc import Sequence

from ..pipeline import PlateJob, RetryPolicy, run_well
from .base import Executor, Outcome, WellCallback

__all__ = ["LocalExecutor"]


class LocalExecutor(Executor):
    """Process wells sequentially here; peak memory is one well's work."""

    def run(
        self, job: PlateJob, wells: Sequence[str], retry: RetryPolicy, on_well: WellCallback | None = None
    ) -> dict[str, Outcome]:
        outcomes: dict[str, Outcome] = {}
        for well in wells:
            for attempt in range(1, retry.max_attempts + 1):
                try:
                    outcomes[well] = run_well(job, well, attempt)
                    break
                except Exception as exc:  # reported per well; the plate goes on
                    outcomes[well] = exc
            if on_well is not None:
                on_well(well, outcomes[well])
        return outcomes
