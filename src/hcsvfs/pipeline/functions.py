"""Named image functions for steps: scipy.ndimage / scikit-image on the host, CuPy equivalents on a GPU.

Each entry records the memory type its function takes (numpy, torch, cupy),
so a step converts its input only when the type differs. ``register_function``
adds user functions; a name that is not registered raises an error listing the
closest names.
"""

from __future__ import annotations

import difflib
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..arrays import MEMORY_TYPES, MemoryType
from .errors import UnknownFunctionError

__all__ = ["ImageFunction", "register_function", "get_function", "function_names", "gpu_available"]


@dataclass(frozen=True)
class ImageFunction:
    """A registered function and the memory type of the arrays it takes and returns."""

    name: str
    func: Callable[..., Any]
    memory_type: MemoryType = "numpy"

    def __call__(self, image: Any, **params: Any) -> Any:
        return self.func(image, **params)


_REGISTRY: dict[tuple[str, str], ImageFunction] = {}
_LOCK = threading.Lock()
_GPU: bool | None = None


def register_function(
    name: str, func: Callable[..., Any] | None = None, *, memory_type: MemoryType = "numpy", replace: bool = False
) -> Any:
    """Register ``func`` under ``name`` for ``memory_type``; usable as ``@register_function("name")``."""
    if memory_type not in MEMORY_TYPES:
        raise ValueError(f"unknown memory type {memory_type!r} for function {name!r}; choose one of {MEMORY_TYPES}")

    def add(f: Callable[..., Any]) -> Callable[..., Any]:
        key = (name, memory_type)
        with _LOCK:
            if key in _REGISTRY and not replace:
                raise ValueError(
                    f"a {memory_type} function named {name!r} is already registered; pass replace=True to replace it"
                )
            _REGISTRY[key] = ImageFunction(name, f, memory_type)
        return f

    return add if func is None else add(func)


def gpu_available() -> bool:
    """True when CuPy imports and sees a CUDA device (checked once)."""
    global _GPU
    if _GPU is None:
        try:
            import cupy

            _GPU = cupy.cuda.runtime.getDeviceCount() > 0
        except Exception:  # no cupy, no driver, no device: all mean "host only"
            _GPU = False
        if _GPU:
            _register_cupy()
    return _GPU


def get_function(name: str, *, prefer: MemoryType | None = None) -> ImageFunction:
    """The function registered as ``name``: the ``prefer`` memory type if present, else CuPy on a GPU, else NumPy."""
    order = [prefer] if prefer else []
    order += ["cupy"] if gpu_available() else []
    order += ["numpy", "torch", "cupy", "jax"]
    with _LOCK:
        for kind in order:
            found = _REGISTRY.get((name, kind))
            if found is not None:
                return found
        names = sorted({n for n, _ in _REGISTRY})
    close = difflib.get_close_matches(name, names, n=5, cutoff=0.5)
    hint = f"did you mean {', '.join(repr(c) for c in close)}?" if close else f"registered: {', '.join(names)}"
    raise UnknownFunctionError(
        f"no image function named {name!r}; {hint} (add your own with hcsvfs.pipeline.register_function)"
    )


def function_names() -> list[str]:
    """Every registered function name, sorted."""
    with _LOCK:
        return sorted({n for n, _ in _REGISTRY})


# ---------------------------------------------------------------------- built-ins (host)
def _label(image: Any, structure: Any = None) -> np.ndarray:
    """Connected components of a mask as int32 labels (scipy.ndimage.label without the count)."""
    from scipy import ndimage

    labels, _ = ndimage.label(image, structure=structure)
    return labels.astype(np.int32, copy=False)


def _threshold_otsu(image: Any, nbins: int = 256) -> np.ndarray:
    """The mask of pixels above Otsu's threshold."""
    from skimage.filters import threshold_otsu

    return image > threshold_otsu(image, nbins=nbins)


def _max_projection(image: Any, axis: int = 0) -> Any:
    """Maximum along ``axis`` (z for a stack); a 2-D image is returned as is."""
    return image if image.ndim < 3 else image.max(axis=axis)


def _remove_small_objects(image: Any, min_size: int = 64) -> np.ndarray:
    """Drop labelled or masked objects smaller than ``min_size`` pixels."""
    from skimage.morphology import remove_small_objects

    return remove_small_objects(image, min_size=min_size)


def _ndimage(attr: str) -> Callable[..., Any]:
    def call(image: Any, **params: Any) -> Any:
        from scipy import ndimage

        return getattr(ndimage, attr)(image, **params)

    call.__name__ = attr
    call.__doc__ = f"scipy.ndimage.{attr}"
    return call


for _name in ("gaussian_filter", "median_filter", "uniform_filter", "binary_opening", "binary_closing",
              "binary_erosion", "binary_dilation", "binary_fill_holes", "sobel"):
    register_function(_name, _ndimage(_name))
register_function("label", _label)
register_function("threshold_otsu", _threshold_otsu)
register_function("max_projection", _max_projection)
register_function("remove_small_objects", _remove_small_objects)


# ---------------------------------------------------------------------- built-ins (GPU)
def _register_cupy() -> None:
    """CuPy twins of the host built-ins (cupyx.scipy.ndimage), registered when a device is found."""
    import cupy
    from cupyx.scipy import ndimage as cnd

    for attr in ("gaussian_filter", "median_filter", "uniform_filter", "binary_opening", "binary_closing",
                 "binary_erosion", "binary_dilation", "binary_fill_holes", "sobel"):
        if hasattr(cnd, attr):
            register_function(attr, getattr(cnd, attr), memory_type="cupy", replace=True)

    def label(image: Any, structure: Any = None) -> Any:
        labels, _ = cnd.label(image, structure=structure)
        return labels.astype(cupy.int32, copy=False)

    def max_projection(image: Any, axis: int = 0) -> Any:
        return image if image.ndim < 3 else image.max(axis=axis)

    register_function("label", label, memory_type="cupy", replace=True)
    register_function("max_projection", max_projection, memory_type="cupy", replace=True)
