"""Pipeline: a list of steps run well by well, intermediates in memory, the last output to an OME-Zarr plate.

The unit of work is a well (:func:`run_well`): it needs only a picklable
:class:`PlateJob`, so an executor can run it in this process, a process pool
or on a Dask worker. A finished well leaves a marker next to the output; a
rerun skips wells whose marker exists.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import pickle
import resource
import shutil
import tempfile
import threading
import time
import traceback
import weakref
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .. import paths as P
from ..backends.base import StorageBackend
from ..config import COMPRESSIONS, ZarrConfig
from ..filemanager import FileManager
from ..registry import create_default_registry
from .context import ProcessingContext
from .errors import IngestError, PipelineError, PlateFailedError, StepFailedError
from .ingest import FilenameParser, MissingPolicy, PlateLayout, scan_plate
from .steps import AbstractStep

if TYPE_CHECKING:
    import pandas as pd

    from .executors.base import Executor

__all__ = ["Pipeline", "StorageConfig", "PlateJob", "RetryPolicy", "WellResult", "RunReport", "run_well", "peak_rss"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StorageConfig:
    """How every process (parent or worker) builds its FileManager; plain values, so it pickles.

    ``budget`` puts intermediates on a MemoryOverlay of that many bytes per
    process (spilling to a temp folder); ``shared_memory_namespace`` attaches
    the shared-memory backend of a parent; ``backends`` adds (name, factory)
    pairs, e.g. an object store for the output. ``output_compression`` is the
    codec of the default zarr output backend (``output_backend="zarr"``):
    ``"auto"`` (a measured trial per plate, see docs/zarr.md) unless a codec
    name is given; an output backend of your own, from ``backends`` under
    another name, keeps its own config.
    """

    input_backend: str = "disk"
    output_backend: str = "zarr"
    intermediate_backend: str = "memory"
    state_backend: str = "disk"
    budget: int | str | None = None
    spill_dir: str | None = None
    shared_memory_namespace: str | None = None
    backends: tuple[tuple[str, Callable[[], StorageBackend]], ...] = ()
    output_compression: str = "auto"

    def __post_init__(self) -> None:
        if self.output_compression not in COMPRESSIONS:
            raise ValueError(
                f"StorageConfig output_compression {self.output_compression!r} is not a codec; "
                f"valid values: {', '.join(COMPRESSIONS)}"
            )

    @property
    def intermediate(self) -> str:
        """The backend name intermediates actually go to."""
        if self.shared_memory_namespace is not None:
            return "shared_memory"
        return "overlay" if self.budget is not None else self.intermediate_backend

    def filemanager(self) -> FileManager:
        """This process's FileManager for the config: built once per process and config, and kept for the
        next wells (see :data:`_FILEMANAGERS` for how long)."""
        return _FILEMANAGERS.get(self)

    def close(self) -> None:
        """Close this process's FileManager for the config, if any: its overlay's thread stops and its spill
        folder is deleted. The next :meth:`filemanager` builds a new one."""
        _FILEMANAGERS.discard(self)

    def _build(self) -> tuple[FileManager, Callable[[], Any]]:
        """A new FileManager, and what closes it for good (its backends, then its spill folder)."""
        registry = create_default_registry()
        spill: str | None = None
        if self.output_backend == "zarr":
            registry.register_backend("zarr", functools.partial(_zarr_output, self.output_compression), replace=True)
        for name, factory in self.backends:
            registry.register_backend(name, factory())
        if self.shared_memory_namespace is not None:
            from ..backends.shared_memory import SharedMemoryStorageBackend

            registry.register_backend("shared_memory", SharedMemoryStorageBackend(self.shared_memory_namespace))
        elif self.budget is not None:
            from ..backends.disk import DiskStorageBackend
            from ..tiering import MemoryOverlay

            spill = tempfile.mkdtemp(prefix="hcsvfs-spill-", dir=self.spill_dir)
            registry.register_backend("overlay", MemoryOverlay(DiskStorageBackend(spill, fsync=False), self.budget))
        fm = FileManager(registry)
        # Spilled intermediates never outlive the FileManager, nor the process (finalize also runs at exit).
        remove = weakref.finalize(fm, shutil.rmtree, spill, True) if spill is not None else None

        def close() -> None:
            fm.close()
            if remove is not None:
                remove()

        return fm, close


def _zarr_output(compression: str) -> StorageBackend:
    """The pipeline's zarr output backend (rooted at the working directory, as the default one)."""
    from ..backends.zarr import ZarrStorageBackend

    return ZarrStorageBackend(config=ZarrConfig(compression=compression))


class _FileManagerCache:
    """A process's pipeline FileManagers, one per StorageConfig, the ``limit`` most recently used.

    Workers reuse theirs from well to well; a long-lived worker (a Dask cluster that runs plate after
    plate) keeps at most ``limit``, closing the least recently used, so overlays, their threads and
    their spill folders do not pile up.
    """

    def __init__(self, limit: int = 4) -> None:
        self.limit = limit
        self._lock = threading.Lock()
        self._items: OrderedDict[Any, tuple[FileManager, Callable[[], Any]]] = OrderedDict()

    @staticmethod
    def _key(config: StorageConfig) -> Any:
        """The cache key: the config's pickle where it has one. A worker unpickles a new config for every
        well, and factories in ``backends`` (a ``functools.partial``, say) compare by identity, so the config
        itself would miss each time and every well would build its FileManager anew."""
        try:
            return pickle.dumps(config)
        except Exception:  # a lambda factory: it never left this process, so identity is the right key
            return config

    def get(self, config: StorageConfig) -> FileManager:
        key = self._key(config)
        with self._lock:
            item = self._items.get(key)
            if item is not None:
                self._items.move_to_end(key)
                return item[0]
            self._items[key] = item = config._build()
            evicted = [self._items.popitem(last=False)[1] for _ in range(len(self._items) - self.limit)]
        for _, close in evicted:
            close()
        return item[0]

    def discard(self, config: StorageConfig) -> None:
        key = self._key(config)
        with self._lock:
            item = self._items.pop(key, None)
        if item is not None:
            item[1]()

    def __contains__(self, config: object) -> bool:
        if not isinstance(config, StorageConfig):
            return False
        key = self._key(config)
        with self._lock:
            return key in self._items

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)


#: Every pipeline FileManager of this process (workers and the parent alike).
_FILEMANAGERS = _FileManagerCache()


@dataclass(frozen=True)
class RetryPolicy:
    """How often a well is tried before it is reported failed (a lost worker counts as a try)."""

    max_attempts: int = 2

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError(f"RetryPolicy.max_attempts must be >= 1, got {self.max_attempts}")


@dataclass
class WellResult:
    """What processing one well produced."""

    well: str
    planes_written: int
    measurements: list[dict[str, Any]]
    seconds: float
    bytes_read: int
    peak_rss: int  #: peak resident memory of the process that ran the well, bytes
    spills: int = 0  #: entries the memory overlay spilled to disk while this well ran
    attempts: int = 1
    thumbnail: Any = None  #: a small 2-D preview of the well's first output image (for overviews)


@dataclass(frozen=True)
class PlateJob:
    """Everything a worker needs to process any well of a plate (picklable; locations are strings)."""

    pipeline: Pipeline
    plate: PlateLayout
    input_path: str
    output_path: str
    storage: StorageConfig
    state_path: str
    labels: str | None = None  #: write the input as the plate's images and the output as this label image


def run_well(job: PlateJob, well: str, attempt: int = 1) -> WellResult:
    """Run every step of ``job.pipeline`` on one well, write its plate images, and mark it complete."""
    fm = job.storage.filemanager()
    start = time.perf_counter()
    spilled_before = _spills(fm, job.storage)  # the overlay outlives the well: its counter is the process's
    ctx = ProcessingContext(
        filemanager=fm,
        plate=job.plate,
        well=well,
        original_input_path=job.input_path,
        output_path=job.output_path,
        input_backend=job.storage.input_backend,
        intermediate_backend=job.storage.intermediate,
        output_backend=job.storage.output_backend,
        scratch_path=f"hcsvfs-scratch-{job.pipeline.name}",
    )
    try:
        for index, step in enumerate(job.pipeline.steps):
            ctx.step_name = f"{index}_{step.name}"
            _execute(step, ctx)
        planes = ctx.write_final(job.labels)
        thumbnail = _thumbnail(ctx)
    finally:
        try:
            ctx.free_intermediates()
        except Exception:  # never hide the step's own error behind a cleanup one, but say that it happened
            log.warning(
                "well %s: freeing its intermediates on %s failed; they may stay there until the process ends",
                well,
                ctx.intermediate_backend,
                exc_info=True,
            )
    result = WellResult(
        well=well,
        planes_written=planes,
        measurements=ctx.measurements,
        seconds=time.perf_counter() - start,
        bytes_read=ctx.bytes_read,
        peak_rss=peak_rss(),
        spills=_spills(fm, job.storage) - spilled_before,
        attempts=attempt,
        thumbnail=thumbnail,
    )
    marker = {k: v for k, v in result.__dict__.items() if k != "thumbnail"}
    fm.save(marker, P.join(job.state_path, f"{well}.json"), job.storage.state_backend, overwrite=True)
    return result


def peak_rss() -> int:
    """This process's peak resident memory in bytes.

    Linux's VmHWM belongs to the current program image; ``ru_maxrss`` survives
    fork+exec, so a spawned worker would report its parent's peak.
    """
    with contextlib.suppress(OSError), open("/proc/self/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _execute(step: AbstractStep, ctx: ProcessingContext) -> None:
    try:
        step.execute(ctx)
    except PipelineError:
        raise  # already names the well and the step
    except Exception as exc:
        raise StepFailedError(
            f"well {ctx.well} failed in step {ctx.step_name!r}: {type(exc).__name__}: {exc}",
            well=ctx.well,
            step=ctx.step_name,
            traceback=traceback.format_exc(),
            path=ctx.original_input_path,
        ) from exc


def _thumbnail(ctx: ProcessingContext, size: int = 96) -> Any:
    out = ctx.current_step_output
    if out is None or not out.keys:
        return None
    from ..arrays import to_numpy

    image = to_numpy(ctx.filemanager.load(out.path(out.keys[0]), out.backend))
    image = image.max(axis=0) if image.ndim == 3 else image
    step = max(1, max(image.shape) // size)
    return image[::step, ::step].copy()


def _spills(fm: FileManager, storage: StorageConfig) -> int:
    if storage.intermediate != "overlay":
        return 0
    return int(fm.get_backend("overlay").stats().get("spill_count", 0))  # type: ignore[attr-defined]


@dataclass
class RunReport:
    """The outcome of a plate run: finished, skipped (already complete) and failed wells, and timings."""

    output_path: str
    completed: list[WellResult] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failures: dict[str, BaseException] = field(default_factory=dict)
    seconds: float = 0.0
    measurements: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures

    def table(self) -> pd.DataFrame:
        """Measurements of every complete well (this run's and skipped ones') as a pandas DataFrame."""
        import pandas as pd

        return pd.DataFrame(self.measurements)

    def raise_for_failures(self) -> None:
        """Raise PlateFailedError listing each failed well and its error, if any failed."""
        if self.failures:
            lines = "; ".join(f"{w}: {e}" for w, e in sorted(self.failures.items()))
            raise PlateFailedError(
                f"{len(self.failures)} well(s) failed: {lines}. Fix the cause and rerun: complete wells are skipped",
                failures=self.failures,
            )


class Pipeline:
    """An ordered list of steps, run per well; intermediates on memory, the last output on the output backend."""

    def __init__(self, steps: Iterable[AbstractStep], *, name: str = "pipeline") -> None:
        self.steps: list[AbstractStep] = list(steps)
        if not self.steps:
            raise ValueError("a Pipeline needs at least one step")
        bad = [s for s in self.steps if not isinstance(s, AbstractStep)]
        if bad:
            raise TypeError(f"pipeline steps must be AbstractStep instances (e.g. FunctionStep), got {bad[0]!r}")
        self.name = name

    def run(
        self,
        input_path: str,
        output_path: str,
        *,
        executor: Executor | None = None,
        storage: StorageConfig | None = None,
        wells: Sequence[str] | None = None,
        parser: str | FilenameParser = "auto",
        retry: RetryPolicy | None = None,
        rerun: bool = False,
        on_well: Callable[[str, WellResult | BaseException], None] | None = None,
        labels: str | None = None,
        pattern: str | None = None,
        missing: MissingPolicy = "error",
    ) -> RunReport:
        """Process a plate folder into ``output_path``; wells already complete there are skipped unless ``rerun``.

        The folder may be any instrument's that :func:`scan_plate` reads (its ``parser``, ``pattern`` and
        ``missing`` are passed on): with ``missing="fill"``, the zeros standing in for missing images go
        through the steps like any other image.

        ``labels="cells"``: the output plate gets the raw input images, and the pipeline's output (a
        segmentation) as the NGFF label image ``cells`` of each field, so viewers overlay it on the raw data.
        """
        from .executors.local import LocalExecutor

        storage = storage or StorageConfig()
        executor = executor or LocalExecutor()
        retry = retry or RetryPolicy()
        owned = storage not in _FILEMANAGERS  # a FileManager the caller already holds is left open
        started_here = not executor.started  # a started executor keeps its warm workers for the caller's next run
        executor.start()  # first: its workers spawn and import while this process scans the plate
        try:
            return self._run(
                input_path, output_path, executor, storage, wells, (parser, pattern, missing), retry, rerun, on_well, labels
            )
        finally:
            if started_here:
                executor.close()
            if owned:
                storage.close()  # this run's overlay thread and spill folder end with it

    def _run(
        self,
        input_path: str,
        output_path: str,
        executor: Executor,
        storage: StorageConfig,
        wells: Sequence[str] | None,
        naming: tuple[str | FilenameParser, str | None, MissingPolicy],
        retry: RetryPolicy,
        rerun: bool,
        on_well: Callable[[str, WellResult | BaseException], None] | None,
        labels: str | None,
    ) -> RunReport:
        start = time.perf_counter()
        fm = storage.filemanager()
        parser, pattern, policy = naming
        plate = scan_plate(fm, input_path, storage.input_backend, parser=parser, pattern=pattern, missing=policy)
        chosen = list(wells) if wells is not None else plate.wells
        missing = sorted(set(chosen) - set(plate.wells))
        if missing:
            raise IngestError(f"wells {missing} are not in plate {input_path!r}; it has {plate.wells}", path=input_path)
        state = output_path.rstrip("/") + ".wells"
        job = PlateJob(self, plate, P.normalize(input_path), output_path, storage, state, labels)
        done = {w for w in chosen if fm.exists(P.join(state, f"{w}.json"), storage.state_backend)}
        if rerun:
            for w in done:
                fm.delete(P.join(state, f"{w}.json"), storage.state_backend)
            done = set()
        report = RunReport(output_path, skipped=sorted(done, key=chosen.index))
        todo = [w for w in chosen if w not in done]
        outcomes = executor.run(job, todo, retry, on_well) if todo else {}
        for well in todo:
            outcome = outcomes[well]
            if isinstance(outcome, WellResult):
                report.completed.append(outcome)
            else:
                report.failures[well] = outcome
        for well in chosen:
            if well not in report.failures:
                marker = fm.load(P.join(state, f"{well}.json"), storage.state_backend)
                report.measurements.extend(marker.get("measurements", []))
        report.seconds = time.perf_counter() - start
        return report

    def __repr__(self) -> str:
        return f"Pipeline({self.steps!r})"

