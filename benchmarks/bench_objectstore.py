"""Plates through S3 on loopback: hcsvfs's object-store and zarr-on-S3 backends against bare zarr + s3fs.

A moto S3 server runs in its own process on 127.0.0.1 (so its CPU time is not
charged to the client's interpreter) and logs one line per HTTP request, which
is how requests per plate are counted. Each contender writes the same
synthetic plate to a fresh bucket and reads it back:

* ``hcsvfs objectstore tif``: ObjectStoreBackend, one TIFF object per plane;
* ``hcsvfs zarr-on-s3``: FileManager.mount(url, kind="zarr"), the NGFF plate layout;
* ``zarr+s3fs``: zarr-python on FsspecStore, one array per field, one chunk per
  plane, the same codec (Blosc LZ4 level 1) -- the floor for zarr-on-S3;
* the read cache: the same TIFF objects loaded cold, then warm from a ByteCache.

It runs twice: on plain loopback, then with the server sleeping
``--latency-ms`` (10 by default) before each request, a stand-in for a bucket
across a network, where requests per plate and concurrency decide the speed.
polystore has no S3 or fsspec backend (disk, memory, zarr on local disk, OMERO,
viewers), so it is listed and not measured.

Usage: ``python benchmarks/bench_objectstore.py [--quick] [--json PATH] [--latency-ms MS]``
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

CREDENTIALS = {"AWS_ACCESS_KEY_ID": "bench-key", "AWS_SECRET_ACCESS_KEY": "bench-secret"}


# ---------------------------------------------------------------- the server
# Started in the child: moto's server, optionally with a fixed delay before each request is served
# (threaded, so concurrent requests overlap their delays as they would over a real network).
_SERVER = """
import sys, time
latency = float(sys.argv.pop(1))
if latency:
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication
    served = DomainDispatcherApplication.__call__
    def delayed(self, environ, start_response):
        time.sleep(latency)
        return served(self, environ, start_response)
    DomainDispatcherApplication.__call__ = delayed
from moto.server import main
main()
"""


class MotoProcess:
    """moto's S3 server in a child process on 127.0.0.1; its access log counts requests."""

    def __init__(self, latency_s: float = 0.0) -> None:
        with contextlib.closing(socket.socket()) as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.log = Path(tempfile.mkdtemp(prefix="hcsvfs-bench-s3-")) / "access.log"
        self._fh = open(self.log, "w")
        self.proc = subprocess.Popen(
            [sys.executable, "-c", _SERVER, str(latency_s), "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=self._fh, stderr=subprocess.STDOUT, env={**os.environ, **CREDENTIALS},
        )
        deadline = time.time() + 60
        while time.time() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), timeout=1):
                return
            time.sleep(0.2)
        raise RuntimeError("moto server did not start within 60 s")

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def requests(self) -> int:
        self._fh.flush()
        return sum(1 for line in self.log.read_text().splitlines() if '"' in line and "HTTP/1.1" in line)

    def bucket(self) -> str:
        import boto3

        name = f"bench-{uuid.uuid4().hex[:10]}"
        boto3.client("s3", endpoint_url=self.endpoint).create_bucket(Bucket=name)
        return name

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)
        self._fh.close()


# ---------------------------------------------------------------- data
def make_plate(wells: int, fields: int, channels: int, size: int) -> dict[str, np.ndarray]:
    """``{"A01_s1_w1.tif": plane}``: noisy uint16 planes with blobs (compressible like real images, not trivially)."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:size, 0:size] / size
    out = {}
    for w in range(wells):
        well = f"{chr(ord('A') + w // 12)}{w % 12 + 1:02d}"
        for s in range(1, fields + 1):
            for c in range(1, channels + 1):
                image = 300 + 200 * np.sin(5 * yy + w) * np.cos(3 * xx + s + c)
                for _ in range(20):
                    cy, cx = rng.uniform(0, 1, 2)
                    image = image + 2000 * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / 0.0004)
                out[f"{well}_s{s}_w{c}.tif"] = np.clip(rng.poisson(image), 0, 65535).astype(np.uint16)
    return out


@contextlib.contextmanager
def measured(server: MotoProcess, into: dict[str, float]) -> Iterator[None]:
    before, start = server.requests(), time.perf_counter()
    yield
    into["seconds"] = time.perf_counter() - start
    time.sleep(0.2)  # let the server flush its last log lines
    into["requests"] = server.requests() - before


# ---------------------------------------------------------------- contenders
def hcsvfs_objectstore(server: MotoProcess, plate: dict[str, np.ndarray], cache_dir: Path | None = None) -> dict[str, Any]:
    from hcsvfs import FileManager
    from hcsvfs.backends.cache import ByteCache

    fm = FileManager()
    cache = ByteCache(cache_dir, max_bytes=1 << 30) if cache_dir is not None else None
    fm.mount(f"s3://{server.bucket()}/plates", name="s3", endpoint_url=server.endpoint, cache=cache)
    names = [f"P1/{n}" for n in plate]
    write: dict[str, float] = {}
    read: dict[str, float] = {}
    warm: dict[str, float] = {}
    with measured(server, write):
        fm.save_batch(list(plate.values()), names, "s3")
    with measured(server, read):
        got = fm.load_batch(names, "s3")
    assert all(np.array_equal(g, p) for g, p in zip(got, plate.values()))
    if cache is not None:
        with measured(server, warm):
            fm.load_batch(names, "s3")
    return {"write": write, "read": read, "warm": warm}


def hcsvfs_zarr(server: MotoProcess, plate: dict[str, np.ndarray], write_threads: int | None = None) -> dict[str, Any]:
    from hcsvfs import FileManager
    from hcsvfs.config import ZarrConfig

    fm = FileManager()
    extra: dict[str, Any] = {"config": ZarrConfig(write_threads=write_threads)} if write_threads else {}
    fm.mount(f"s3://{server.bucket()}/plates", name="s3z", kind="zarr", endpoint_url=server.endpoint, **extra)
    names = [f"P1.zarr/{n}" for n in plate]
    write: dict[str, float] = {}
    read: dict[str, float] = {}
    with measured(server, write):
        fm.save_batch(list(plate.values()), names, "s3z")
    with measured(server, read):
        got = fm.load_batch(names, "s3z", materialize=True)  # numpy out, as bare zarr's [:] gives
    assert all(np.array_equal(g, p) for g, p in zip(got, plate.values()))
    return {"write": write, "read": read}


def bare_zarr(server: MotoProcess, plate: dict[str, np.ndarray]) -> dict[str, Any]:
    import zarr
    from zarr.codecs import BloscCodec
    from zarr.storage import FsspecStore

    store = FsspecStore.from_url(f"s3://{server.bucket()}/plates/P1.zarr", storage_options={"endpoint_url": server.endpoint})
    fields: dict[str, list[np.ndarray]] = {}
    for name, image in plate.items():
        well, field, _ = name.split("_")
        fields.setdefault(f"{well}/{field}", []).append(image)
    write: dict[str, float] = {}
    read: dict[str, float] = {}
    with measured(server, write):
        for key, planes in fields.items():
            stack = np.stack(planes)
            arr = zarr.create_array(store, name=key, shape=stack.shape, dtype=stack.dtype, chunks=(1, *stack.shape[1:]),
                                    compressors=BloscCodec(cname="lz4", clevel=1, shuffle="bitshuffle"))
            arr[:] = stack
    with measured(server, read):
        got = {key: zarr.open_array(store, path=key, mode="r")[:] for key in fields}
    assert all(np.array_equal(got[k], np.stack(v)) for k, v in fields.items())
    return {"write": write, "read": read}


def best(runs: list[dict[str, Any]], phase: str) -> dict[str, float]:
    return min((r[phase] for r in runs), key=lambda m: m["seconds"])


# ---------------------------------------------------------------- main
def run_setting(latency_s: float, plate: dict[str, np.ndarray], mb: float, repeats: int) -> list[dict[str, Any]]:
    """Every contender against one server; returns result rows (names carry the setting)."""
    setting = "loopback" if not latency_s else f"{latency_s * 1000:.0f} ms latency"
    server = MotoProcess(latency_s)
    try:
        contenders: dict[str, Callable[[], dict[str, Any]]] = {
            "zarr+s3fs": lambda: bare_zarr(server, plate),
            "hcsvfs zarr-on-s3": lambda: hcsvfs_zarr(server, plate),
            "hcsvfs zarr-on-s3 write_threads=8": lambda: hcsvfs_zarr(server, plate, write_threads=8),
            "hcsvfs objectstore tif": lambda: hcsvfs_objectstore(
                server, plate, Path(tempfile.mkdtemp(prefix="hcsvfs-bench-cache-"))
            ),
        }
        runs = {name: [fn() for _ in range(repeats)] for name, fn in contenders.items()}
    finally:
        server.stop()

    results: list[dict[str, Any]] = []
    peer = "zarr+s3fs"
    peer_w, peer_r = mb / best(runs[peer], "write")["seconds"], mb / best(runs[peer], "read")["seconds"]
    print(f"\n[{setting}]")
    print(f"{'contender':36s} {'write MB/s':>11s} {'read MB/s':>10s} {'req/plate w':>12s} {'req/plate r':>12s} {'w vs zarr':>10s} {'r vs zarr':>10s}")
    for name in runs:
        w, r = best(runs[name], "write"), best(runs[name], "read")
        wm, rm = mb / w["seconds"], mb / r["seconds"]
        print(f"{name:36s} {wm:11.1f} {rm:10.1f} {w['requests']:12.0f} {r['requests']:12.0f} {wm / peer_w:9.2f}x {rm / peer_r:9.2f}x")
        layout = "tif objects" if "tif" in name else "zarr per-plane"
        for phase, value, m, ratio in (("write", wm, w, wm / peer_w), ("read", rm, r, rm / peer_r)):
            entry: dict[str, Any] = {"name": f"{setting}: {name} {phase}", "value": round(value, 2), "unit": "MB/s",
                                     "layout": layout, "codec": "none" if "tif" in name else "lz4"}
            if name != peer:
                entry.update(ratio_to=f"{setting}: {peer} {phase}", ratio=round(ratio, 3))
            results.append(entry)
            results.append({"name": f"{setting}: {name} {phase} requests per plate", "value": float(m["requests"]),
                            "unit": "requests"})

    cold, warm = best(runs["hcsvfs objectstore tif"], "read"), best(runs["hcsvfs objectstore tif"], "warm")
    speedup = cold["seconds"] / warm["seconds"]
    print(f"read cache: cold {mb / cold['seconds']:.1f} MB/s ({cold['requests']:.0f} requests), "
          f"warm {mb / warm['seconds']:.1f} MB/s ({warm['requests']:.0f} requests): {speedup:.1f}x")
    results.append({"name": f"{setting}: objectstore read, warm cache", "value": round(mb / warm["seconds"], 2),
                    "unit": "MB/s", "ratio_to": f"{setting}: hcsvfs objectstore tif read", "ratio": round(speedup, 3)})
    results.append({"name": f"{setting}: objectstore warm-cache requests per plate", "value": float(warm["requests"]),
                    "unit": "requests"})
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a small plate (well under a minute)")
    parser.add_argument("--json", type=Path, help="write the results here (docs/benchmarks.md shape)")
    parser.add_argument("--latency-ms", type=float, default=10.0, help="simulated per-request latency of the second run")
    args = parser.parse_args(argv)
    wells, fields, channels, size, repeats = (2, 2, 2, 256, 1) if args.quick else (4, 2, 3, 512, 2)
    os.environ.update(CREDENTIALS)
    plate = make_plate(wells, fields, channels, size)
    mb = sum(p.nbytes for p in plate.values()) / 1e6
    print(f"plate: {wells} wells x {fields} fields x {channels} channels of {size}x{size} uint16 = {len(plate)} planes, {mb:.1f} MB")
    results = run_setting(0.0, plate, mb, repeats)
    if args.latency_ms > 0:
        results += run_setting(args.latency_ms / 1000, plate, mb, 1)

    notes = [
        "moto S3 in its own process on 127.0.0.1; requests counted from its access log",
        f"second setting: the server sleeps {args.latency_ms:.0f} ms before serving each request (simulated WAN latency)",
        "polystore has no S3/fsspec backend, so it is not measured",
        "a warm-cache read still sends one HEAD per object (the version check that makes stale reads impossible)",
    ]
    if args.json:
        payload = {
            "benchmark": "objectstore",
            "quick": args.quick,
            "params": {"wells": wells, "fields": fields, "channels": channels, "size": size, "dtype": "uint16",
                       "repeats": repeats, "latency_ms": args.latency_ms, "python": platform.python_version()},
            "results": results,
            "notes": notes,
        }
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(payload, indent=1))
        print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
