"""Save/load round trips: every numeric dtype, 0-D to 5-D, on memory and disk, for every format that takes them.

Byte order: ``.npy`` keeps it exactly; TIFF and OME-TIFF load big-endian data
back in native byte order with the same values (documented in docs/core.md).
"""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
import torch
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


# ---------------------------------------------------------------- torch
TORCH_DTYPES = [
    torch.bool, torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64, torch.uint16, torch.uint32,
    torch.uint64, torch.float16, torch.bfloat16, torch.float32, torch.float64, torch.complex64, torch.complex128,
]  # fmt: skip


def tensors() -> st.SearchStrategy[torch.Tensor]:
    """Tensors of every torch dtype, 0-D..5-D, built from random float values (NaNs for float kinds)."""

    def build(values: np.ndarray, dtype: torch.dtype) -> torch.Tensor:
        t = torch.from_numpy(values)
        if dtype == torch.bool:
            return t > 0
        if not (dtype.is_floating_point or dtype.is_complex):
            t = torch.nan_to_num(t, nan=0.0, posinf=0.0, neginf=0.0).clamp(-100, 100)
            if dtype in (torch.uint8, torch.uint16, torch.uint32, torch.uint64):
                t = t.abs()
        return t.to(dtype)

    values = hnp.arrays(np.float64, hnp.array_shapes(min_dims=0, max_dims=5, min_side=0, max_side=4))
    return st.builds(build, values, st.sampled_from(TORCH_DTYPES))


def same_tensor(got: object, want: torch.Tensor) -> bool:
    assert isinstance(got, torch.Tensor)
    if got.dtype != want.dtype or got.shape != want.shape:
        return False
    # uint16/32/64 lack comparison kernels on CPU and NumPy has no bfloat16: compare where both can.
    if want.dtype in (torch.uint16, torch.uint32, torch.uint64):
        return bool(np.array_equal(got.numpy(), want.numpy()))
    a, b = (got.float(), want.float()) if want.dtype == torch.bfloat16 else (got, want)
    if a.is_floating_point() or a.is_complex():
        return bool(torch.allclose(a, b, equal_nan=True, rtol=0, atol=0))  # exact, NaN == NaN
    return bool(torch.equal(a, b))


@given(tensors())
def test_torch_tensors_round_trip_through_pt(disk: DiskStorageBackend, t: torch.Tensor) -> None:
    path = fresh(".pt")
    disk.save(t, path)
    assert same_tensor(disk.load(path), t)


@given(tensors())
def test_torch_tensors_chosen_by_type_stay_tensors(disk: DiskStorageBackend, t: torch.Tensor) -> None:
    path = fresh("")  # no extension: a tensor goes to .pt (kept a tensor), not .npy
    disk.save(t, path)
    assert same_tensor(disk.load(path), t)


def test_torch_non_contiguous_and_state_dict(disk: DiskStorageBackend) -> None:
    base = torch.arange(60, dtype=torch.float32).reshape(6, 10)
    view = base.T[::2]
    path = fresh(".pt")
    disk.save(view, path)
    got = disk.load(path)
    assert torch.equal(got, view)
    state = {"weight": base, "bias": torch.zeros(3, dtype=torch.float16), "steps": [torch.tensor(1), torch.tensor(2)]}
    path = fresh(".pth")
    disk.save(state, path)
    loaded = disk.load(path)
    assert loaded.keys() == state.keys() and torch.equal(loaded["weight"], base)
    assert loaded["bias"].dtype == torch.float16 and [int(x) for x in loaded["steps"]] == [1, 2]


@pytest.mark.parametrize("ext", [".npy", ".tif"])
def test_torch_tensor_to_numpy_formats_loads_as_numpy(disk: DiskStorageBackend, ext: str) -> None:
    t = torch.arange(24, dtype=torch.int32).reshape(4, 6)
    path = fresh(ext)
    disk.save(t, path)
    got = disk.load(path)
    assert isinstance(got, np.ndarray) and got.dtype == np.int32
    assert np.array_equal(got, t.numpy())


def test_bfloat16_widens_losslessly_for_numpy_formats(disk: DiskStorageBackend) -> None:
    t = torch.tensor([[1.5, -2.25], [3.0, 1e30]], dtype=torch.bfloat16)
    path = fresh(".npy")
    disk.save(t, path)
    got = disk.load(path)
    assert got.dtype == np.float32 and np.array_equal(got, t.float().numpy())


def test_memory_keeps_tensors_alive(tmp_path: Path) -> None:
    t = torch.ones(3, requires_grad=True)
    mem = MemoryStorageBackend()
    mem.save(t, "t")
    assert mem.load("t") is t and mem.stat("t").size == 12
