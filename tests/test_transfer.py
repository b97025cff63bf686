"""Every backend copies to every other: FileManager.transfer over each (source, destination) pair.

The contract of ``load`` that makes this work: memory gives back the saved
object, disk and object stores the decoded object, shared memory a read-only
NumPy view, zarr a lazy ZarrArrayView; all of them are arrays to every format.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest

from backends_under_test import BACKENDS
from hcsvfs import FileManager
from hcsvfs.registry import StorageRegistry

NAMES = ["t/a.npy", "t/b.tif", "t/sub/c"]


@pytest.mark.parametrize(("src", "dst"), list(itertools.product(sorted(BACKENDS), repeat=2)))
def test_transfer_between_every_pair_of_backends(tmp_path: Path, request: pytest.FixtureRequest, src: str, dst: str) -> None:
    registry = StorageRegistry()
    registry.register_backend("src", BACKENDS[src](tmp_path / "s", request))
    registry.register_backend("dst", BACKENDS[dst](tmp_path / "d", request))
    fm = FileManager(registry)
    data = {n: np.arange(48, dtype=np.uint16).reshape(6, 8) * (i + 1) for i, n in enumerate(NAMES)}
    for name, arr in data.items():
        fm.save(arr, name, "src")
    written = fm.transfer("t", "src", "u", "dst")
    assert sorted(written) == sorted(n.replace("t/", "u/", 1) for n in NAMES)
    for name, arr in data.items():
        got = np.asarray(fm.load(name.replace("t/", "u/", 1), "dst"))
        assert got.dtype == arr.dtype and np.array_equal(got, arr), (src, dst, name)
    assert np.array_equal(np.asarray(fm.load("t/a.npy", "src")), data["t/a.npy"])  # the source is untouched
