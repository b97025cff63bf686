"""Executors: a process pool and Dask give the in-process results, survive a killed worker, report failures."""

from __future__ import annotations

import os
import signal
import sys
import time
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


# ---------------------------------------------------------------- started executors: warm workers across runs
def note_worker(image, folder: str, module: str):
    """Record this worker's pid, and whether ``module`` was already imported when its first image came."""
    Path(folder, f"{os.getpid()}.{'preloaded' if module in sys.modules else 'cold'}").touch()
    return image


def _workers_seen(folder: Path) -> dict[int, str]:
    return {int(p.name.split(".")[0]): p.name.split(".")[1] for p in folder.iterdir()}


def test_a_started_pool_keeps_its_preloaded_workers_from_run_to_run(plate: str, reference, tmp_path: Path) -> None:
    seen = tmp_path / "seen"
    seen.mkdir()
    # colorsys: a module nothing in hcsvfs imports, so only the preload can have loaded it
    steps = [FunctionStep(note_worker, folder=str(seen), module="colorsys"), *demo_pipeline().steps]
    with ProcessPoolExecutor(2, preload=("colorsys",)) as executor:
        assert executor.started
        first = Pipeline(steps).run(plate, str(tmp_path / "a.zarr"), executor=executor)
        assert executor.started  # the run did not close what the caller started
        pids = set(_workers_seen(seen))
        second = Pipeline(steps).run(plate, str(tmp_path / "b.zarr"), executor=executor)
    assert first.ok and second.ok and same_plate(reference[0], str(tmp_path / "b.zarr"))
    assert set(_workers_seen(seen)) == pids and 1 <= len(pids) <= 2  # the same processes served both runs
    assert set(_workers_seen(seen).values()) == {"preloaded"}
    assert not executor.started
    import psutil

    assert not [pid for pid in pids if psutil.pid_exists(pid)]  # close() stopped and reaped them


def test_a_run_closes_the_pool_it_started_itself(plate: str, tmp_path: Path) -> None:
    executor = ProcessPoolExecutor(2)
    report = demo_pipeline().run(plate, str(tmp_path / "p.zarr"), executor=executor)
    assert report.ok and not executor.started


def test_a_started_pool_replaces_a_killed_worker_and_serves_the_next_run(plate: str, reference, tmp_path: Path) -> None:
    steps = list(demo_pipeline().steps)
    steps.insert(1, FunctionStep(kill_once, marker=str(tmp_path / "killed")))
    with ProcessPoolExecutor(2) as executor:
        first = Pipeline(steps).run(plate, str(tmp_path / "a.zarr"), executor=executor, retry=RetryPolicy(max_attempts=3))
        assert (tmp_path / "killed").exists() and first.ok and executor.started
        second = demo_pipeline().run(plate, str(tmp_path / "b.zarr"), executor=executor)
    assert second.ok and same_plate(reference[0], str(tmp_path / "b.zarr"))


def test_a_module_that_cannot_be_preloaded_is_reported_and_the_run_goes_on(plate: str, tmp_path: Path) -> None:
    executor = ProcessPoolExecutor(2, preload=("hcsvfs_no_such_module", "colorsys"))
    report = demo_pipeline().run(plate, str(tmp_path / "p.zarr"), executor=executor)
    assert report.ok and len(report.completed) == len(WELLS)


def test_preload_logs_what_it_cannot_import(caplog: pytest.LogCaptureFixture) -> None:
    from hcsvfs.pipeline.executors.base import preload

    preload(["hcsvfs_no_such_module", "colorsys"])
    assert "colorsys" in sys.modules
    assert "cannot import hcsvfs_no_such_module" in caplog.text


def test_a_started_dask_executor_keeps_its_cluster_from_run_to_run(plate: str, reference, tmp_path: Path) -> None:
    pytest.importorskip("distributed")
    from hcsvfs.pipeline import DaskExecutor

    with DaskExecutor(workers=2, preload=("colorsys",)) as executor:
        cluster = executor._cluster
        first = demo_pipeline().run(plate, str(tmp_path / "a.zarr"), executor=executor)
        second = demo_pipeline().run(plate, str(tmp_path / "b.zarr"), executor=executor)
        assert executor.started and executor._cluster is cluster
        # colorsys: imported by nothing but the preload, which runs in the background on each worker
        deadline = time.monotonic() + 30
        while not all(executor._client.run(_has_colorsys).values()) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert all(executor._client.run(_has_colorsys).values()) and len(executor._client.run(_has_colorsys)) == 2
        if "MALLOC_TRIM_THRESHOLD_" not in os.environ:  # Dask's nannies would set it: 30-45 % slower wells
            assert set(executor._client.run(os.environ.get, "MALLOC_TRIM_THRESHOLD_").values()) == {None}
    assert first.ok and second.ok and same_plate(reference[0], str(tmp_path / "b.zarr"))
    assert not executor.started and cluster.status.name == "closed"


def _has_colorsys() -> bool:
    return "colorsys" in sys.modules


def test_a_started_pool_whose_idle_worker_died_serves_the_next_run(plate: str, reference, tmp_path: Path) -> None:
    """The OOM killer may take a worker while the pool waits between runs: the next run starts a new pool."""
    import psutil

    with ProcessPoolExecutor(2) as executor:
        first = demo_pipeline().run(plate, str(tmp_path / "a.zarr"), executor=executor)
        workers = list(executor._pool._processes)  # the pool's own processes (children() has mp's resource tracker too)
        assert first.ok and workers
        victim = psutil.Process(workers[0])
        victim.kill()
        victim.wait(10)
        second = demo_pipeline().run(plate, str(tmp_path / "b.zarr"), executor=executor)
        assert workers[0] not in executor._pool._processes  # a new pool served the second run
    assert second.ok and max(r.attempts for r in second.completed) == 1
    assert same_plate(reference[0], str(tmp_path / "b.zarr"))
