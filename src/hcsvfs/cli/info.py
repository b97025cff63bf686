"""``hcsvfs info``: what is stored at a path (type, shape, dtype, codec, chunking, NGFF metadata)."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from ..backends.zarr import ZarrStorageBackend
from ..metrics.advice import chunk_advice
from ..metrics.report import human_bytes
from .describe import describe_local_file, describe_object
from .errors import CliError
from .targets import cli_filemanager, parse_target

__all__ = ["register", "info", "collect_info"]


def collect_info(target: str) -> dict[str, Any]:
    """The facts ``info`` prints, as a plain dict."""
    fm = cli_filemanager()
    t = parse_target(target, fm)
    if not fm.exists(t.path, t.backend):
        raise CliError(f"{t} does not exist on the {t.backend} backend")
    backend = fm.get_backend(t.backend)
    if isinstance(backend, ZarrStorageBackend):
        # From the metadata, through the backend: any NGFF version and writer, local or remote.
        described = {"path": t.spec, "backend": t.backend, **backend.describe(t.path)}
        if "chunks" in described:
            hint = chunk_advice(described.get("field_shape", described["shape"]), described["chunks"])
            if hint is not None:
                described["advice"] = hint.message
        return described
    local = Path(t.path)
    st = fm.stat(t.path, t.backend)
    facts: dict[str, Any] = {"path": t.spec, "backend": t.backend, "kind": st.kind, "size": st.size}
    if st.mtime is not None:
        facts["modified"] = datetime.fromtimestamp(st.mtime).isoformat(timespec="seconds")
    facts |= {k: v for k, v in st.extra.items() if k not in facts}
    if t.backend == "disk":
        facts |= describe_local_file(local)
    elif st.is_file and t.backend == "memory":
        facts |= describe_object(fm.load(t.path, t.backend))
    return facts


def info(
    target: str = typer.Argument(..., help="PATH, disk:PATH, zarr:PATH or a URL."),
    as_json: bool = typer.Option(False, "--json", help="Print the facts as JSON."),
) -> None:
    """Show type, shape, dtype, codec, chunking and NGFF metadata without loading the data."""
    facts = collect_info(target)
    console = Console()
    if as_json:
        console.print_json(json.dumps(facts, default=str))
        return
    table = Table(show_header=False, title=facts["path"])
    table.add_column("fact", style="bold")
    table.add_column("value")
    for key, value in facts.items():
        if key != "path":
            table.add_row(key, _shown(key, value))
    console.print(table)


def _shown(key: str, value: Any) -> str:
    if key in ("size", "nbytes"):
        return human_bytes(value)
    if key in ("shape", "chunks", "shards") and isinstance(value, (list, tuple)):
        return "x".join(map(str, value))
    return str(value)


def register(app: typer.Typer) -> None:
    """Add ``info`` to the app."""
    app.command("info")(info)
