"""Where the command line reads and writes: ``BACKEND:PATH``, URLs, and bare local paths.

* ``disk:results/plate`` or a bare path ``results/plate`` -- the local file system;
* ``zarr:out/plate.zarr`` or a bare path with a ``.zarr`` component -- OME-Zarr;
* ``memory:name`` or any other registered backend name followed by ``:``;
* ``s3://bucket/key``, ``gs://...``, ``https://...`` -- mounted through ``FileManager.mount``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .. import paths as P
from ..backends.zarr import ZarrStorageBackend
from ..filemanager import FileManager
from ..metrics import Metrics
from .errors import EXIT_USAGE, CliError

__all__ = ["Target", "parse_target", "cli_filemanager"]

_URL = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
_NAMED = re.compile(r"^([A-Za-z][A-Za-z0-9_-]*):(.*)$", re.DOTALL)


@dataclass(frozen=True)
class Target:
    """A backend name known to the FileManager and a logical path on it."""

    backend: str
    path: str
    spec: str  #: what the user typed, for messages

    def __str__(self) -> str:
        return self.spec


def cli_filemanager(metrics: Metrics | bool | None = None) -> FileManager:
    """A FileManager over the default backends (disk and zarr rooted at the working directory)."""
    return FileManager(metrics=metrics)


def zarr_backend(fm: FileManager, name: str = "zarr", *, spec: str | None = None) -> ZarrStorageBackend:
    """The OME-Zarr backend ``name`` of ``fm``; a usage error naming ``spec`` if that backend is another kind."""
    backend = fm.get_backend(name)
    if not isinstance(backend, ZarrStorageBackend):
        raise CliError(
            f"{spec or name} is on the {name} backend; this command takes an OME-Zarr target (PATH.zarr or zarr:PATH)",
            EXIT_USAGE,
        )
    return backend


def parse_target(spec: str, fm: FileManager) -> Target:
    """Resolve ``spec`` to a (backend, logical path) pair on ``fm``; CliError (exit 2) if it names no backend."""
    if not spec or not spec.strip():
        raise CliError("an empty path was given; pass a path such as results/ or disk:results/", EXIT_USAGE)
    url = _URL.match(spec)
    if url:
        scheme = url.group(1).lower()
        if scheme == "file":
            return Target("disk", _logical(spec[len("file://") :] or "."), spec)
        return _mounted(spec, fm)
    named = _NAMED.match(spec)
    if named:
        name, rest = named.group(1).lower(), named.group(2)
        if name not in fm.registry:
            known = ", ".join(n + ":" for n in fm.registry.names())
            raise CliError(
                f"unknown backend {name!r} in {spec!r}; use one of {known} or a URL such as s3://bucket/key "
                f"(a local file whose name has a colon is written disk:{spec})",
                EXIT_USAGE,
            )
        return Target(name, _logical(rest or "."), spec)
    parts = spec.replace("\\", "/").rstrip("/").split("/")
    backend = "zarr" if any(p.endswith(".zarr") for p in parts) else "disk"
    return Target(backend, _logical(spec), spec)


def _logical(path: str) -> str:
    try:
        return P.normalize(path)
    except ValueError as exc:
        raise CliError(f"bad path {path!r}: {exc}", EXIT_USAGE) from exc


def _mounted(url: str, fm: FileManager) -> Target:
    """Mount the URL's bucket (or host) once per FileManager; the rest of the URL is the logical path."""
    scheme, rest = url.split("://", 1)
    bucket, _, key = rest.partition("/")
    name = "url_" + re.sub(r"[^a-z0-9_]", "_", f"{scheme}_{bucket}".lower())
    if name not in fm.registry:
        try:
            fm.mount(f"{scheme}://{bucket}", name=name)
        except (ValueError, ImportError) as exc:  # fsspec: unknown protocol, or its driver is not installed
            raise CliError(f"cannot open {url!r}: {exc}", EXIT_USAGE) from None
    return Target(name, _logical(key or "."), url)
