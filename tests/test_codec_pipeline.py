"""zarrs as zarr's codec pipeline: chosen at import, switchable, and byte-compatible with zarr's own."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import zarr

from hcsvfs.backends.zarr import ZarrStorageBackend, active_codec_pipeline, select_codec_pipeline
from hcsvfs.backends.zarr.codec_pipeline import PYTHON, ZARRS
from hcsvfs.config import ZarrConfig

pytest.importorskip("zarrs", reason="zarrs is a dependency; without it only the fallback can be tested")


def in_fresh_process(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k not in ("HCSVFS_CODEC_PIPELINE", "ZARR_CODEC_PIPELINE__PATH")}
    return subprocess.run([sys.executable, "-c", code], env={**clean, **env}, capture_output=True, text=True, timeout=120)


SHOW = "import hcsvfs.backends.zarr as z; print(z.active_codec_pipeline())"


def test_zarrs_is_the_default() -> None:
    assert in_fresh_process(SHOW).stdout.strip() == "zarrs"


def test_the_switch_and_a_pipeline_the_caller_set_in_zarr() -> None:
    assert in_fresh_process(SHOW, HCSVFS_CODEC_PIPELINE="python").stdout.strip() == "python"
    custom = "zarr.core.codec_pipeline.BatchedCodecPipeline"  # set through zarr's own variable: kept
    assert in_fresh_process(SHOW, ZARR_CODEC_PIPELINE__PATH=custom).stdout.strip() == "python"
    bad = in_fresh_process(SHOW, HCSVFS_CODEC_PIPELINE="rust")
    assert bad.returncode != 0 and "unknown codec pipeline 'rust'" in bad.stderr and "zarrs, python" in bad.stderr


def test_without_zarrs_installed_zarrs_own_pipeline_runs() -> None:
    code = "import sys; sys.modules['zarrs'] = None; " + SHOW
    assert in_fresh_process(code).stdout.strip() == "python"


@pytest.fixture
def restore() -> Iterator[None]:
    before = zarr.config.get("codec_pipeline.path")
    yield
    zarr.config.set({"codec_pipeline.path": before})


@pytest.mark.parametrize("checksum", [False, True])
@pytest.mark.parametrize("shards", ["field", None])
def test_each_pipeline_reads_what_the_other_wrote(tmp_path: Path, restore: None, shards: str | None, checksum: bool) -> None:
    rng = np.random.default_rng(5)
    planes = [rng.integers(0, 4000, (64, 48), dtype=np.uint16) for _ in range(4)]
    names = [f"p.zarr/A0{w}_s1_w{c}.tif" for w in (1, 2) for c in (1, 2)]
    config = ZarrConfig(shards=shards, checksum=checksum, pyramid_levels=1)  # type: ignore[arg-type]
    for writer, reader in (("python", "zarrs"), ("zarrs", "python")):
        root = tmp_path / writer
        assert select_codec_pipeline(writer) == {"python": PYTHON, "zarrs": ZARRS}[writer]
        zb = ZarrStorageBackend(root, config=config)
        zb.ensure_directory("p.zarr")
        zb.save_batch(planes, names)
        zb.save(planes[0][::2, ::2].copy(), "small")
        select_codec_pipeline(reader)
        assert active_codec_pipeline() == reader
        other = ZarrStorageBackend(root)
        for name, plane in zip(names, planes):
            assert np.array_equal(other.load(name, materialize=True), plane), (writer, reader, name)
        assert np.array_equal(np.asarray(other.load("small")), planes[0][::2, ::2])
        assert other.open_plate("p.zarr").field("A01", 0, level=1).shape[-2:] == (32, 24)


def test_a_forked_child_of_a_zarrs_process_writes_through_zarrs_own_pipeline(tmp_path: Path, restore: None) -> None:
    """zarrs's thread pool does not survive fork: without the switch the child below hangs forever."""
    import multiprocessing

    select_codec_pipeline("zarrs")
    # Many chunks per write: zarrs encodes a lone chunk on the calling thread, several on its thread pool.
    stack = np.ones((16, 64, 64), np.uint16)
    zb = ZarrStorageBackend(tmp_path, config=ZarrConfig(shards=None))
    zb.save(stack, "parent")  # the parent's Rust pool is running now
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()

    def child() -> None:
        other = ZarrStorageBackend(tmp_path, config=ZarrConfig(shards=None))
        other.save(stack * 7, "child")
        queue.put(active_codec_pipeline())

    proc = ctx.Process(target=child, daemon=True)
    proc.start()
    try:
        assert queue.get(timeout=60) == "python"
    finally:
        proc.join(10)
        if proc.is_alive():
            proc.kill()
    assert np.array_equal(np.asarray(zb.load("child")), stack * 7)
    assert active_codec_pipeline() == "zarrs"  # the parent keeps it
