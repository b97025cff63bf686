"""Save/load round trips: every numeric dtype, 0-D to 5-D, on memory and disk, for every format that takes them.

Byte order: ``.npy`` keeps it exactly; TIFF and OME-TIFF load big-endian data
back in native byte order with the same values (documented in docs/core.md).
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from hcsvfs import DiskStorageBackend, MemoryStorageBackend
from hcsvfs.errors import UnsupportedTypeError

NUMERIC_DTYPES = [
    "bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
    "float16", "float32", "float64", "complex64", "complex128",
]  # fmt: skip
OME_DTYPES = [d for d in NUMERIC_DTYPES if d not in ("int64", "uint64", "float16")]
_counter = itertools.count()


def arrays(dtypes: list[str], min_dims: int = 0, max_dims: int = 5, min_side: int = 0) -> st.SearchStrategy[np.ndarray]:
    """Arrays of the given dtypes (either byte order), 0-D..5-D, NaNs and infinities included."""
    dtype = st.sampled_from(dtypes).flatmap(
        lambda d: st.sampled_from([np.dtype(d), np.dtype(d).newbyteorder(">"), np.dtype(d).newbyteorder("<")])
    )
    shape = hnp.array_shapes(min_dims=min_dims, max_dims=max_dims, min_side=min_side, max_side=4)
    return hnp.arrays(dtype, shape)


def same(got: np.ndarray, want: np.ndarray, *, exact_byte_order: bool) -> bool:
    if got.shape != want.shape:
        return False
    if exact_byte_order:
        if got.dtype != want.dtype:
            return False
    elif got.dtype != want.dtype.newbyteorder("=") or not got.dtype.isnative:
        return False
    return bool(np.array_equal(got, want, equal_nan=want.dtype.kind in "fc"))


@pytest.fixture(scope="module")
def disk(tmp_path_factory: pytest.TempPathFactory) -> DiskStorageBackend:
    return DiskStorageBackend(tmp_path_factory.mktemp("roundtrip"))


def fresh(ext: str) -> str:
    return f"rt{next(_counter)}{ext}"


# ---------------------------------------------------------------- memory
@given(arrays(NUMERIC_DTYPES))
def test_memory_returns_the_same_object(a: np.ndarray) -> None:
    mem = MemoryStorageBackend()
    mem.save(a, "x")
    assert mem.load("x") is a
    view = a.T
    mem.save_batch([a, view], ["y", "z"])
    got = mem.load_batch(["y", "z"])
    assert got[0] is a and got[1] is view


# ---------------------------------------------------------------- disk
@given(arrays(NUMERIC_DTYPES))
def test_npy_round_trips_everything_exactly(disk: DiskStorageBackend, a: np.ndarray) -> None:
    for ext in (".npy", ""):  # no extension: chosen by type, found again by its magic bytes
        path = fresh(ext)
        disk.save(a, path)
        assert same(disk.load(path), a, exact_byte_order=True)


@given(arrays(NUMERIC_DTYPES))
def test_tiff_round_trips_images_and_refuses_the_rest(disk: DiskStorageBackend, a: np.ndarray) -> None:
    path = fresh(".tif")
    if a.ndim < 2 or a.size == 0:
        with pytest.raises(UnsupportedTypeError) as info:
            disk.save(a, path)
        assert path in str(info.value) and "npy" in str(info.value)  # names a format that would take it
        assert not disk.exists(path)
        return
    disk.save(a, path)
    assert same(disk.load(path), a, exact_byte_order=False)


@given(arrays(OME_DTYPES, min_dims=2, min_side=1))
def test_ome_tiff_round_trips_shape_including_singleton_axes(disk: DiskStorageBackend, a: np.ndarray) -> None:
    path = fresh(".ome.tif")
    disk.save(a, path)
    assert same(disk.load(path), a, exact_byte_order=False)


@pytest.mark.parametrize("dtype", ["int64", "uint64", "float16"])
def test_ome_tiff_refuses_dtypes_ome_has_no_pixel_type_for(disk: DiskStorageBackend, dtype: str) -> None:
    path = fresh(".ome.tif")
    with pytest.raises(UnsupportedTypeError, match="tiff"):
        disk.save(np.zeros((4, 4), dtype), path)
    assert not disk.exists(path)


def test_ome_tiff_with_explicit_axes(disk: DiskStorageBackend) -> None:
    a = np.arange(1 * 3 * 1 * 8 * 8, dtype=np.uint16).reshape(1, 3, 1, 8, 8)
    path = fresh(".ome.tif")
    disk.save(a, path, axes="TCZYX")
    assert same(disk.load(path), a, exact_byte_order=True)
    with pytest.raises(ValueError, match="axis"):
        disk.save(a, fresh(".ome.tif"), axes="ZYX")


@pytest.mark.parametrize("ext", [".npy", ".tif", ".ome.tif"])
@pytest.mark.parametrize(
    "view",
    [
        lambda a: a[::2, ::-1],  # strided and reversed
        lambda a: a.T,  # Fortran order
        lambda a: a[:, 1:5][::3],
        lambda a: np.broadcast_to(a[:1], a.shape),  # zero strides, read-only
        lambda a: a.astype(">u2"),  # big-endian
        lambda a: a.astype(">u2").T[::2],  # big-endian and non-contiguous
    ],
)
def test_non_contiguous_and_big_endian_views(disk: DiskStorageBackend, ext: str, view) -> None:
    a = view(np.arange(12 * 10, dtype=np.uint16).reshape(12, 10))
    path = fresh(ext)
    disk.save(a, path)
    assert same(disk.load(path), a, exact_byte_order=ext == ".npy")
