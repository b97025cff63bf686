"""The image-function registry: built-ins match scipy/skimage, user functions keep their memory type."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage
from skimage.filters import threshold_otsu

from hcsvfs.errors import StorageError
from hcsvfs.pipeline import UnknownFunctionError, function_names, get_function, gpu_available, register_function


def test_builtins_are_the_scipy_and_skimage_functions() -> None:
    img = np.random.default_rng(0).random((32, 32))
    assert np.array_equal(get_function("gaussian_filter")(img, sigma=2), ndimage.gaussian_filter(img, sigma=2))
    assert np.array_equal(get_function("threshold_otsu")(img), img > threshold_otsu(img))
    mask = img > 0.5
    labels = get_function("label")(mask)
    assert labels.dtype == np.int32 and np.array_equal(labels, ndimage.label(mask)[0])
    stack = np.stack([img, img * 2])
    assert np.array_equal(get_function("max_projection")(stack), img * 2)
    assert get_function("max_projection")(img) is img


def test_unknown_name_lists_close_matches() -> None:
    with pytest.raises(UnknownFunctionError) as info:
        get_function("gausian_filter")
    assert "'gaussian_filter'" in str(info.value) and "register_function" in str(info.value)
    assert isinstance(info.value, StorageError) and isinstance(info.value, LookupError)


def test_unknown_name_without_close_match_lists_everything() -> None:
    with pytest.raises(UnknownFunctionError, match="registered: .*binary_opening"):
        get_function("zzzz")


def test_user_functions_register_with_their_memory_type() -> None:
    torch = pytest.importorskip("torch")

    @register_function("test_double_torch", memory_type="torch")
    def double(t):
        return t * 2

    fn = get_function("test_double_torch")
    assert fn.memory_type == "torch" and fn.func is double
    assert "test_double_torch" in function_names()
    assert torch.equal(fn(torch.ones(2)), torch.full((2,), 2.0))
    with pytest.raises(ValueError, match="already registered"):
        register_function("test_double_torch", double, memory_type="torch")
    with pytest.raises(ValueError, match="memory type"):
        register_function("x", double, memory_type="tensorflow")  # type: ignore[arg-type]


def test_prefer_picks_the_requested_memory_type() -> None:
    register_function("test_twin", lambda x: "numpy", replace=True)
    register_function("test_twin", lambda x: "torch", memory_type="torch", replace=True)
    assert get_function("test_twin")(None) == "numpy"
    assert get_function("test_twin", prefer="torch")(None) == "torch"


def test_cupy_twins_run_on_a_gpu() -> None:
    if not gpu_available():
        pytest.skip("no CUDA device with CuPy here; the GPU twins are registered only where one exists")
    import cupy

    fn = get_function("gaussian_filter")
    assert fn.memory_type == "cupy"
    img = np.random.default_rng(1).random((64, 64)).astype(np.float32)
    got = cupy.asnumpy(fn(cupy.asarray(img), sigma=2))
    assert np.allclose(got, ndimage.gaussian_filter(img, sigma=2), atol=1e-4)
