"""NumPy ``.npz``: one array, or a dict of named arrays, in a zip (``compressed=True`` deflates it)."""

from __future__ import annotations

from typing import Any, BinaryIO

import numpy as np

from ..arrays import array_spec, is_array, to_numpy
from .base import Format, zip_first_member

__all__ = ["NpzFormat"]

_SINGLE = "arr_0"  # numpy's own name for an unnamed array


class NpzFormat(Format):
    """Loads back what was saved: the array itself, or the dict of arrays."""

    name = "npz"
    extensions = (".npz",)
    save_options = frozenset({"compressed"})

    def accepts(self, obj: Any) -> bool:
        if is_array(obj):
            return array_spec(obj)[1].kind != "O"
        return (
            isinstance(obj, dict)
            and bool(obj)
            and all(isinstance(k, str) and k.isidentifier() for k in obj)
            and all(is_array(v) and array_spec(v)[1].kind != "O" for v in obj.values())
        )

    def dump(self, obj: Any, fh: BinaryIO, **options: Any) -> None:
        arrays = {_SINGLE: to_numpy(obj)} if is_array(obj) else {k: to_numpy(v) for k, v in obj.items()}
        (np.savez_compressed if options.get("compressed") else np.savez)(fh, allow_pickle=False, **arrays)

    def load(self, fh: BinaryIO, **options: Any) -> Any:
        with np.load(fh, allow_pickle=False) as archive:
            arrays = {name: archive[name] for name in archive.files}
        return arrays[_SINGLE] if list(arrays) == [_SINGLE] else arrays

    def sniff(self, head: bytes) -> bool:
        return head.startswith(b"PK\x03\x04") and zip_first_member(head).endswith(".npy")
