"""Synthetic HCS plates: ImageXpress-named uint16 TIFFs with cell-like blobs (for the demo, tests and benchmarks)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .. import paths as P
from ..filemanager import FileManager
from ..hcs import well_name

__all__ = ["synthetic_field", "write_synthetic_plate", "plate_wells"]


def plate_wells(count: int, columns: int = 12) -> list[str]:
    """The first ``count`` wells of a plate in row-major order: A01, A02, ..."""
    return [well_name(i // columns, i % columns) for i in range(count)]


def synthetic_field(
    rng: np.random.Generator, shape: tuple[int, int] = (512, 512), cells: int = 60, channels: int = 3
) -> list[np.ndarray]:
    """One field's channels: nuclei (w1), a wider cytoplasm around them (w2), a dim diffuse stain (w3...)."""
    from scipy import ndimage

    seeds = np.zeros(shape, np.float32)
    ys, xs = rng.integers(8, shape[0] - 8, cells), rng.integers(8, shape[1] - 8, cells)
    seeds[ys, xs] = 1.0
    nuclei = ndimage.gaussian_filter(seeds, 4.0) * (2 * np.pi * 16.0) * 1800.0
    out = []
    for c in range(channels):
        signal = nuclei if c == 0 else ndimage.gaussian_filter(seeds, 8.0 + 2 * c) * (2 * np.pi * 64.0) * (900.0 / c)
        background = 150.0 + 20.0 * c
        out.append(rng.poisson(signal + background).astype(np.uint16))
    return out


def write_synthetic_plate(
    fm: FileManager,
    folder: str,
    wells: Sequence[str],
    *,
    fields: int = 2,
    channels: int = 3,
    shape: tuple[int, int] = (512, 512),
    cells: int = 60,
    seed: int = 0,
    backend: str = "disk",
    plate_name: str = "Plate1",
) -> list[str]:
    """Write ``<folder>/<plate>_<well>_s<f>_w<c>.tif`` for every well, field and channel; returns the paths."""
    rng = np.random.default_rng(seed)
    paths = []
    for well in wells:
        for field in range(1, fields + 1):
            for c, image in enumerate(synthetic_field(rng, shape, cells, channels), start=1):
                path = P.join(folder, f"{plate_name}_{well}_s{field}_w{c}.tif")
                fm.save(image, path, backend, overwrite=True)
                paths.append(path)
    return paths
