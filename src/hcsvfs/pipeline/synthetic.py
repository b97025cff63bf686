"""Synthetic HCS plates: ImageXpress-named uint16 planes with cell-like blobs, written as TIFFs or made on load
(for the demo, tests and benchmarks)."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import numpy as np

from .. import paths as P
from ..backends.base import StatResult, StorageBackend
from ..errors import PathIsADirectoryError, PathNotADirectoryError, PathNotFoundError, ReadOnlyError
from ..filemanager import FileManager
from ..hcs import well_name

__all__ = ["synthetic_field", "write_synthetic_plate", "plate_wells", "SyntheticPlateBackend"]


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


_BANKS: dict[tuple[Any, ...], list[list[np.ndarray]]] = {}
_BANK_LOCK = threading.Lock()


class SyntheticPlateBackend(StorageBackend):
    """A read-only plate folder that exists nowhere: ImageXpress-named uint16 planes, made when loaded.

    ``<folder>/<plate_name>_<well>_s<field>_w<channel>.tif`` exists for every well, field and channel, so
    :func:`~hcsvfs.pipeline.ingest.scan_plate` and :class:`~hcsvfs.pipeline.Pipeline` read it like a
    microscope's export. A full screening plate (384 wells x 9 fields x 4 channels of 2048^2) is ~116 GB
    that needs no disk: each field is one of ``bank`` synthetic fields (:func:`synthetic_field`), made once
    per process on first use and picked by the well and field, so a load costs a copy, and what a run
    measures is the pipeline, not the generator. Register it through ``StorageConfig(input_backend=
    "synthetic", backends=(("synthetic", functools.partial(SyntheticPlateBackend, ...)),))``: the bank
    belongs to the process, not the instance, so each worker makes it once.
    """

    name = "synthetic"

    def __init__(
        self,
        folder: str = "plate",
        wells: Sequence[str] = tuple(plate_wells(384, columns=24)),
        *,
        fields: int = 9,
        channels: int = 4,
        shape: tuple[int, int] = (2048, 2048),
        cells: int = 480,
        bank: int = 4,
        seed: int = 0,
        plate_name: str = "Plate1",
    ) -> None:
        if bank < 1 or fields < 1 or channels < 1 or not wells:
            raise ValueError(f"a synthetic plate needs wells and bank, fields, channels >= 1; got {len(wells)} wells, "
                             f"bank={bank}, fields={fields}, channels={channels}")
        self.folder = P.normalize(folder)
        self.wells = tuple(wells)
        self.fields, self.channels, self.shape = fields, channels, (int(shape[0]), int(shape[1]))
        self.cells, self.bank, self.seed, self.plate_name = cells, bank, seed, plate_name
        self._names = {
            f"{plate_name}_{well}_s{f}_w{c}.tif": (w * fields + f - 1) % bank
            for w, well in enumerate(self.wells) for f in range(1, fields + 1) for c in range(1, channels + 1)
        }
        self._plane_bytes = int(np.prod(self.shape)) * 2

    @property
    def plate_bytes(self) -> int:
        """Bytes of pixels in the whole plate (uncompressed uint16)."""
        return len(self._names) * self._plane_bytes

    def _bank(self) -> list[list[np.ndarray]]:
        key = (self.seed, self.shape, self.cells, self.channels, self.bank)
        with _BANK_LOCK:  # one bank per process and parameters, however many instances unpickling made
            if key not in _BANKS:
                rng = np.random.default_rng(self.seed)
                _BANKS.clear()  # the bank of one plate at a time: they are tens of MB
                _BANKS[key] = [synthetic_field(rng, self.shape, self.cells, self.channels) for _ in range(self.bank)]
            return _BANKS[key]

    def _locate(self, path: P.PathLike) -> tuple[str, str]:
        p = P.normalize(path)
        parent, _, name = p.rpartition("/")
        return parent or ".", name

    def load(self, path: P.PathLike, **options: Any) -> Any:
        self._check_options("load", options, (), str(path))
        parent, name = self._locate(path)
        if P.normalize(path) in (".", self.folder) or (parent == "." and self.folder.startswith(name + "/")):
            raise PathIsADirectoryError(f"{str(path)!r} is the synthetic plate's folder; load one of its planes",
                                        path=str(path))
        if parent != self.folder or name not in self._names:
            raise PathNotFoundError(f"{str(path)!r} is not a plane of the synthetic plate in {self.folder!r}; "
                                    f"its planes are named like {next(iter(self._names))!r}", path=str(path))
        channel = int(name.rsplit("_w", 1)[1].removesuffix(".tif"))
        return self._bank()[self._names[name]][channel - 1].copy()  # a copy: callers may write into what they load

    def stat(self, path: P.PathLike) -> StatResult:
        p = P.normalize(path)
        parent, name = self._locate(p)
        if p == "." or p == self.folder or self.folder.startswith(p + "/"):
            return StatResult(p, "directory")
        if parent == self.folder and name in self._names:
            return StatResult(p, "file", self._plane_bytes, extra={"dtype": "uint16", "shape": self.shape})
        raise PathNotFoundError(f"{p!r} is not in the synthetic plate (folder {self.folder!r})", path=p)

    def list_dir(self, path: P.PathLike = ".") -> list[str]:
        p = P.normalize(path)
        if p == self.folder:
            return P.natural_sorted(self._names)
        if p == "." or self.folder.startswith(p + "/"):
            inside = self.folder if p == "." else self.folder[len(p) + 1 :]
            return [inside.split("/", 1)[0]]
        if self.stat(p).is_file:
            raise PathNotADirectoryError(f"{p!r} is a plane of the synthetic plate, not a folder", path=p)
        raise AssertionError("unreachable: stat raised for anything else")

    def _read_only(self, path: P.PathLike) -> ReadOnlyError:
        return ReadOnlyError(f"the synthetic plate is generated on load and read-only: nothing can be written at "
                             f"{str(path)!r}; write outputs to another backend", path=str(path))

    def save(self, data: Any, path: P.PathLike, *, overwrite: bool = False, **options: Any) -> None:
        raise self._read_only(path)

    def ensure_directory(self, path: P.PathLike) -> None:
        if not self.exists(path) or not self.is_dir(path):
            raise self._read_only(path)

    def _delete_file(self, path: str) -> None:
        raise self._read_only(path)

    def _delete_empty_dir(self, path: str) -> None:
        raise self._read_only(path)
