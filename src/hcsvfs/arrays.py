"""Memory types: detect and convert NumPy, PyTorch, CuPy and JAX arrays.

Detection never imports a heavy library: an object can only be a torch tensor
if torch is already imported. Conversion goes through DLPack where both sides
support it (zero copy on the same device) and falls back to a host copy.
"""

from __future__ import annotations

import sys
from typing import Any, Literal

import numpy as np

from .errors import UnsupportedTypeError

__all__ = [
    "MemoryType",
    "MEMORY_TYPES",
    "memory_type",
    "is_array",
    "is_lazy_array",
    "to_numpy",
    "array_spec",
    "convert",
    "nbytes",
    "is_on_device",
]

MemoryType = Literal["numpy", "torch", "cupy", "jax"]
MEMORY_TYPES: tuple[str, ...] = ("numpy", "torch", "cupy", "jax")


def memory_type(obj: Any) -> MemoryType | None:
    """The array library ``obj`` belongs to, or None if it is not an array."""
    if isinstance(obj, np.ndarray):
        return "numpy"
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(obj, torch.Tensor):
        return "torch"
    cupy = sys.modules.get("cupy")
    if cupy is not None and isinstance(obj, cupy.ndarray):
        return "cupy"
    jax = sys.modules.get("jax")
    if jax is not None and isinstance(obj, jax.Array):
        return "jax"
    return None


def is_lazy_array(obj: Any) -> bool:
    """True for an array-like that reads its data when asked (the zarr backend's ZarrArrayView, a zarr or dask
    array): it has ``shape``, ``dtype`` and ``__array__``. NumPy scalars and pandas objects are not arrays here."""
    if memory_type(obj) is not None or isinstance(obj, np.generic):
        return False
    cls = type(obj)
    if cls.__module__.split(".", 1)[0] == "pandas":
        return False  # a Series has the protocol, but saving it as an array would drop its index
    return hasattr(cls, "__array__") and hasattr(obj, "shape") and hasattr(obj, "dtype")


def is_array(obj: Any) -> bool:
    """True for an array of any supported library, or a lazy array-like (see :func:`is_lazy_array`)."""
    return memory_type(obj) is not None or is_lazy_array(obj)


def is_on_device(obj: Any) -> bool:
    """True when the array's memory lives on an accelerator rather than the host."""
    kind = memory_type(obj)
    if kind == "cupy":
        return True
    if kind == "torch":
        return obj.device.type != "cpu"
    if kind == "jax":
        return any(d.platform != "cpu" for d in obj.devices())
    return False


def nbytes(obj: Any) -> int:
    """Bytes of data an object holds in memory: an array's data, text, bytes; 0 for a lazy array (it holds none
    until read) and for other objects whose size is unknown."""
    kind = memory_type(obj)
    if kind == "torch":
        return int(obj.element_size() * obj.nelement())
    if kind is not None:
        return int(obj.nbytes)
    if isinstance(obj, (bytes, bytearray, memoryview)):
        return len(obj)
    if isinstance(obj, str):
        return len(obj.encode("utf-8", "surrogatepass"))
    return 0


def array_spec(obj: Any) -> tuple[tuple[int, ...], np.dtype]:
    """Shape and NumPy dtype of any array :func:`to_numpy` takes, without reading or copying its data."""
    if isinstance(obj, np.ndarray) or is_lazy_array(obj):
        return tuple(obj.shape), np.dtype(obj.dtype)
    if memory_type(obj) is None:
        to_numpy(obj)  # raises the usual "not an array" error
    # An empty slice converts in no time and gives the dtype to_numpy gives (bfloat16 widened, and so on).
    return tuple(obj.shape), to_numpy(obj.reshape(-1)[:0]).dtype


def to_numpy(obj: Any) -> np.ndarray:
    """A NumPy view or copy of any supported array; device arrays are copied to host."""
    kind = memory_type(obj)
    if kind == "numpy":
        return obj
    if kind == "torch":
        t = obj.detach()
        if t.device.type != "cpu":
            t = t.cpu()
        if t.is_conj():
            t = t.resolve_conj()
        if t.dtype.is_floating_point and str(t.dtype) == "torch.bfloat16":
            # NumPy has no bfloat16: widen losslessly rather than fail.
            t = t.float()
        return t.numpy()
    if kind == "cupy":
        return obj.get()
    if kind == "jax" or is_lazy_array(obj):
        return np.asarray(obj)  # a lazy array reads its data here
    raise UnsupportedTypeError(
        f"cannot convert {type(obj).__module__}.{type(obj).__name__} to a NumPy array; "
        f"supported memory types are {', '.join(MEMORY_TYPES)}"
    )


def convert(obj: Any, to: MemoryType, *, device: str | None = None) -> Any:
    """Convert an array to memory type ``to`` (zero copy via DLPack where possible).

    ``device`` applies to torch targets ("cpu", "cuda", "cuda:1"); CuPy is always
    on the current GPU, NumPy always on the host.
    """
    if to not in MEMORY_TYPES:
        raise ValueError(f"unknown memory type {to!r}; choose one of {', '.join(MEMORY_TYPES)}")
    kind = memory_type(obj)
    if kind is None:
        raise UnsupportedTypeError(
            f"{type(obj).__name__} is not an array; convert() takes {', '.join(MEMORY_TYPES)} arrays"
        )
    if kind == to and device is None:
        return obj
    if to == "numpy":
        return to_numpy(obj)
    if to == "torch":
        import torch

        if kind == "numpy":
            arr = obj if obj.dtype.isnative else obj.astype(obj.dtype.newbyteorder("="))
            if not arr.flags.writeable:
                arr = arr.copy()  # torch warns on read-only buffers
            t = torch.from_numpy(arr)
        elif kind == "torch":
            t = obj
        else:
            try:
                t = torch.from_dlpack(obj)
            except (RuntimeError, TypeError, BufferError):
                t = torch.from_numpy(to_numpy(obj))
        return t.to(device) if device is not None else t
    if to == "cupy":
        import cupy

        if kind == "numpy":
            return cupy.asarray(obj)
        try:
            return cupy.from_dlpack(obj)
        except (RuntimeError, TypeError, BufferError):
            return cupy.asarray(to_numpy(obj))
    import jax.numpy as jnp

    try:
        return jnp.from_dlpack(obj)
    except (RuntimeError, TypeError, BufferError):
        return jnp.asarray(to_numpy(obj))
