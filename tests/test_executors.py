"""Executors: a process pool and Dask give the in-process results, survive a killed worker, report failures."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import numpy as np
import pytest

from hcsvfs import FileManager
from hcsvfs.pipeline import (
    FunctionStep,
    LocalExecutor,
    MeasureCells,
    Pipeline,
    ProcessPoolExecutor,
    RetryPolicy,
    StepFailedError,
    StorageConfig,
)
from hcsvfs.pipeline.synthetic import plate_wells, write_synthetic_plate

WELLS = plate_wells(4)


@pytest.fixture(scope="module")
def plate(tmp_path_factory: pytest.TempPathFactory) -> str:
    folder = tmp_path_factory.mktemp("plate") / "in"
    write_synthetic_plate(FileManager(), str(folder), WELLS, fields=2, channels=2, shape=(128, 128), cells=20)
    return str(folder)


def demo_pipeline() -> Pipeline:
    return Pipeline([
        FunctionStep("gaussian_filter", sigma=2.0, channels=[1]),
        FunctionStep("threshold_otsu"),
        FunctionStep("binary_opening"),
        FunctionStep("label"),
        MeasureCells(),
    ])


@pytest.fixture(scope="module")
def reference(plate: str, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, object]:
    out = str(tmp_path_factory.mktemp("ref") / "plate.zarr")
    report = demo_pipeline().run(plate, out, executor=LocalExecutor())
    assert report.ok
    return out, report.table()


def same_plate(a: str, b: str) -> bool:
    fm = FileManager()
    names = fm.list_dir(a, "zarr")
    return names == fm.list_dir(b, "zarr") and len(names) == len(WELLS) * 2 and all(
        np.array_equal(np.asarray(fm.load(f"{a}/{n}", "zarr")), np.asarray(fm.load(f"{b}/{n}", "zarr"))) for n in names
    )


def kill_once(image, marker: str):
    """SIGKILL this worker the first time any worker gets here (the marker file says it happened)."""
    try:
        fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        return image
    os.close(fd)
    os.kill(os.getpid(), signal.SIGKILL)


def fail_once(image, marker: str):
    """Raise for the first image any worker sees (the marker file records that it happened), then pass."""
    if not os.path.exists(marker) and image.sum() > 0:
        Path(marker).write_text("x")
        raise ZeroDivisionError("bad pixel math")
    return image


def test_process_pool_matches_in_process(plate: str, reference, tmp_path: Path) -> None:
    ref_out, ref_table = reference
    out = str(tmp_path / "plate.zarr")
    seen: list[str] = []
    report = demo_pipeline().run(plate, out, executor=ProcessPoolExecutor(2), on_well=lambda w, r: seen.append(w))
    assert report.ok and sorted(seen) == WELLS
    assert same_plate(ref_out, out)
    assert report.table().sort_values(["well", "field"]).reset_index(drop=True).equals(ref_table)
    assert all(r.peak_rss > 0 for r in report.completed)


@pytest.mark.skipif(not os.path.isdir("/dev/shm"), reason="segments are listed through /dev/shm (Linux)")
def test_process_pool_with_shared_memory_intermediates_cleans_up(plate: str, reference, tmp_path: Path) -> None:
    out = str(tmp_path / "plate.zarr")
    executor = ProcessPoolExecutor(2, share_intermediates=True)
    report = demo_pipeline().run(plate, out, executor=executor)
    assert report.ok and same_plate(reference[0], out)
    token = executor.namespace.rsplit("-", 1)[-1]
    assert not [n for n in os.listdir("/dev/shm") if token in n]  # other sessions' namespaces may be there


def test_process_pool_worker_killed_mid_well_is_retried(plate: str, reference, tmp_path: Path) -> None:
    steps = list(demo_pipeline().steps)
    steps.insert(1, FunctionStep(kill_once, marker=str(tmp_path / "killed")))
    out = str(tmp_path / "plate.zarr")
    report = Pipeline(steps).run(plate, out, executor=ProcessPoolExecutor(2, share_intermediates=True),
                                 retry=RetryPolicy(max_attempts=3))
    assert (tmp_path / "killed").exists()  # a worker really died
    assert report.ok and same_plate(reference[0], out)
    assert max(r.attempts for r in report.completed) == 2


def test_process_pool_reports_the_well_and_step_that_raised(plate: str, tmp_path: Path) -> None:
    failing = FunctionStep(fail_once, marker=str(tmp_path / "m"))
    pipeline = Pipeline([FunctionStep("gaussian_filter", sigma=1), failing])
    storage = StorageConfig(output_backend="disk")
    report = pipeline.run(plate, str(tmp_path / "out"), executor=ProcessPoolExecutor(2), storage=storage,
                          retry=RetryPolicy(max_attempts=1))
    assert len(report.failures) == 1 and len(report.completed) == 3
    (well, err), = report.failures.items()
    assert isinstance(err, StepFailedError) and err.well == well and err.step == "1_fail_once"
    assert "ZeroDivisionError: bad pixel math" in str(err) and "fail_once" in err.traceback
    rerun = pipeline.run(plate, str(tmp_path / "out"), executor=ProcessPoolExecutor(2), storage=storage)
    assert rerun.ok and [r.well for r in rerun.completed] == [well] and len(rerun.skipped) == 3


def test_process_pool_retries_a_raising_well(plate: str, tmp_path: Path) -> None:
    pipeline = Pipeline([FunctionStep(fail_once, marker=str(tmp_path / "m"))])
    report = pipeline.run(plate, str(tmp_path / "out"), executor=ProcessPoolExecutor(2),
                          storage=StorageConfig(output_backend="disk"), retry=RetryPolicy(max_attempts=2))
    assert report.ok and sorted(r.attempts for r in report.completed) == [1, 1, 1, 2]


@pytest.fixture(scope="module")
def cluster():
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as c:
        yield c


def test_dask_local_cluster_matches_in_process(plate: str, reference, tmp_path: Path) -> None:
    pytest.importorskip("distributed")
    from hcsvfs.pipeline import DaskExecutor

    out = str(tmp_path / "plate.zarr")
    report = demo_pipeline().run(plate, out, executor=DaskExecutor(workers=2))
    assert report.ok and same_plate(reference[0], out)
    assert report.table().sort_values(["well", "field"]).reset_index(drop=True).equals(reference[1])


def test_dask_scheduler_address_survives_a_killed_worker(plate: str, reference, cluster, tmp_path: Path) -> None:
    from hcsvfs.pipeline import DaskExecutor

    steps = list(demo_pipeline().steps)
    steps.insert(1, FunctionStep(kill_once, marker=str(tmp_path / "killed")))
    out = str(tmp_path / "plate.zarr")
    report = Pipeline(steps).run(plate, out, executor=DaskExecutor(cluster.scheduler_address))
    assert (tmp_path / "killed").exists() and report.ok and same_plate(reference[0], out)


def test_dask_reports_the_well_and_step_that_raised(plate: str, cluster, tmp_path: Path) -> None:
    from hcsvfs.pipeline import DaskExecutor

    pipeline = Pipeline([FunctionStep(fail_once, marker=str(tmp_path / "m"))])
    report = pipeline.run(plate, str(tmp_path / "out"), executor=DaskExecutor(cluster.scheduler_address),
                          storage=StorageConfig(output_backend="disk"), retry=RetryPolicy(max_attempts=1))
    assert len(report.failures) == 1 and len(report.completed) == 3
    err = next(iter(report.failures.values()))
    assert isinstance(err, StepFailedError) and err.step == "0_fail_once" and "bad pixel math" in str(err)
