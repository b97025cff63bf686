"""Which codec pipeline zarr-python runs chunks through: zarrs (Rust, parallel) where installed, else zarr's own.

zarr's codec pipeline is one setting for the whole process (``zarr.config``), so this is chosen once, when
hcsvfs's zarr backend is imported:

- a pipeline the caller already configured in zarr (``zarr.config.set`` before the import, or the
  ``ZARR_CODEC_PIPELINE__PATH`` environment variable) is kept as it is;
- otherwise ``HCSVFS_CODEC_PIPELINE`` decides: ``zarrs`` (the default) or ``python``;
- ``zarrs`` falls back to zarr's pipeline when the package cannot be imported. zarrs itself hands the stores
  it does not serve natively back to zarr's pipeline, and reads and writes the same bytes.
- A process forked from one that ran zarrs switches to zarr's pipeline: zarrs's Rust thread pool does not
  survive a fork, and a forked child that encodes through it waits forever (multiprocessing's default start
  method on Linux is fork). Spawned processes import hcsvfs afresh and choose as above.

Measured in benchmarks/bench_zarr.py (docs/zarr.md, section 7).
"""

from __future__ import annotations

import importlib.util
import logging
import os

import zarr

__all__ = ["ZARRS", "PYTHON", "ENV", "select_codec_pipeline", "active_codec_pipeline"]

ZARRS = "zarrs.ZarrsCodecPipeline"
PYTHON = "zarr.core.codec_pipeline.BatchedCodecPipeline"
ENV = "HCSVFS_CODEC_PIPELINE"
_ZARR_ENV = "ZARR_CODEC_PIPELINE__PATH"
_CHOICES = {"zarrs": ZARRS, "python": PYTHON}

log = logging.getLogger(__name__)


def select_codec_pipeline(choice: str | None = None) -> str:
    """Make zarr use the ``choice`` pipeline (``"zarrs"`` or ``"python"``; default: ``$HCSVFS_CODEC_PIPELINE``, else
    zarrs); returns the pipeline in use. A pipeline set in zarr's own config before, other than zarr's default,
    is kept unless ``choice`` is given, as is one named in ``$ZARR_CODEC_PIPELINE__PATH``. ValueError for any
    other name."""
    current = zarr.config.get("codec_pipeline.path")
    if choice is None:
        if current not in (PYTHON, ZARRS) or _ZARR_ENV in os.environ:
            return str(current)  # the caller chose, in zarr's own terms
        choice = os.environ.get(ENV, "zarrs").strip().lower() or "zarrs"
    if choice not in _CHOICES:
        raise ValueError(
            f"unknown codec pipeline {choice!r} (from {ENV} or select_codec_pipeline); valid: {', '.join(_CHOICES)}"
        )
    path = _CHOICES[choice]
    if path == ZARRS and not _installed("zarrs"):
        log.info("zarrs is not installed; zarr's own codec pipeline runs the chunks (pip install zarrs for speed)")
        path = PYTHON
    zarr.config.set({"codec_pipeline.path": path})
    return path


def _after_fork_in_child() -> None:
    if zarr.config.get("codec_pipeline.path") == ZARRS:
        zarr.config.set({"codec_pipeline.path": PYTHON})


os.register_at_fork(after_in_child=_after_fork_in_child)


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # ValueError: a module blanked out in sys.modules
        return False


def active_codec_pipeline() -> str:
    """The codec pipeline zarr runs now, ``zarrs`` or ``python`` (or the dotted path of another)."""
    path = str(zarr.config.get("codec_pipeline.path"))
    return next((name for name, p in _CHOICES.items() if p == path), path)
