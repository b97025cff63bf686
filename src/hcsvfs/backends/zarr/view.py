"""ZarrArrayView: the lazy array ``load`` returns; indexing decodes only the chunks it touches."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import numpy as np
from zarr.core.sync import sync

from .integrity import decode_errors

__all__ = ["ZarrArrayView", "read_many"]


class ZarrArrayView:
    """A read-only, lazy view of a zarr array, or of one (y, x) plane of it when ``prefix`` fixes the leading axes.

    ``view[...]`` and ``np.asarray(view)`` return numpy; ``view.zarr`` is the
    underlying ``zarr.Array`` (for ``dask.array.from_zarr``).
    """

    def __init__(self, array: Any, path: str, prefix: tuple[int, ...] = ()) -> None:
        self.zarr = array
        self.path = path
        self._prefix = prefix

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.zarr.shape[len(self._prefix) :])

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(self.zarr.dtype)

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int:
        return int(np.prod(self.shape))

    @property
    def nbytes(self) -> int:
        return self.size * self.dtype.itemsize

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, key: Any) -> np.ndarray:
        key = key if isinstance(key, tuple) else (key,)
        if all(isinstance(k, (int, np.integer, slice)) or k is Ellipsis for k in key) and key.count(Ellipsis) <= 1:
            if Ellipsis in key:
                i = key.index(Ellipsis)
                key = key[:i] + (slice(None),) * (self.ndim - len(key) + 1) + key[i + 1 :]
            with decode_errors(self.path):
                return np.asarray(self.zarr[self._prefix + key])
        return self.read()[key]  # fancy indexing: decode the (plane) array, then let numpy index it

    def read(self) -> np.ndarray:
        """Decode everything the view covers into a numpy array."""
        with decode_errors(self.path):
            return np.asarray(self.zarr[self._prefix or ...])

    async def _read_async(self) -> np.ndarray:
        with decode_errors(self.path):
            return np.asarray(await self.zarr._async_array.getitem(self._prefix or ...))

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> np.ndarray:
        out = self.read()
        return out if dtype is None else out.astype(dtype, copy=False)

    def __repr__(self) -> str:
        return f"<ZarrArrayView {self.path!r} shape={self.shape} dtype={self.dtype}>"


def read_many(views: Sequence[ZarrArrayView]) -> list[np.ndarray]:
    """Decode many views in one trip through zarr's event loop, their chunk requests in flight together.

    On an object store N planes then cost about one request latency per zarr
    concurrency slot (``async.concurrency``), not N sequential round trips. Planes
    that cover at least half of one array (the channels and z of a field, say) are
    read as that whole array, once, and cut apart: one pass over its shard instead
    of a shard-index lookup and a partial read per plane.
    """
    groups: dict[str, list[int]] = {}
    for i, view in enumerate(views):
        groups.setdefault(str(view.zarr.store_path), []).append(i)

    async def one(i: int) -> list[tuple[int, np.ndarray]]:
        return [(i, await views[i]._read_async())]

    async def whole(indices: list[int]) -> list[tuple[int, np.ndarray]]:
        first = views[indices[0]]
        with decode_errors(first.path):
            array = np.asarray(await first.zarr._async_array.getitem(...))
        return [(i, array[views[i]._prefix]) for i in indices]

    def covers_half(indices: list[int]) -> bool:
        lead = views[indices[0]].zarr.shape[:-2]
        prefixes = {views[i]._prefix for i in indices}
        return (
            len(indices) > 1
            and all(len(p) == len(lead) for p in prefixes)
            and 2 * len(prefixes) >= int(np.prod(lead, dtype=np.int64))
        )

    async def gather() -> list[np.ndarray]:
        jobs = []
        for indices in groups.values():
            if covers_half(indices):
                jobs.append(whole(indices))
            else:
                jobs.extend(one(i) for i in indices)
        out: list[np.ndarray] = [np.empty(0)] * len(views)
        for pairs in await asyncio.gather(*jobs):
            for i, array in pairs:
                out[i] = array
        return out

    return sync(gather()) if views else []
