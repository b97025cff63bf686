"""Metrics: exact counts and bytes for scripted operations on every backend, monotone histograms, thread safety."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rich.console import Console

from backends_under_test import BACKENDS
from hcsvfs import FileManager, StorageRegistry
from hcsvfs.metrics import Metrics, emit
from hcsvfs.metrics.histogram import LATENCY_BOUNDS, Histogram
from hcsvfs.metrics.wiring import ENV_VAR


@pytest.fixture(params=sorted(BACKENDS))
def fm_on(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[FileManager, str]:
    reg = StorageRegistry(discover=False)
    reg.register_backend("under_test", BACKENDS[request.param](tmp_path, request))
    return FileManager(reg, metrics=True), "under_test"


def test_scripted_sequence_counts_and_bytes_exactly(fm_on: tuple[FileManager, str]) -> None:
    fm, b = fm_on
    a = np.arange(64, dtype=np.uint16).reshape(8, 8)  # 128 bytes
    c = np.ones((4, 4), dtype=np.float64)  # 128 bytes
    fm.save(a, "d/a.npy", b)
    fm.save_batch([a, c], ["d/b.npy", "d/c.npy"], b)
    loaded = fm.load("d/a.npy", b)
    assert np.array_equal(np.asarray(loaded), a)
    fm.load_batch(["d/b.npy", "d/c.npy"], b)
    # A lazy view (zarr) has read nothing yet when load returns: it counts 0 bytes, an in-memory array its size.
    per_load = 128 if isinstance(loaded, np.ndarray) else 0
    with pytest.raises(FileExistsError):
        fm.save(a, "d/a.npy", b)
    with pytest.raises(FileNotFoundError):
        fm.load("d/missing.npy", b)
    assert fm.exists("d/a.npy", b)
    assert len(fm.list_files("d", b)) == 3
    fm.delete("d/c.npy", b)

    ops = fm.metrics.snapshot()["operations"][b]
    assert ops["save"]["count"] == 2 and ops["save"]["errors"] == 1 and ops["save"]["bytes"] == 128
    assert ops["save"]["error_types"] == {"PathExistsError": 1}
    assert ops["save_batch"] == ops["save_batch"] | {"count": 1, "errors": 0, "bytes": 256}
    assert ops["load"]["count"] == 2 and ops["load"]["errors"] == 1 and ops["load"]["bytes"] == per_load
    assert ops["load_batch"]["bytes"] == 2 * per_load
    assert (ops["exists"]["count"], ops["list_files"]["count"], ops["delete"]["count"]) == (1, 1, 1)
    assert sum(o["count"] for o in ops.values()) == 9


def test_histograms_are_monotone_and_percentiles_ordered(fm_on: tuple[FileManager, str]) -> None:
    fm, b = fm_on
    for i in range(50):
        fm.save(np.full((16, 16), i, dtype=np.uint8), f"h/{i}.npy", b)
    st_ = fm.metrics.snapshot()["operations"][b]["save"]
    counts = [c for _, c in st_["latency_histogram"]]
    edges = [e for e, _ in st_["latency_histogram"]]
    assert counts == sorted(counts) and counts[-1] == 50
    assert edges == sorted(edges)
    assert st_["min_s"] <= st_["p50_s"] <= st_["p95_s"] <= st_["p99_s"] <= st_["max_s"]


def test_disabled_metrics_record_nothing(tmp_path: Path) -> None:
    off = FileManager(metrics=False)
    assert off.metrics is None and off.observer is None
    m = Metrics(enabled=False)
    fm = FileManager(metrics=m)
    fm.save(np.zeros(4), "x", "memory")
    emit("zarr", "encode:zstd", seconds=1.0, nbytes=10)
    snap = m.snapshot()
    assert snap["operations"] == {} and snap["events"] == {}
    m.enabled = True
    fm.save(np.zeros(4), "y", "memory")
    assert m.snapshot()["operations"]["memory"]["save"]["count"] == 1


def test_emit_reaches_live_collectors_only() -> None:
    m1, m2 = Metrics(), Metrics()
    emit("zarr", "encode:zstd", seconds=0.5, nbytes=1000)
    m2.enabled = False
    emit("zarr", "encode:zstd", seconds=0.25, nbytes=500, count=2)
    assert m1.snapshot()["events"]["zarr"]["encode:zstd"] == {"count": 3, "bytes": 1500, "seconds": 0.75}
    assert m2.snapshot()["events"]["zarr"]["encode:zstd"]["count"] == 1


def test_threads_lose_no_counts() -> None:
    m = Metrics()

    def work() -> None:
        for _ in range(2000):
            m.record("memory", "save", 1e-5, 10, None)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    st_ = m.snapshot()["operations"]["memory"]["save"]
    assert st_["count"] == 16000 and st_["bytes"] == 160000
    assert st_["latency_histogram"][-1][1] == 16000


def test_backend_stats_are_included_for_used_backends() -> None:
    from hcsvfs.backends import MemoryStorageBackend

    class WithStats(MemoryStorageBackend):
        def stats(self) -> dict[str, int]:
            return {"spills": 3, "bytes_in_memory": 2048}

    reg = StorageRegistry(discover=False)
    reg.register_backend("overlay", WithStats())
    reg.register_backend("memory", MemoryStorageBackend())
    fm = FileManager(reg, metrics=True)
    assert "overlay" not in fm.metrics.snapshot()["sources"]  # not used yet
    fm.save(np.zeros(3), "a", "overlay")
    fm.save(np.zeros(3), "a", "memory")
    assert fm.metrics.snapshot()["sources"] == {"overlay": {"spills": 3, "bytes_in_memory": 2048}}


def test_broken_source_does_not_hide_counters() -> None:
    m = Metrics()
    m.add_source("flaky", lambda: 1 / 0)  # type: ignore[arg-type,return-value]
    m.record("disk", "save", 0.01, 5, None)
    snap = m.snapshot()
    assert "ZeroDivisionError" in snap["sources"]["flaky"]["error"]
    assert snap["operations"]["disk"]["save"]["count"] == 1


def test_report_renders_table_and_json_dump_round_trips(tmp_path: Path) -> None:
    m = Metrics()
    m.record("disk", "save", 0.002, 4096, None)
    m.record("disk", "load", 0.001, 0, FileNotFoundError("x"))
    console = Console(record=True, width=140)
    console.print(m.report())
    text = console.export_text()
    assert "disk" in text and "save" in text and "4.0 KiB" in text
    out = tmp_path / "run.json"
    m.to_json(out)
    data = json.loads(out.read_text())
    assert data["operations"]["disk"]["load"]["errors"] == 1
    assert data["operations"]["disk"]["save"]["bytes"] == 4096


def test_metrics_and_observer_together_are_refused() -> None:
    with pytest.raises(ValueError, match="either metrics= or observer="):
        FileManager(metrics=True, observer=Metrics())
    with pytest.raises(TypeError, match="metrics= takes"):
        FileManager(metrics="yes")  # type: ignore[arg-type]


def test_env_var_turns_metrics_on_and_dumps_at_exit(tmp_path: Path) -> None:
    import subprocess
    import sys

    out = tmp_path / "run.json"
    code = "import numpy as np; from hcsvfs import FileManager; fm=FileManager(); fm.save(np.zeros(8), 'a', 'memory')"
    env = {**__import__("os").environ, ENV_VAR: str(out)}
    subprocess.run([sys.executable, "-c", code], check=True, env=env, timeout=60)
    assert json.loads(out.read_text())["operations"]["memory"]["save"]["bytes"] == 64


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(min_value=1e-6, max_value=50.0), min_size=1, max_size=200))
def test_histogram_quantiles_are_close_and_ordered(values: list[float]) -> None:
    h = Histogram(LATENCY_BOUNDS)
    for v in values:
        h.add(v)
    qs = [h.quantile(q) for q in (0.0, 0.5, 0.95, 0.99, 1.0)]
    assert qs == sorted(qs)
    assert min(values) <= qs[0] and qs[-1] == max(values)
    exact = sorted(values)[max(0, int(np.ceil(0.5 * len(values))) - 1)]
    # within one bucket (factor 2**0.25) of the exact median; the buckets start at 1 us
    assert exact / 1.19 - 1e-12 <= qs[1] <= exact * 1.19 + 1e-12 or len(values) < 3


def test_prometheus_exposition_has_exact_counts() -> None:
    pytest.importorskip("prometheus_client")
    from prometheus_client.parser import text_string_to_metric_families

    from hcsvfs.metrics.prometheus import exposition

    m = Metrics()
    for s in (1e-4, 2e-3, 0.5):
        m.record("disk", "save", s, 100, None)
    m.record("disk", "save", 0.1, 0, PermissionError())
    m.add_source("overlay", lambda: {"spills": 2, "mode": "lru"})
    fams = {f.name: f for f in text_string_to_metric_families(exposition(m).decode())}
    assert fams["hcsvfs_operations"].samples[0].value == 4
    assert fams["hcsvfs_operation_errors"].samples[0].value == 1
    assert fams["hcsvfs_bytes"].samples[0].value == 300
    buckets = [s for s in fams["hcsvfs_operation_seconds"].samples if s.name.endswith("_bucket")]
    values = [s.value for s in buckets]
    assert values == sorted(values) and values[-1] == 4
    le = {float(s.labels["le"]): s.value for s in buckets}
    edge = lambda n: next(v for k, v in le.items() if abs(k - 1e-6 * 2**n) < 1e-12)  # noqa: E731
    # edges are 1 us * 2**n: 1e-4 <= 128 us, 2e-3 <= 2.05 ms, the failed 0.1 s <= 131 ms, 0.5 <= 524 ms
    assert (edge(6), edge(7), edge(11), edge(17), edge(19)) == (0, 1, 2, 3, 4)
    assert [s.value for s in fams["hcsvfs_backend_figure"].samples] == [2.0]


def test_metrics_pickle_as_an_empty_collector_with_the_same_switch() -> None:
    import pickle

    m = Metrics()
    m.record("disk", "save", 0.1, 10, None)
    copy = pickle.loads(pickle.dumps(m))
    assert copy.enabled and copy.snapshot()["operations"] == {}
    copy.record("disk", "save", 0.1, 10, None)
    assert copy.snapshot()["operations"]["disk"]["save"]["count"] == 1
    m.enabled = False
    assert not pickle.loads(pickle.dumps(m)).enabled


def test_prometheus_http_endpoint_serves_live_counts() -> None:
    pytest.importorskip("prometheus_client")
    from urllib.request import urlopen

    from hcsvfs.metrics.prometheus import serve

    m = Metrics()
    server, thread = serve(m, port=0)
    try:
        url = f"http://127.0.0.1:{server.server_port}/metrics"
        m.record("zarr", "save_batch", 0.2, 1000, None)
        first = urlopen(url, timeout=10).read().decode()
        m.record("zarr", "save_batch", 0.2, 1000, None)
        second = urlopen(url, timeout=10).read().decode()
    finally:
        server.shutdown()
        thread.join(timeout=10)
    assert 'hcsvfs_operations_total{backend="zarr",operation="save_batch"} 1.0' in first
    assert 'hcsvfs_bytes_total{backend="zarr",operation="save_batch"} 2000.0' in second


def test_tables_of_finished_threads_are_folded_not_kept() -> None:
    """A process that runs many short-lived threads (a thread pool per batch) keeps one table, not one per thread."""
    import gc
    import threading

    from hcsvfs.metrics.collector import Metrics

    m = Metrics()
    for _ in range(20):
        threads = [threading.Thread(target=m.record, args=("disk", "save", 0.001, 10, None)) for _ in range(10)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    gc.collect()
    assert len(m._per_thread) <= 1  # this thread's own table at most
    ops = m.snapshot()["operations"]["disk"]["save"]
    assert ops["count"] == 200 and ops["bytes"] == 2000
