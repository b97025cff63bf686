"""Executors: in-process, a process pool on one machine, and Dask distributed."""

from __future__ import annotations

from .base import Executor
from .local import LocalExecutor
from .processes import ProcessPoolExecutor

__all__ = ["Executor", "LocalExecutor", "ProcessPoolExecutor", "DaskExecutor"]


def __getattr__(name: str) -> object:
    if name == "DaskExecutor":  # dask is optional and heavy: import it on first use
        from .dask import DaskExecutor

        return DaskExecutor
    raise AttributeError(name)
