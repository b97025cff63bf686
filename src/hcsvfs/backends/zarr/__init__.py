"""The OME-Zarr backend: NGFF 0.5 images and HCS plates (see docs/zarr.md)."""

from __future__ import annotations

from .backend import ZarrStorageBackend
from .codec_pipeline import active_codec_pipeline, select_codec_pipeline
from .ngff import InvalidMetadataError
from .plate import PlaneMismatchError, PlateInfo, WellInfo
from .view import ZarrArrayView

__all__ = [
    "ZarrStorageBackend",
    "ZarrArrayView",
    "PlateInfo",
    "WellInfo",
    "PlaneMismatchError",
    "InvalidMetadataError",
    "active_codec_pipeline",
    "select_codec_pipeline",
]

select_codec_pipeline()  # once per process, at import: zarr's pipeline is a process-wide setting
