"""The demo behind ``make demo``: a small synthetic plate through memory and disk."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from .. import Backend, DiskStorageBackend, FileManager, StorageRegistry
from ..backends import MemoryStorageBackend


def synthetic_field(rng: np.random.Generator, shape: tuple[int, int] = (512, 512), cells: int = 40) -> np.ndarray:
    """A fluorescence-like uint16 image: smooth background, Poisson noise, bright round blobs."""
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    img = 200.0 + 50.0 * np.sin(yy / shape[0] * np.pi) * np.cos(xx / shape[1] * np.pi)
    for cy, cx, r in zip(rng.integers(0, shape[0], cells), rng.integers(0, shape[1], cells), rng.integers(6, 14, cells)):
        img += 1500.0 * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2.0 * r * r))
    return rng.poisson(img).astype(np.uint16)


def run_demo(output: Path = Path("demo_output"), wells: tuple[str, ...] = ("A01", "A02", "B01", "B02")) -> None:
    """Save a 4-well plate of TIFFs to disk, stage a processed copy in memory, load both back, summarise."""
    console = Console()
    registry = StorageRegistry()
    registry.register_backend(Backend.MEMORY, MemoryStorageBackend())
    registry.register_backend(Backend.DISK, DiskStorageBackend(output))
    fm = FileManager(registry)
    rng = np.random.default_rng(0)
    names = [f"{w}_s{s}_w{c}.tif" for w in wells for s in (1, 2) for c in (1, 2)]
    start = time.perf_counter()
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("writing plate", total=len(names))
        for name in names:
            fm.save(synthetic_field(rng), f"plate/{name}", Backend.DISK, overwrite=True)
            progress.advance(task)
    written = time.perf_counter() - start
    files = fm.list_files("plate", Backend.DISK, extensions=[".tif"])
    start = time.perf_counter()
    for path in files:
        img = fm.load(path, Backend.DISK)
        fm.save(img > img.mean() + 3 * img.std(), f"masks/{Path(path).stem}", Backend.MEMORY, overwrite=True)
    loaded = time.perf_counter() - start
    masks = fm.list_files("masks", Backend.MEMORY)
    table = Table(title="hcsvfs demo: synthetic 4-well plate")
    table.add_column("what")
    table.add_column("value", justify="right")
    size = sum(fm.stat(p, Backend.DISK).size for p in files)
    table.add_row("TIFFs on disk", f"{len(files)} ({size / 1e6:.1f} MB) under {output}/plate")
    table.add_row("write", f"{written:.2f} s ({size / 1e6 / max(written, 1e-9):.0f} MB/s)")
    table.add_row("load + threshold", f"{loaded:.2f} s")
    table.add_row("masks in memory", str(len(masks)))
    table.add_row("bright pixels in first mask", str(int(fm.load(masks[0], Backend.MEMORY).sum())))
    console.print(table)
