"""ZarrConfig: defaults, validation at construction, chunk and shard shapes."""

from __future__ import annotations

import pytest

from hcsvfs import ZarrConfig


def test_defaults_are_lz4_level1_plane_chunks_sharded_per_field() -> None:
    c = ZarrConfig()
    assert (c.compression, c.compression_level, c.shuffle) == ("lz4", 1, "byte")
    assert c.chunk_shape((2, 3, 4, 64, 32)) == (1, 1, 1, 64, 32)
    assert c.shard_shape((2, 3, 4, 64, 32)) == (2, 3, 4, 64, 32)


def test_chunks_none_is_one_chunk_per_array_and_needs_no_shard() -> None:
    c = ZarrConfig(chunks=None)
    assert c.chunk_shape((3, 64, 32)) == (3, 64, 32)
    assert c.shard_shape((3, 64, 32)) is None


def test_a_2d_plane_chunk_fills_the_array_so_no_shard() -> None:
    assert ZarrConfig().shard_shape((64, 32)) is None


def test_explicit_tuples_fit_the_array() -> None:
    c = ZarrConfig(chunks=(1, 16, 16), shards=(2, 32, 32))
    assert c.chunk_shape((4, 64, 64)) == (1, 16, 16)
    assert c.shard_shape((4, 64, 64)) == (2, 32, 32)
    assert c.chunk_shape((4, 8, 8)) == (1, 8, 8)  # larger than the array: clamped


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"compression": "brotli"}, ["lz4", "zstd", "gzip", "none"]),
        ({"compression_level": 10}, ["0 to 9"]),
        ({"compression_level": -1}, ["0 to 9"]),
        ({"shuffle": "twice"}, ["byte", "bit", "none"]),
        ({"chunks": "field"}, ["plane"]),
        ({"chunks": (0, 4)}, ["positive"]),
        ({"shards": "plane"}, ["field"]),
        ({"chunks": (1, 4), "shards": (1, 4, 4)}, ["ranks"]),
        ({"chunks": (2, 4), "shards": (3, 4)}, ["multiple"]),
        ({"pyramid_levels": -1}, ["pyramid_levels"]),
        ({"write_threads": 0}, ["write_threads"]),
    ],
)
def test_bad_values_raise_at_construction_naming_valid_ones(kwargs: dict, words: list[str]) -> None:
    with pytest.raises(ValueError) as info:
        ZarrConfig(**kwargs)
    for w in words:
        assert w in str(info.value)


def test_chunk_rank_mismatch_names_both_ranks() -> None:
    with pytest.raises(ValueError, match="rank 2 but the array has rank 3"):
        ZarrConfig(chunks=(4, 4)).chunk_shape((2, 8, 8))
