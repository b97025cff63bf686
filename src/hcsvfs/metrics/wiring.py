"""How FileManager turns its ``metrics=`` argument into a collector (kept here so filemanager.py stays small)."""

from __future__ import annotations

import atexit
import os
from collections.abc import Callable
from typing import Any

from .collector import Metrics

__all__ = ["ENV_VAR", "metrics_for"]

#: ``HCSVFS_METRICS=run.json python job.py`` turns metrics on for every FileManager and dumps them at exit.
ENV_VAR = "HCSVFS_METRICS"


def metrics_for(arg: Metrics | bool | None, get_backend: Callable[[str], Any]) -> Metrics | None:
    """``True`` -> a new Metrics, ``False`` -> None, a Metrics -> itself, ``None`` -> on only if $HCSVFS_METRICS is set."""
    if arg is None:
        dump = os.environ.get(ENV_VAR)
        if not dump:
            return None
        metrics = _env_metrics(dump)
    elif arg is True:
        metrics = Metrics()
    elif arg is False:
        return None
    elif isinstance(arg, Metrics):
        metrics = arg
    else:
        raise TypeError(f"metrics= takes True, False, None or a hcsvfs.metrics.Metrics, not {type(arg).__name__}")
    metrics.watch_backends(get_backend)
    return metrics


_ENV_METRICS: Metrics | None = None


def _env_metrics(dump: str) -> Metrics:
    # One collector per process in env mode, so several FileManagers add up instead of overwriting one file.
    global _ENV_METRICS
    if _ENV_METRICS is None:
        _ENV_METRICS = Metrics()
        atexit.register(_dump_quietly, _ENV_METRICS, dump)
    return _ENV_METRICS


def _dump_quietly(metrics: Metrics, path: str) -> None:
    try:
        metrics.to_json(path)
    except OSError as exc:  # at exit there is nobody left to catch it; say it once
        print(f"hcsvfs: could not write metrics to {path} ({exc}); unset {ENV_VAR} or point it at a writable file")
