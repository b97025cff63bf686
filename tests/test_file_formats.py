"""What lands in a file is what its name says: real PNG/JPEG/BMP/GIF/NPZ encodings, text payloads verbatim,
raw bytes under extensions no format claims, and a clear refusal instead of one format under another's name.

Run on every backend that stores files in formats (disk and S3).
"""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from backends_under_test import BACKENDS
from hcsvfs.backends import StorageBackend
from hcsvfs.errors import StorageError, UnsupportedTypeError

FILE_BACKENDS = ["disk", "objectstore"]
RNG = np.random.default_rng(3)
GREY = RNG.integers(0, 255, (24, 32), dtype=np.uint8)
SMOOTH = (np.add.outer(np.arange(24), np.arange(32)) * 4).astype(np.uint8)  # JPEG keeps a smooth picture close


@pytest.fixture(params=FILE_BACKENDS)
def files(request: pytest.FixtureRequest, tmp_path: Path) -> StorageBackend:
    return BACKENDS[request.param](tmp_path, request)


def raw_bytes(b: StorageBackend, path: str) -> bytes:
    """The stored bytes of ``path``, read past every format (a copy under an extension no format claims)."""
    b.copy(path, path + ".raw-copy")
    data = b.load(path + ".raw-copy")
    b.delete(path + ".raw-copy")
    return data


@pytest.mark.parametrize(
    ("name", "data", "magic"),
    [
        ("a.png", RNG.integers(0, 65535, (24, 32), dtype=np.uint16), b"\x89PNG\r\n\x1a\n"),
        ("rgb.png", RNG.integers(0, 255, (24, 32, 3), dtype=np.uint8), b"\x89PNG\r\n\x1a\n"),
        ("rgba.PNG", RNG.integers(0, 255, (24, 32, 4), dtype=np.uint8), b"\x89PNG\r\n\x1a\n"),
        ("mask.png", RNG.integers(0, 2, (24, 32)).astype(bool), b"\x89PNG\r\n\x1a\n"),
        ("a.bmp", GREY, b"BM"),
        ("a.gif", GREY, b"GIF8"),
        ("one.npz", RNG.random((3, 4)), b"PK\x03\x04"),
    ],
)
def test_image_and_archive_files_are_really_encoded(files: StorageBackend, name: str, data: np.ndarray, magic: bytes) -> None:
    files.save(data, name)
    assert raw_bytes(files, name).startswith(magic)
    got = files.load(name)
    assert got.dtype == data.dtype and np.array_equal(got, data)


def test_jpeg_is_real_and_close(files: StorageBackend) -> None:
    files.save(SMOOTH, "a.jpg", quality=95)
    assert raw_bytes(files, "a.jpg").startswith(b"\xff\xd8\xff")
    got = files.load("a.jpg")
    assert got.shape == SMOOTH.shape and np.abs(got.astype(int) - SMOOTH).mean() < 2  # lossy by design


def test_npz_keeps_a_dict_of_arrays(files: StorageBackend) -> None:
    arrays = {"labels": RNG.integers(0, 9, (5, 5), dtype=np.int32), "mask": np.ones(3, bool)}
    files.save(arrays, "seg.npz", compressed=True)
    got = files.load("seg.npz")
    assert sorted(got) == ["labels", "mask"] and all(np.array_equal(got[k], arrays[k]) for k in arrays)


@pytest.mark.parametrize(
    ("name", "data", "takes"),
    [
        ("f.png", np.zeros((4, 4), np.float32), "png"),  # PNG holds no float
        ("f.gif", np.zeros((4, 4, 3), np.uint8), "gif"),  # our GIF is greyscale only
        ("f.jpg", np.zeros((4, 4), np.uint16), "jpeg"),
        ("f.h5", np.zeros((4, 4)), "'.h5'"),  # no format claims .h5: NPY bytes there would lie
        ("f.zarr", np.zeros((4, 4)), "zarr backend"),
        ("notes.weird", "some text", "'.weird'"),
    ],
)
def test_objects_a_named_format_cannot_hold_are_refused_and_nothing_is_written(
    files: StorageBackend, name: str, data: Any, takes: str
) -> None:
    with pytest.raises(UnsupportedTypeError) as info:
        files.save(data, name)
    assert takes in str(info.value) and name in str(info.value)
    assert isinstance(info.value, TypeError) and isinstance(info.value, StorageError)
    assert not files.exists(name)


def test_a_json_document_given_as_text_is_written_verbatim(files: StorageBackend) -> None:
    doc = '{"well": "A01", "cells": 812}'
    files.save(doc, "a.json")
    assert files.load("a.json") == {"well": "A01", "cells": 812}  # not the string, JSON-encoded again
    assert raw_bytes(files, "a.json") == doc.encode()
    files.save(json.dumps([1, 2]).encode(), "b.json")  # bytes too
    assert files.load("b.json") == [1, 2]
    with pytest.raises(UnsupportedTypeError, match="not a JSON document"):
        files.save("hello", "c.json")
    assert not files.exists("c.json")


def test_csv_text_from_pandas_is_written_verbatim(files: StorageBackend) -> None:
    frame = pd.DataFrame({"well": ["A01", "A02"], "cells": [812, 790]})
    text = frame.to_csv(index=False)
    files.save(text, "m.csv")
    assert raw_bytes(files, "m.csv") == text.encode()
    pd.testing.assert_frame_equal(files.load("m.csv"), frame)
    files.save(frame, "n.csv", sep=";")  # pandas' own options reach to_csv
    assert raw_bytes(files, "n.csv").splitlines()[0] == b"well;cells"
    pd.testing.assert_frame_equal(files.load("n.csv", sep=";"), frame)


@pytest.mark.parametrize("name", ["rois.zip", "cells.roi.zip", "blob.weird", "a.tar.gz"])
def test_bytes_under_an_unknown_extension_load_back_as_the_same_bytes(files: StorageBackend, name: str) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("0001-0002.roi", b"Iout\x00\xe3")
    files.save(buf.getvalue(), name)
    assert files.load(name) == buf.getvalue()  # never sniffed as torch (a zip) or text


@pytest.mark.parametrize("name", ["config.yaml", "page.html", "notes.md", "run.log"])
def test_text_formats_round_trip_text(files: StorageBackend, name: str) -> None:
    files.save("key: value ✓\n", name)
    assert files.load(name) == "key: value ✓\n"
