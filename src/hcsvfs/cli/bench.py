"""``hcsvfs bench``: run every benchmarks/bench_*.py and write benchmarks/RESULTS.md (+ JSON and a PNG plot)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import typer

from .errors import EXIT_USAGE, CliError

__all__ = ["register", "bench"]


def bench(
    quick: bool = typer.Option(False, "--quick", help="Small sizes (each script's --quick)."),
    only: list[str] = typer.Option([], "--only", help="Run only bench_<NAME>.py (repeatable)."),
    directory: Path = typer.Option(Path("benchmarks"), "--dir", help="Folder holding bench_*.py and report.py."),
    timeout: int = typer.Option(1800, "--timeout", min=1, help="Seconds each script may run."),
) -> None:
    """Run the benchmark suite; the report lists the machine, versions and every ratio against peers."""
    report = directory / "report.py"
    if not report.is_file():
        raise CliError(f"{report} not found; run hcsvfs bench from the repository root or pass --dir", EXIT_USAGE)
    cmd = [sys.executable, str(report), "--timeout", str(timeout)]
    cmd += ["--quick"] if quick else []
    for name in only:
        cmd += ["--only", name]
    code = subprocess.call(cmd)
    if code:
        raise CliError(f"the benchmark report failed (exit {code}); see the output above", code)


def register(app: typer.Typer) -> None:
    """Add ``bench`` to the app."""
    app.command("bench")(bench)
