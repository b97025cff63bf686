"""Every backend and format declares its keyword options; an unknown one is a clear error, never ignored."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from hcsvfs import Backend, FileManager
from hcsvfs.backends import StorageBackend
from hcsvfs.errors import StorageError, UnknownOptionError

ARR = np.arange(12, dtype=np.uint16).reshape(3, 4)


def test_a_misspelt_save_option_is_refused_and_nothing_is_written(backend: StorageBackend) -> None:
    with pytest.raises(UnknownOptionError) as info:
        backend.save(ARR, "x.npy", overwirte=True)
    msg = str(info.value)
    assert "'overwirte'" in msg and "did you mean 'overwrite'" in msg and "x.npy" in msg
    assert isinstance(info.value, TypeError) and isinstance(info.value, StorageError)
    assert not backend.exists("x.npy")


def test_a_misspelt_load_option_is_refused(backend: StorageBackend) -> None:
    backend.save(ARR, "x.npy")
    with pytest.raises(UnknownOptionError) as info:
        backend.load("x.npy", materialise=True)
    assert "'materialise'" in str(info.value)
    with pytest.raises(UnknownOptionError):
        backend.load_batch(["x.npy"], materialise=True)


def test_zarr_suggests_the_option_it_takes(tmp_path: Path) -> None:
    fm = FileManager()
    fm.save(ARR, tmp_path / "img", Backend.ZARR)
    with pytest.raises(UnknownOptionError, match="did you mean 'materialize'"):
        fm.load(tmp_path / "img", Backend.ZARR, materialise=True)
    assert isinstance(fm.load(tmp_path / "img", Backend.ZARR, materialize=True), np.ndarray)
    with pytest.raises(UnknownOptionError, match="'images_dir'"):
        fm.save(ARR, tmp_path / "img2", Backend.ZARR, images_dir="x")  # was silently ignored


def test_tiff_options_are_tifffiles_and_nothing_else(tmp_path: Path) -> None:
    fm = FileManager()
    with pytest.raises(UnknownOptionError) as info:
        fm.save(ARR, tmp_path / "a.tif", Backend.DISK, images_dir="x")  # was a raw TypeError from tifffile
    assert "compression" in str(info.value) and "allow_pickle" in str(info.value)
    assert not (tmp_path / "a.tif").exists()
    fm.save(ARR, tmp_path / "a.tif", Backend.DISK, compression="zlib")  # a real tifffile option
    assert np.array_equal(fm.load(tmp_path / "a.tif", Backend.DISK, key=0), ARR)
    with pytest.raises(UnknownOptionError, match="'keys'.*did you mean 'key'"):
        fm.load(tmp_path / "a.tif", Backend.DISK, keys=0)


def test_a_format_without_options_takes_none(tmp_path: Path) -> None:
    fm = FileManager()
    with pytest.raises(UnknownOptionError, match="the options it takes: allow_pickle, overwrite"):
        fm.save(ARR, tmp_path / "a.npy", Backend.DISK, compression="zlib")


def test_the_overlay_checks_options_on_save_not_when_it_spills(tmp_path: Path) -> None:
    from hcsvfs.backends import DiskStorageBackend
    from hcsvfs.tiering import MemoryOverlay

    with MemoryOverlay(DiskStorageBackend(tmp_path), budget="1MiB") as overlay:
        with pytest.raises(UnknownOptionError, match="'compresion'.*did you mean 'compression'"):
            overlay.save(ARR, "a.tif", compresion="zlib")
        overlay.save(ARR, "b.tif", compression="zlib")
        overlay.materialize("b.tif")
        assert np.array_equal(DiskStorageBackend(tmp_path).load("b.tif"), ARR)
