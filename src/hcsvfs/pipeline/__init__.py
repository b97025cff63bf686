"""Pipelines on the VFS: steps, per-well streaming, executors from one process to a Dask cluster (docs/pipeline.md)."""

from __future__ import annotations

from .context import ProcessingContext, StepOutput
from .errors import IngestError, PipelineError, PlateFailedError, StepFailedError, StepOutputError, UnknownFunctionError
from .executors import Executor, LocalExecutor, ProcessPoolExecutor
from .functions import ImageFunction, function_names, get_function, gpu_available, register_function
from .ingest import ImageRecord, PlateLayout, output_name, parse_metaxpress, scan_plate
from .measure import MeasureCells
from .pipeline import Pipeline, PlateJob, RetryPolicy, RunReport, StorageConfig, WellResult, run_well
from .steps import AbstractStep, FunctionStep

__all__ = [
    "AbstractStep", "FunctionStep", "MeasureCells", "Pipeline", "ProcessingContext", "StepOutput",
    "StorageConfig", "RetryPolicy", "PlateJob", "WellResult", "RunReport", "run_well",
    "Executor", "LocalExecutor", "ProcessPoolExecutor", "DaskExecutor",
    "ImageFunction", "register_function", "get_function", "function_names", "gpu_available",
    "PlateLayout", "ImageRecord", "scan_plate", "parse_metaxpress", "output_name",
    "PipelineError", "UnknownFunctionError", "StepOutputError", "StepFailedError", "IngestError", "PlateFailedError",
]


def __getattr__(name: str) -> object:
    if name == "DaskExecutor":  # dask is optional: import it on first use
        from .executors.dask import DaskExecutor

        return DaskExecutor
    raise AttributeError(f"module 'hcsvfs.pipeline' has no attribute {name!r}")
