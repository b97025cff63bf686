"""The format registry: choice by extension then type, sniffing, the pickle gate, and user formats."""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import pandas as pd
import pytest

import hcsvfs.backends.disk
import hcsvfs.formats
from hcsvfs import DiskStorageBackend
from hcsvfs.errors import UnsafeLoadError, UnsupportedTypeError
from hcsvfs.formats import Format, FormatRegistry, default_formats
from hcsvfs.formats.base import SNIFF_BYTES

README = Path(__file__).resolve().parents[1] / "README.md"


@pytest.fixture
def reg() -> FormatRegistry:
    return default_formats()


@pytest.mark.parametrize(
    ("path", "name"),
    [
        ("a/x.tif", "tiff"),
        ("x.TIFF", "tiff"),
        ("x.ome.tif", "ome-tiff"),
        ("X.OME.TIFF", "ome-tiff"),
        ("x.npy", "npy"),
        ("x.json", "json"),
        ("x.csv", "csv"),
        ("x.txt", "text"),
        ("x.bin", "bytes"),
        ("x.pkl", "pickle"),
    ],
)
def test_by_extension(reg: FormatRegistry, path: str, name: str) -> None:
    fmt = reg.by_extension(path)
    assert fmt is not None and fmt.name == name


@pytest.mark.parametrize(
    ("obj", "name"),
    [
        (np.zeros((2, 2)), "npy"),
        (np.zeros(()), "npy"),
        ("text", "text"),
        ({"a": 1, "b": [1.5, None]}, "json"),
        ([{"well": "A01", "n": 1}], "json"),  # row dicts are JSON unless the path says .csv
        (pd.DataFrame({"a": [1]}), "csv"),
        ({"col": np.arange(3)}, "csv"),
        (b"raw", "bytes"),
    ],
)
def test_chosen_by_type_without_an_extension(reg: FormatRegistry, obj: Any, name: str) -> None:
    assert reg.for_save(obj, "noext").name == name


def test_extension_wins_over_type(reg: FormatRegistry) -> None:
    assert reg.for_save([{"well": "A01"}], "t.csv").name == "csv"
    assert reg.for_save("a string", "s.json").name == "json"
    with pytest.raises(UnsupportedTypeError) as info:
        reg.for_save({"a": 1}, "d.npy")
    message = str(info.value)
    assert "'d.npy'" in message and "builtins.dict" in message and "json (.json)" in message


def test_an_unknown_extension_takes_bytes_only(reg: FormatRegistry) -> None:
    """Never one format under another's name: NPY bytes under .weird (or .h5) would lie about the file."""
    with pytest.raises(UnsupportedTypeError) as info:
        reg.for_save(np.zeros(2), "x.weird")
    assert "'.weird'" in str(info.value) and ".npy" in str(info.value) and isinstance(info.value, TypeError)
    assert reg.for_save(b"PK\x03\x04...", "rois.roi.zip").name == "bytes"
    assert reg.for_load("rois.roi.zip", b"PK\x03\x04\x14\x00").name == "bytes"  # not sniffed as torch
    with pytest.raises(UnsupportedTypeError, match="zarr backend"):
        reg.for_save(np.zeros((2, 2)), "x.zarr")


@pytest.mark.parametrize(
    ("obj", "name"),
    [
        (np.zeros((3, 3), np.uint16), "npy"),
        ({"a": [1, 2]}, "json"),
        ("plain text ✓", "text"),
        (b"\xff\xfe\x00binary", "bytes"),
    ],
)
def test_sniffing_finds_the_format_of_extensionless_files(reg: FormatRegistry, obj: Any, name: str) -> None:
    fmt = reg.for_save(obj, "noext")
    buf = io.BytesIO()
    fmt.dump(obj, buf)
    assert reg.for_load("noext", buf.getvalue()[:SNIFF_BYTES]).name == name


def test_sniffing_recognises_tiff(reg: FormatRegistry) -> None:
    buf = io.BytesIO()
    reg.get("tiff").dump(np.zeros((4, 4), np.uint8), buf)
    assert reg.for_load("noext", buf.getvalue()[:SNIFF_BYTES]).name == "tiff"


def test_text_sniff_accepts_a_character_cut_by_the_head(reg: FormatRegistry) -> None:
    head = "abc✓✓✓".encode()[:8]  # ends inside a multi-byte character
    assert reg.for_load("noext", head).name == "text"


def test_pickle_gate(reg: FormatRegistry) -> None:
    with pytest.raises(UnsafeLoadError, match="allow_pickle=True"):
        reg.for_save({1}, "s.pkl")
    assert reg.for_save({1}, "s.pkl", allow_pickle=True).name == "pickle"
    with pytest.raises(UnsupportedTypeError, match="only pickle takes it"):
        reg.for_save({1}, "noext")
    assert reg.for_save({1}, "noext", allow_pickle=True).name == "pickle"
    with pytest.raises(UnsafeLoadError):
        reg.for_load("s.pkl", b"\x80\x05")
    with pytest.raises(UnsafeLoadError):
        reg.for_load("noext", b"\x80\x05\x95")  # sniffed as pickle: still refused without opt-in
    assert "pickle" not in [f.name for f in reg.accepting(object())]
    assert [f.name for f in reg.accepting(object(), allow_pickle=True)] == ["pickle"]


def test_registration_rules(reg: FormatRegistry) -> None:
    class Tiff2(Format):
        name, extensions = "tiff2", (".TIF",)

        def accepts(self, obj: Any) -> bool:
            return False

        def dump(self, obj: Any, fh: BinaryIO, **options: Any) -> None: ...

        def load(self, fh: BinaryIO, **options: Any) -> Any: ...

    with pytest.raises(ValueError, match=r"\.TIF"):
        reg.register(Tiff2())
    reg.register(Tiff2(), replace=True)
    assert reg.by_extension("x.tif").name == "tiff2"
    with pytest.raises(ValueError, match="registered formats"):
        reg.get("nope")
    with pytest.raises(UnsupportedTypeError, match="give the path a known extension"):
        FormatRegistry().for_load("x", b"??")


# ---------------------------------------------------------------- a user format, as the README shows it
def readme_format_example() -> str:
    text = README.read_text()
    section = text.split("### Adding a format", 1)[1]
    block = re.search(r"```python\n(.*?)```", section, re.S)
    assert block, "README's 'Adding a format' section has no python example"
    return block.group(1)


def test_readme_format_example_works(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fresh = default_formats()  # the example registers into the global registry: give it a private one
    monkeypatch.setattr(hcsvfs.formats, "formats", fresh)
    monkeypatch.setattr(hcsvfs.backends.disk, "default_formats", fresh)
    exec(compile("import PIL.Image, numpy\n" + readme_format_example(), str(README), "exec"), {})
    backend = DiskStorageBackend(tmp_path)
    gray = (np.arange(64 * 48) % 256).astype(np.uint8).reshape(48, 64)
    rgb = np.stack([gray, gray[::-1], 255 - gray], axis=-1)
    backend.save(gray, "gray.pgm")
    backend.save(rgb, "rgb.PPM")
    assert (tmp_path / "gray.pgm").read_bytes()[:2] == b"P5"
    assert np.array_equal(backend.load("gray.pgm"), gray)
    assert np.array_equal(backend.load("rgb.PPM"), rgb)
    assert backend.list_files(".", extensions=["pgm", "ppm"]) == ["gray.pgm", "rgb.PPM"]
    with pytest.raises(UnsupportedTypeError, match="netpbm"):
        backend.save(np.zeros(5, np.uint8), "line.pgm")  # the format's accepts() is honoured


@pytest.mark.parametrize("array", [
    np.arange(12, dtype=">i4").reshape(3, 4),
    np.asfortranarray(np.arange(12.0).reshape(3, 4)),  # header says fortran_order: True
    np.zeros((0, 5), np.uint16),
    np.zeros((), np.float32),
    np.zeros(3, dtype=[("µm", "<f8")]),  # a non-Latin-1 field name: NumPy writes format version 3.0
])
def test_npy_headers_of_every_version_and_order_load_back(reg: FormatRegistry, array: np.ndarray) -> None:
    buf = io.BytesIO()
    np.save(buf, array)
    buf.seek(0)
    got = reg.by_extension("x.npy").load(buf)
    assert got.dtype == array.dtype and got.shape == array.shape and np.array_equal(got, array)
    assert got.flags.writeable
    buf = io.BytesIO(buf.getvalue()[:-4] if array.nbytes else buf.getvalue())
    if array.nbytes and array.dtype.names is None:
        with pytest.raises(ValueError, match="ends after"):
            reg.by_extension("x.npy").load(buf)
