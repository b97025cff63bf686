"""A plate far larger than RAM, streamed through the pipeline: cost per image from ~2 GB to ~116 GB.

    python benchmarks/bench_scale.py [--quick] [--large-wells N] [--json PATH]

The input is a :class:`~hcsvfs.pipeline.synthetic.SyntheticPlateBackend`: ImageXpress-named 2048^2 uint16
planes made on load (no disk for the input), 9 fields x 4 channels per well. The same pipeline as the
demo (gaussian, Otsu threshold, opening, labels, per-cell measurements in every channel) runs on
ProcessPoolExecutor(2) and writes its label images as an OME-Zarr plate on local disk.

Two sizes, each in its own subprocess (so each peak RSS is its own):

* small: 6 wells (216 planes, 1.8 GB of pixels);
* large: 384 wells (13,824 planes, 116 GB: a full screening plate), or ``--large-wells N``.

``--quick`` runs 2 and 8 wells of 1024^2 planes (a minute). Each size first runs 2 wells per worker
into a throw-away output, so the workers' imports and their bank of synthetic fields are made before
the clock starts: the timed run is the steady state, and its ms per image is wall time / planes.

Targets (issue 16): the large plate's ms per image within 1.1x of the small one's; the peak RSS of every
worker under the per-worker bound below, at both sizes; the parent under 1 GiB.
Per-worker bound = 384 MiB (interpreter, NumPy/SciPy/zarr, the bank of synthetic fields) + the overlay
budget (intermediates beyond it spill to disk) + one well of input planes: memory that depends on the
size of a well, never on the size of the plate.
"""

from __future__ import annotations

import argparse
import functools
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SIZES = {
    "quick": {"shape": 1024, "small": 2, "large": 8},
    "full": {"shape": 2048, "small": 6, "large": 384},
}
FIELDS, CHANNELS, WORKERS = 9, 4, 2
BUDGET = 256 << 20  # overlay budget per process
BASE = 384 << 20  # a worker's interpreter, imports and bank of synthetic fields
PARENT_LIMIT = 1 << 30


def _source(wells: int, shape: int):
    from hcsvfs.pipeline.synthetic import SyntheticPlateBackend, plate_wells

    return functools.partial(SyntheticPlateBackend, "plate", plate_wells(wells, columns=24), fields=FIELDS,
                             channels=CHANNELS, shape=(shape, shape), cells=120 * (shape // 512) ** 2, bank=2)


def run_size(wells: int, shape: int, out: str) -> dict:
    """One size in this process: warm-up, then the timed run; seconds, planes, peak RSS, output bytes."""
    from bench_pipeline import _pipeline  # the demo's steps, as bench_pipeline runs them

    from hcsvfs.pipeline import ProcessPoolExecutor, StorageConfig
    from hcsvfs.pipeline.pipeline import peak_rss

    source = _source(wells, shape)
    storage = StorageConfig(input_backend="synthetic", backends=(("synthetic", source),), budget=BUDGET,
                            spill_dir=str(Path(out).parent))
    warm = storage.filemanager().get_backend("synthetic").wells[: 2 * WORKERS]
    with ProcessPoolExecutor(WORKERS) as executor:
        _pipeline().run("plate", out + "-warmup", executor=executor, storage=storage, wells=warm).raise_for_failures()
        shutil.rmtree(out + "-warmup")
        start = time.perf_counter()
        report = _pipeline().run("plate", out, executor=executor, storage=storage)
        seconds = time.perf_counter() - start
    report.raise_for_failures()
    planes = wells * FIELDS * CHANNELS
    output = sum(p.stat().st_size for p in Path(out).rglob("*") if p.is_file())
    return {"wells": wells, "planes": planes, "pixel_bytes": planes * shape * shape * 2, "seconds": seconds,
            "ms_per_image": 1000 * seconds / planes, "parent_peak_rss": peak_rss(),
            "worker_peak_rss": max(r.peak_rss for r in report.completed), "output_bytes": output,
            "cells": int(report.table().cells.sum()), "spills": sum(r.spills for r in report.completed)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 and 8 wells of 1024^2 planes (about a minute)")
    parser.add_argument("--large-wells", type=int, help="wells of the large plate (default: 384, a full plate)")
    parser.add_argument("--json", type=Path, help="write the results file here")
    parser.add_argument("--size", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    params = dict(SIZES["quick" if args.quick else "full"])
    if args.size:  # child mode: "<wells>x<shape>", JSON on the last line
        wells, shape = (int(v) for v in args.size.split("x"))
        print(json.dumps(run_size(wells, shape, args.out)))
        return
    if args.large_wells:
        params["large"] = args.large_wells
    shape = params["shape"]
    well_input = FIELDS * CHANNELS * shape * shape * 2
    bound = BASE + BUDGET + well_input
    measured = {}
    with tempfile.TemporaryDirectory(prefix="hcsvfs-bench-scale-") as tmp:
        for label in ("small", "large"):
            out = str(Path(tmp) / f"{label}.zarr")
            proc = subprocess.run([sys.executable, __file__, "--size", f"{params[label]}x{shape}", "--out", out],
                                  capture_output=True, text=True)
            if proc.returncode != 0:
                sys.exit(f"{label} plate failed:\n{proc.stderr[-3000:]}")
            measured[label] = json.loads(proc.stdout.strip().splitlines()[-1])
            m = measured[label]
            print(f"{label}: {m['wells']} wells, {m['planes']} planes, {m['pixel_bytes'] / 1e9:.1f} GB: "
                  f"{m['seconds']:.1f} s, {m['ms_per_image']:.1f} ms/image, parent {m['parent_peak_rss'] >> 20} MiB, "
                  f"worker {m['worker_peak_rss'] >> 20} MiB (bound {bound >> 20} MiB), output {m['output_bytes'] / 1e6:.0f} MB")
    small, large = measured["small"], measured["large"]
    results = []
    for label, m in measured.items():
        name = f"{label} plate ({m['wells']} wells, {m['pixel_bytes'] / 1e9:.1f} GB)"
        row = {"name": f"{name} ms per image", "value": round(m["ms_per_image"], 2), "unit": "ms"}
        if label == "large":
            ratio = large["ms_per_image"] / small["ms_per_image"]
            row |= {"ratio_to": "small plate ms per image", "ratio": round(ratio, 3),
                    "target": "<= 1.1x the small plate's", "met": ratio <= 1.1}
        results += [
            row,
            {"name": f"{name} wall time", "value": round(m["seconds"], 1), "unit": "s"},
            {"name": f"{name} worker peak RSS", "value": m["worker_peak_rss"], "unit": "bytes",
             "target": f"< {bound} bytes (per-worker bound)", "met": m["worker_peak_rss"] < bound},
            {"name": f"{name} parent peak RSS", "value": m["parent_peak_rss"], "unit": "bytes",
             "target": f"< {PARENT_LIMIT} bytes", "met": m["parent_peak_rss"] < PARENT_LIMIT},
            {"name": f"{name} output size", "value": m["output_bytes"], "unit": "bytes"},
        ]
    notes = [
        f"input: SyntheticPlateBackend, {FIELDS} fields x {CHANNELS} channels of {shape}^2 uint16 per well, made on load",
        f"ProcessPoolExecutor({WORKERS}), started and warmed up (2 wells per worker) before the clock; overlay "
        f"budget {BUDGET >> 20} MiB per process",
        f"per-worker bound = {BASE >> 20} MiB base + {BUDGET >> 20} MiB overlay budget + one well of input "
        f"({well_input >> 20} MiB) = {bound >> 20} MiB",
        f"cells found: small {small['cells']}, large {large['cells']}; overlay spills: small {small['spills']}, "
        f"large {large['spills']}",
    ]
    print("\n".join(notes))
    if args.json:
        args.json.write_text(json.dumps({"benchmark": "scale", "quick": args.quick, "params": params,
                                         "results": results, "notes": notes}, indent=2))


if __name__ == "__main__":
    main()
