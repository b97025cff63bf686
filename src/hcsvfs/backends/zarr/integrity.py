"""Turn zarr decode failures (checksum mismatch, broken compressed chunk) into CorruptDataError."""

from __future__ import annotations

import contextlib
import zlib
from collections.abc import Iterator

from ...errors import CorruptDataError

__all__ = ["decode_errors"]

# What the codecs say when bytes fail to decode (crc32c: "checksum"; Blosc: "error during blosc decompression";
# zstd/lz4: "...decompress..."; a cut shard index: "...decode..."). Other RuntimeErrors and ValueErrors (an event
# loop shut down, a bad index) are not corruption and pass through as they are.
_MARKERS = ("checksum", "decompress", "decode", "corrupt", "blosc")


@contextlib.contextmanager
def decode_errors(path: str) -> Iterator[None]:
    """Re-raise a failure to decode stored chunks of ``path`` as CorruptDataError; other errors pass through."""
    try:
        yield
    except (RuntimeError, zlib.error, ValueError) as exc:
        text = str(exc).lower()
        if not isinstance(exc, zlib.error) and not any(m in text for m in _MARKERS):
            raise
        raise CorruptDataError(
            f"{path!r}: stored data failed to decode ({type(exc).__name__}: {exc}); a chunk is corrupt or "
            "truncated. Restore the plate/image from a copy or write it again",
            path=path,
            backend="zarr",
        ) from exc
