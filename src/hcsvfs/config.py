"""Configuration objects for the storage backends (a leaf module: no zarr import here)."""

from __future__ import annotations

import warnings
from dataclasses import InitVar, dataclass
from enum import Enum
from typing import Literal

__all__ = ["ZarrConfig", "COMPRESSIONS", "SHUFFLES", "GOALS"]

#: Codec names ZarrConfig accepts; lz4, lz4hc and zstd run inside Blosc (with shuffle); ``auto`` picks one of
#: those by a measured trial on the data (see ``goal`` and ``bandwidth``).
COMPRESSIONS = ("lz4", "lz4hc", "zstd", "gzip", "none", "auto")
SHUFFLES = ("byte", "bit", "none")
#: What ``compression="auto"`` optimises: write + read-back time at the destination's bandwidth, codec
#: speed alone (keeping at least half the best ratio), or stored bytes (with a decode-speed floor).
GOALS = ("balanced", "speed", "size")

#: The original system's compressors: its "blosc" is Blosc with LZ4, as ours is; zlib is DEFLATE, which
#: zarr v3 stores through its gzip codec.
_ORIGINAL_COMPRESSORS = {"blosc": "lz4", "lz4": "lz4", "zlib": "gzip", "zstd": "zstd", "none": "none"}
#: WELL: one chunk holds a whole field (all its planes); FILE: one chunk per plane (an original file).
_ORIGINAL_CHUNKS: dict[str, str | None] = {"well": None, "file": "plane"}


def _positive(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0


def _enum_value(value: Enum | str, name: str) -> str:
    raw = value.value if isinstance(value, Enum) else value
    if not isinstance(raw, str):
        raise ValueError(f"{name} must be a name or an Enum member whose value is one, got {value!r}")
    return raw.strip().lower()


def _deprecated(old: str, new: str) -> None:
    warnings.warn(f"{old} is the original system's spelling; use {new}", DeprecationWarning, stacklevel=5)


ChunkSpec = None | Literal["plane"] | tuple[int, ...]
ShardSpec = None | Literal["field"] | tuple[int, ...]


@dataclass(frozen=True)
class ZarrConfig:
    """How the zarr backend lays out and encodes arrays; invalid values raise ValueError at construction.

    ``chunks="plane"`` (default) is one chunk per (y, x) plane, ``None`` one
    chunk per array, a tuple an explicit chunk shape. ``shards="field"``
    (default) packs all chunks of one array (one field of a plate) into one
    shard object; ``None`` stores every chunk as its own object.
    """

    compression: str = "lz4"
    compression_level: int = 1
    shuffle: str = "byte"
    #: For ``compression="auto"``: what the measured trial optimises (one of :data:`GOALS`).
    goal: str = "balanced"
    #: For ``compression="auto"``: the destination's bytes/s; None measures it (a probe write and read of a
    #: few MB in the store: once per process and device on a local folder, once per backend elsewhere).
    bandwidth: float | None = None
    chunks: ChunkSpec = "plane"
    shards: ShardSpec = "field"
    checksum: bool = False
    pyramid_levels: int = 0
    ome_metadata: bool = True
    write_threads: int = 2
    filename_parser: str = "imagexpress"
    #: Names of channels 1, 2, ... (``w1``, ``w2`` in plate file names) in the images' ``omero`` metadata,
    #: which viewers show; channels beyond these are named ``w<n>``.
    channel_names: tuple[str, ...] = ()
    #: Physical pixel size (y, x) in micrometres, written as the images' NGFF scale transforms; None: 1.
    pixel_size: tuple[float, float] | None = None
    #: Distance between z planes in micrometres (the z scale); None: 1.
    z_spacing: float | None = None
    #: A plate's full (rows, columns), e.g. (16, 24) for 384 wells, listed in its NGFF metadata even where no
    #: well was imaged; None lists rows and columns up to the last written well.
    plate_shape: tuple[int, int] | None = None
    #: Seconds a writer waits for another writer of the same well (or plate metadata) before LockTimeoutError.
    lock_timeout: float = 600.0
    #: On S3, seconds a lock may go without its holder's heartbeat before a waiter breaks it (a killed writer).
    lease_seconds: float = 30.0
    #: Deprecated, the original system's names: ``compressor`` (its ZarrCompressor or a name: blosc, zlib,
    #: lz4, zstd, none) is ``compression``; ``chunk_strategy`` (WELL or FILE) is ``chunks`` (None or "plane").
    compressor: InitVar[Enum | str | None] = None
    chunk_strategy: InitVar[Enum | str | None] = None

    def __post_init__(self, compressor: Enum | str | None, chunk_strategy: Enum | str | None) -> None:
        self._adopt_original_names(compressor, chunk_strategy)
        if self.compression not in COMPRESSIONS:
            raise ValueError(f"unknown compression {self.compression!r}; valid values: {', '.join(COMPRESSIONS)}")
        if not isinstance(self.compression_level, int) or not 0 <= self.compression_level <= 9:
            raise ValueError(f"compression_level must be an int from 0 to 9, got {self.compression_level!r}")
        if self.shuffle not in SHUFFLES:
            raise ValueError(f"unknown shuffle {self.shuffle!r}; valid values: {', '.join(SHUFFLES)}")
        if self.goal not in GOALS:
            raise ValueError(f"unknown compression goal {self.goal!r}; valid values: {', '.join(GOALS)}")
        if self.bandwidth is not None and (
            isinstance(self.bandwidth, bool) or not isinstance(self.bandwidth, (int, float)) or not self.bandwidth > 0
        ):
            raise ValueError(f"bandwidth must be None or a positive number of bytes/s, got {self.bandwidth!r}")
        _check_shape_spec("chunks", self.chunks, "plane")
        _check_shape_spec("shards", self.shards, "field")
        if isinstance(self.chunks, tuple) and isinstance(self.shards, tuple):
            if len(self.chunks) != len(self.shards):
                raise ValueError(
                    f"chunks {self.chunks} and shards {self.shards} have different ranks; give both the same length"
                )
            if any(s % c for s, c in zip(self.shards, self.chunks)):
                raise ValueError(
                    f"every shard size must be a multiple of the chunk size: shards {self.shards}, chunks {self.chunks}"
                )
        if not isinstance(self.pyramid_levels, int) or not 0 <= self.pyramid_levels <= 10:
            raise ValueError(f"pyramid_levels must be an int from 0 to 10, got {self.pyramid_levels!r}")
        if not isinstance(self.write_threads, int) or self.write_threads < 1:
            raise ValueError(f"write_threads must be a positive int, got {self.write_threads!r}")
        if not isinstance(self.channel_names, tuple) or not all(isinstance(n, str) and n for n in self.channel_names):
            raise ValueError(f"channel_names must be a tuple of non-empty strings, got {self.channel_names!r}")
        if self.pixel_size is not None and not (
            isinstance(self.pixel_size, tuple) and len(self.pixel_size) == 2 and all(_positive(v) for v in self.pixel_size)
        ):
            raise ValueError(f"pixel_size must be None or (y, x) in micrometres, two positive numbers; got {self.pixel_size!r}")
        if self.z_spacing is not None and not _positive(self.z_spacing):
            raise ValueError(f"z_spacing must be None or a positive number of micrometres, got {self.z_spacing!r}")
        if self.plate_shape is not None and not (
            isinstance(self.plate_shape, tuple) and len(self.plate_shape) == 2
            and all(isinstance(v, int) and not isinstance(v, bool) and 0 < v <= 100 for v in self.plate_shape)
        ):
            raise ValueError(f"plate_shape must be None or (rows, columns), e.g. (16, 24); got {self.plate_shape!r}")
        for name in ("lock_timeout", "lease_seconds"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
                raise ValueError(f"{name} must be a positive number of seconds, got {value!r}")

    def _adopt_original_names(self, compressor: Enum | str | None, chunk_strategy: Enum | str | None) -> None:
        """Map the original system's field names and values onto ours, warning with the new name."""
        if compressor is None and self.compression == "zlib":
            _deprecated("ZarrConfig(compression='zlib')", "compression='gzip' (the same DEFLATE stream, zarr v3's codec)")
            object.__setattr__(self, "compression", "gzip")
        originals = (("compressor", compressor, "compression", "lz4", _ORIGINAL_COMPRESSORS),
                     ("chunk_strategy", chunk_strategy, "chunks", "plane", _ORIGINAL_CHUNKS))
        for old, given, field, default, table in originals:
            if given is None:
                continue
            if getattr(self, field) != default:
                raise ValueError(f"give {field}= or the deprecated {old}=, not both (got {getattr(self, field)!r} "
                                 f"and {given!r})")
            value = _enum_value(given, old)
            if value not in table:
                raise ValueError(f"unknown {old} {given!r}; valid values: {', '.join(table)}")
            _deprecated(f"ZarrConfig({old}={value!r})", f"{field}={table[value]!r}")
            object.__setattr__(self, field, table[value])

    def channel_name(self, index: int) -> str:
        """The name of channel ``index`` (0-based): the configured one, else ``w<index + 1>``."""
        return self.channel_names[index] if index < len(self.channel_names) else f"w{index + 1}"

    def axis_scale(self, axis: str) -> float:
        """The physical size of one step along NGFF ``axis`` (micrometres for z, y, x; 1 where not given)."""
        if axis in "yx" and self.pixel_size is not None:
            return float(self.pixel_size["yx".index(axis)])
        if axis == "z" and self.z_spacing is not None:
            return float(self.z_spacing)
        return 1.0

    def chunk_shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        """The chunk shape for an array of ``shape``; ValueError if an explicit tuple has the wrong rank."""
        if self.chunks is None:
            return tuple(max(1, n) for n in shape)
        if self.chunks == "plane":
            return tuple(1 for _ in shape[:-2]) + tuple(max(1, n) for n in shape[-2:])
        return _fit("chunks", self.chunks, shape)

    def shard_shape(self, shape: tuple[int, ...]) -> tuple[int, ...] | None:
        """The shard shape for an array of ``shape``, or None for no sharding (also when one chunk fills it)."""
        chunks = self.chunk_shape(shape)
        if self.shards is None:
            return None
        if self.shards == "field":
            full = tuple(max(1, n) for n in shape)
            shard = tuple(-(-f // c) * c for f, c in zip(full, chunks))  # round up to whole chunks
        else:
            shard = _fit("shards", self.shards, shape)
            if any(s % c for s, c in zip(shard, chunks)):
                raise ValueError(f"shards {shard} are not a multiple of chunks {chunks}")
        return None if shard == chunks else shard


def _check_shape_spec(name: str, value: object, word: str) -> None:
    if value is None or value == word:
        return
    if isinstance(value, tuple) and value and all(isinstance(n, int) and n > 0 for n in value):
        return
    raise ValueError(f"{name} must be None, {word!r} or a tuple of positive ints, got {value!r}")


def _fit(name: str, spec: tuple[int, ...], shape: tuple[int, ...]) -> tuple[int, ...]:
    if len(spec) != len(shape):
        raise ValueError(
            f"{name} {spec} has rank {len(spec)} but the array has rank {len(shape)} (shape {shape}); "
            f"use {name}='plane' or None, or a tuple of length {len(shape)}"
        )
    return tuple(min(c, max(1, n)) for c, n in zip(spec, shape))
