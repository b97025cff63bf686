"""Text-like formats: JSON, plain text, CSV tables and raw bytes."""

from __future__ import annotations

import io
import json
from typing import Any, BinaryIO

import numpy as np

from .base import Format

_JSON_SCALARS = (str, int, float, bool, type(None))


def _json_default(obj: Any) -> Any:
    # NumPy scalars and small arrays show up in measurement dicts all the time.
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    raise TypeError(f"{type(obj).__name__} is not JSON serialisable")


def _jsonable(obj: Any, depth: int = 0) -> bool:
    if depth > 100:
        return False
    if isinstance(obj, _JSON_SCALARS) or isinstance(obj, np.generic) and obj.dtype.kind in "biuf":
        return True
    if isinstance(obj, (list, tuple)):
        return all(_jsonable(v, depth + 1) for v in obj)
    if isinstance(obj, dict):
        return all(isinstance(k, str) and _jsonable(v, depth + 1) for k, v in obj.items())
    return False


class JsonFormat(Format):
    name = "json"
    extensions = (".json",)
    sniff_priority = 70

    def accepts(self, obj: Any) -> bool:
        # Plain strings go to text by default; JSON takes them only by extension.
        return isinstance(obj, (dict, list, tuple, int, float, bool, str)) and _jsonable(obj)

    def dump(self, obj: Any, fh: BinaryIO, **options: Any) -> None:
        fh.write(json.dumps(obj, default=_json_default, indent=options.get("indent", 1)).encode("utf-8"))

    def load(self, fh: BinaryIO, **options: Any) -> Any:
        return json.loads(fh.read().decode("utf-8"))

    def sniff(self, head: bytes) -> bool:
        return head.lstrip()[:1] in (b"{", b"[")


class TextFormat(Format):
    name = "text"
    extensions = (".txt", ".log", ".md")
    sniff_priority = 80

    def accepts(self, obj: Any) -> bool:
        return isinstance(obj, str)

    def dump(self, obj: Any, fh: BinaryIO, **options: Any) -> None:
        fh.write(obj.encode(options.get("encoding", "utf-8"), "surrogatepass"))

    def load(self, fh: BinaryIO, **options: Any) -> Any:
        return fh.read().decode(options.get("encoding", "utf-8"), "surrogatepass")

    def sniff(self, head: bytes) -> bool:
        try:
            head.decode("utf-8")
        except UnicodeDecodeError as exc:  # a multi-byte character cut by the head's end is still text
            return exc.start >= len(head) - 3
        return True


class CsvFormat(Format):
    """Tables: a pandas DataFrame, a list of row dicts or a dict of columns; loads as a DataFrame."""

    name = "csv"
    extensions = (".csv",)

    def accepts(self, obj: Any) -> bool:
        import sys

        pd = sys.modules.get("pandas")
        if pd is not None and isinstance(obj, pd.DataFrame):
            return True
        if isinstance(obj, list) and obj and all(isinstance(r, dict) for r in obj):
            return True
        return isinstance(obj, dict) and bool(obj) and all(isinstance(v, (list, tuple, np.ndarray)) for v in obj.values())

    def dump(self, obj: Any, fh: BinaryIO, **options: Any) -> None:
        import pandas as pd

        frame = obj if isinstance(obj, pd.DataFrame) else pd.DataFrame(obj)
        text = io.StringIO()
        frame.to_csv(text, index=options.get("index", False))
        fh.write(text.getvalue().encode("utf-8"))

    def load(self, fh: BinaryIO, **options: Any) -> Any:
        import pandas as pd

        return pd.read_csv(fh, **options)


class BytesFormat(Format):
    name = "bytes"
    extensions = (".bin", ".raw")
    sniff_priority = 100

    def accepts(self, obj: Any) -> bool:
        return isinstance(obj, (bytes, bytearray, memoryview))

    def dump(self, obj: Any, fh: BinaryIO, **options: Any) -> None:
        fh.write(bytes(obj))

    def load(self, fh: BinaryIO, **options: Any) -> Any:
        return fh.read()

    def sniff(self, head: bytes) -> bool:
        return True  # the last resort when nothing else recognises a file
