"""``hcsvfs stats``: show the metrics of a run (a JSON dump), its tuning advice, or its Prometheus text."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import tempfile
from pathlib import Path

import typer
from rich.console import Console

from ..metrics.advice import advise
from ..metrics.report import render
from ..metrics.wiring import ENV_VAR
from .errors import EXIT_USAGE, CliError

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
    dump: Path | None = typer.Argument(
        None, help="A metrics JSON dump (HCSVFS_METRICS=run.json, Metrics.to_json, cp --metrics); with --run, where to keep it."
    ),
    run: str | None = typer.Option(
        None, "--run", help="Run this command with metrics on (e.g. 'python job.py'), then show them."
    ),
    advice_only: bool = typer.Option(False, "--advice", help="Only the tuning advice, as JSON lines."),
    prometheus: bool = typer.Option(False, "--prometheus", help="Print the Prometheus text exposition instead."),
) -> None:
    """Show a run's operations (count, bytes, errors, p50/p95/p99), backend figures and tuning advice."""
    code = 0
    with tempfile.TemporaryDirectory() as tmp:
        if run is not None:
            dump = dump or Path(tmp) / "run.json"
            code = _run_with_metrics(run, dump)
            if not dump.exists():
                raise CliError(f"{run!r} exited with {code} and wrote no metrics: it created no hcsvfs FileManager", code or 1)
        elif dump is None:
            raise CliError("give a metrics dump to read, or --run 'COMMAND' to measure one", EXIT_USAGE)
        snap = load_snapshot(dump)
    _show(snap, advice_only, prometheus)
    if code:
        raise CliError(f"the measured command exited with {code} (its metrics are above)", code)


def _run_with_metrics(command: str, dump: Path) -> int:
    """Run ``command`` with $HCSVFS_METRICS pointing at ``dump``; its exit code."""
    argv = shlex.split(command)
    if not argv:
        raise CliError("--run needs a command, e.g. --run 'python job.py'", EXIT_USAGE)
    try:
        return subprocess.call(argv, env={**os.environ, ENV_VAR: str(dump)})
    except FileNotFoundError:
        raise CliError(f"cannot run {argv[0]!r}: no such program", EXIT_USAGE) from None


def _show(snap: dict, advice_only: bool, prometheus: bool) -> None:
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
