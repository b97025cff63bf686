"""Pipelines: the original design's example, cross-step I/O, memory types, streaming, reruns and bad steps."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage

from hcsvfs import FileManager
from hcsvfs.errors import StorageError
from hcsvfs.pipeline import (
    AbstractStep,
    FunctionStep,
    MeasureCells,
    Pipeline,
    ProcessingContext,
    RetryPolicy,
    StepFailedError,
    StepOutputError,
    StorageConfig,
    UnknownFunctionError,
)
from hcsvfs.pipeline.synthetic import SyntheticPlateBackend, plate_wells, write_synthetic_plate

WELLS = plate_wells(3)
DISK_OUT = StorageConfig(output_backend="disk")


@pytest.fixture(scope="module")
def plate(tmp_path_factory: pytest.TempPathFactory) -> str:
    folder = tmp_path_factory.mktemp("plate") / "in"
    write_synthetic_plate(FileManager(), str(folder), WELLS, fields=2, channels=2, shape=(128, 128), cells=25)
    return str(folder)


def design_example() -> Pipeline:
    return Pipeline([
        FunctionStep(func="gaussian_filter", sigma=2.0, channels=[1]),
        FunctionStep(func="threshold_otsu"),
        FunctionStep(func="binary_opening"),
        FunctionStep(func="label"),
    ])


def test_design_example_gives_the_labels_scipy_gives(plate: str, tmp_path: Path) -> None:
    out = str(tmp_path / "plate.zarr")
    report = design_example().run(plate, out)
    assert report.ok and [r.well for r in report.completed] == WELLS
    fm = FileManager()
    from skimage.filters import threshold_otsu

    for well in WELLS:
        for field in (1, 2):
            raw = fm.load(f"{plate}/Plate1_{well}_s{field}_w1.tif", "disk")
            smooth = ndimage.gaussian_filter(raw, sigma=2.0)
            expected = ndimage.label(ndimage.binary_opening(smooth > threshold_otsu(smooth)))[0]
            got = np.asarray(fm.load(f"{out}/{well}_s{field}_w1_z001_t001.tif", "zarr"))
            assert np.array_equal(got, expected)
            assert expected.max() > 5  # the synthetic blobs were found
    assert sorted(fm.list_dir(out, "zarr")) == sorted(
        f"{w}_s{f}_w1_z001_t001.tif" for w in WELLS for f in (1, 2)
    )


def test_output_plate_validates_as_ngff(plate: str, tmp_path: Path) -> None:
    out = str(tmp_path / "plate.zarr")
    design_example().run(plate, out, wells=WELLS[:2])
    backend = FileManager().get_backend("zarr")
    assert backend.validate(out)  # raises on invalid NGFF (ome-zarr-models)
    assert sorted(backend.open_plate(out).wells) == WELLS[:2]


def test_segmentation_as_labels_over_the_raw_plate(plate: str, tmp_path: Path) -> None:
    """labels="cells": the raw input is the plate's image (both channels), the segmentation its NGFF label image."""
    import tifffile

    out = str(tmp_path / "plate.zarr")
    design_example().run(plate, out, wells=WELLS[:1], labels="cells")
    backend = FileManager().get_backend("zarr")
    info = backend.open_plate(out)
    well = WELLS[0]
    raw = backend.load(f"{out}/{well}_s2_w2_z001_t001.tif", materialize=True)
    assert np.array_equal(raw, tifffile.imread(Path(plate) / f"Plate1_{well}_s2_w2.tif"))  # the input, not the output
    labels = np.asarray(info.label(well, 1, "cells"))
    assert labels.shape == (1, 1, 1, 128, 128) and labels.dtype == np.int32 and labels.max() > 3  # one channel of ids
    assert info.labels(well, 0) == ["cells"]
    assert backend.validate(out)


def test_outputs_are_written_with_the_auto_codec_unless_one_is_named(plate: str, tmp_path: Path) -> None:
    """The pipeline's zarr output decides its codec by a measured trial per plate (kind), recorded in the plate."""
    out = str(tmp_path / "plate.zarr")
    design_example().run(plate, out, wells=WELLS[:1], labels="cells")
    records = json.loads((Path(out) / "zarr.json").read_text())["attributes"]["hcsvfs"]["compression"]
    assert sorted(records) == ["image", "labels"] and records["labels"]["goal"] == "balanced"
    fixed = str(tmp_path / "fixed.zarr")
    design_example().run(plate, fixed, wells=WELLS[:1], storage=StorageConfig(output_compression="zstd"))
    assert "compression" not in json.loads((Path(fixed) / "zarr.json").read_text())["attributes"]["hcsvfs"]
    assert "zstd" in FileManager().get_backend("zarr").describe(f"{fixed}/{WELLS[0]}_s1_w1_z001_t001.tif")["codec"]
    with pytest.raises(ValueError, match="output_compression 'brotli'.*auto"):
        StorageConfig(output_compression="brotli")


def test_measurements_read_labels_from_memory_and_intensity_from_disk(plate: str, tmp_path: Path) -> None:
    report = Pipeline(list(design_example().steps) + [MeasureCells()]).run(plate, str(tmp_path / "p"), storage=DISK_OUT)
    table = report.table()
    assert list(table.columns) == [
        "well", "field", "t", "cells", "cell_area_px", "mean_intensity_w1", "mean_intensity_w2"
    ]
    assert len(table) == len(WELLS) * 2 and (table.cells > 5).all()
    raw = FileManager().load(f"{plate}/Plate1_A01_s1_w2.tif", "disk")
    labels = FileManager().load(f"{tmp_path}/p/A01_s1_w1_z001_t001.tif", "disk")
    row = table[(table.well == "A01") & (table.field == 1)].iloc[0]
    assert row.cells == len(np.unique(labels[labels > 0]))
    assert row.mean_intensity_w2 == pytest.approx(raw[labels > 0].mean())


def test_torch_step_gets_torch_tensors_and_the_next_step_numpy(plate: str, tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    seen = []

    def invert(t):
        seen.append(type(t))
        return 65535 - t.to(torch.int32)

    pipeline = Pipeline([FunctionStep(invert, memory_type="torch", channels=[2]), FunctionStep("max_projection")])
    report = pipeline.run(plate, str(tmp_path / "p"), storage=DISK_OUT, wells=["A01"])
    assert report.ok and set(seen) == {torch.Tensor}
    raw = FileManager().load(f"{plate}/Plate1_A01_s2_w2.tif", "disk")
    got = FileManager().load(f"{tmp_path}/p/A01_s2_w2_z001_t001.tif", "disk")
    assert np.array_equal(got, 65535 - raw.astype(np.int32))


class SaveSideOutput(AbstractStep):
    """A user step with special I/O: writes its own file to disk and passes the images on unchanged."""

    name = "side"

    def execute(self, context: ProcessingContext) -> None:
        keys = [k for k, _ in context.previous_images()]
        context.filemanager.save({"well": context.well, "images": len(keys)},
                                 f"{context.output_path}.side/{context.well}.json", "disk")


def test_abstract_step_can_do_its_own_io(plate: str, tmp_path: Path) -> None:
    out = str(tmp_path / "p")
    report = Pipeline([FunctionStep("gaussian_filter", sigma=1), SaveSideOutput()]).run(plate, out, storage=DISK_OUT)
    assert report.ok
    assert json.loads(Path(f"{out}.side/A02.json").read_text()) == {"well": "A02", "images": 4}


def test_intermediates_of_a_finished_well_are_freed(plate: str, tmp_path: Path) -> None:
    storage = StorageConfig(output_backend="disk", spill_dir=str(tmp_path))
    memory = storage.filemanager().get_backend("memory")  # held here, so the run leaves it open
    wells_seen = []
    design_example().run(plate, str(tmp_path / "p"), storage=storage, on_well=lambda w, r: wells_seen.append(w))
    assert len(wells_seen) == len(WELLS) and memory.list_files(".", recursive=True) == []
    storage.close()


def test_a_run_closes_the_filemanager_it_built(plate: str, tmp_path: Path) -> None:
    """The overlay's thread and spill folder end with the run; a worker keeps at most four FileManagers."""
    from hcsvfs.pipeline.pipeline import _FILEMANAGERS

    storage = StorageConfig(output_backend="disk", budget="64MiB", spill_dir=str(tmp_path / "spill"))
    (tmp_path / "spill").mkdir()
    threads_before = {t.name for t in threading.enumerate()}
    design_example().run(plate, str(tmp_path / "p"), storage=storage)
    assert storage not in _FILEMANAGERS
    assert list((tmp_path / "spill").iterdir()) == []  # the spill folder is gone
    deadline = time.monotonic() + 5
    while "hcsvfs-overlay-spill" in {t.name for t in threading.enumerate()} - threads_before and time.monotonic() < deadline:
        time.sleep(0.01)
    assert "hcsvfs-overlay-spill" not in {t.name for t in threading.enumerate()} - threads_before
    configs = [StorageConfig(output_backend="disk", budget=f"{n + 1}MiB", spill_dir=str(tmp_path / "spill")) for n in range(6)]
    overlays = [c.filemanager().get_backend("overlay") for c in configs]  # a long-lived worker, plate after plate
    assert len(_FILEMANAGERS) <= 4 and sum(o.closed for o in overlays) >= 2 and not overlays[-1].closed
    assert len(list((tmp_path / "spill").iterdir())) <= 4
    for c in configs:
        c.close()
    assert list((tmp_path / "spill").iterdir()) == []


def test_each_well_reports_its_own_spills(plate: str, tmp_path: Path) -> None:
    """The overlay lives from well to well, so its counter is the process's: a well reports its own share,
    and the shares add up to the overlay's total (summing cumulative counts overstated it quadratically)."""
    storage = StorageConfig(output_backend="disk", budget="128KiB", spill_dir=str(tmp_path))  # a few 128^2 images
    overlay = storage.filemanager().get_backend("overlay")  # held here, so the run leaves it open
    try:
        report = design_example().run(plate, str(tmp_path / "out"), storage=storage)
        total = overlay.stats()["spill_count"]
        assert report.ok and total > 0 and all(r.spills > 0 for r in report.completed)
        assert sum(r.spills for r in report.completed) == total
    finally:
        storage.close()


def test_a_worker_keeps_one_filemanager_for_a_config_with_backend_factories() -> None:
    """Each well's job is unpickled anew in a worker; a partial factory compares by identity, yet the
    worker must find the FileManager it built for the previous well (one overlay, one store connection)."""
    import functools
    import pickle

    from hcsvfs.pipeline.pipeline import _FILEMANAGERS

    config = StorageConfig(input_backend="synthetic",
                           backends=(("synthetic", functools.partial(SyntheticPlateBackend, "plate", ("A01",))),))
    first, second = pickle.loads(pickle.dumps(config)), pickle.loads(pickle.dumps(config))
    assert first != second  # what a worker sees, well after well
    try:
        assert first.filemanager() is second.filemanager() and second in _FILEMANAGERS
    finally:
        first.close()
    assert second not in _FILEMANAGERS
    unpicklable = StorageConfig(backends=(("mine", lambda: SyntheticPlateBackend("p", ("A01",))),))
    try:  # a lambda never leaves the process: the config itself is the key
        assert unpicklable.filemanager() is unpicklable.filemanager()
    finally:
        unpicklable.close()


# ---------------------------------------------------------------- a plate made on load
def test_the_synthetic_plate_lists_and_loads_imagexpress_planes_and_refuses_writes() -> None:
    import pickle

    from hcsvfs.errors import PathNotFoundError, ReadOnlyError

    b = SyntheticPlateBackend("in/plate", ["A01", "B02"], fields=2, channels=3, shape=(64, 64), cells=5)
    assert b.list_dir(".") == ["in"] and b.list_dir("in") == ["plate"]
    names = b.list_dir("in/plate")
    assert len(names) == 12 and names[:3] == ["Plate1_A01_s1_w1.tif", "Plate1_A01_s1_w2.tif", "Plate1_A01_s1_w3.tif"]
    assert b.plate_bytes == 12 * 64 * 64 * 2 and b.stat("in/plate/" + names[0]).size == 64 * 64 * 2
    plane = b.load("in/plate/Plate1_B02_s2_w1.tif")
    assert plane.dtype == np.uint16 and plane.shape == (64, 64) and plane.max() > plane.min()
    plane[:] = 0  # a copy: the next load is untouched
    again = pickle.loads(pickle.dumps(b)).load("in/plate/Plate1_B02_s2_w1.tif")
    assert again.max() > 0 and np.array_equal(again, b.load("in/plate/Plate1_B02_s2_w1.tif"))
    for bad in ("in/plate/Plate1_C01_s1_w1.tif", "in/plate/x.tif", "elsewhere/Plate1_A01_s1_w1.tif"):
        with pytest.raises(PathNotFoundError, match="synthetic plate"):
            b.load(bad)
    with pytest.raises(IsADirectoryError):
        b.load("in/plate")
    with pytest.raises(NotADirectoryError):
        b.list_dir("in/plate/" + names[0])
    for write in (lambda: b.save(plane, "in/plate/new.tif"), lambda: b.delete("in/plate/" + names[0]),
                  lambda: b.ensure_directory("in/other")):
        with pytest.raises(ReadOnlyError, match="read-only"):
            write()
    b.ensure_directory("in/plate")  # already there: nothing to write
    with pytest.raises(ValueError, match="bank"):
        SyntheticPlateBackend("p", ["A01"], bank=0)


def test_a_pipeline_streams_a_synthetic_plate_on_two_workers(tmp_path: Path) -> None:
    import functools

    from hcsvfs.pipeline import LocalExecutor, ProcessPoolExecutor

    source = functools.partial(SyntheticPlateBackend, "plate", ["A01", "A02", "B01"], fields=2, channels=2,
                               shape=(128, 128), cells=20)
    storage = StorageConfig(input_backend="synthetic", backends=(("synthetic", source),), budget="32MiB",
                            spill_dir=str(tmp_path))
    pipeline = Pipeline([*design_example().steps, MeasureCells()])
    local = pipeline.run("plate", str(tmp_path / "local.zarr"), storage=storage, executor=LocalExecutor())
    pool = pipeline.run("plate", str(tmp_path / "pool.zarr"), storage=storage, executor=ProcessPoolExecutor(2))
    assert local.ok and pool.ok and len(pool.completed) == 3 and local.table().cells.sum() > 0
    key = ["well", "field"]
    assert pool.table().sort_values(key).reset_index(drop=True).equals(local.table().sort_values(key).reset_index(drop=True))


def test_rerun_skips_complete_wells_and_rerun_true_redoes_them(plate: str, tmp_path: Path) -> None:
    out = str(tmp_path / "p")
    calls: list[int] = []

    def count(img):
        calls.append(1)
        return img

    pipeline = Pipeline([FunctionStep(count)])
    first = pipeline.run(plate, out, storage=DISK_OUT, wells=["A01"])
    second = pipeline.run(plate, out, storage=DISK_OUT)
    assert [r.well for r in first.completed] == ["A01"] and second.skipped == ["A01"]
    assert [r.well for r in second.completed] == ["A02", "A03"] and len(calls) == 12
    third = pipeline.run(plate, out, storage=DISK_OUT, rerun=True)
    assert len(third.completed) == 3 and not third.skipped


def test_unknown_step_name_fails_at_construction_with_close_matches() -> None:
    with pytest.raises(UnknownFunctionError, match="did you mean 'binary_opening'"):
        FunctionStep("binary_openning")


def _boom(img):
    raise RuntimeError("boom in user code")


def test_a_step_that_raises_names_the_well_and_the_step(plate: str, tmp_path: Path) -> None:
    pipeline = Pipeline([FunctionStep("gaussian_filter", sigma=1), FunctionStep(_boom)])
    report = pipeline.run(plate, str(tmp_path / "p"), storage=DISK_OUT, retry=RetryPolicy(max_attempts=1))
    assert set(report.failures) == set(WELLS) and not report.completed
    err = report.failures["A02"]
    assert isinstance(err, StepFailedError) and err.well == "A02" and err.step == "1__boom"
    assert "boom in user code" in str(err) and "_boom" in err.traceback
    with pytest.raises(StorageError, match="3 well\\(s\\) failed: A01: well A01 failed in step '1__boom'"):
        report.raise_for_failures()
    assert not Path(f"{tmp_path}/p.wells/A01.json").exists()  # a failed well is not marked complete


@pytest.mark.parametrize(
    "func, message",
    [
        (lambda img: img[:10], "shape \\(10, 128\\).*\\(128, 128\\)"),
        (lambda img: img.astype(complex), "dtype complex128"),
        (lambda img: "not an image", "a str, not an image array"),
    ],
)
def test_output_the_plate_cannot_store_is_refused(plate: str, tmp_path: Path, func, message: str) -> None:
    out = str(tmp_path / "plate.zarr")
    report = Pipeline([FunctionStep(func, name="bad")]).run(plate, out, wells=["A01"], retry=RetryPolicy(1))
    err = report.failures["A01"]
    assert isinstance(err, StepOutputError) and "step '0_bad'" in str(err) and "well A01" in str(err)
    assert re.search(message, str(err))
    assert not FileManager().exists(out, "zarr") or FileManager().list_dir(out, "zarr") == []


def test_pipeline_rejects_non_steps() -> None:
    with pytest.raises(TypeError, match="AbstractStep"):
        Pipeline([lambda x: x])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="at least one step"):
        Pipeline([])


_RSS_SCRIPT = """
import json, sys, psutil
from hcsvfs.pipeline import FunctionStep, Pipeline, StorageConfig
from hcsvfs.pipeline.pipeline import peak_rss
if __name__ == "__main__":
    plate, out, budget = sys.argv[1], sys.argv[2], int(sys.argv[3])
    pipeline = Pipeline([FunctionStep("gaussian_filter", sigma=2.0), FunctionStep("threshold_otsu"),
                         FunctionStep("binary_opening"), FunctionStep("label")])
    storage = StorageConfig(output_backend="disk", budget=budget)
    storage.filemanager()
    import skimage.filters, skimage.morphology, scipy.ndimage, tifffile  # imports are not data: load them first
    before = psutil.Process().memory_info().rss
    report = pipeline.run(plate, out, storage=storage)
    report.raise_for_failures()
    peak = peak_rss()  # VmHWM: ru_maxrss would include pytest's own peak (it survives fork+exec)
    print(json.dumps({"before": before, "peak": peak, "spills": sum(r.spills for r in report.completed)}))
"""


def test_plate_larger_than_the_budget_streams_in_bounded_memory(tmp_path: Path) -> None:
    wells = plate_wells(6)
    write_synthetic_plate(FileManager(), str(tmp_path / "in"), wells, fields=4, channels=2, shape=(1024, 1024))
    plate_bytes = sum(f.stat().st_size for f in (tmp_path / "in").iterdir())
    budget = 16 << 20
    margin = 64 << 20  # one image's float64 temporaries, scipy/skimage buffers, allocator slack
    script = tmp_path / "run.py"
    script.write_text(_RSS_SCRIPT)
    proc = subprocess.run([sys.executable, str(script), str(tmp_path / "in"), str(tmp_path / "out"), str(budget)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    growth = got["peak"] - got["before"]
    assert plate_bytes > budget + margin and got["spills"] > 0
    assert growth < budget + margin, f"peak RSS grew by {growth >> 20} MiB for a {plate_bytes >> 20} MiB plate"


def test_asking_for_wells_the_plate_lacks_is_an_error(plate: str, tmp_path: Path) -> None:
    from hcsvfs.pipeline import IngestError

    with pytest.raises(IngestError, match=r"\['H12'\] are not in plate"):
        design_example().run(plate, str(tmp_path / "p"), wells=["A01", "H12"], storage=DISK_OUT)
