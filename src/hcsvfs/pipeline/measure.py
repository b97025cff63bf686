"""Per-well measurements: cell count and mean intensity per channel, from labels and the original images."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

import numpy as np

from ..arrays import to_numpy
from .context import ProcessingContext
from .steps import AbstractStep

__all__ = ["MeasureCells"]


class MeasureCells(AbstractStep):
    """Count labelled objects per field and average each channel's original intensity over them.

    Reads the labels from the previous step (memory) and the raw intensities
    from the original input (disk): the cross-step I/O of the original design.
    The labels stay the current output, so they are what reaches the plate.
    """

    name = "measure"

    def __init__(self, channels: Iterable[int] | None = None) -> None:
        self.channels = None if channels is None else tuple(channels)

    def execute(self, context: ProcessingContext) -> None:
        channels = self.channels or tuple(context.plate.channels)
        for key, labels in context.previous_images():
            labels = to_numpy(labels)
            cells = labels > 0
            count = int(np.unique(labels[cells]).size)
            row: dict[str, object] = {"well": context.well, "field": key.field, "t": key.t, "cells": count,
                                      "cell_area_px": int(cells.sum())}
            for channel in channels:
                raw = context.original_image(dataclasses.replace(key, channel=channel))
                raw = raw.max(axis=0) if raw.ndim == 3 and labels.ndim == 2 else raw
                row[f"mean_intensity_w{channel}"] = float(raw[cells].mean()) if count else 0.0
            context.measurements.append(row)
