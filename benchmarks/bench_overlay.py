"""MemoryOverlay under a pipeline-like workload, against all-in-memory and Dask's worker spilling.

Workload (the same for every contender): step ``i`` loads the outputs of steps
``i-1`` and ``i-2``, combines them into a new array of ``item`` bytes and saves
it; every third step also reads one old output (fixed random seed). The
working set is every output, ``steps x item`` bytes. Contenders:

* ``memory``: MemoryStorageBackend (everything stays in RAM; the reference time);
* ``overlay``: MemoryOverlay over DiskStorageBackend (fsync off, like Dask's spill files);
* ``dask``: ``distributed.spill.SpillBuffer`` (zict LRU of memory over pickled files), the
  structure a Dask worker spills through, with its target set to the overlay's target bytes.

Budgets are 0.25x, 0.5x, 1x and 2x the working set. Each run is a fresh child
process, so peak RSS (``VmHWM``) is its own; it is reported as growth over
the child's baseline after imports and a warm-up that allocates the workload's
own temporaries (three arrays), so the growth is what the store keeps. Target (issue 4): at 0.5x budget, within 2x
of the all-in-memory time with peak RSS growth under the budget.

Usage: ``python benchmarks/bench_overlay.py [--quick | --full] [--json PATH]``.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

MiB = 1024**2
BUDGETS = (0.25, 0.5, 1.0, 2.0)
TARGET_RATIO = 2.0
TARGET_FRACTION = 0.6  # the overlay's default target; Dask's SpillBuffer gets the same number of bytes


def _peak_rss() -> int:
    """This process's peak RSS in bytes: VmHWM (ru_maxrss can carry the forking parent's peak over exec)."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux


def _workload(save: Any, load: Any, steps: int, item: int) -> None:
    """The pipeline: each step combines the two previous outputs, sometimes re-reads an old one."""
    rng = np.random.default_rng(0)
    n = item // 2
    save(0, np.arange(n, dtype=np.uint16))
    save(1, np.full(n, 3, np.uint16))
    for i in range(2, steps):
        a, b = load(i - 1), load(i - 2)
        out = a // 2 + b // 2
        if i % 3 == 0:
            old = load(int(rng.integers(0, i - 2)))
            out += old[:1]
        save(i, out)
        del a, b, out


def _expected_checksum(steps: int, item: int) -> int:
    store: dict[int, np.ndarray] = {}
    _workload(store.__setitem__, store.__getitem__, steps, min(item, 4096))
    return int(sum(int(v[:8].sum()) for v in store.values()))


def run_one(kind: str, budget: int, steps: int, item: int, directory: str) -> dict[str, Any]:
    """One contender in this (child) process; returns time, RSS growth and spill counts."""
    extra: dict[str, Any] = {}
    if kind == "memory":
        from hcsvfs.backends import MemoryStorageBackend

        store = MemoryStorageBackend()
        save = lambda k, v: store.save(v, f"s{k}")  # noqa: E731
        load = lambda k: store.load(f"s{k}")  # noqa: E731
        finish = lambda: None  # noqa: E731
    elif kind == "overlay":
        from hcsvfs.backends import DiskStorageBackend
        from hcsvfs.tiering import MemoryOverlay

        store = MemoryOverlay(DiskStorageBackend(directory, fsync=False), budget=budget, pause_timeout=60)
        save = lambda k, v: store.save(v, f"s{k}")  # noqa: E731
        load = lambda k: store.load(f"s{k}")  # noqa: E731

        def finish() -> None:
            s = store.stats()
            store.close()
            extra.update(restores=s["restore_count"], spilled_at_end=s["spilled_bytes"], peak_managed=s["peak_memory_bytes"])
    elif kind == "dask":
        from distributed.spill import SpillBuffer

        buf = SpillBuffer(directory, target=int(budget * TARGET_FRACTION))
        save = buf.__setitem__
        load = buf.__getitem__

        def finish() -> None:
            extra.update(spilled_at_end=int(buf.spilled_total.disk))
    else:
        raise ValueError(kind)
    # Warm up imports and allocate the workload's own temporaries (3 arrays) once, so the growth measured
    # after this is what the store holds, not the arrays every contender's caller has in hand.
    warm = np.ones(item // 2, np.uint16)
    (warm // 2 + warm // 2).sum()
    del warm
    import psutil

    written = psutil.Process().io_counters().write_chars
    base = _peak_rss()
    cpu = time.process_time()  # user + system of every thread: less disturbed by other processes than wall time
    start = time.perf_counter()
    _workload(save, load, steps, item)
    seconds = time.perf_counter() - start
    cpu = time.process_time() - cpu
    written = psutil.Process().io_counters().write_chars - written
    checksum = int(sum(int(load(k)[:8].sum()) for k in range(steps)))
    finish()
    return {"seconds": seconds, "cpu": cpu, "rss_growth": _peak_rss() - base, "written": written, "checksum": checksum, **extra}


def _child(kind: str, budget: int, steps: int, item: int, repeats: int) -> dict[str, Any]:
    """Best time and worst RSS growth of ``repeats`` fresh child processes (the machine is shared and noisy)."""
    runs = [_child_once(kind, budget, steps, item) for _ in range(repeats)]
    best = min(runs, key=lambda r: r["seconds"])
    return {**best, "cpu": min(r["cpu"] for r in runs), "rss_growth": max(r["rss_growth"] for r in runs), "checksum_ok": len({r["checksum"] for r in runs}) == 1}


def _child_once(kind: str, budget: int, steps: int, item: int) -> dict[str, Any]:
    directory = tempfile.mkdtemp(prefix=f"bench-overlay-{kind}-")
    try:
        cmd = [sys.executable, __file__, "--child", json.dumps([kind, budget, steps, item, directory])]
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
        if out.returncode != 0:
            raise RuntimeError(f"{kind} at {budget} bytes failed:\n{out.stderr[-3000:]}")
        return json.loads(out.stdout.strip().splitlines()[-1])
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="4 MiB arrays x 12 steps")
    parser.add_argument("--full", action="store_true", help="the issue's 64 MiB arrays x 24 steps")
    parser.add_argument("--json", type=Path, help="write results here")
    parser.add_argument("--repeats", type=int, default=3, help="child runs per contender (best time is kept)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, budget, steps, item, directory = json.loads(args.child)
        print(json.dumps(run_one(kind, budget, steps, item, directory)))
        return
    item, steps = (4 * MiB, 12) if args.quick else (64 * MiB, 24) if args.full else (16 * MiB, 24)
    working_set = item * steps
    try:
        import distributed.spill  # noqa: F401

        kinds = ["overlay", "dask"]
    except ImportError:
        kinds = ["overlay"]
    expected = _expected_checksum(steps, item)
    print(f"workload: {steps} steps x {item // MiB} MiB arrays = working set {working_set // MiB} MiB", flush=True)
    ref = _child("memory", 0, steps, item, args.repeats)
    results: list[dict[str, Any]] = [
        {"name": "memory", "value": round(ref["seconds"], 3), "unit": "s", "cpu_s": round(ref["cpu"], 3),
         "rss_growth_mib": round(ref["rss_growth"] / MiB, 1)}
    ]
    rows = [("memory", "-", ref["seconds"], 1.0, ref["cpu"], 1.0, ref["rss_growth"], None, "-")]
    all_correct = ref["checksum"] == expected
    for fraction in BUDGETS:
        budget = int(working_set * fraction)
        for kind in kinds:
            r = _child(kind, budget, steps, item, args.repeats)
            all_correct &= r["checksum"] == expected and r["checksum_ok"]
            ratio = r["seconds"] / ref["seconds"]
            entry: dict[str, Any] = {
                "name": f"{kind} {fraction:g}x",
                "value": round(r["seconds"], 3),
                "unit": "s",
                "ratio_to": "memory",
                "ratio": round(ratio, 2),
                "cpu_s": round(r["cpu"], 3),
                "cpu_ratio": round(r["cpu"] / ref["cpu"], 2),
                "budget_mib": round(budget / MiB, 1),
                "rss_growth_mib": round(r["rss_growth"] / MiB, 1),
                "spilled_at_end_mib": round(r.get("spilled_at_end", 0) / MiB, 1),
            }
            entry["written_mib"] = round(r["written"] / MiB, 1)
            if kind == "overlay" and fraction == 0.5:
                entry["target"] = f"<= {TARGET_RATIO:g}x time of memory, peak RSS growth < budget"
                entry["met"] = bool(ratio <= TARGET_RATIO and r["rss_growth"] < budget)
            results.append(entry)
            rows.append((kind, f"{fraction:g}x", r["seconds"], ratio, r["cpu"], r["cpu"] / ref["cpu"], r["rss_growth"], budget,
                         entry["written_mib"]))
            print(f"  {kind:8s} {fraction:>5g}x  {r['seconds']:7.2f} s  {ratio:5.2f}x  RSS +{r['rss_growth'] / MiB:7.1f} MiB "
                  f"(budget {budget / MiB:7.1f} MiB)", flush=True)
    try:
        from rich.console import Console
        from rich.table import Table

        table = Table(title=f"bench_overlay: {steps} x {item // MiB} MiB, working set {working_set // MiB} MiB")
        for col in ("contender", "budget", "wall s", "x memory", "cpu s", "x memory", "peak RSS growth MiB", "budget MiB",
                    "written MiB"):
            table.add_column(col, justify="right")
        for kind, frac, sec, ratio, cpu, cpu_ratio, growth, budget, spilled in rows:
            table.add_row(kind, frac, f"{sec:.2f}", f"{ratio:.2f}", f"{cpu:.2f}", f"{cpu_ratio:.2f}", f"{growth / MiB:.1f}",
                          "-" if budget is None else f"{budget / MiB:.1f}", str(spilled))
        Console(width=max(Console().width, 110)).print(table)
    except ImportError:
        pass
    notes = [
        f"values checked identical across contenders: {all_correct}",
        f"wall and cpu time: best of {args.repeats} fresh processes; RSS growth: worst of them; the machine is shared, "
        "so wall-time ratios move by tens of percent between runs: cpu time (user+sys, all threads) is steadier",
        "overlay spills to DiskStorageBackend(fsync=False); Dask's SpillBuffer target = 0.6 x budget (the overlay's target)",
        "written MiB: bytes the process wrote (psutil write_chars) during the workload, i.e. spill traffic",
        f"machine: {platform.platform()}, python {platform.python_version()}",
    ]
    for n in notes:
        print(n)
    if args.json:
        params = {"item_mib": item // MiB, "steps": steps, "repeats": args.repeats, "working_set_mib": working_set // MiB, "budgets": list(BUDGETS)}
        args.json.write_text(json.dumps({"benchmark": "overlay", "quick": args.quick, "params": params,
                                         "results": results, "notes": notes}, indent=2))


if __name__ == "__main__":
    main()
