"""Memory types: detection, sizes, host conversion and cross-library conversion."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from hcsvfs import arrays as A
from hcsvfs.errors import UnsupportedTypeError


def test_memory_type_and_is_array() -> None:
    assert A.memory_type(np.zeros(3)) == "numpy"
    assert A.memory_type(torch.zeros(3)) == "torch"
    for not_array in ([1, 2], 3, "x", b"x", None, np.float32(1.0)):
        assert A.memory_type(not_array) is None and not A.is_array(not_array)
    assert not A.is_on_device(np.zeros(2)) and not A.is_on_device(torch.zeros(2))


def test_nbytes() -> None:
    assert A.nbytes(np.zeros((4, 5), np.float64)) == 160
    assert A.nbytes(torch.zeros((4, 5), dtype=torch.float16)) == 40
    assert A.nbytes(torch.zeros(10)[::2]) == 20  # the view's elements, not its storage
    assert A.nbytes(b"abc") == 3 and A.nbytes(bytearray(5)) == 5 and A.nbytes(memoryview(b"ab")) == 2
    assert A.nbytes("µm") == 3  # UTF-8 bytes, not characters
    assert A.nbytes({"a": 1}) == 0 and A.nbytes(None) == 0


def test_to_numpy_is_zero_copy_on_the_host() -> None:
    a = np.arange(6)
    assert A.to_numpy(a) is a
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


def test_unsupported_objects_are_refused_with_the_supported_list() -> None:
    with pytest.raises(UnsupportedTypeError) as info:
        A.to_numpy([1, 2, 3])
    assert "builtins.list" in str(info.value) and "numpy, torch, cupy, jax" in str(info.value)
    assert isinstance(info.value, TypeError)
    with pytest.raises(UnsupportedTypeError):
        A.convert("text", "numpy")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="choose one of"):
        A.convert(np.zeros(2), "tensorflow")  # type: ignore[arg-type]


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


def test_cupy_round_trip_on_a_gpu() -> None:
    try:
        import cupy

        cupy.cuda.runtime.getDeviceCount()
    except Exception as exc:  # no cupy, no driver or no device: nothing to test here
        pytest.skip(f"needs CuPy and a CUDA device ({type(exc).__name__}: {exc})")
    host = np.arange(12, dtype=np.float32).reshape(3, 4)
    dev = A.convert(host, "cupy")
    assert A.memory_type(dev) == "cupy" and A.is_on_device(dev)
    assert np.array_equal(A.to_numpy(dev), host) and A.nbytes(dev) == host.nbytes
    t = A.convert(dev, "torch")  # DLPack on a CUDA build of torch, a host copy on a CPU build
    assert t.device.type == ("cuda" if torch.cuda.is_available() else "cpu")
    assert np.array_equal(t.cpu().numpy(), host)
