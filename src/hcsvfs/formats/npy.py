"""NumPy ``.npy``: any non-object array, device arrays moved to host first."""

from __future__ import annotations

import math
import threading
from typing import Any, BinaryIO

import numpy as np

from ..arrays import array_spec, is_array, to_numpy
from .base import Format

# NumPy parses a .npy header with ast.literal_eval, and CPython's AST builder keeps a recursion counter that
# threads share: two threads parsing at once can fail with "SystemError: AST constructor recursion depth
# mismatch" (python/cpython#106905; seen on 3.11.7 in the concurrency suite). Headers are parsed one at a
# time; the data is read outside the lock.
_HEADER_LOCK = threading.Lock()


class NpyFormat(Format):
    name = "npy"
    extensions = (".npy",)

    def accepts(self, obj: Any) -> bool:
        # Object arrays need pickle; NumPy refuses them with allow_pickle=False and so do we.
        return is_array(obj) and array_spec(obj)[1].kind != "O"

    def dump(self, obj: Any, fh: BinaryIO, **options: Any) -> None:
        np.save(fh, to_numpy(obj), allow_pickle=False)

    def load(self, fh: BinaryIO, **options: Any) -> Any:
        fmt = np.lib.format
        version = fmt.read_magic(fh)
        if version not in ((1, 0), (2, 0)):  # 3.0 (UTF-8 field names): NumPy reads it, all of it under the lock
            fh.seek(0)
            with _HEADER_LOCK:
                return np.load(fh, allow_pickle=False)
        with _HEADER_LOCK:
            read_header = fmt.read_array_header_1_0 if version == (1, 0) else fmt.read_array_header_2_0
            shape, fortran_order, dtype = read_header(fh)
        if dtype.hasobject:
            raise ValueError("the file holds an object array, which needs pickle; hcsvfs does not unpickle .npy files")
        array = np.empty(math.prod(shape), dtype)
        view = array.view(np.uint8).data
        filled = 0
        while filled < len(view):  # a pipe or socket may return less than asked for
            got = fh.readinto(view[filled:])  # type: ignore[attr-defined]  # every file object here has it
            if not got:
                raise ValueError(f"the data ends after {filled} of {len(view)} bytes its header promises")
            filled += got
        return array.reshape(shape[::-1]).T if fortran_order else array.reshape(shape)

    def sniff(self, head: bytes) -> bool:
        return head.startswith(b"\x93NUMPY")
