"""Process-pool executor: wells in parallel worker processes on one machine.

Workers are spawned (no forked locks or threads). Intermediates can go to a
shared-memory backend owned by this process (``share_intermediates=True``),
so they are visible across processes and their segments are unlinked here
when the run ends, however the workers ended. A worker that dies (SIGKILL,
OOM killer) breaks the pool: the pool is rebuilt and the wells that were in
flight are tried again, each such loss counting as one attempt.

Workers import :data:`~.base.PRELOAD` as they start. A started executor
(:meth:`ProcessPoolExecutor.start`, or ``with``) keeps them between runs.
"""

from __future__ import annotations

import multiprocessing as mp
import threading
from collections.abc import Sequence
from concurrent.futures import FIRST_COMPLETED, Future, wait
from concurrent.futures import ProcessPoolExecutor as _Pool
from concurrent.futures.process import BrokenProcessPool
from dataclasses import replace
from typing import Self

from ..errors import StepFailedError
from ..pipeline import PlateJob, RetryPolicy, run_well
from .base import PRELOAD, Executor, Outcome, WellCallback, preload

__all__ = ["ProcessPoolExecutor"]


class ProcessPoolExecutor(Executor):
    """Run wells on ``workers`` spawned processes; at most ``workers`` wells are in flight at once.

    ``preload``: modules each worker imports as it starts (default :data:`~.base.PRELOAD`). Runs on one
    executor take turns; a started executor reuses its workers from run to run until :meth:`close`.
    """

    def __init__(
        self, workers: int = 2, *, share_intermediates: bool = False, preload: Sequence[str] = PRELOAD
    ) -> None:
        if workers < 1:
            raise ValueError(f"workers must be >= 1, got {workers}")
        self.workers = workers
        self.share_intermediates = share_intermediates
        self.preload = tuple(preload)
        #: The shared-memory namespace of the latest run (None without ``share_intermediates``).
        self.namespace: str | None = None
        self._pool: _Pool | None = None
        self._lock = threading.Lock()  # guards _pool
        self._turn = threading.Lock()  # one run at a time: each keeps exactly ``workers`` wells in flight

    @property
    def started(self) -> bool:
        with self._lock:
            return self._pool is not None

    def start(self) -> Self:
        """Spawn the workers now; they import ``preload`` in the background while this process goes on."""
        with self._lock:
            if self._pool is None:
                self._pool = self._spawn()
        return self

    def close(self) -> None:
        """Stop the workers (they finish nothing new; idle ones exit at once)."""
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)

    def _spawn(self) -> _Pool:
        pool = _Pool(max_workers=self.workers, mp_context=mp.get_context("spawn"), initializer=preload,
                     initargs=(self.preload,))
        for _ in range(self.workers):  # concurrent.futures spawns a worker per pending task: all of them, now
            pool.submit(int)
        return pool

    def _replace(self, broken: _Pool) -> _Pool:
        """A fresh pool in place of a broken one (whose workers are dead or dying)."""
        broken.shutdown(wait=False, cancel_futures=True)
        with self._lock:
            self._pool = self._spawn()
            return self._pool

    def run(
        self, job: PlateJob, wells: Sequence[str], retry: RetryPolicy, on_well: WellCallback | None = None
    ) -> dict[str, Outcome]:
        shared = None
        if self.share_intermediates:
            from ...backends.shared_memory import SharedMemoryStorageBackend

            shared = SharedMemoryStorageBackend()
            self.namespace = shared.namespace
            job = replace(job, storage=replace(job.storage, shared_memory_namespace=shared.namespace))
        with self._turn:
            started_here = not self.started
            self.start()
            try:
                return self._run(job, list(wells), retry, on_well)
            finally:
                if started_here:
                    self.close()
                if shared is not None:
                    shared.close()  # unlinks every segment, also those of workers killed mid-well

    def _run(
        self, job: PlateJob, wells: list[str], retry: RetryPolicy, on_well: WellCallback | None
    ) -> dict[str, Outcome]:
        outcomes: dict[str, Outcome] = {}
        attempts = dict.fromkeys(wells, 0)
        queue = list(wells)
        with self._lock:
            pool = self._pool
        assert pool is not None, "run() starts the executor first"
        running: dict[Future, str] = {}
        while queue or running:
            while queue and len(running) < self.workers:
                well = queue.pop(0)
                attempts[well] += 1
                try:
                    future = pool.submit(run_well, job, well, attempts[well])
                except BrokenProcessPool:  # a worker of a started pool died while it sat idle between runs
                    pool = self._replace(pool)
                    future = pool.submit(run_well, job, well, attempts[well])
                running[future] = well
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            broken = False
            for future in finished:
                well = running.pop(future)
                try:
                    outcomes[well] = future.result()
                except BrokenProcessPool:
                    broken = True
                    self._lost(well, attempts, retry, queue, outcomes, on_well)
                    continue
                except Exception as exc:
                    outcomes[well] = exc
                    if attempts[well] < retry.max_attempts:
                        queue.append(well)
                        continue
                if on_well is not None:
                    on_well(well, outcomes[well])
            if broken:
                # Every well still in flight died with the pool: try each again per policy, on a new pool.
                for well in running.values():
                    self._lost(well, attempts, retry, queue, outcomes, on_well)
                running.clear()
                pool = self._replace(pool)
        return outcomes

    @staticmethod
    def _lost(
        well: str,
        attempts: dict[str, int],
        retry: RetryPolicy,
        queue: list[str],
        outcomes: dict[str, Outcome],
        on_well: WellCallback | None,
    ) -> None:
        if attempts[well] < retry.max_attempts:
            queue.append(well)
            return
        outcomes[well] = StepFailedError(
            f"well {well} failed: its worker process died ({attempts[well]} attempt(s)); look for the OOM killer "
            "or a crash in native code, or lower the memory budget",
            well=well,
            step="(worker lost)",
            traceback="",
        )
        if on_well is not None:
            on_well(well, outcomes[well])
