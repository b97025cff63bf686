"""The executor interface: run wells of a PlateJob, retry per policy, report each well's result or error."""

from __future__ import annotations

import importlib
import logging
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import Any, Self

from ..pipeline import PlateJob, RetryPolicy, WellResult

__all__ = ["Executor", "WellCallback", "Outcome", "PRELOAD", "preload"]

Outcome = WellResult | BaseException
WellCallback = Callable[[str, Outcome], None]

log = logging.getLogger(__name__)

#: What a worker imports as soon as it starts, before its first well: hcsvfs's pipeline, the zarr output
#: backend (zarr, zarrs) and TIFF input, and SciPy / scikit-image, which the registered functions call.
#: About a second of a fresh process's time, spent while the parent is still busy rather than on the
#: first well (docs/pipeline.md, "Executors").
PRELOAD: tuple[str, ...] = (
    "hcsvfs.pipeline.pipeline",
    "hcsvfs.backends.zarr",
    "tifffile",
    "scipy.ndimage",
    "skimage.filters",
)


def preload(modules: Sequence[str]) -> None:
    """Import ``modules`` in this (worker) process. A module that fails to import is logged, never fatal:
    preloading only saves time, and the well that needs the module reports the failure."""
    for name in modules:
        try:
            importlib.import_module(name)
        except Exception as exc:  # ImportError, or a module that fails as it loads (no GPU, say)
            log.warning("worker preload: cannot import %s (%s); the wells that need it will say so", name, exc)


class Executor(ABC):
    """Runs :func:`hcsvfs.pipeline.run_well` for many wells; one failed well never stops the others.

    Executors with workers start them in :meth:`start` and stop them in :meth:`close` (or use the
    executor as a context manager): a started executor keeps its workers, their imports and their
    FileManagers warm from one :meth:`run` to the next. ``Pipeline.run`` starts an executor that is not
    started yet, first thing, so its workers start up while the plate is scanned, and closes it again
    at the end.
    """

    @abstractmethod
    def run(
        self, job: PlateJob, wells: Sequence[str], retry: RetryPolicy, on_well: WellCallback | None = None
    ) -> dict[str, Outcome]:
        """Every well's final outcome: its WellResult, or the error of its last attempt."""

    @property
    def started(self) -> bool:
        """Whether workers are up (always True for executors without workers)."""
        return True

    def start(self) -> Self:
        """Start the workers, if any, without waiting for them; returns the executor."""
        return self

    def close(self) -> None:  # noqa: B027 - deliberately empty: executors without workers have nothing to stop
        """Stop the workers, if any. The executor can be started again."""

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.close()
