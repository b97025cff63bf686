"""``hcsvfs tune``: the codec trial ``ZarrConfig(compression="auto")`` runs, on data already stored."""

from __future__ import annotations

import json
import math
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from ..backends.zarr import ZarrStorageBackend
from ..backends.zarr.autocodec import Candidate, Choice, trial
from ..config import GOALS, ZarrConfig
from ..units import parse_bytes
from .errors import EXIT_USAGE, CliError
from .targets import cli_filemanager, parse_target, zarr_backend

__all__ = ["register", "tune", "stored_object"]

def stored_object(target: str) -> Any:
    """The image (lazy where stored as zarr) at ``target``, or the first field of the plate there."""
    fm = cli_filemanager()
    t = parse_target(target, fm)
    if not fm.exists(t.path, t.backend):
        raise CliError(f"{t} does not exist on the {t.backend} backend")
    backend = fm.get_backend(t.backend)
    if isinstance(backend, ZarrStorageBackend) and backend.node_type(t.path) == "plate":
        plate = backend.open_plate(t.path)
        obj: Any = plate.field(sorted(plate.wells)[0], 0)
    else:
        obj = fm.load(t.path, t.backend)
    if len(getattr(obj, "shape", ())) < 2 or not hasattr(obj, "dtype"):
        raise CliError(f"{t} holds a {type(obj).__name__}, not an image; tune takes an image, a plane or a plate")
    return obj


def tune(
    target: str = typer.Argument(..., help="An image, a plane or a plate: PATH, zarr:PATH, disk:PATH or a URL."),
    goal: str = typer.Option("balanced", help=f"What auto optimises: {', '.join(GOALS)}."),
    bandwidth: str | None = typer.Option(
        None, help="The destination's speed per second, e.g. 100MB (an object store); default: measured in the "
        "zarr backend's store (the working directory)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the trial as JSON."),
) -> None:
    """Run the codec trial of compression='auto' on stored data: every candidate's ratio and speeds, and the pick."""
    if goal not in GOALS:
        raise CliError(f"unknown goal {goal!r}; valid goals: {', '.join(GOALS)}", EXIT_USAGE)
    try:
        speed = float(parse_bytes(bandwidth)) if bandwidth is not None else None
    except ValueError as exc:
        raise CliError(f"--bandwidth: {exc}", EXIT_USAGE) from None
    if speed is not None and speed <= 0:
        raise CliError("--bandwidth must be above 0, e.g. 100MB", EXIT_USAGE)
    data = stored_object(target)  # the trial reads its few tiles from it
    if speed is None:
        speed = zarr_backend(cli_filemanager()).codecs.bandwidth()
    choice = trial(data, goal, speed)
    if as_json:
        Console().print_json(json.dumps(choice.to_json()))
        return
    _print(choice, target)


def _print(choice: Choice, target: str) -> None:
    default = ZarrConfig()
    today = Candidate(default.compression, default.compression_level, default.shuffle)
    unit = {"size": "GB stored per GB", "balanced": "s per GB to write and read back", "speed": "s per GB of codec time"}
    table = Table(
        title=f"{target}: codec trial for goal {choice.goal!r} at {choice.bandwidth / 1e6:.0f} MB/s, "
        f"{choice.threads} threads, {choice.sample_bytes // 1024} KiB sample, {choice.seconds * 1e3:.0f} ms",
        caption=f"cost: {unit[choice.goal]} (lower is better; - : below the goal's floor); speeds per thread; "
        "1/8 only: ruled out on an eighth of the sample",
    )
    for col in ("codec", "ratio", "enc MB/s", "dec MB/s", "cost", ""):
        table.add_column(col, justify="left" if col in ("codec", "") else "right", no_wrap=True)
    for row in sorted(choice.rows, key=lambda r: r.cost):
        mark = "<- auto" if row.candidate == choice.candidate else "default" if row.candidate == today else ""
        mark = f"{mark} (1/8 only)".strip() if row.pruned else mark
        cost = "-" if math.isinf(row.cost) else f"{row.cost:.3f}"
        table.add_row(row.candidate.name, f"{row.ratio:.2f}", _mbps(row.encode), _mbps(row.decode), cost, mark,
                      style="bold green" if mark == "<- auto" else None)
    console = Console()
    console.print(table)
    console.print(
        f"auto picks {choice.candidate.name} (ZarrConfig(compression='auto', goal={choice.goal!r})); "
        f"'default' marks ZarrConfig()'s fixed codec"
    )


def _mbps(speed: float) -> str:
    return "-" if math.isinf(speed) else f"{speed / 1e6:.0f}"


def register(app: typer.Typer) -> None:
    """Add ``tune`` to the app."""
    app.command("tune")(tune)
