"""How many bytes an object holds, deeply, so a list of arrays counts its arrays (Dask's ``sizeof`` semantics).

Arrays count their data, text and bytes their length, containers themselves
plus what they hold (a sample of at most ``SAMPLE`` items, scaled up, for large
ones, as Dask does), DataFrames their deep memory usage; anything else its
``sys.getsizeof``.
"""

from __future__ import annotations

import sys
from typing import Any

from ..arrays import memory_type, nbytes

__all__ = ["SAMPLE", "sizeof"]

#: Items of a container measured one by one; a larger container is measured on this many, evenly spaced.
SAMPLE = 100
_MAX_DEPTH = 8


def sizeof(obj: Any, _depth: int = 0) -> int:
    """Bytes ``obj`` keeps alive, counting into lists, tuples, sets and dicts."""
    if memory_type(obj) is not None or isinstance(obj, (bytes, bytearray, memoryview, str)):
        return nbytes(obj)
    if _depth >= _MAX_DEPTH:
        return sys.getsizeof(obj)
    if isinstance(obj, dict):
        items = [*obj.keys(), *obj.values()]
        return sys.getsizeof(obj) + _sum(items, _depth)
    if isinstance(obj, (list, tuple, set, frozenset)):
        return sys.getsizeof(obj) + _sum(list(obj), _depth)
    usage = getattr(obj, "memory_usage", None)
    if usage is not None and type(obj).__module__.split(".", 1)[0] == "pandas":
        total = usage(deep=True)
        return int(total.sum() if hasattr(total, "sum") else total)
    return sys.getsizeof(obj)


def _sum(items: list[Any], depth: int) -> int:
    if len(items) <= SAMPLE:
        return sum(sizeof(x, depth + 1) for x in items)
    step = len(items) / SAMPLE
    sample = [items[int(i * step)] for i in range(SAMPLE)]
    return int(sum(sizeof(x, depth + 1) for x in sample) * len(items) / SAMPLE)
