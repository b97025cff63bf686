"""The demo behind ``make demo``: a synthetic plate of TIFFs in, a validated OME-Zarr plate and a CSV out.

gaussian -> Otsu threshold -> opening -> label -> per-well measurements, run
well by well on two worker processes with intermediates in a memory overlay
whose budget is far smaller than the plate.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from .. import FileManager, StorageRegistry
from ..backends import DiskStorageBackend
from ..pipeline import FunctionStep, MeasureCells, Pipeline, ProcessPoolExecutor, RunReport, StorageConfig
from ..pipeline.pipeline import peak_rss
from ..pipeline.synthetic import plate_wells, synthetic_field
from ..units import format_bytes, parse_bytes
from .preview import plate_map
from .targets import zarr_backend

#: The issue's plate: 24 wells x 4 fields x 3 channels x 1024 x 1024 uint16 (~600 MB of TIFFs).
WELLS, FIELDS, CHANNELS, SIZE = 24, 4, 3, 1024
BUDGET = "32MiB"  # per worker; the plate is ~18x larger


def demo_pipeline() -> Pipeline:
    """Segment nuclei (channel 1) and measure every channel under them."""
    return Pipeline(
        [
            FunctionStep("gaussian_filter", sigma=2.0, channels=[1]),
            FunctionStep("threshold_otsu"),
            FunctionStep("binary_opening", iterations=2),
            FunctionStep("label"),
            MeasureCells(),
        ],
        name="demo",
    )


def write_plate(folder: Path, wells: list[str], console: Console, *, fields: int, channels: int, size: int) -> int:
    """Write the synthetic ImageXpress-named TIFFs (no fsync: they are scratch input); returns bytes written."""
    registry = StorageRegistry(discover=False)
    registry.register_backend("disk", DiskStorageBackend(folder, fsync=False))
    fm = FileManager(registry)
    rng = np.random.default_rng(0)
    cells = 120 * (size // 512) ** 2  # the same density at any image size
    total = 0
    with _progress(console) as progress:
        task = progress.add_task("writing synthetic TIFFs", total=len(wells) * fields)
        for well in wells:
            for field in range(1, fields + 1):
                for c, image in enumerate(synthetic_field(rng, (size, size), cells, channels), start=1):
                    fm.save(image, f"Plate1_{well}_s{field}_w{c}.tif", "disk", overwrite=True)
                    total += image.nbytes
                progress.advance(task)
    return total


def run_demo(output: Path = Path("demo_output"), *, wells: int = WELLS, fields: int = FIELDS,
             channels: int = CHANNELS, size: int = SIZE, workers: int = 2) -> RunReport:
    """Generate the plate, run the pipeline on ``workers`` processes, validate, and write CSV, PNG and a summary."""
    console = Console()
    output = Path(output).resolve()
    plate_in, plate_out = output / "input", output / "plate.zarr"
    names = plate_wells(wells, columns=6)  # a 4 x 6 block of a plate for 24 wells
    # Started first, the workers spawn and import SciPy, zarr, ... while this process writes the plate.
    executor = ProcessPoolExecutor(workers).start()
    storage = StorageConfig(budget=BUDGET, spill_dir=str(output))
    try:
        start = time.perf_counter()
        plate_bytes = write_plate(plate_in, names, console, fields=fields, channels=channels, size=size)
        written = time.perf_counter() - start
        fm = storage.filemanager()  # held by the demo, so the run leaves it open for the checks below
        with _progress(console) as progress:
            task = progress.add_task("processing wells", total=wells)
            report = demo_pipeline().run(
                str(plate_in), str(plate_out), storage=storage, executor=executor, rerun=True,
                on_well=lambda well, result: progress.advance(task), labels="cells",  # raw + segmentation, for viewers
            )
        report.raise_for_failures()
        checked = zarr_backend(fm).validate(str(plate_out))  # ome-zarr-models; raises on invalid NGFF
    finally:
        executor.close()
        storage.close()
    table = report.table()
    table.to_csv(output / "measurements.csv", index=False)
    # The screener's first picture, as `hcsvfs preview` draws it: cells per well, extremes outlined.
    plate_map(zarr_backend(FileManager()), str(plate_out), 0, 1400)[0].save(output / "overview.png")
    _summary(console, report, plate_bytes, written, len(checked), output, wells, fields, channels, size)
    return report


def _summary(console: Console, report: RunReport, plate_bytes: int, written: float, checks: int, output: Path,
             wells: int, fields: int, channels: int, size: int) -> None:
    table = report.table()
    done = report.completed
    read = sum(r.bytes_read for r in done)
    worker_peak = max((r.peak_rss for r in done), default=0)
    out = Table(title=f"hcsvfs demo: {wells} wells x {fields} fields x {channels} channels x {size}x{size} uint16")
    out.add_column("what")
    out.add_column("value", justify="right")
    out.add_row("input plate", f"{format_bytes(plate_bytes)} of TIFFs, written in {written:.1f} s")
    out.add_row("wells processed / skipped", f"{len(done)} / {len(report.skipped)}")
    out.add_row("cells found", f"{int(table.cells.sum()):,} ({table.groupby('well').cells.sum().mean():.0f} per well)")
    out.add_row("mean nuclear intensity (w1)", f"{table.mean_intensity_w1.mean():.0f}")
    out.add_row("pipeline time", f"{report.seconds:.1f} s")
    out.add_row("throughput (pixels read)", f"{read / 1e6 / max(report.seconds, 1e-9):.0f} MB/s")
    out.add_row("memory budget per worker", f"{BUDGET} (the plate is {plate_bytes / parse_bytes(BUDGET):.0f}x larger)")
    out.add_row("peak RSS per worker / demo process", f"{format_bytes(worker_peak)} / {format_bytes(peak_rss())}")
    out.add_row("overlay spills to disk", str(sum(r.spills for r in done)))
    out.add_row("OME-Zarr plate", f"{output / 'plate.zarr'} ({checks} groups validated with ome-zarr-models)")
    out.add_row("measurements", str(output / "measurements.csv"))
    out.add_row("overview", str(output / "overview.png"))
    console.print(out)


def _progress(console: Console) -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    console=console, transient=False)
