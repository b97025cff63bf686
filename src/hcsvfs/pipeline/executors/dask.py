"""Dask executor: wells as tasks on a distributed cluster (a LocalCluster unless a scheduler address is given).

Workers receive the PlateJob (plain values and location strings) and build
their own FileManager, so the output may be a shared path or an object-store
URL every worker can reach. Dask retries a task that raised, and reschedules
one whose worker died.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..pipeline import PlateJob, RetryPolicy, run_well
from .base import Executor, Outcome, WellCallback

__all__ = ["DaskExecutor"]


class DaskExecutor(Executor):
    """Submit one task per well to ``scheduler_address``, or to a LocalCluster of ``workers`` processes."""

    def __init__(
        self, scheduler_address: str | None = None, *, workers: int = 2, cluster_kwargs: dict[str, Any] | None = None
    ) -> None:
        self.scheduler_address = scheduler_address
        self.workers = workers
        self.cluster_kwargs = cluster_kwargs or {}

    def run(
        self, job: PlateJob, wells: Sequence[str], retry: RetryPolicy, on_well: WellCallback | None = None
    ) -> dict[str, Outcome]:
        from distributed import Client, LocalCluster, as_completed

        cluster = None
        if self.scheduler_address is None:
            options = {"n_workers": self.workers, "threads_per_worker": 1, "processes": True, "dashboard_address": None}
            cluster = LocalCluster(**{**options, **self.cluster_kwargs})
        client = Client(self.scheduler_address or cluster)
        try:
            futures = {
                client.submit(run_well, job, well, key=f"hcsvfs-{job.pipeline.name}-{well}", pure=False,
                              retries=retry.max_attempts - 1): well
                for well in wells
            }
            outcomes: dict[str, Outcome] = {}
            for future in as_completed(futures):
                well = futures[future]
                if future.status == "finished":
                    outcomes[well] = future.result()
                else:
                    outcomes[well] = future.exception()
                if on_well is not None:
                    on_well(well, outcomes[well])
            return outcomes
        finally:
            client.close()
            if cluster is not None:
                cluster.close()
