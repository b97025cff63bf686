"""Core VFS overhead against the plain tools it wraps, measured in one run and printed as ratios.

* memory: save+load per op, MemoryStorageBackend (and through FileManager) vs a dict
  behind a threading.Lock and vs fsspec's MemoryFileSystem holding np.save bytes;
* disk: a 64 x 2048 x 2048 uint16 stack saved/loaded as .tif and .npy by
  DiskStorageBackend vs bare tifffile.imwrite/imread and np.save/np.load on the
  same files; fsync's cost is reported on its own line.

Usage: ``python benchmarks/bench_core.py [--quick] [--json PATH]``.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import shutil
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

MEMORY_TARGET = 3.0  # hcsvfs memory save+load within 3x of a locked dict, per op
DISK_TARGET = 1.3  # hcsvfs disk save/load within 1.3x of the bare writer/reader


def best_of(repeats: int, fn: Callable[[], Any]) -> float:
    """The fastest of ``repeats`` wall-clock runs of ``fn`` (the least disturbed by other processes)."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


# ---------------------------------------------------------------- memory
def bench_memory(n_ops: int, repeats: int) -> dict[str, float]:
    """Microseconds per save+load pair for each contender, same arrays, same keys."""
    from fsspec.implementations.memory import MemoryFileSystem

    from hcsvfs import Backend, FileManager, MemoryStorageBackend, StorageRegistry

    frames = [np.full((64, 64), i, np.uint16) for i in range(n_ops)]
    keys = [f"plate/A01/f{i}" for i in range(n_ops)]

    def locked_dict() -> None:
        store: dict[str, Any] = {}
        lock = threading.Lock()
        for k, a in zip(keys, frames):
            with lock:
                store[k] = a
            with lock:
                got = store[k]
            assert got is a

    def hcsvfs_backend() -> None:
        mem = MemoryStorageBackend()
        mem.ensure_directory("plate/A01")
        for k, a in zip(keys, frames):
            mem.save(a, k)
            assert mem.load(k) is a

    def hcsvfs_filemanager() -> None:
        reg = StorageRegistry(discover=False)
        reg.register_backend(Backend.MEMORY, MemoryStorageBackend())
        fm = FileManager(reg)
        for k, a in zip(keys, frames):
            fm.save(a, k, Backend.MEMORY)
            assert fm.load(k, Backend.MEMORY) is a

    def fsspec_memory() -> None:
        fs = MemoryFileSystem(skip_instance_cache=True)
        fs.store, fs.pseudo_dirs = {}, [""]  # its store is process-global by default; start empty
        for k, a in zip(keys, frames):
            buf = io.BytesIO()
            np.save(buf, a)
            fs.pipe_file("/" + k, buf.getvalue())
            got = np.load(io.BytesIO(fs.cat_file("/" + k)))
            assert got.shape == a.shape

    contenders = {
        "locked dict": locked_dict,
        "hcsvfs MemoryStorageBackend": hcsvfs_backend,
        "hcsvfs FileManager(memory)": hcsvfs_filemanager,
        "fsspec MemoryFileSystem": fsspec_memory,
    }
    out = {name: float("inf") for name in contenders}
    for _ in range(repeats):  # interleaved so a burst of load on the machine hits everyone alike
        for name, fn in contenders.items():
            out[name] = min(out[name], best_of(1, fn) / n_ops * 1e6)
    return out


# ---------------------------------------------------------------- disk
def bench_disk(shape: tuple[int, ...], repeats: int, folder: Path) -> dict[str, list[float]]:
    """Seconds per save and per load of one stack (every run), for each writer/reader, same files."""
    import tifffile

    from hcsvfs import DiskStorageBackend

    stack = np.random.default_rng(0).integers(0, 4096, size=shape, dtype=np.uint16)
    durable = DiskStorageBackend(folder)  # the default: fsync file and folder
    fast = DiskStorageBackend(folder, fsync=False)
    tif, npy = folder / "stack.tif", folder / "stack.npy"

    def check(got: np.ndarray) -> None:
        assert got.shape == stack.shape and got[-1, -1, -1] == stack[-1, -1, -1]

    cases: dict[str, Callable[[], Any]] = {
        "tifffile.imwrite": lambda: tifffile.imwrite(tif, stack, photometric="minisblack"),
        "hcsvfs .tif save (fsync=False)": lambda: fast.save(stack, "stack.tif", overwrite=True),
        "hcsvfs .tif save": lambda: durable.save(stack, "stack.tif", overwrite=True),
        "tifffile.imread": lambda: check(tifffile.imread(tif)),
        "hcsvfs .tif load": lambda: check(durable.load("stack.tif")),
        "np.save": lambda: np.save(npy, stack),
        "hcsvfs .npy save (fsync=False)": lambda: fast.save(stack, "stack.npy", overwrite=True),
        "hcsvfs .npy save": lambda: durable.save(stack, "stack.npy", overwrite=True),
        "np.load": lambda: check(np.load(npy)),
        "hcsvfs .npy load": lambda: check(durable.load("stack.npy")),
    }
    out: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(repeats):
        for name, fn in cases.items():
            if "save" in name or "imwrite" in name:
                # Every writer starts from no file: replacing a 0.5 GB file inside the timed region (freeing
                # its blocks, ext4's flush-on-replace) cost 0.2-1.5 s at random here, bare writers included.
                (npy if "npy" in name else tif).unlink(missing_ok=True)
            # Flush the previous writer's dirty pages first: otherwise the kernel's writeback throttles
            # whoever writes next, and the order of the contenders decides the result.
            os.sync()
            out[name].append(best_of(1, fn))
    return out


# ---------------------------------------------------------------- report
def result(name: str, value: float, unit: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "value": round(value, 4), "unit": unit, **extra}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, finishes in seconds")
    parser.add_argument("--json", type=Path, help="write the results here (docs/benchmarks.md shape)")
    parser.add_argument("--dir", type=Path, help="folder for the disk files (default: a temp folder)")
    args = parser.parse_args(argv)

    shape = (8, 1024, 1024) if args.quick else (64, 2048, 2048)
    n_ops, repeats = (2_000, 3) if args.quick else (20_000, 5)
    disk_repeats = 5
    mb = int(np.prod(shape)) * 2 / 1e6
    results: list[dict[str, Any]] = []
    notes: list[str] = []

    mem = bench_memory(n_ops, repeats)
    print(f"memory: save+load of a 64x64 uint16 array, {n_ops} ops, best of {repeats}")
    base = mem["locked dict"]
    for name, us in mem.items():
        ratio = us / base
        line = f"  {name:32s} {us:8.2f} us/op   {ratio:6.2f}x locked dict"
        extra: dict[str, Any] = {}
        if name.startswith("hcsvfs"):
            met = ratio <= MEMORY_TARGET
            line += f"   (target <= {MEMORY_TARGET:.0f}x: {'met' if met else 'MISSED'})"
            target = f"<= {MEMORY_TARGET}x time of peer"
            extra = {"ratio_to": "locked dict", "ratio": round(ratio, 3), "target": target, "met": met}
        elif name != "locked dict":
            extra = {"ratio_to": "locked dict", "ratio": round(ratio, 3)}
        print(line)
        results.append(result(f"memory {name}", us, "us/op", **extra))
    fs_ratio = mem["fsspec MemoryFileSystem"] / mem["hcsvfs MemoryStorageBackend"]
    print(f"  fsspec MemoryFileSystem is {fs_ratio:.1f}x slower than the hcsvfs memory backend (it serialises)")
    notes.append(f"memory: fsspec MemoryFileSystem (np.save bytes) takes {fs_ratio:.1f}x the memory backend's time")

    folder = Path(tempfile.mkdtemp(prefix="bench_core_", dir=args.dir))
    try:
        runs = bench_disk(shape, disk_repeats, folder)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    # The best run measures hcsvfs's own overhead; the median shows how much a busy disk and page cache
    # (shared machines, writeback of earlier runs) move the numbers around it.
    disk = {name: min(times) for name, times in runs.items()}
    median = {name: statistics.median(times) for name, times in runs.items()}
    print(f"\ndisk: {'x'.join(map(str, shape))} uint16 stack ({mb:.0f} MB), best of {disk_repeats}")
    pairs = [
        ("hcsvfs .tif save (fsync=False)", "tifffile.imwrite"),
        ("hcsvfs .tif load", "tifffile.imread"),
        ("hcsvfs .npy save (fsync=False)", "np.save"),
        ("hcsvfs .npy load", "np.load"),
    ]
    for ours, peer in pairs:
        ratio = disk[ours] / disk[peer]
        met = ratio <= DISK_TARGET
        print(
            f"  {ours:32s} {disk[ours]:7.3f} s ({mb / disk[ours]:7.0f} MB/s)   {peer:18s} {disk[peer]:7.3f} s"
            f"   {ratio:5.2f}x   (target <= {DISK_TARGET}x: {'met' if met else 'MISSED'})"
            f"   median {median[ours]:.3f} s vs {median[peer]:.3f} s = {median[ours] / median[peer]:.2f}x"
        )
        results.append(result(peer, mb / disk[peer], "MB/s", layout=peer.split(".")[0], codec="none"))
        results.append(
            result(
                ours, mb / disk[ours], "MB/s", ratio_to=peer, ratio=round(disk[peer] / disk[ours], 3),
                target=f">= {1 / DISK_TARGET:.2f}x peer MB/s (<= {DISK_TARGET}x its time)", met=met, layout="hcsvfs " + ours.split()[1], codec="none",
            )
        )  # fmt: skip
    for ext in (".tif", ".npy"):
        synced, unsynced = disk[f"hcsvfs {ext} save"], disk[f"hcsvfs {ext} save (fsync=False)"]
        cost = synced / unsynced
        print(f"  fsync cost, {ext} save: {synced:.3f} s with fsync vs {unsynced:.3f} s without = {cost:.2f}x")
        results.append(result(f"hcsvfs {ext} save", mb / synced, "MB/s", ratio_to=f"hcsvfs {ext} save (fsync=False)",
                              ratio=round(unsynced / synced, 3)))  # fmt: skip
        notes.append(f"fsync (file + folder) makes a {mb:.0f} MB {ext} save {cost:.2f}x slower on this machine")

    if args.json:
        payload = {
            "benchmark": "core",
            "quick": args.quick,
            "params": {"shape": list(shape), "dtype": "uint16", "memory_ops": n_ops, "repeats": repeats,
                       "disk_repeats": disk_repeats, "machine": platform.platform()},  # fmt: skip
            "results": results,
            "notes": notes,
        }
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(payload, indent=1))
        print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
