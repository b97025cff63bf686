"""Downsampled levels for viewers: 2x in y and x per level, mean for intensities, nearest for labels."""

from __future__ import annotations

import numpy as np

__all__ = ["downsample"]


def downsample(data: np.ndarray, *, labels: bool = False) -> np.ndarray:
    """Halve the last two axes: 2x2 mean (rounded back to the dtype) or, for labels, nearest (every other pixel)."""
    if labels:
        return np.ascontiguousarray(data[..., ::2, ::2][..., : max(1, data.shape[-2] // 2), : max(1, data.shape[-1] // 2)])
    h, w = data.shape[-2] // 2 * 2, data.shape[-1] // 2 * 2
    if h == 0 or w == 0:
        return np.ascontiguousarray(data[..., :1, :1])
    blocks = data[..., :h, :w].reshape(*data.shape[:-2], h // 2, 2, w // 2, 2)
    mean = blocks.mean(axis=(-3, -1), dtype=np.float64)
    if np.issubdtype(data.dtype, np.integer):
        mean = np.rint(mean)
    return mean.astype(data.dtype)
