"""OME-Zarr on an object store: a plate written through FileManager.mount(kind="zarr") onto the local
moto S3 server, validated by ome-zarr-models reading straight from S3 (no local copy)."""

from __future__ import annotations

import numpy as np
import pytest
import zarr

from hcsvfs import FileManager
from hcsvfs.backends.zarr import ZarrStorageBackend
from hcsvfs.config import ZarrConfig
from s3_server import new_s3_url, shared_server

pytestmark = pytest.mark.s3

WELLS = ("A01", "A02", "B01")


def plane(i: int) -> np.ndarray:
    return (np.arange(48 * 40).reshape(48, 40) + 97 * i).astype(np.uint16)


def plate_names(root: str = "out/plate.zarr") -> list[str]:
    return [f"{root}/{w}_s{s}_w{c}.tif" for w in WELLS for s in (1, 2) for c in (1, 2)]


@pytest.fixture(scope="module")
def mounted() -> tuple[FileManager, str, dict]:
    """One plate written once for the module (S3 round trips are the slow part)."""
    url, options = new_s3_url("plates")
    fm = FileManager()
    fm.mount(url, name="lab_zarr", kind="zarr", **options)
    names = plate_names()
    fm.save_batch([plane(i) for i in range(len(names))], names, "lab_zarr")
    return fm, url, options


def test_plate_on_s3_round_trips_and_validates_straight_from_s3(mounted) -> None:
    from ome_zarr_models.v05 import HCS, Image, Well
    from zarr.storage import FsspecStore

    fm, url, options = mounted
    names = plate_names()
    assert fm.list_files("out/plate.zarr", "lab_zarr") == sorted(names)
    for i, name in enumerate(names):
        assert np.array_equal(np.asarray(fm.load(name, "lab_zarr")), plane(i)), name

    store = FsspecStore.from_url(f"{url}/out/plate.zarr", storage_options=options, read_only=True)
    group = zarr.open_group(store, mode="r")
    hcs = HCS.from_zarr(group)
    assert sorted(w.path for w in hcs.attributes.ome.plate.wells) == ["A/1", "A/2", "B/1"]
    for well in ("A/1", "A/2", "B/1"):
        Well.from_zarr(group[well])
        for field in ("0", "1"):
            Image.from_zarr(group[f"{well}/{field}"])


def test_plate_keys_on_s3_follow_the_ngff_layout(mounted) -> None:
    fm, url, _ = mounted
    bucket = url.split("/")[2]
    keys = shared_server().keys(bucket)
    assert "plates/out/plate.zarr/zarr.json" in keys
    assert "plates/out/plate.zarr/A/1/zarr.json" in keys and "plates/out/plate.zarr/B/1/1/0/zarr.json" in keys
    assert not [k for k in keys if ".hcsvfs-tmp-" in k]


def test_a_second_process_view_reads_the_same_plate(mounted) -> None:
    fm, url, options = mounted
    names = plate_names()
    other = ZarrStorageBackend(url, storage_options=options)  # a fresh backend: nothing shared but the bucket
    assert np.array_equal(np.asarray(other.load(names[-1])), plane(len(names) - 1))
    assert other.is_dir("out/plate.zarr")


def test_zarr_mount_takes_a_config() -> None:
    url, options = new_s3_url()
    fm = FileManager()
    default = fm.mount(url, name="z1", kind="zarr", **options)
    assert default.config == ZarrConfig()
    custom = fm.mount(url, name="z2", kind="zarr", config=ZarrConfig(write_threads=3), **options)
    assert custom.config.write_threads == 3


def test_zarr_on_s3_gives_the_same_transcript_as_every_backend(tmp_path) -> None:
    from hcsvfs.backends import MemoryStorageBackend
    from test_conformance import _transcript

    url, options = new_s3_url()
    on_s3 = FileManager().mount(url, name="z", kind="zarr", **options)
    assert _transcript(on_s3) == _transcript(MemoryStorageBackend())


def test_auto_compression_probes_the_bucket_and_leaves_no_probe_behind() -> None:
    url, options = new_s3_url("auto")
    zb = ZarrStorageBackend(url, storage_options=options, config=ZarrConfig(compression="auto"))
    zb.ensure_directory("p.zarr")
    names = ["p.zarr/A01_s1_w1.tif", "p.zarr/A01_s1_w2.tif"]
    zb.save_batch([plane(1), plane(2)], names)
    speed = zb.codecs.bandwidth()
    assert speed > 0
    record = zb.describe("p.zarr")["auto codec (image)"]
    assert f"at {round(speed / 1e6, 1)} MB/s" in record
    assert np.array_equal(np.asarray(zb.load(names[1])), plane(2))
    bucket = url.split("/")[2]
    assert not [k for k in shared_server().keys(bucket) if ".hcsvfs-tmp-" in k]  # the probe was deleted
