"""Corruption: truncated or damaged files give a CorruptDataError naming the path, never wrong data.

Every file is cut at ~100 points from its first byte to its last; each load
must either raise :class:`CorruptDataError` naming the logical path or return
exactly what was saved (a cut that only loses trailing metadata may still
leave the pixels whole).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from hcsvfs import FileManager
from hcsvfs.backends import DiskStorageBackend
from hcsvfs.errors import CorruptDataError, StorageError
from hcsvfs.registry import StorageRegistry

CUTS = 100
ARRAY = (np.arange(48 * 40, dtype=np.uint32).reshape(48, 40) * 7919 % 65521).astype(np.uint16)


def _same(got: Any, want: Any) -> bool:
    if isinstance(want, np.ndarray):
        g = np.asarray(got)
        return g.shape == want.shape and g.dtype == want.dtype and np.array_equal(g, want)
    if hasattr(want, "equals"):  # a DataFrame
        return bool(want.equals(got))
    if "torch" in type(want).__module__:
        import torch

        return isinstance(got, torch.Tensor) and torch.equal(got, want)
    return bool(got == want)


def _objects() -> dict[str, Any]:
    import pandas as pd

    objects = {
        "img.tif": ARRAY,
        "img.ome.tif": ARRAY[None],
        "arr.npy": ARRAY,
        "m.json": {"well": "A01", "counts": list(range(60))},
        "table.csv": pd.DataFrame({"a": range(40), "b": [f"cell{i}" for i in range(40)]}),
    }
    try:
        import torch
    except ImportError:  # the torch extra is for Python 3.11 only: the .pt case skips with that reason
        return objects
    return {**objects, "t.pt": torch.arange(500, dtype=torch.float32)}


@pytest.mark.parametrize("name", ["arr.npy", "img.ome.tif", "img.tif", "m.json", "t.pt", "table.csv"])
def test_truncated_files_raise_corrupt_data_error_naming_the_path(
    tmp_path: Path, name: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.CRITICAL, logger="tifffile")  # tifffile logs every bad tag it skips
    if name.endswith(".pt"):
        pytest.importorskip("torch", reason="torch is not installed (the torch extra is for Python 3.11 only)")
    obj = _objects()[name]
    disk = DiskStorageBackend(tmp_path / "root")
    disk.ensure_directory("plate/A01")
    disk.save(obj, f"plate/A01/{name}")
    raw = (disk.root / "plate/A01" / name).read_bytes()
    cuts = sorted({len(raw) * i // CUTS for i in range(CUTS)})
    typed = whole = 0
    for cut in cuts:
        (disk.root / "plate/A01" / name).write_bytes(raw[:cut])
        try:
            got = disk.load(f"plate/A01/{name}")
        except CorruptDataError as exc:
            assert f"plate/A01/{name}" in str(exc) and exc.path == f"plate/A01/{name}"
            typed += 1
            continue
        except StorageError:
            typed += 1  # also typed (e.g. an emptied file no format recognises)
            continue
        if name.endswith(".csv"):
            # CSV has no length or checksum: a cut at a line end is a shorter, valid table (documented).
            assert list(got.columns) == list(obj.columns)[: len(got.columns)] and len(got) <= len(obj)
        else:
            assert _same(got, obj), f"cut at {cut}/{len(raw)} bytes returned different data without an error"
        whole += 1
    assert typed + whole == len(cuts)
    if not name.endswith(".csv"):
        assert typed >= len(cuts) * 0.5
    print(f"\n[reliability] truncated {name} at {len(cuts)} points: {typed} typed errors, {whole} still whole")


def test_truncated_file_through_filemanager(tmp_path: Path) -> None:
    disk = DiskStorageBackend(tmp_path / "root")
    reg = StorageRegistry(discover=False)
    reg.register_backend("disk", disk)
    fm = FileManager(reg)
    fm.save(ARRAY, "results/final.tif", "disk")
    target = disk.root / "results/final.tif"
    target.write_bytes(target.read_bytes()[: target.stat().st_size // 2])
    with pytest.raises(CorruptDataError) as info:
        fm.load("results/final.tif", "disk")
    assert "results/final.tif" in str(info.value) and "save it again" in str(info.value)
    assert isinstance(info.value, ValueError)  # callers catching ValueError keep working


@pytest.mark.parametrize("name", ["arr.npy", "img.tif"])
def test_flipped_header_byte_is_an_error_or_detectable(tmp_path: Path, name: str) -> None:
    """Without checksums a flipped *pixel* byte is undetectable; a flipped *header* byte must not crash."""
    disk = DiskStorageBackend(tmp_path / "root")
    disk.save(ARRAY, name)
    path = disk.root / name
    raw = bytearray(path.read_bytes())
    header = 128 if name.endswith(".npy") else 200
    outcomes = {"typed": 0, "loaded": 0}
    for i in range(header):
        damaged = bytearray(raw)
        damaged[i] ^= 0xFF
        path.write_bytes(bytes(damaged))
        try:
            disk.load(name)
            outcomes["loaded"] += 1
        except StorageError as exc:
            assert name in str(exc)
            outcomes["typed"] += 1
    assert outcomes["typed"] > 0


# ---------------------------------------------------------------- zarr chunks with checksums
def test_flipped_bytes_in_zarr_chunks_are_caught_by_checksums(tmp_path: Path) -> None:
    """With ``checksum=True`` every single flipped byte in any chunk or shard file is a CorruptDataError."""
    from hcsvfs.backends.zarr import ZarrStorageBackend
    from hcsvfs.config import ZarrConfig

    rng = np.random.default_rng(8)
    img = rng.integers(0, 4000, size=(3, 64, 64), dtype=np.uint16)
    results: dict[str, int] = {}
    for layout, config in {
        "sharded": ZarrConfig(checksum=True),
        "one-chunk": ZarrConfig(checksum=True, chunks=None),
        "zstd": ZarrConfig(checksum=True, compression="zstd"),
    }.items():
        zb = ZarrStorageBackend(tmp_path / layout, config=config)
        zb.ensure_directory("res")
        zb.save(img, "res/stack")
        chunks = [p for p in (tmp_path / layout / "res.zarr" / "stack").rglob("*") if p.is_file() and p.name != "zarr.json"]
        assert chunks
        flips = 0
        for chunk in chunks:
            raw = chunk.read_bytes()
            for pos in sorted(set(rng.integers(0, len(raw), size=40).tolist())):
                damaged = bytearray(raw)
                damaged[pos] ^= 1 << int(rng.integers(0, 8))
                chunk.write_bytes(bytes(damaged))
                with pytest.raises(CorruptDataError) as info:
                    zb.load("res/stack", materialize=True)
                assert "res/stack" in str(info.value)
                flips += 1
            chunk.write_bytes(raw)
        assert np.array_equal(np.asarray(zb.load("res/stack", materialize=True)), img)  # restored: whole again
        results[layout] = flips
    print(f"\n[reliability] zarr checksums: single-bit flips caught {results}")
