"""``hcsvfs stats``: show the metrics of a run (a JSON dump), its tuning advice, or its Prometheus text."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console

from ..metrics.advice import advise
from ..metrics.report import render
from .errors import CliError

__all__ = ["register", "stats", "load_snapshot"]


def load_snapshot(path: Path) -> dict:
    """Read a metrics dump written by ``Metrics.to_json`` / ``HCSVFS_METRICS`` / ``cp --metrics``."""
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise CliError(f"no metrics file at {path}; produce one with HCSVFS_METRICS={path} python job.py") from None
    except json.JSONDecodeError as exc:
        raise CliError(f"{path} is not a metrics dump (invalid JSON at line {exc.lineno})") from None
    if not isinstance(data, dict) or "operations" not in data:
        raise CliError(f"{path} is JSON but not a metrics dump (no 'operations'); write it with Metrics.to_json")
    return data


def stats(
    dump: Path = typer.Argument(..., help="A metrics JSON dump (HCSVFS_METRICS=run.json, Metrics.to_json, cp --metrics)."),
    advice_only: bool = typer.Option(False, "--advice", help="Only the tuning advice, as JSON lines."),
    prometheus: bool = typer.Option(False, "--prometheus", help="Print the Prometheus text exposition instead."),
) -> None:
    """Show a run's operations (count, bytes, errors, p50/p95/p99), backend figures and tuning advice."""
    snap = load_snapshot(dump)
    console = Console()
    if advice_only:
        for a in advise(snap):
            print(json.dumps(a.as_dict()))
        return
    if prometheus:
        from ..metrics.prometheus import snapshot_exposition

        print(snapshot_exposition(snap).decode(), end="")
        return
    console.print(render(snap))


def register(app: typer.Typer) -> None:
    """Add ``stats`` to the app."""
    app.command("stats")(stats)
