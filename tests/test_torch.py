"""torch interop: tensors as memory types, the .pt format, and tensors saved into NumPy formats.

The torch extra is a local CPU wheel for Python 3.11 only (pyproject.toml), so on newer Pythons this module
is skipped as a whole, with that reason; every other test runs there.
"""

from __future__ import annotations

import io
import itertools
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from hcsvfs import DiskStorageBackend, MemoryStorageBackend
from hcsvfs import arrays as A
from hcsvfs.formats import FormatRegistry, default_formats
from hcsvfs.formats.base import SNIFF_BYTES

torch = pytest.importorskip("torch", reason="torch is not installed (the torch extra is for Python 3.11 only)")

_counter = itertools.count()


@pytest.fixture(scope="module")
def disk(tmp_path_factory: pytest.TempPathFactory) -> DiskStorageBackend:
    return DiskStorageBackend(tmp_path_factory.mktemp("torch"))


@pytest.fixture
def reg() -> FormatRegistry:
    return default_formats()


def fresh(ext: str) -> str:
    return f"t{next(_counter)}{ext}"


# ---------------------------------------------------------------- memory types (hcsvfs.arrays)
def test_tensors_are_arrays_with_their_view_size() -> None:
    assert A.memory_type(torch.zeros(3)) == "torch" and not A.is_on_device(torch.zeros(2))
    assert A.nbytes(torch.zeros((4, 5), dtype=torch.float16)) == 40
    assert A.nbytes(torch.zeros(10)[::2]) == 20  # the view's elements, not its storage


def test_to_numpy_is_zero_copy_for_host_tensors() -> None:
    t = torch.arange(6, dtype=torch.float32)
    view = A.to_numpy(t)
    view[0] = 42
    assert t[0].item() == 42  # shares memory with the tensor


def test_to_numpy_handles_grad_conj_and_bfloat16() -> None:
    with_grad = torch.ones(3, requires_grad=True)
    assert np.array_equal(A.to_numpy(with_grad), np.ones(3, np.float32))
    z = torch.tensor([1 + 2j, 3 - 1j]).conj()
    assert np.array_equal(A.to_numpy(z), np.array([1 - 2j, 3 + 1j], np.complex64))
    bf = torch.tensor([1.5, -2.0], dtype=torch.bfloat16)
    out = A.to_numpy(bf)
    assert out.dtype == np.float32 and np.array_equal(out, [1.5, -2.0])


def test_convert_numpy_to_torch_shares_memory_and_fixes_byte_order() -> None:
    a = np.arange(6, dtype=np.int32)
    t = A.convert(a, "torch")
    assert isinstance(t, torch.Tensor) and t.data_ptr() == a.ctypes.data
    assert A.convert(t, "torch") is t and A.convert(a, "numpy") is a
    big = np.arange(6, dtype=">u2")
    tb = A.convert(big, "torch")
    assert tb.dtype == torch.uint16 and np.array_equal(tb.numpy(), big)
    frozen = np.arange(4.0)
    frozen.flags.writeable = False
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # torch warns on read-only buffers; convert must copy instead
        tf = A.convert(frozen, "torch")
    tf[0] = 9
    assert frozen[0] == 0
    assert A.convert(a, "torch", device="cpu").device.type == "cpu"


_TORCHABLE = ["bool", "uint8", "int8", "int16", "int32", "int64", "uint16", "uint32", "uint64",
              "float16", "float32", "float64", "complex64", "complex128"]  # fmt: skip


@given(
    hnp.arrays(
        st.sampled_from(_TORCHABLE).flatmap(lambda d: st.sampled_from([np.dtype(d), np.dtype(d).newbyteorder(">")])),
        hnp.array_shapes(min_dims=0, max_dims=5, min_side=0, max_side=4),
    )
)
def test_numpy_torch_numpy_round_trip(a: np.ndarray) -> None:
    back = A.convert(A.convert(a, "torch"), "numpy")
    assert back.shape == a.shape and back.dtype == a.dtype.newbyteorder("=")
    assert np.array_equal(back, a, equal_nan=a.dtype.kind in "fc")


# ---------------------------------------------------------------- the format registry
@pytest.mark.parametrize("path", ["x.pt", "x.pth"])
def test_pt_extensions_are_torch(reg: FormatRegistry, path: str) -> None:
    fmt = reg.by_extension(path)
    assert fmt is not None and fmt.name == "torch"


def test_tensors_and_tensor_dicts_are_chosen_by_type(reg: FormatRegistry) -> None:
    assert reg.for_save(torch.zeros(2), "noext").name == "torch"
    assert reg.for_save({"w": torch.zeros(2)}, "noext").name == "torch"
    assert reg.for_save(torch.zeros((2, 2)), "t.tif").name == "tiff"  # the extension wins over the type


def test_sniffing_finds_pt_files_without_an_extension(reg: FormatRegistry) -> None:
    obj = torch.ones(2)
    fmt = reg.for_save(obj, "noext")
    buf = io.BytesIO()
    fmt.dump(obj, buf)
    assert reg.for_load("noext", buf.getvalue()[:SNIFF_BYTES]).name == "torch"


# ---------------------------------------------------------------- round trips on disk and memory
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
