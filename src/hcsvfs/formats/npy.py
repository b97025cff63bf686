"""NumPy ``.npy``: any non-object array, device arrays moved to host first."""

from __future__ import annotations

from typing import Any, BinaryIO

import numpy as np

from ..arrays import array_spec, is_array, to_numpy
from .base import Format


class NpyFormat(Format):
    name = "npy"
    extensions = (".npy",)

    def accepts(self, obj: Any) -> bool:
        # Object arrays need pickle; NumPy refuses them with allow_pickle=False and so do we.
        return is_array(obj) and array_spec(obj)[1].kind != "O"

    def dump(self, obj: Any, fh: BinaryIO, **options: Any) -> None:
        np.save(fh, to_numpy(obj), allow_pickle=False)

    def load(self, fh: BinaryIO, **options: Any) -> Any:
        return np.load(fh, allow_pickle=False)

    def sniff(self, head: bytes) -> bool:
        return head.startswith(b"\x93NUMPY")
