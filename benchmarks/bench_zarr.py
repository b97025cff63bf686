"""OME-Zarr plate I/O: hcsvfs against polystore, ome-zarr-py and bare zarr-python, on one synthetic plate, in one run.

A plate of fluorescence-like uint16 planes (smooth background + Poisson noise +
bright blobs) is written whole, read back whole, and read one plane at a time
at random, by each contender into its own folder. Reported: batch write MB/s,
full read MB/s, milliseconds to read one random plane, compression ratio, and
ratios against hcsvfs's default layout. The codec alone (Blosc LZ4 on 2
threads, no I/O) is the ceiling for write throughput.

Each number is the best of 2 runs (1 with --quick); a random-plane time is the
median over 15 planes of the best of 3 reads. Reads come from the page cache (the plate was just written); that is the
warm-cache case a viewer or a pipeline step sees.

Usage: ``python benchmarks/bench_zarr.py [--quick] [--full] [--wells N] [--fields N] [--z N] [--size PX] [--json PATH]``
(default 8 wells x 4 fields x 3 channels x 1 z x 1024 x 1024; ``--full`` 2048 x 2048). With one z per
field a second, deep plate follows (one field of 3 channels x 16 z x 2048 x 2048) for the two hcsvfs
layouts only: random-plane reads against one chunk per field are judged there. A second ceiling,
the codec plus writing each compressed plane to a new file, shows what the file system costs.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from hcsvfs.hcs import HCSName, parse_filename, well_name

WRITE_VS_POLYSTORE = 2.0  # targets from issue 3
RANDOM_READ_VS_SINGLE_CHUNK = 20.0
WRITE_VS_CODEC = 0.5
DEFAULT, SINGLE = "hcsvfs (plane chunks, shard/field)", "hcsvfs chunks=None"


# ---------------------------------------------------------------- data
def synthetic_plane(rng: np.random.Generator, size: int) -> np.ndarray:
    """Smooth background + a few dozen Gaussian blobs, with Poisson (shot) noise: roughly what a widefield camera sees."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    background = 300 + 150 * np.sin(3 * yy + rng.uniform(0, 6)) * np.cos(2 * xx + rng.uniform(0, 6))
    image = background
    for _ in range(40):
        cy, cx, r = rng.uniform(0, 1), rng.uniform(0, 1), rng.uniform(0.005, 0.02)
        image = image + rng.uniform(500, 3000) * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * r * r))
    return np.clip(rng.poisson(image), 0, 65535).astype(np.uint16)


def make_plate(wells: int, fields: int, channels: int, size: int, zs: int = 1) -> dict[str, np.ndarray]:
    """``{"A01_s1_w1_z001_t001.tif": plane}`` for the whole plate (a handful of base planes, shifted so no two are equal)."""
    rng = np.random.default_rng(0)
    base = [synthetic_plane(rng, size) for _ in range(min(6, wells * fields * channels * zs))]
    out = {}
    i = 0
    for w in range(wells):
        well = well_name(w // 12, w % 12)
        for s in range(1, fields + 1):
            for c in range(1, channels + 1):
                for z in range(1, zs + 1):
                    out[f"{well}_s{s}_w{c}_z{z:03d}_t001.tif"] = np.roll(base[i % len(base)], i * 7, axis=1)
                    i += 1
    return out


def where(name: str) -> HCSName:
    """Well, field, channel, z of a plate file name (the same parser hcsvfs uses)."""
    parsed = parse_filename(name)
    assert parsed is not None, name
    return parsed


def folder_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def timed(fn: Callable[[], Any]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def drop_writeback() -> None:
    """Let dirty pages of the previous contender reach the disk before the next one is timed."""
    if hasattr(os, "sync"):
        os.sync()


# ---------------------------------------------------------------- contenders
class Contender:
    """Writes the plate, reads it fully, reads one plane by name."""

    name = ""

    def __init__(self, root: Path, planes: dict[str, np.ndarray], fields: int, channels: int, zs: int = 1) -> None:
        self.root, self.planes, self.fields, self.channels, self.zs = root, planes, fields, channels, zs

    def write(self) -> None: ...
    def read_all(self) -> int: ...
    def read_plane(self, name: str) -> np.ndarray: ...


class Hcsvfs(Contender):
    def __init__(self, *args: Any, config: Any = None, label: str = "hcsvfs") -> None:
        super().__init__(*args)
        from hcsvfs.backends.zarr import ZarrStorageBackend

        self.name = label
        self.backend = ZarrStorageBackend(self.root, config=config)

    def write(self) -> None:
        self.backend.ensure_directory("plate.zarr")
        self.backend.save_batch(list(self.planes.values()), [f"plate.zarr/{n}" for n in self.planes])

    def read_all(self) -> int:
        plate = self.backend.open_plate("plate.zarr")
        total = 0
        for well, info in plate.wells.items():
            for f in info.fields:
                total += plate.field(well, f)[...].nbytes
        return total

    def read_plane(self, name: str) -> np.ndarray:
        return self.backend.load(f"plate.zarr/{name}", materialize=True)


class Polystore(Contender):
    """polystore's ZarrStorageBackend: one save_batch per well (its HCS batch API), Blosc LZ4 level 1, one chunk per field."""

    name = "polystore"

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        from polystore.config import ZarrChunkStrategy, ZarrCompressor, ZarrConfig
        from polystore.zarr import ZarrStorageBackend

        self.backend = ZarrStorageBackend(ZarrConfig(ZarrCompressor.BLOSC, 1, ZarrChunkStrategy.WELL))

    def _by_well(self) -> dict[str, list[str]]:
        wells: dict[str, list[str]] = {}
        for n in self.planes:
            wells.setdefault(n.split("_")[0], []).append(n)
        return wells

    def write(self) -> None:
        from polystore.zarr_batch import ZarrBatchAxis, ZarrBatchAxisRole, ZarrBatchLayout

        for well, names in self._by_well().items():
            layout = ZarrBatchLayout(
                axes=(
                    ZarrBatchAxis("field", tuple(str(s) for s in range(1, self.fields + 1)), ZarrBatchAxisRole.HCS_IMAGE),
                    ZarrBatchAxis("c", tuple(str(c) for c in range(1, self.channels + 1))),
                    ZarrBatchAxis("z", tuple(str(z) for z in range(1, self.zs + 1))),
                ),
                item_coordinates=tuple((where(n).field - 1, where(n).channel - 1, where(n).z - 1) for n in names),
            )
            self.backend.save_batch(
                [self.planes[n] for n in names],
                [str(self.root / "plate.zarr" / n) for n in names],
                chunk_name=well,
                batch_layout=layout,
                row=well[0],
                col=well[1:],
            )

    def read_all(self) -> int:
        return sum(a.nbytes for a in self.backend.load_batch([str(self.root / "plate.zarr" / n) for n in self.planes]))

    def read_plane(self, name: str) -> np.ndarray:
        return self.backend.load_batch([str(self.root / "plate.zarr" / name)])[0]


def _field_stacks(planes: dict[str, np.ndarray], channels: int, zs: int) -> dict[tuple[str, int], np.ndarray]:
    """``{(well, field): (1, c, z, y, x) stack}``, assembled the way any writer of per-field arrays must."""
    out: dict[tuple[str, int], np.ndarray] = {}
    for n, a in planes.items():
        h = where(n)
        key = (h.well, h.field - 1)
        if key not in out:
            out[key] = np.empty((1, channels, zs, *a.shape), a.dtype)
        out[key][0, h.channel - 1, h.z - 1] = a
    return out


def _one_name_per_field(planes: dict[str, np.ndarray]) -> list[str]:
    return list({(where(n).well, where(n).field): n for n in planes}.values())


class OmeZarrPy(Contender):
    """ome-zarr-py ``write_image`` per field into the plate layout (NGFF 0.5), one chunk per plane, no pyramid."""

    name = "ome-zarr-py"

    def write(self) -> None:
        import zarr
        from ome_zarr.format import FormatV05
        from ome_zarr.writer import write_image, write_plate_metadata, write_well_metadata
        from zarr.codecs import BloscCodec

        fmt = FormatV05()

        root = zarr.open_group(self.root / "plate.zarr", mode="w")
        stacks = _field_stacks(self.planes, self.channels, self.zs)
        wells = sorted({w for w, _ in stacks})
        write_plate_metadata(root, sorted({w[0] for w in wells}), sorted({str(int(w[1:])) for w in wells}), [f"{w[0]}/{int(w[1:])}" for w in wells], fmt=fmt)
        for well in wells:
            wg = root.require_group(f"{well[0]}/{int(well[1:])}")
            write_well_metadata(wg, [str(f) for f in range(self.fields)], fmt=fmt)
            for f in range(self.fields):
                data = stacks[(well, f)]
                write_image(
                    data,
                    wg.require_group(str(f)),
                    scale_factors=[],
                    fmt=fmt,
                    axes="tczyx",
                    storage_options={"chunks": (1, 1, 1, *data.shape[-2:]), "compressors": [BloscCodec(cname="lz4", clevel=1, shuffle="shuffle")]},
                )

    def _array(self, name: str) -> Any:
        import zarr

        h = where(name)
        return zarr.open_array(self.root / "plate.zarr" / h.well[0] / str(h.column + 1) / str(h.field - 1) / "s0", mode="r")  # write_image names level 0 "s0"

    def read_all(self) -> int:
        return sum(self._array(n)[...].nbytes for n in _one_name_per_field(self.planes))

    def read_plane(self, name: str) -> np.ndarray:
        h = where(name)
        return self._array(name)[0, h.channel - 1, h.z - 1]


class BareZarr(Contender):
    """zarr-python alone: one array per field, plane chunks in one shard, Blosc LZ4; no NGFF metadata, no name index."""

    name = "bare zarr"

    def write(self) -> None:
        import zarr
        from zarr.codecs import BloscCodec

        def one(item: tuple[tuple[str, int], np.ndarray]) -> None:
            (well, f), data = item
            zarr.create_array(
                self.root / "plate.zarr" / well / str(f),
                data=data,
                chunks=(1, 1, 1, *data.shape[-2:]),
                shards=data.shape,
                compressors=[BloscCodec(cname="lz4", clevel=1, shuffle="shuffle")],
            )

        with ThreadPoolExecutor(2) as pool:  # the same 2 threads hcsvfs uses
            list(pool.map(one, _field_stacks(self.planes, self.channels, self.zs).items()))

    def _array(self, name: str) -> Any:
        import zarr

        h = where(name)
        return zarr.open_array(self.root / "plate.zarr" / h.well / str(h.field - 1), mode="r")

    def read_all(self) -> int:
        return sum(self._array(n)[...].nbytes for n in _one_name_per_field(self.planes))

    def read_plane(self, name: str) -> np.ndarray:
        h = where(name)
        return self._array(name)[0, h.channel - 1, h.z - 1]


def codec_ceiling(planes: dict[str, np.ndarray], folder: Path | None = None) -> float:
    """MB/s of Blosc LZ4 level 1 + byte shuffle over every plane on 2 threads: the write ceiling.

    With ``folder``, each compressed plane is also written to a new file there (the ceiling with I/O).
    """
    from numcodecs import Blosc

    codec = Blosc(cname="lz4", clevel=1, shuffle=Blosc.SHUFFLE)
    raw = sum(a.nbytes for a in planes.values())

    def one(item: tuple[int, np.ndarray]) -> None:
        encoded = codec.encode(item[1])
        if folder is not None:
            (folder / f"{item[0]}.bin").write_bytes(encoded)

    if folder is not None:
        folder.mkdir(parents=True, exist_ok=True)
        drop_writeback()
    with ThreadPoolExecutor(2) as pool:
        seconds = timed(lambda: list(pool.map(one, enumerate(planes.values()))))
    if folder is not None:
        shutil.rmtree(folder)
    return raw / seconds / 1e6


# ---------------------------------------------------------------- run
def warm(base: Path, contenders: list[tuple[str, Callable[[Path], Contender]]]) -> None:
    """Run every contender once on a one-plane plate, untimed: imports and first-call costs are not I/O."""
    tiny = make_plate(1, 1, 1, 64)
    for label, make in contenders:
        folder = base / "warm"
        folder.mkdir()
        c = make(folder)
        c.planes = tiny
        c.fields = c.channels = c.zs = 1
        try:
            c.write()
            c.read_plane(next(iter(tiny)))
        except Exception:
            pass  # a contender that fails is reported by the timed run
        shutil.rmtree(folder)


def run(
    wells: int, fields: int, channels: int, size: int, samples: int, zs: int = 1, repeats: int = 2, only: tuple[str, ...] = ()
) -> dict[str, Any]:
    """Every contender (or those whose label is in ``only``) on one plate of the given shape."""
    from hcsvfs import ZarrConfig

    planes = make_plate(wells, fields, channels, size, zs)
    raw = sum(a.nbytes for a in planes.values())
    names = list(planes)
    picks = random.Random(1).sample(names, min(samples, len(names)))
    contenders: list[tuple[str, Callable[[Path], Contender]]] = [
        ("hcsvfs (plane chunks, shard/field)", lambda p: Hcsvfs(p, planes, fields, channels, zs, label="hcsvfs")),
        ("hcsvfs chunks=None", lambda p: Hcsvfs(p, planes, fields, channels, zs, config=ZarrConfig(chunks=None), label="hcsvfs chunks=None")),
        ("hcsvfs + crc32c", lambda p: Hcsvfs(p, planes, fields, channels, zs, config=ZarrConfig(checksum=True), label="hcsvfs + crc32c")),
        ("polystore", lambda p: Polystore(p, planes, fields, channels, zs)),
        ("ome-zarr-py", lambda p: OmeZarrPy(p, planes, fields, channels, zs)),
        ("bare zarr", lambda p: BareZarr(p, planes, fields, channels, zs)),
    ]
    if only:
        contenders = [c for c in contenders if c[0] in only]
    results: dict[str, dict[str, float]] = {}
    base = Path(tempfile.mkdtemp(prefix="bench_zarr_"))
    try:
        warm(base, contenders)
        for label, make in contenders:
            folder = base / label.replace(" ", "_").replace("/", "_")
            try:
                # Best of `repeats` runs each: the other tenants of a shared machine only ever add time.
                writes = []
                for _ in range(repeats):
                    shutil.rmtree(folder, ignore_errors=True)
                    folder.mkdir()
                    c = make(folder)
                    drop_writeback()
                    writes.append(timed(c.write))
                drop_writeback()
                t_write = min(writes)
                t_read = min(timed(c.read_all) for _ in range(repeats))
                plane_ms = statistics.median(min(timed(lambda n=n: c.read_plane(n)) for _ in range(3)) for n in picks) * 1e3
                exact = all(np.array_equal(c.read_plane(n), planes[n]) for n in picks[:3])
            except Exception as exc:  # a peer that cannot be driven is reported, not hidden
                results[label] = {"error": f"{type(exc).__name__}: {exc}"}  # type: ignore[dict-item]
                continue
            results[label] = {
                "write_MBps": raw / t_write / 1e6,
                "read_MBps": raw / t_read / 1e6,
                "plane_ms": plane_ms,
                "ratio": raw / folder_bytes(folder),
                "exact": float(exact),
            }
            shutil.rmtree(folder)
        with_io = codec_ceiling(planes, base / "codec_and_write")
    finally:
        shutil.rmtree(base, ignore_errors=True)
    return {
        "plate": {"wells": wells, "fields": fields, "channels": channels, "zs": zs, "size": size, "MB": raw / 1e6, "planes": len(planes)},
        "codec_alone_MBps": codec_ceiling(planes),
        "codec_and_write_MBps": with_io,
        "results": results,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
    }


def report(out: dict[str, Any]) -> None:
    p = out["plate"]
    print(f"plate: {p['wells']} wells x {p['fields']} fields x {p['channels']} ch x {p['zs']} z x {p['size']}^2 uint16 = {p['MB']:.0f} MB, {p['planes']} planes")
    print(f"codec alone (Blosc LZ4-1 + shuffle, 2 threads): {out['codec_alone_MBps']:.0f} MB/s; "
          f"codec + one new file per plane: {out['codec_and_write_MBps']:.0f} MB/s\n")
    res = out["results"]
    ref = res.get(DEFAULT, {})
    print(f"{'contender':36} {'write MB/s':>10} {'read MB/s':>10} {'1 plane ms':>10} {'ratio':>6}  write x  plane-read x (vs hcsvfs)")
    for label, r in res.items():
        if "error" in r:
            print(f"{label:36} could not run: {r['error']}")
            continue
        wx = ref["write_MBps"] / r["write_MBps"] if ref else float("nan")
        px = r["plane_ms"] / ref["plane_ms"] if ref else float("nan")
        print(f"{label:36} {r['write_MBps']:10.0f} {r['read_MBps']:10.0f} {r['plane_ms']:10.2f} {r['ratio']:6.2f}  {wx:6.2f}  {px:8.1f}" + ("" if r["exact"] else "  NOT PIXEL-EXACT"))
    if not ref:
        return
    print()
    for what, value, target, _ in checks(out, out.get("deep")):
        verdict = f"target {target:g}: {'met' if value >= target else 'NOT met'}" if target else "no target"
        print(f"  {what:52} {value:7.2f}  ({verdict})")


def checks(out: dict[str, Any], deep: dict[str, Any] | None) -> list[tuple[str, float, float, str]]:
    """(what, measured ratio, target or 0, against what) for every target of issue 3 that this run can judge."""
    res = out["results"]
    ref = res.get(DEFAULT, {})
    if not ref or "error" in ref:
        return []
    found: list[tuple[str, float, float, str]] = []
    if "error" not in res.get("polystore", {"error": 1}):
        found.append(("batch write >= 2x polystore", ref["write_MBps"] / res["polystore"]["write_MBps"], WRITE_VS_POLYSTORE, "polystore write"))
    if "error" not in res.get("ome-zarr-py", {"error": 1}):
        found.append(("batch write >= ome-zarr-py", ref["write_MBps"] / res["ome-zarr-py"]["write_MBps"], 1.0, "ome-zarr-py write"))
    single = res.get(SINGLE, {})
    if single and "error" not in single:
        # The original design's claim, checked rather than targeted: 0 prints "no target".
        found.append(("claim 'single chunk is 40x faster': write, vs default", single["write_MBps"] / ref["write_MBps"], 0.0, f"{DEFAULT} write"))
    deep_res = (deep or {}).get("results", {})
    if all(k in deep_res and "error" not in deep_res[k] for k in (DEFAULT, SINGLE)):
        z = deep["plate"]["zs"]
        found.append((f"random plane read >= 20x single chunk ({z} z)", deep_res[SINGLE]["plane_ms"] / deep_res[DEFAULT]["plane_ms"],
                      RANDOM_READ_VS_SINGLE_CHUNK, f"deep: {SINGLE} one random plane"))  # fmt: skip
    elif single and "error" not in single:
        found.append(("random plane read >= 20x single chunk", single["plane_ms"] / ref["plane_ms"], RANDOM_READ_VS_SINGLE_CHUNK, f"{SINGLE} one random plane"))
    found.append(("write >= 50% of codec alone", ref["write_MBps"] / out["codec_alone_MBps"], WRITE_VS_CODEC, "codec alone (2 threads)"))
    found.append(("write vs codec + file write (no target)", ref["write_MBps"] / out["codec_and_write_MBps"], 0.0, "codec + file write (2 threads)"))
    return found


def as_results(out: dict[str, Any], deep: dict[str, Any] | None, quick: bool) -> dict[str, Any]:
    """The run in the report's JSON shape (docs/benchmarks.md): one row per number, targets with met."""
    rows: list[dict[str, Any]] = [
        {"name": "codec alone (2 threads)", "value": round(out["codec_alone_MBps"], 1), "unit": "MB/s"},
        {"name": "codec + file write (2 threads)", "value": round(out["codec_and_write_MBps"], 1), "unit": "MB/s"},
    ]
    for tag, run_ in (("", out), ("deep: ", deep)):
        for label, r in (run_ or {}).get("results", {}).items():
            if "error" in r:
                rows.append({"name": f"{tag}{label}", "value": None, "unit": "", "error": r["error"]})
                continue
            rows.append({"name": f"{tag}{label} write", "value": round(r["write_MBps"], 1), "unit": "MB/s",
                         **({"layout": label} if not tag else {})})  # fmt: skip
            rows.append({"name": f"{tag}{label} full read", "value": round(r["read_MBps"], 1), "unit": "MB/s"})
            rows.append({"name": f"{tag}{label} one random plane", "value": round(r["plane_ms"], 3), "unit": "ms"})
            rows.append({"name": f"{tag}{label} compression ratio", "value": round(r["ratio"], 3), "unit": "x"})
    for what, value, target, against in checks(out, deep):
        row: dict[str, Any] = {"name": what, "value": round(value, 3), "unit": "x", "ratio": round(value, 3), "ratio_to": against}
        if target:
            row.update(target=f">= {target:g}x", met=bool(value >= target))
        rows.append(row)
    plates = [out["plate"]] + ([deep["plate"]] if deep else [])
    notes = [f"plate{' (deep)' if i else ''}: {p['wells']} wells x {p['fields']} fields x {p['channels']} ch x {p['zs']} z x "
             f"{p['size']}^2 uint16 = {p['MB']:.0f} MB" for i, p in enumerate(plates)]  # fmt: skip
    notes.append("writes: best of 2 (1 with --quick), page cache synced before each; plane reads: median of 15 planes, best of 3")
    return {"benchmark": "zarr", "quick": quick, "params": {"plates": plates}, "results": rows, "notes": notes}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="4 wells x 2 fields x 2 channels x 512^2 (a smoke run)")
    ap.add_argument("--full", action="store_true", help="2048 x 2048 planes (about 400 MB)")
    ap.add_argument("--z", type=int, default=1, help="z planes per field (deep fields show the single-chunk read cost)")
    ap.add_argument("--size", type=int, help="plane side in pixels (overrides the default)")
    ap.add_argument("--wells", type=int, help="number of wells (overrides the default)")
    ap.add_argument("--fields", type=int, help="fields per well (overrides the default)")
    ap.add_argument("--json", type=Path, help="also write the numbers here")
    args = ap.parse_args()
    if args.quick:
        shape = (4, 2, 2, 512)
    else:
        shape = (8, 4, 3, 2048 if args.full else 1024)
    shape = (args.wells or shape[0], args.fields or shape[1], shape[2], args.size or shape[3])
    out = run(*shape, samples=5 if args.quick else 15, zs=args.z, repeats=1 if args.quick else 2)
    deep = None
    if args.z == 1:
        # Deep fields of full-size planes (a real HCS field: channels x z x 2048^2) are where one chunk per
        # field hurts random reads: the target's case. One field of 3 ch x 16 z x 2048^2 = 403 MB.
        wells, fields, zs, size = (1, 1, 8, 256) if args.quick else (1, 1, 16, 2048)
        # Best of 2 as on the main plate: the first 0.4 GB write of a process pays its page faults (~2.5x slower).
        deep = run(wells, fields, shape[2], size, samples=5 if args.quick else 15, zs=zs, repeats=1 if args.quick else 2,
                   only=(DEFAULT, SINGLE))
        out["deep"] = deep
    report(out)
    if deep:
        print("\ndeep fields:")
        report(deep)
    if args.json:
        args.json.write_text(json.dumps(as_results(out, deep, args.quick), indent=2))


if __name__ == "__main__":
    main()
