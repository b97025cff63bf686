"""Whole fields and whole plates read by file name, against hcsvfs's field API and bare zarr-python, same plate.

    python benchmarks/bench_reads.py [--quick] [--json PATH]

One plate (default layout: a chunk per plane, a shard per field, Blosc LZ4-1) of 8 wells x 4 fields x 3
channels x 1024^2 uint16 is written once. Then, taking turns in each of 5 rounds (best kept):

- by name: ``load_batch(names, materialize=True)`` of every plane of the plate (whole plate), or of one
  field's planes at a time (whole field);
- field API: ``open_plate(plate).field(well, i)[...]`` for every field;
- bare zarr-python: ``zarr.open_array(field/0)[...]`` for every field (what a user of zarr alone would do).

Targets (issue 16, item 2): by name >= 0.9x the field API and >= 1.0x bare zarr-python, for whole fields and
the whole plate. The codec pipeline in use (zarrs or zarr's own) is printed and recorded.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import zarr

from hcsvfs.backends.zarr import ZarrStorageBackend, active_codec_pipeline
from hcsvfs.pipeline.synthetic import plate_wells, synthetic_field


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="4 wells x 2 fields x 256^2")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    wells, fields, side = (plate_wells(4), 2, 256) if args.quick else (plate_wells(8), 4, 1024)
    rng = np.random.default_rng(16)
    names_by_field: dict[tuple[str, int], list[str]] = {}
    planes: dict[str, np.ndarray] = {}
    for w in wells:
        for f in range(fields):
            for c, plane in enumerate(synthetic_field(rng, (side, side), cells=200 if not args.quick else 30, channels=3)):
                name = f"p.zarr/{w}_s{f + 1}_w{c + 1}_z001_t001.tif"
                names_by_field.setdefault((w, f), []).append(name)
                planes[name] = plane
    total = sum(p.nbytes for p in planes.values())
    with tempfile.TemporaryDirectory() as tmp:
        zb = ZarrStorageBackend(tmp)
        zb.ensure_directory("p.zarr")
        zb.save_batch(list(planes.values()), list(planes))
        info = zb.open_plate("p.zarr")
        field_paths = [Path(tmp) / "p.zarr" / info.wells[w].row / info.wells[w].column / info.wells[w].fields[f] / "0"
                       for w in wells for f in range(fields)]
        for names in names_by_field.values():  # the data are right, once
            got = zb.load_batch(names, materialize=True)
            assert all(np.array_equal(g, planes[n]) for g, n in zip(got, names))

        def by_name_plate() -> int:
            return sum(a.nbytes for a in zb.load_batch(list(planes), materialize=True))

        def by_name_fields() -> int:
            return sum(a.nbytes for names in names_by_field.values() for a in zb.load_batch(names, materialize=True))

        def field_api() -> int:
            plate = zb.open_plate("p.zarr")
            return sum(np.asarray(plate.field(w, f)[...]).nbytes for w in wells for f in range(fields))

        def bare_zarr() -> int:
            return sum(np.asarray(zarr.open_array(p, mode="r")[...]).nbytes for p in field_paths)

        runs: dict[str, Callable[[], int]] = {
            "by name, whole plate (one batch)": by_name_plate,
            "by name, field by field": by_name_fields,
            "field API (open_plate().field())": field_api,
            "bare zarr-python (open_array()[...])": bare_zarr,
        }
        best: dict[str, float] = {}
        for fn in runs.values():
            fn()  # warm
        for _ in range(5):
            for name, fn in runs.items():
                start = time.perf_counter()
                assert fn() == total
                best[name] = min(best.get(name, float("inf")), time.perf_counter() - start)
    mbps = {name: total / 1e6 / s for name, s in best.items()}
    pipeline = active_codec_pipeline()
    print(f"plate {len(wells)} wells x {fields} fields x 3 ch x {side}^2 uint16 = {total / 1e6:.0f} MB; "
          f"codec pipeline: {pipeline}")
    for name, v in mbps.items():
        print(f"  {name:<40} {v:7.0f} MB/s")
    results = [{"name": name, "value": v, "unit": "MB/s"} for name, v in mbps.items()]
    for who in ("by name, whole plate (one batch)", "by name, field by field"):
        for peer, target in (("field API (open_plate().field())", 0.9), ("bare zarr-python (open_array()[...])", 1.0)):
            ratio = mbps[who] / mbps[peer]
            met = ratio >= target
            print(f"  {who} / {peer}: {ratio:.2f}x (target >= {target}x: {'met' if met else 'NOT met'})")
            results.append({"name": f"{who} vs {peer}", "value": ratio, "unit": "x", "ratio_to": peer,
                            "ratio": ratio, "target": f">= {target}x", "met": met})
    if args.json:
        args.json.write_text(json.dumps({"benchmark": "reads", "quick": args.quick, "params": {
            "wells": len(wells), "fields": fields, "side": side, "codec_pipeline": pipeline}, "results": results,
            "notes": ["Every plane of the plate, read from the page cache (the plate was just written)."]}, indent=2))


if __name__ == "__main__":
    main()
