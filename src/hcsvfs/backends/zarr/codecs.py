"""ZarrConfig -> zarr v3 codec chain, chunk and shard shapes for one array."""

from __future__ import annotations

from typing import Any, Literal

from zarr.codecs import BloscCodec, Crc32cCodec, GzipCodec

from ...config import ZarrConfig

__all__ = ["compressors", "array_layout", "describe_codecs"]

# Names, not zarr's enums: zarr 3.1 takes either, and zarr 3.2+ deprecates the enums (3.4 cannot build BloscCname).
_BLOSC_CNAME: dict[str, Literal["lz4", "lz4hc", "zstd"]] = {"lz4": "lz4", "lz4hc": "lz4hc", "zstd": "zstd"}
_BLOSC_SHUFFLE: dict[str, Literal["shuffle", "bitshuffle", "noshuffle"]] = {
    "byte": "shuffle", "bit": "bitshuffle", "none": "noshuffle"
}


def compressors(config: ZarrConfig) -> list[Any]:
    """The bytes-to-bytes codecs for ``config``: the compressor, then crc32c when checksums are on."""
    if config.compression == "auto":
        raise ValueError("compression='auto' is resolved per array before encoding (autocodec.CodecChooser)")
    chain: list[Any] = []
    if config.compression in _BLOSC_CNAME:
        cname, shuffle = _BLOSC_CNAME[config.compression], _BLOSC_SHUFFLE[config.shuffle]
        chain.append(BloscCodec(cname=cname, clevel=config.compression_level, shuffle=shuffle))
    elif config.compression == "gzip":
        chain.append(GzipCodec(level=config.compression_level))
    if config.checksum:
        chain.append(Crc32cCodec())  # last on encode, so it is checked first on decode, before the decompressor
    return chain


def array_layout(config: ZarrConfig, shape: tuple[int, ...]) -> dict[str, Any]:
    """Keyword arguments for ``zarr.create_array``: chunks, shards and compressors."""
    return {
        "chunks": config.chunk_shape(shape),
        "shards": config.shard_shape(shape),
        "compressors": compressors(config),
    }


def describe_codecs(array: Any) -> str:
    """The compressors of any zarr array as it stores them (``blosc(lz4, 1, shuffle)``), v3 or v2; ``none``."""
    return ", ".join(_codec_name(c) for c in getattr(array, "compressors", ()) or ()) or "none"


def _codec_name(codec: Any) -> str:
    # zarr v3 codecs describe themselves with to_dict(), numcodecs ones (zarr v2 arrays) with get_config().
    cfg = codec.to_dict() if hasattr(codec, "to_dict") else codec.get_config() if hasattr(codec, "get_config") else {}
    name = cfg.get("name") or cfg.get("id") or type(codec).__name__
    inner = cfg.get("configuration", cfg)
    detail = [str(inner[k]) for k in ("cname", "clevel", "level", "shuffle") if k in inner]
    return f"{name}({', '.join(detail)})" if detail else str(name)
