"""Pickle: any Python object, only with an explicit opt-in on save and load (it runs code)."""

from __future__ import annotations

import pickle
from typing import Any, BinaryIO

from .base import Format


class PickleFormat(Format):
    name = "pickle"
    extensions = (".pkl", ".pickle")
    unsafe = True

    def accepts(self, obj: Any) -> bool:
        return True

    def dump(self, obj: Any, fh: BinaryIO, **options: Any) -> None:
        pickle.dump(obj, fh, protocol=pickle.HIGHEST_PROTOCOL)

    def load(self, fh: BinaryIO, **options: Any) -> Any:
        return pickle.load(fh)

    def sniff(self, head: bytes) -> bool:
        return len(head) >= 2 and head[0] == 0x80 and 2 <= head[1] <= 5
