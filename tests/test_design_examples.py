"""DESIGN.md's "user's view" example runs as written (in a temporary working directory)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
import pytest

import hcsvfs
from hcsvfs.registry import create_default_registry

# Verbatim from DESIGN.md, "The user's view (must work as written, with `hcsvfs` as the package)".
USER_VIEW = textwrap.dedent(
    """
    from hcsvfs import FileManager, Backend, storage_registry, ZarrConfig

    fm = FileManager(storage_registry)                              # or FileManager() for a fresh registry
    fm.save(arr, "intermediate/step1_output", Backend.MEMORY)       # live object, zero copy
    fm.save(arr, "results/final_output.tif", Backend.DISK)          # TIFF via tifffile
    fm.save(arr, "results/large_dataset", Backend.ZARR)             # OME-Zarr, LZ4 by default
    fm.save(arr, "data", "memory")                                  # backends by enum or by name
    x = fm.load("results/final_output.tif", Backend.DISK)           # -> numpy.ndarray
    z = fm.load("results/large_dataset", Backend.ZARR)              # -> lazy array view
    """
)
_NEEDS_ZARR = ("ZarrConfig", "Backend.ZARR")


@pytest.fixture
def user_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh working directory and a fresh process-wide registry, as a new user's session would have."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(hcsvfs, "storage_registry", create_default_registry())
    return tmp_path


def a_plate_image() -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.integers(0, 4096, size=(3, 256, 256), dtype=np.uint16)


def check_memory_and_disk(ns: dict, arr: np.ndarray, cwd: Path) -> None:
    fm = ns["fm"]
    assert fm.load("intermediate/step1_output", "memory") is arr
    assert fm.load("data", ns["Backend"].MEMORY) is arr
    x = ns["x"]
    assert isinstance(x, np.ndarray) and x.dtype == arr.dtype and np.array_equal(x, arr)
    assert (cwd / "results" / "final_output.tif").is_file()  # disk is rooted at the working directory


def test_user_view_memory_and_disk_lines(user_cwd: Path) -> None:
    """Every line of the example that does not involve the zarr backend."""
    lines = [line for line in USER_VIEW.splitlines() if not any(word in line for word in _NEEDS_ZARR)]
    code = "from hcsvfs import FileManager, Backend, storage_registry\n" + "\n".join(lines)
    arr = a_plate_image()
    ns: dict = {"arr": arr}
    exec(compile(code, "DESIGN.md user's view", "exec"), ns)
    check_memory_and_disk(ns, arr, user_cwd)


def test_user_view_runs_as_written(user_cwd: Path) -> None:
    arr = a_plate_image()
    ns: dict = {"arr": arr}
    exec(compile(USER_VIEW, "DESIGN.md user's view", "exec"), ns)
    check_memory_and_disk(ns, arr, user_cwd)
    z = ns["z"]
    assert not isinstance(z, np.ndarray)  # a lazy view, not a loaded copy
    assert tuple(z.shape) == arr.shape and np.array_equal(np.asarray(z[:]), arr)
