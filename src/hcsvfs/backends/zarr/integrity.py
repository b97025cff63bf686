"""Turn zarr decode failures (checksum mismatch, broken compressed chunk) into CorruptDataError."""

from __future__ import annotations

import contextlib
import zlib
from collections.abc import Iterator

from ...errors import CorruptDataError

__all__ = ["decode_errors"]

_MARKERS = ("checksum", "decompress", "decode", "corrupt")


@contextlib.contextmanager
def decode_errors(path: str) -> Iterator[None]:
    """Re-raise a failure to decode stored chunks of ``path`` as CorruptDataError; indexing errors pass through."""
    try:
        yield
    except (RuntimeError, zlib.error, ValueError) as exc:
        text = str(exc).lower()
        if isinstance(exc, ValueError) and not any(m in text for m in _MARKERS):
            raise
        raise CorruptDataError(
            f"{path!r}: stored data failed to decode ({type(exc).__name__}: {exc}); a chunk is corrupt or "
            "truncated. Restore the plate/image from a copy or write it again",
            path=path,
            backend="zarr",
        ) from exc
