"""Each error says what actually happened: damaged metadata is not "absent", a stray RuntimeError is not
"corrupt data", a bug is not "check the endpoint", and disk and S3 name a damaged file the same way."""

from __future__ import annotations

import errno
import logging
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from backends_under_test import BACKENDS
from hcsvfs.backends.zarr import ZarrStorageBackend
from hcsvfs.backends.zarr.integrity import decode_errors
from hcsvfs.errors import CorruptDataError, StorageError

ARR = np.arange(20, dtype=np.uint16).reshape(4, 5)


@pytest.mark.parametrize("damage", [b"{not json", b"[1, 2]", b""])
def test_damaged_zarr_metadata_is_corrupt_not_absent(tmp_path: Path, damage: bytes) -> None:
    zb = ZarrStorageBackend(tmp_path)
    zb.ensure_directory("d")
    zb.save(ARR, "d/img")
    (tmp_path / "d.zarr" / "img" / "zarr.json").write_bytes(damage)
    with pytest.raises(CorruptDataError) as info:
        zb.load("d/img")
    assert "d.zarr/img/zarr.json" in str(info.value) and "damaged" in str(info.value)
    assert zb.exists("d/img")  # something is there, and it is damaged
    assert zb.list_dir("d") == ["img"]  # still listed, so it can be found and deleted
    assert "damaged" in zb.stat("d/img").extra
    with pytest.raises(FileExistsError):
        zb.save(ARR, "d/img")  # never written over as if it were absent
    assert (tmp_path / "d.zarr" / "img" / "zarr.json").read_bytes() == damage
    zb.save(ARR + 1, "d/img", overwrite=True)  # replaced on purpose
    assert np.array_equal(zb.load("d/img", materialize=True), ARR + 1)
    (tmp_path / "d.zarr" / "img" / "zarr.json").write_bytes(damage)
    zb.delete("d/img")  # or deleted
    assert zb.list_dir("d") == []


def test_only_decode_failures_are_corrupt_data() -> None:
    for text in ("error during blosc decompression: -1", "Stored and computed checksum do not match"):
        with pytest.raises(CorruptDataError, match="Restore"):
            with decode_errors("p/img"):
                raise (RuntimeError if "blosc" in text else ValueError)(text)
    with pytest.raises(RuntimeError, match="cannot schedule new futures") as info:
        with decode_errors("p/img"):
            raise RuntimeError("cannot schedule new futures after interpreter shutdown")
    assert not isinstance(info.value, CorruptDataError)
    with pytest.raises(ValueError, match="step must be") as info2:
        with decode_errors("p/img"):
            raise ValueError("step must be positive")
    assert not isinstance(info2.value, CorruptDataError)


@pytest.mark.parametrize("backend_name", ["disk", "objectstore"])
def test_a_damaged_file_is_the_same_error_on_disk_and_s3(tmp_path: Path, request: pytest.FixtureRequest, backend_name: str) -> None:
    b = BACKENDS[backend_name](tmp_path, request)
    good = BACKENDS["disk"](tmp_path / "ref", request)
    good.save(ARR, "a.npy")
    damaged = (good.root / "a.npy").read_bytes()[:-7]  # truncated
    b.save(damaged, "a.bin")
    b.move("a.bin", "a.npy")
    with pytest.raises(CorruptDataError) as info:
        b.load("a.npy")
    assert "'a.npy' could not be read as npy" in str(info.value) and "truncated or corrupt" in str(info.value)
    assert isinstance(info.value, ValueError)


@pytest.mark.s3
def test_object_store_errors_say_what_happened(tmp_path: Path, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    from hcsvfs.backends.objectstore import ObjectStoreError

    b = BACKENDS["objectstore"](tmp_path, request)
    b.save(ARR, "a.npy")

    def answer(*_a: Any, **_k: Any) -> bytes:
        raise OSError(errno.EIO, "We encountered an internal error. Please try again.")

    monkeypatch.setattr(b.fs, "cat_file", answer)
    with pytest.raises(ObjectStoreError) as info:
        b.load("a.npy")
    assert "the store answered" in str(info.value) and "internal error" in str(info.value)
    assert "reachable" not in str(info.value)

    def bug(*_a: Any, **_k: Any) -> bytes:
        raise KeyError("ETag")  # a bug (ours or a library's), not a storage failure

    monkeypatch.setattr(b.fs, "cat_file", bug)
    with pytest.raises(KeyError) as info2:
        b.load("a.npy")
    assert not isinstance(info2.value, StorageError)


def test_a_failed_cleanup_after_a_well_is_logged(tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    from hcsvfs import FileManager
    from hcsvfs.pipeline import FunctionStep, Pipeline, StorageConfig
    from hcsvfs.pipeline.context import ProcessingContext
    from hcsvfs.pipeline.synthetic import plate_wells, write_synthetic_plate

    write_synthetic_plate(FileManager(), str(tmp_path / "in"), plate_wells(1), fields=1, channels=1, shape=(32, 32), cells=3)

    def fail(self: ProcessingContext) -> None:
        raise OSError(errno.EIO, "disk went away")

    monkeypatch.setattr(ProcessingContext, "free_intermediates", fail)
    with caplog.at_level(logging.WARNING, logger="hcsvfs.pipeline.pipeline"):
        report = Pipeline([FunctionStep(func="gaussian_filter", sigma=1.0)]).run(
            str(tmp_path / "in"), str(tmp_path / "out.zarr"), storage=StorageConfig(output_backend="disk")
        )
    assert report.ok
    assert any("freeing its intermediates" in r.getMessage() and r.exc_info for r in caplog.records)
