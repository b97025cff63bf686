"""Rich rendering of a metrics snapshot: operations table, source gauges, and advice."""

from __future__ import annotations

from typing import Any

from rich.console import Group
from rich.table import Table

from .advice import advise

__all__ = ["render", "human_bytes", "human_seconds"]


def human_bytes(n: float) -> str:
    """``1536`` -> ``"1.5 KiB"``."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"


def human_seconds(s: float) -> str:
    """``0.0012`` -> ``"1.20ms"``."""
    if s >= 1:
        return f"{s:.2f}s"
    if s >= 1e-3:
        return f"{s * 1e3:.2f}ms"
    return f"{s * 1e6:.0f}us" if s >= 1e-4 else f"{s * 1e6:.1f}us"


def _operations_table(snap: dict[str, Any]) -> Table:
    table = Table(title=f"hcsvfs operations ({snap.get('elapsed_s', 0):.1f} s)")
    for col in ("backend", "operation", "ops", "err", "bytes", "MB/s", "p50", "p95", "p99"):
        table.add_column(col, justify="left" if col in ("backend", "operation") else "right", no_wrap=True)
    for backend, ops in snap.get("operations", {}).items():
        for op, st in ops.items():
            table.add_row(
                backend,
                op,
                str(st["count"]),
                f"[red]{st['errors']}[/red]" if st["errors"] else "0",
                human_bytes(st["bytes"]),
                f"{st['mb_per_s']:.1f}" if st["bytes"] else "-",
                human_seconds(st["p50_s"]),
                human_seconds(st["p95_s"]),
                human_seconds(st["p99_s"]),
            )
    return table


def _sources_table(snap: dict[str, Any]) -> Table | None:
    sources = snap.get("sources", {})
    if not sources:
        return None
    table = Table(title="backend figures")
    for col in ("source", "figure", "value"):
        table.add_column(col, justify="right" if col == "value" else "left")
    for name, figures in sources.items():
        for key, value in figures.items() if isinstance(figures, dict) else [("value", figures)]:
            shown = human_bytes(value) if "bytes" in key and isinstance(value, (int, float)) else str(value)
            table.add_row(name, key, shown)
    return table


def _advice_table(snap: dict[str, Any]) -> Table | None:
    hints = advise(snap)
    if not hints:
        return None
    table = Table(title="tuning advice")
    table.add_column("rule")
    table.add_column("advice")
    table.add_column("evidence")
    for a in hints:
        table.add_row(a.rule, a.message, ", ".join(f"{k}={v}" for k, v in a.evidence.items()))
    return table


def render(snapshot: dict[str, Any]) -> Group:
    """Tables for the operations, the backends' own figures (e.g. overlay spills) and any advice."""
    parts = [t for t in (_operations_table(snapshot), _sources_table(snapshot), _advice_table(snapshot)) if t is not None]
    return Group(*parts)
