"""Text-like formats: JSON, plain text, CSV tables and raw bytes.

JSON, text and CSV also take an already-serialised payload (a ``str``, or
``bytes``) and write it verbatim: ``DataFrame.to_csv()`` saved as ``x.csv`` is
that CSV, a JSON document saved as ``x.json`` is that document (checked, so a
``.json`` file always parses).
"""

from __future__ import annotations

import functools
import inspect
import io
import json
from typing import Any, BinaryIO, Literal

import numpy as np

from ..errors import UnsupportedTypeError
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
    if isinstance(obj, _JSON_SCALARS) or (isinstance(obj, np.generic) and obj.dtype.kind in "biuf"):
        return True
    if isinstance(obj, (list, tuple)):
        return all(_jsonable(v, depth + 1) for v in obj)
    if isinstance(obj, dict):
        return all(isinstance(k, str) and _jsonable(v, depth + 1) for k, v in obj.items())
    return False


def _raw(obj: Any, encoding: str = "utf-8") -> bytes | None:
    """The bytes of an already-serialised payload, or None for any other object."""
    if isinstance(obj, str):
        return obj.encode(encoding, "surrogatepass")
    if isinstance(obj, (bytes, bytearray, memoryview)):
        return bytes(obj)
    return None


class JsonFormat(Format):
    name = "json"
    extensions = (".json",)
    sniff_priority = 70
    verbatim = True
    save_options = frozenset({"indent"})

    def accepts(self, obj: Any) -> bool:
        # Plain strings are JSON documents here (written verbatim); by type they go to text.
        return isinstance(obj, (dict, list, tuple, int, float, bool)) and _jsonable(obj)

    def dump(self, obj: Any, fh: BinaryIO, **options: Any) -> None:
        raw = _raw(obj)
        if raw is not None:
            try:
                json.loads(raw)
            except ValueError as exc:
                raise UnsupportedTypeError(
                    f"the {type(obj).__name__} is not a JSON document ({exc}); a .json file must parse. To store "
                    "the text itself as a JSON string, save json.dumps(text); to keep it as it is, use .txt"
                ) from None
            fh.write(raw)
            return
        fh.write(json.dumps(obj, default=_json_default, indent=options.get("indent", 1)).encode("utf-8"))

    def load(self, fh: BinaryIO, **options: Any) -> Any:
        return json.loads(fh.read().decode("utf-8"))

    def sniff(self, head: bytes) -> bool:
        return head.lstrip()[:1] in (b"{", b"[")


class TextFormat(Format):
    name = "text"
    # Plain-text formats hcsvfs does not parse: their text is stored and returned as it is.
    extensions = (".txt", ".log", ".md", ".rst", ".yaml", ".yml", ".toml", ".ini", ".cfg", ".xml", ".html", ".py", ".sh")
    sniff_priority = 80
    verbatim = True
    save_options = load_options = frozenset({"encoding"})

    def accepts(self, obj: Any) -> bool:
        return isinstance(obj, str)

    def dump(self, obj: Any, fh: BinaryIO, **options: Any) -> None:
        fh.write(_raw(obj, options.get("encoding", "utf-8")) or b"")

    def load(self, fh: BinaryIO, **options: Any) -> Any:
        return fh.read().decode(options.get("encoding", "utf-8"), "surrogatepass")

    def sniff(self, head: bytes) -> bool:
        try:
            head.decode("utf-8")
        except UnicodeDecodeError as exc:  # a multi-byte character cut by the head's end is still text
            return exc.start >= len(head) - 3
        return True


class CsvFormat(Format):
    """Tables: a pandas DataFrame, a list of row dicts or a dict of columns; loads as a DataFrame.

    Options are pandas' own: ``DataFrame.to_csv``'s on save, ``pandas.read_csv``'s on load.
    """

    name = "csv"
    extensions = (".csv",)
    verbatim = True

    def options(self, kind: Literal["save", "load"]) -> frozenset[str]:
        return _pandas_csv_options(kind)

    def accepts(self, obj: Any) -> bool:
        import sys

        pd = sys.modules.get("pandas")
        if pd is not None and isinstance(obj, pd.DataFrame):
            return True
        if isinstance(obj, list) and obj and all(isinstance(r, dict) for r in obj):
            return True
        if not (isinstance(obj, dict) and obj and all(isinstance(v, (list, tuple, np.ndarray)) for v in obj.values())):
            return False
        # A dict of columns: 1-D and of one length (other dicts of arrays are .npz archives).
        return all(np.ndim(v) == 1 for v in obj.values()) and len({len(v) for v in obj.values()}) == 1

    def dump(self, obj: Any, fh: BinaryIO, **options: Any) -> None:
        import pandas as pd

        raw = _raw(obj)
        if raw is not None:
            fh.write(raw)
            return
        frame = obj if isinstance(obj, pd.DataFrame) else pd.DataFrame(obj)
        text = io.StringIO()
        frame.to_csv(text, **{"index": False, **options})
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


@functools.cache
def _pandas_csv_options(kind: str) -> frozenset[str]:
    """The keywords of ``DataFrame.to_csv`` (save) or ``pandas.read_csv`` (load), less the file and its mode."""
    import pandas as pd

    fn = pd.DataFrame.to_csv if kind == "save" else pd.read_csv
    taken = {"self", "path_or_buf", "filepath_or_buffer", "mode", "storage_options"}
    return frozenset(inspect.signature(fn).parameters) - taken
