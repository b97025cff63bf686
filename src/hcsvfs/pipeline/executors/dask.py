"""Dask executor: wells as tasks on a distributed cluster (a LocalCluster unless a scheduler address is given).

Workers receive the PlateJob (plain values and location strings) and build
their own FileManager, so the output may be a shared path or an object-store
URL every worker can reach. Dask retries a task that raised, and reschedules
one whose worker died. A started executor (:meth:`DaskExecutor.start`, or
``with``) keeps its client and LocalCluster from one run to the next.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Sequence
from typing import Any, Self

from ..pipeline import PlateJob, RetryPolicy, run_well
from .base import PRELOAD, Executor, Outcome, WellCallback, preload

__all__ = ["DaskExecutor"]


async def _preload_in_background(modules: tuple[str, ...]) -> None:
    """On a worker: import ``modules`` in a thread, so the worker's event loop (and this call) return at once.

    Dask's ``Client.run(..., wait=False)`` takes coroutine functions only."""
    import asyncio

    asyncio.get_running_loop().run_in_executor(None, preload, modules)


class DaskExecutor(Executor):
    """Submit one task per well to ``scheduler_address``, or to a LocalCluster of ``workers`` processes.

    ``preload``: modules each worker imports once the cluster is up (default :data:`~.base.PRELOAD`),
    in the background.
    """

    def __init__(
        self,
        scheduler_address: str | None = None,
        *,
        workers: int = 2,
        cluster_kwargs: dict[str, Any] | None = None,
        preload: Sequence[str] = PRELOAD,
    ) -> None:
        self.scheduler_address = scheduler_address
        self.workers = workers
        self.cluster_kwargs = cluster_kwargs or {}
        self.preload = tuple(preload)
        self._client: Any = None
        self._cluster: Any = None
        self._lock = threading.Lock()

    @property
    def started(self) -> bool:
        with self._lock:
            return self._client is not None

    def start(self) -> Self:
        """Connect (starting a LocalCluster first, without an address); the workers preload in the background."""
        import dask
        from distributed import Client, LocalCluster

        with self._lock:
            if self._client is None:
                if self.scheduler_address is None:
                    options = {"n_workers": self.workers, "threads_per_worker": 1, "processes": True,
                               "dashboard_address": None}
                    # Dask's nannies set MALLOC_TRIM_THRESHOLD_=65536 in their workers, which turns off glibc's
                    # adaptive mmap threshold: every image-sized temporary is then mapped and unmapped again,
                    # and the demo's wells ran 30-45 % slower than in a process pool. Set the variable in the
                    # environment to have it anyway; it is inherited.
                    with dask.config.set({"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None}):
                        self._cluster = LocalCluster(**{**options, **self.cluster_kwargs})
                self._client = Client(self.scheduler_address or self._cluster)
                self._client.run(_preload_in_background, self.preload, wait=False)
        return self

    def close(self) -> None:
        """Disconnect, and stop the LocalCluster this executor started (a cluster at an address stays up)."""
        with self._lock:
            client, cluster, self._client, self._cluster = self._client, self._cluster, None, None
        if client is not None:
            client.close()
        if cluster is not None:
            cluster.close()

    def run(
        self, job: PlateJob, wells: Sequence[str], retry: RetryPolicy, on_well: WellCallback | None = None
    ) -> dict[str, Outcome]:
        from distributed import as_completed

        started_here = not self.started
        self.start()
        try:
            client = self._client
            # Keys unique to this run: on a started cluster the scheduler may still hold the last run's tasks,
            # and a repeated key would hand back that run's result instead of running this one.
            run_id = uuid.uuid4().hex[:8]
            futures = {
                client.submit(run_well, job, well, key=f"hcsvfs-{job.pipeline.name}-{run_id}-{well}", pure=False,
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
            if started_here:
                self.close()
