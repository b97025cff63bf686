"""Operation metrics, tuning advice and optional Prometheus exposition (a leaf layer: imports nothing above it)."""

from .collector import SNAPSHOT_VERSION, Metrics, emit

__all__ = ["Metrics", "emit", "SNAPSHOT_VERSION"]
