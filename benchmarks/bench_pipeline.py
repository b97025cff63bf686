"""The demo pipeline on one synthetic plate: executors against each other, and hcsvfs against the same work by hand.

    python benchmarks/bench_pipeline.py [--quick] [--json PATH]

Variants (each in its own subprocess, so each peak RSS is its own):

* ``in-process``: LocalExecutor, intermediates in a memory overlay with a small budget;
* ``process pool (2)``: ProcessPoolExecutor(2), same storage;
* ``dask LocalCluster (2)``: DaskExecutor, 2 worker processes, 1 thread each;
* ``..., second run``: the same executors, started once; the second of two runs is timed;
* ``by hand``: tifffile reads the whole plate into RAM, the same scipy/skimage
  calls, ome-zarr-py writes the plate (what a script without hcsvfs does).

Targets (issues 5 and 16): 2 workers >= 1.6x one worker (Dask >= 1.4x); peak RSS under the run's
memory budget where the by-hand version exceeds it. Peak RSS is Linux VmHWM
(the largest single process; for pools, the parent and each worker separately).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SIZES = {
    "quick": {"wells": 8, "fields": 2, "channels": 2, "size": 512},
    "full": {"wells": 24, "fields": 4, "channels": 3, "size": 1024},
}
WORKER_BUDGET = "32MiB"  # overlay budget per process


def _pipeline():
    from hcsvfs.pipeline import FunctionStep, MeasureCells, Pipeline

    return Pipeline([
        FunctionStep("gaussian_filter", sigma=2.0, channels=[1]),
        FunctionStep("threshold_otsu"),
        FunctionStep("binary_opening", iterations=2),
        FunctionStep("label"),
        MeasureCells(),
    ], name="bench")


def run_variant(variant: str, plate: str, out: str) -> dict:
    """Run one variant in this process; returns seconds, peak RSS of each process, and the cell count.

    ``<variant>:warm`` times the second of two runs on one started executor (the first writes elsewhere):
    what a session that runs plate after plate gets once its workers are up.
    """
    import scipy.ndimage  # noqa: F401  imports are not data: load them before the clock starts
    import skimage.filters  # noqa: F401

    from hcsvfs.pipeline import LocalExecutor, ProcessPoolExecutor, StorageConfig
    from hcsvfs.pipeline.pipeline import peak_rss

    if variant == "by-hand":
        start = time.perf_counter()
        cells = by_hand(plate, out)
        return {"seconds": time.perf_counter() - start, "peak_rss": peak_rss(), "worker_peak_rss": 0, "cells": cells}
    kind, _, warm = variant.partition(":")
    if kind == "dask":
        from hcsvfs.pipeline import DaskExecutor

        executor = DaskExecutor(workers=2)
    else:
        executor = LocalExecutor() if kind == "local" else ProcessPoolExecutor(2)
    storage = StorageConfig(budget=WORKER_BUDGET, spill_dir=str(Path(out).parent))
    if warm:
        executor.start()
        _pipeline().run(plate, out + "-first", executor=executor, storage=storage).raise_for_failures()
    try:
        start = time.perf_counter()
        report = _pipeline().run(plate, out, executor=executor, storage=storage)
        seconds = time.perf_counter() - start
    finally:
        executor.close()
    report.raise_for_failures()
    workers = max(r.peak_rss for r in report.completed)
    return {"seconds": seconds, "peak_rss": peak_rss(), "worker_peak_rss": workers if kind != "local" else 0,
            "cells": int(report.table().cells.sum()), "spills": sum(r.spills for r in report.completed)}


def by_hand(plate: str, out: str) -> int:
    """The pipeline without hcsvfs: every TIFF in RAM, numpy/scipy/skimage, ome-zarr-py plate writer."""
    import numpy as np
    import tifffile
    import zarr
    from ome_zarr.writer import write_image, write_plate_metadata, write_well_metadata
    from scipy import ndimage
    from skimage.filters import threshold_otsu

    from hcsvfs.hcs import parse_well
    from hcsvfs.pipeline.ingest import parse_metaxpress

    images = {}
    for path in sorted(Path(plate).glob("*.tif")):
        images[parse_metaxpress(path.name)] = tifffile.imread(path)
    labels, means, cells = {}, {}, 0
    channels = sorted({k.channel for k in images})
    for key, img in images.items():
        if key.channel != 1:
            continue
        smooth = ndimage.gaussian_filter(img, sigma=2.0)
        lab = ndimage.label(ndimage.binary_opening(smooth > threshold_otsu(smooth), iterations=2))[0].astype(np.int32)
        labels[key] = lab
        for c in channels:
            means[(key.well, key.field, c)] = float(images[dataclasses.replace(key, channel=c)][lab > 0].mean())
        cells += int(np.unique(lab[lab > 0]).size)
    root = zarr.open_group(out, mode="w")
    wells = sorted({k.well for k in labels}, key=parse_well)
    rows = sorted({w[0] for w in wells})
    cols = sorted({w[1:] for w in wells})
    write_plate_metadata(root, rows, cols, [f"{w[0]}/{w[1:]}" for w in wells])
    for well in wells:
        group = root.require_group(well[0]).require_group(well[1:])
        fields = sorted(k.field for k in labels if k.well == well)
        write_well_metadata(group, [str(f) for f in fields])
        for f in fields:
            key = next(k for k in labels if k.well == well and k.field == f)
            write_image(labels[key][None, None, None], group.require_group(str(f)), scale_factors=[], axes="tczyx")
    return cells


def make_plate(folder: Path, params: dict) -> int:
    from hcsvfs import FileManager, StorageRegistry
    from hcsvfs.backends import DiskStorageBackend
    from hcsvfs.pipeline.synthetic import plate_wells, write_synthetic_plate

    registry = StorageRegistry(discover=False)
    registry.register_backend("disk", DiskStorageBackend(fsync=False))
    cells = 120 * (params["size"] // 512) ** 2
    write_synthetic_plate(FileManager(registry), str(folder), plate_wells(params["wells"]), fields=params["fields"],
                          channels=params["channels"], shape=(params["size"],) * 2, cells=cells)
    return sum(p.stat().st_size for p in folder.iterdir())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a small plate (well under a minute)")
    parser.add_argument("--json", type=Path, help="write the results file here")
    parser.add_argument("--variant", help=argparse.SUPPRESS)
    parser.add_argument("--plate", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.variant:  # child mode: one variant, JSON on the last line
        print(json.dumps(run_variant(args.variant, args.plate, args.out)))
        return
    params = SIZES["quick" if args.quick else "full"]
    variants = {"in-process": "local", "process pool (2)": "processes", "dask LocalCluster (2)": "dask",
                "in-process, second run": "local:warm", "process pool (2), second run": "processes:warm",
                "dask LocalCluster (2), second run": "dask:warm", "by hand (tifffile+numpy+ome-zarr-py)": "by-hand"}
    measured = {}
    with tempfile.TemporaryDirectory(prefix="hcsvfs-bench-pipeline-") as tmp:
        plate_bytes = make_plate(Path(tmp) / "in", params)
        for label, variant in variants.items():
            out = str(Path(tmp) / f"{variant}.zarr")
            proc = subprocess.run([sys.executable, __file__, "--variant", variant, "--plate", str(Path(tmp) / "in"),
                                   "--out", out], capture_output=True, text=True)
            if proc.returncode != 0:
                sys.exit(f"{label} failed:\n{proc.stderr[-3000:]}")
            measured[label] = json.loads(proc.stdout.strip().splitlines()[-1])
    budget = plate_bytes // 2  # the run's memory budget: half the plate
    hand = measured["by hand (tifffile+numpy+ome-zarr-py)"]
    results = []
    print(f"plate: {params} = {plate_bytes / 2**20:.0f} MiB of TIFFs; run budget {budget / 2**20:.0f} MiB, "
          f"overlay budget {WORKER_BUDGET} per process")
    print(f"{'variant':40} {'wall s':>8} {'speed-up':>9} {'peak RSS MiB':>13} {'worker MiB':>11} {'cells':>8}")
    for label, m in measured.items():
        # A second run is compared with the in-process second run: both have their imports done.
        base = "in-process, second run" if label.endswith("second run") else "in-process"
        speedup = measured[base]["seconds"] / m["seconds"]
        largest = max(m["peak_rss"], m["worker_peak_rss"])
        print(f"{label:40} {m['seconds']:8.2f} {speedup:8.2f}x {m['peak_rss'] / 2**20:13.0f} "
              f"{m['worker_peak_rss'] / 2**20:11.0f} {m['cells']:8d}")
        parallel = label.startswith(("process", "dask"))
        goal = 1.4 if label.startswith("dask") else 1.6  # issue 16: Dask's own scheduler costs are allowed for
        results.append({"name": f"{label} wall time", "value": round(m["seconds"], 3), "unit": "s",
                        "ratio_to": f"{base} wall time", "ratio": round(m["seconds"] / measured[base]["seconds"], 3),
                        **({"target": f"speed-up >= {goal}x one worker", "met": speedup >= goal} if parallel else {})})
        results.append({"name": f"{label} peak RSS (largest process)", "value": largest, "unit": "bytes",
                        "ratio_to": "by hand peak RSS", "ratio": round(largest / hand["peak_rss"], 3),
                        "target": f"< run budget {budget} bytes", "met": largest < budget})
    same = len({m["cells"] for m in measured.values()}) == 1
    notes = [f"plate {params}, {plate_bytes} bytes of TIFFs; run budget = half the plate; overlay budget "
             f"{WORKER_BUDGET} per process", f"all variants found the same number of cells: {same}"]
    print("\n".join(notes))
    if args.json:
        args.json.write_text(json.dumps({"benchmark": "pipeline", "quick": args.quick, "params": params,
                                         "results": results, "notes": notes}, indent=2))


if __name__ == "__main__":
    main()
