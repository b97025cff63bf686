"""``hcsvfs ls``: a tree of a backend folder (or a plate) with sizes."""

from __future__ import annotations

import typer
from rich.console import Console
from rich.tree import Tree

from .. import paths as P
from ..backends.zarr import ZarrStorageBackend
from ..filemanager import FileManager
from ..metrics.report import human_bytes
from .errors import CliError
from .targets import Target, cli_filemanager, parse_target

__all__ = ["register", "ls"]


def ls(
    target: str = typer.Argument(".", help="What to list: PATH, disk:PATH, zarr:PATH, memory:PATH or a URL."),
    depth: int = typer.Option(3, "--depth", "-d", min=0, help="How many folder levels to descend."),
    limit: int = typer.Option(50, "--limit", min=1, help="At most this many entries per folder are shown."),
    plain: bool = typer.Option(False, "--plain", help="One 'SIZE<TAB>PATH' line per file (for scripts)."),
) -> None:
    """List a folder as a tree with sizes (a file shows just itself)."""
    fm = cli_filemanager()
    t = parse_target(target, fm)
    if not fm.exists(t.path, t.backend):
        raise CliError(f"{t} does not exist on the {t.backend} backend")
    zb = fm.get_backend(t.backend)
    if not plain and isinstance(zb, ZarrStorageBackend):
        what = zb.node_type(t.path)
        if what in ("plate", "image"):
            Console().print(_ngff_tree(t, zb, what, limit))
            return
    console = Console()
    if plain:
        for path, size in _walk_files(fm, t, depth):
            print(f"{size}\t{path}")  # plain print: no wrapping or tab expansion for scripts
        return
    st = fm.stat(t.path, t.backend)
    if st.is_file:
        console.print(f"{t.path}  [dim]{human_bytes(st.size)}[/dim]")
        return
    tree = Tree(f"[bold]{t}[/bold]")
    total = _fill(tree, fm, t.backend, t.path, depth, limit)
    tree.label = f"[bold]{t}[/bold]  [dim]{human_bytes(total)}[/dim]"
    console.print(tree)


def _fill(node: Tree, fm: FileManager, backend: str, directory: str, depth: int, limit: int) -> int:
    """Add ``directory``'s entries under ``node``; returns the total size of the files below it."""
    total = 0
    names = fm.list_dir(directory, backend)
    for i, name in enumerate(names):
        path = P.join(directory, name)
        st = fm.stat(path, backend)
        if st.is_dir:
            child = Tree(f"[blue]{name}/[/blue]") if i < limit else None
            below = _fill(child, fm, backend, path, depth - 1, limit) if depth > 0 and child is not None else 0
            if child is not None:
                child.label = f"[blue]{name}/[/blue]  [dim]{human_bytes(below)}[/dim]" if depth > 0 else child.label
                node.children.append(child)
            total += below
        else:
            total += st.size
            if i < limit:
                node.add(f"{name}  [dim]{human_bytes(st.size)}[/dim]")
    if len(names) > limit:
        node.add(f"[dim]... {len(names) - limit} more[/dim]")
    return total


def _ngff_tree(t: Target, zb: ZarrStorageBackend, what: str, limit: int) -> Tree:
    """A plate as wells and fields (or an image with its levels), with stored sizes, through the zarr backend:
    any NGFF version, any writer, local or remote."""
    tree = Tree(f"[bold]{t}[/bold]  [dim]{human_bytes(zb.stored_bytes(t.path))}[/dim]")
    if what == "image":
        tree.add(_summary(zb.describe(t.path)))
        return tree
    plate = zb.open_plate(t.path)
    tree.label = f"{tree.label}  plate {len(plate.rows)}x{len(plate.columns)}, {len(plate.wells)} wells"
    for i, name in enumerate(sorted(plate.wells)):
        if i == limit:
            tree.add(f"[dim]... {len(plate.wells) - limit} more wells[/dim]")
            break
        well = plate.wells[name]
        node = tree.add(
            f"[blue]{well.row}/{well.column}[/blue]  [dim]{human_bytes(plate.stored_bytes(name))}[/dim]  "
            f"{len(well.fields)} field(s), {len(well.files)} planes"
        )
        for j, field in enumerate(well.fields[:limit]):
            node.add(f"{field}: {_summary(plate.facts(name, j))}  [dim]{human_bytes(plate.stored_bytes(name, j))}[/dim]")
    return tree


def _summary(facts: dict) -> str:
    """``1x2x3x64x64 uint16 tczyx, 5 level(s)`` (and the channel names) for an image's facts."""
    channels = f" [{', '.join(facts['channels'])}]" if facts.get("channels") else ""
    return f"{'x'.join(map(str, facts['shape']))} {facts['dtype']} {facts['axes']}, {facts['levels']} level(s){channels}"


def _walk_files(fm: FileManager, t: Target, depth: int) -> list[tuple[str, int]]:
    if fm.is_file(t.path, t.backend):
        return [(t.path, fm.stat(t.path, t.backend).size)]
    files = fm.list_files(t.path, t.backend, recursive=True)
    base = t.path.count("/") + (0 if t.path == "." else 1)
    return [(f, fm.stat(f, t.backend).size) for f in files if f.count("/") - base <= depth]


def register(app: typer.Typer) -> None:
    """Add ``ls`` to the app."""
    app.command("ls")(ls)
