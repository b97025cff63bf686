"""Optional Prometheus exposition of a Metrics collector (needs ``prometheus-client``: the ``metrics`` extra)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from .collector import Metrics
from .histogram import LATENCY_BOUNDS

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

__all__ = ["PrometheusCollector", "exposition", "snapshot_exposition", "serve"]


def _client() -> Any:
    try:
        import prometheus_client
    except ImportError as exc:
        raise ImportError(
            "Prometheus exposition needs prometheus-client; install it with: pip install 'hcsvfs[metrics]'"
        ) from exc
    return prometheus_client


class PrometheusCollector:
    """A prometheus-client collector that reads a snapshot (of a live Metrics, or a fixed dump) on every scrape."""

    def __init__(self, metrics: Metrics | Callable[[], dict[str, Any]], prefix: str = "hcsvfs") -> None:
        self.snapshot = metrics.snapshot if isinstance(metrics, Metrics) else metrics
        self.prefix = prefix

    def collect(self) -> Iterator[Any]:
        """Families: operations_total, operation_errors_total, bytes_total, operation_seconds, source gauges."""
        core = _client().metrics_core
        p, labels = self.prefix, ["backend", "operation"]
        snap = self.snapshot()
        ops = core.CounterMetricFamily(f"{p}_operations", "FileManager operations", labels=labels)
        errs = core.CounterMetricFamily(f"{p}_operation_errors", "FileManager operations that raised", labels=labels)
        nbytes = core.CounterMetricFamily(f"{p}_bytes", "Bytes saved or loaded", labels=labels)
        lat = core.HistogramMetricFamily(f"{p}_operation_seconds", "FileManager operation latency", labels=labels)
        for backend, per_op in snap["operations"].items():
            for op, st in per_op.items():
                lv = [backend, op]
                ops.add_metric(lv, st["count"])
                errs.add_metric(lv, st["errors"])
                nbytes.add_metric(lv, st["bytes"])
                lat.add_metric(lv, _buckets(st["latency_histogram"], st["count"]), st["seconds"])
        yield from (ops, errs, nbytes, lat)
        gauge = core.GaugeMetricFamily(
            f"{p}_backend_figure", "Figures a backend reports (e.g. overlay spills)", labels=["backend", "figure"]
        )
        for name, figures in snap["sources"].items():
            for key, value in figures.items() if isinstance(figures, dict) else ():
                if isinstance(value, (int, float)) and not isinstance(value, bool):
                    gauge.add_metric([name, key], float(value))
        yield gauge


def _buckets(cumulative: list[list[Any]], total: int) -> list[tuple[str, float]]:
    """Prometheus wants every edge with its cumulative count, ending at +Inf == total."""
    finite = [(edge, count) for edge, count in cumulative if edge != "+Inf"]
    known = dict(finite)
    out = []
    # Every 4th edge (powers of two) keeps the series few; counts stay exact because those are edges too.
    for edge in LATENCY_BOUNDS[::4]:
        if edge in known:
            running = known[edge]
        elif finite and edge > finite[-1][0]:
            running = finite[-1][1]
        else:  # below the first observation
            running = 0
        out.append((repr(edge), float(running)))
    out.append(("+Inf", float(total)))
    return out


def exposition(metrics: Metrics) -> bytes:
    """The Prometheus text format for ``metrics`` (what a scrape would return)."""
    return snapshot_exposition(metrics.snapshot())


def snapshot_exposition(snapshot: dict[str, Any]) -> bytes:
    """The Prometheus text format for a snapshot dict (e.g. a JSON dump read back by ``hcsvfs stats``)."""
    client = _client()
    registry = client.CollectorRegistry()
    registry.register(PrometheusCollector(lambda: snapshot))
    return client.generate_latest(registry)


def serve(
    metrics: Metrics, port: int = 9464, addr: str = "127.0.0.1", registry: CollectorRegistry | None = None
) -> tuple[Any, Any]:
    """Expose ``metrics`` on ``http://addr:port/metrics`` from a background thread; returns (server, thread).

    ``port=0`` picks a free port (``server.server_port``); ``server.shutdown()`` stops it.
    """
    client = _client()
    reg = registry if registry is not None else client.CollectorRegistry()
    reg.register(PrometheusCollector(metrics))
    return client.start_http_server(port, addr=addr, registry=reg)
