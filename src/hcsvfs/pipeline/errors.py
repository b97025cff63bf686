"""Pipeline errors: each names the well, the step or the file, and says what to do instead."""

from __future__ import annotations

from typing import Any

from ..errors import StorageError

__all__ = [
    "PipelineError",
    "UnknownFunctionError",
    "StepOutputError",
    "StepFailedError",
    "IngestError",
    "PlateFailedError",
]


class PipelineError(StorageError):
    """Base class of pipeline errors (a StorageError, so one ``except`` catches every hcsvfs failure)."""


class UnknownFunctionError(PipelineError, LookupError):
    """A step names a function that is not registered; the message lists close matches."""


class StepOutputError(PipelineError, ValueError):
    """A step returned something its destination cannot store (not an array, wrong shape or dtype)."""


class IngestError(PipelineError, ValueError):
    """An input folder is empty, or its file names cannot be parsed into wells, fields and channels."""


class StepFailedError(PipelineError, RuntimeError):
    """A step raised while processing a well; carries the well, the step and the worker's traceback."""

    def __init__(self, message: str, *, well: str, step: str, traceback: str, path: str | None = None) -> None:
        super().__init__(message, path=path)
        self.well = well
        self.step = step
        self.traceback = traceback

    def __reduce__(self) -> tuple[Any, ...]:
        # Keep well, step and traceback when the error crosses a process pool or a Dask worker.
        return (_rebuild_step_failed, (self.message, self.well, self.step, self.traceback, self.path))


def _rebuild_step_failed(message: str, well: str, step: str, traceback: str, path: str | None) -> StepFailedError:
    return StepFailedError(message, well=well, step=step, traceback=traceback, path=path)


class PlateFailedError(PipelineError, RuntimeError):
    """Some wells failed after every retry; ``failures`` maps each well to its last error."""

    def __init__(self, message: str, *, failures: dict[str, BaseException]) -> None:
        super().__init__(message)
        self.failures = failures
