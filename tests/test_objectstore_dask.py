"""Multi-node over an object store: a Dask LocalCluster (2 worker processes) runs a plate whose inputs
are read from, and whose OME-Zarr output is written to, the local moto S3 server. No shared local disk:
every worker builds its own backends from URLs, credentials come from the environment."""

from __future__ import annotations

import functools
import os
from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage

pytest.importorskip("distributed", reason="the Dask executor needs dask.distributed")

from hcsvfs import FileManager  # noqa: E402
from hcsvfs.backends.objectstore import ObjectStoreBackend  # noqa: E402
from hcsvfs.backends.zarr import ZarrStorageBackend  # noqa: E402
from hcsvfs.pipeline import FunctionStep, Pipeline, StorageConfig  # noqa: E402
from hcsvfs.pipeline.executors.dask import DaskExecutor  # noqa: E402
from hcsvfs.pipeline.synthetic import plate_wells, write_synthetic_plate  # noqa: E402
from s3_server import shared_server  # noqa: E402

pytestmark = [pytest.mark.s3, pytest.mark.slow]

WELLS = plate_wells(4)


@pytest.mark.timeout(240)
def test_dask_cluster_runs_a_plate_from_s3_to_ome_zarr_on_s3(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from ome_zarr_models.v05 import HCS

    server = shared_server()
    options = server.storage_options()
    url_in, url_out = f"s3://{server.new_bucket()}/raw", f"s3://{server.new_bucket()}/results"
    monkeypatch.chdir(tmp_path)  # anything written to a local disk by mistake would land here

    # Inputs go to S3 first, through the object-store backend.
    source = FileManager()
    source.mount(url_in, name="s3in", **options)
    write_synthetic_plate(source, "plate", WELLS, fields=2, channels=2, shape=(96, 96), cells=12, backend="s3in")

    # Workers rebuild these from plain values (no process shares an object with another).
    storage = StorageConfig(
        input_backend="s3in",
        output_backend="s3zarr",
        state_backend="s3state",
        backends=(
            ("s3in", functools.partial(ObjectStoreBackend, url_in, **options)),
            ("s3zarr", functools.partial(ZarrStorageBackend, url_out, storage_options=options)),
            ("s3state", functools.partial(ObjectStoreBackend, url_out, **options)),
        ),
    )
    pipeline = Pipeline([FunctionStep("gaussian_filter", sigma=1.5, channels=[1]), FunctionStep("threshold_otsu"),
                         FunctionStep("label")], name="s3dask")
    report = pipeline.run("plate", "plate.zarr", executor=DaskExecutor(workers=2), storage=storage)
    assert report.ok, report.failures
    assert sorted(r.well for r in report.completed) == WELLS
    assert os.listdir(tmp_path) == []  # nothing written to local disk

    # The output on S3 is a valid NGFF plate, read back straight from the bucket.
    import zarr
    from zarr.storage import FsspecStore

    store = FsspecStore.from_url(f"{url_out}/plate.zarr", storage_options=options, read_only=True)
    hcs = HCS.from_zarr(zarr.open_group(store, mode="r"))
    assert sorted(w.path for w in hcs.attributes.ome.plate.wells) == sorted(f"{w[0]}/{int(w[1:])}" for w in WELLS)

    # And it holds what scipy gives on the inputs (checked for one field of every well).
    from skimage.filters import threshold_otsu

    out = ZarrStorageBackend(url_out, storage_options=options)
    for well in WELLS:
        raw = source.load(f"plate/Plate1_{well}_s1_w1.tif", "s3in")
        smooth = ndimage.gaussian_filter(raw, sigma=1.5)
        expected = ndimage.label(smooth > threshold_otsu(smooth))[0]
        assert np.array_equal(np.asarray(out.load(f"plate.zarr/{well}_s1_w1_z001_t001.tif")), expected), well

    # A rerun finds every well complete (markers on S3) and writes nothing.
    again = pipeline.run("plate", "plate.zarr", executor=DaskExecutor(workers=2), storage=storage)
    assert again.ok and sorted(again.skipped) == WELLS and again.completed == []
