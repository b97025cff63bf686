"""Memory types: detection, sizes, host conversion and cross-library conversion."""

from __future__ import annotations

import numpy as np
import pytest

from hcsvfs import arrays as A
from hcsvfs.errors import UnsupportedTypeError


def test_memory_type_and_is_array() -> None:
    assert A.memory_type(np.zeros(3)) == "numpy"
    for not_array in ([1, 2], 3, "x", b"x", None, np.float32(1.0)):
        assert A.memory_type(not_array) is None and not A.is_array(not_array)
    assert not A.is_on_device(np.zeros(2))


def test_nbytes() -> None:
    assert A.nbytes(np.zeros((4, 5), np.float64)) == 160
    assert A.nbytes(b"abc") == 3 and A.nbytes(bytearray(5)) == 5 and A.nbytes(memoryview(b"ab")) == 2
    assert A.nbytes("µm") == 3  # UTF-8 bytes, not characters
    assert A.nbytes({"a": 1}) == 0 and A.nbytes(None) == 0


def test_to_numpy_is_zero_copy_on_the_host() -> None:
    a = np.arange(6)
    assert A.to_numpy(a) is a


def test_unsupported_objects_are_refused_with_the_supported_list() -> None:
    with pytest.raises(UnsupportedTypeError) as info:
        A.to_numpy([1, 2, 3])
    assert "builtins.list" in str(info.value) and "numpy, torch, cupy, jax" in str(info.value)
    assert isinstance(info.value, TypeError)
    with pytest.raises(UnsupportedTypeError):
        A.convert("text", "numpy")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="choose one of"):
        A.convert(np.zeros(2), "tensorflow")  # type: ignore[arg-type]


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
    torch = pytest.importorskip("torch", reason="torch is not installed (the torch extra is for Python 3.11 only)")
    t = A.convert(dev, "torch")  # DLPack on a CUDA build of torch, a host copy on a CPU build
    assert t.device.type == ("cuda" if torch.cuda.is_available() else "cpu")
    assert np.array_equal(t.cpu().numpy(), host)
