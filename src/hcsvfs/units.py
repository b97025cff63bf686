"""Byte sizes written the way people write them: ``"2GiB"``, ``"512 MB"``, ``1_000_000``."""

from __future__ import annotations

import re

__all__ = ["parse_bytes", "format_bytes"]

_UNITS = {
    "": 1,
    "b": 1,
    "k": 1000,
    "kb": 1000,
    "m": 1000**2,
    "mb": 1000**2,
    "g": 1000**3,
    "gb": 1000**3,
    "t": 1000**4,
    "tb": 1000**4,
    "kib": 1024,
    "mib": 1024**2,
    "gib": 1024**3,
    "tib": 1024**4,
}
_PATTERN = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*([a-z]*)\s*$", re.IGNORECASE)


def parse_bytes(size: int | float | str) -> int:
    """``"2GiB"`` -> 2147483648; decimal units (kB, MB, GB) are powers of 1000, binary ones (KiB...) of 1024.

    Raises ValueError naming the accepted units for anything else (negative numbers included).
    """
    if isinstance(size, bool):
        raise ValueError(f"a byte size is a number or a string such as '2GiB', not {size!r}")
    if isinstance(size, (int, float)):
        if size < 0:
            raise ValueError(f"a byte size cannot be negative: {size!r}")
        return int(size)
    if not isinstance(size, str):
        raise ValueError(f"a byte size is a number or a string such as '2GiB', not {type(size).__name__}")
    match = _PATTERN.match(size)
    unit = match.group(2).lower() if match else None
    if match is None or unit not in _UNITS:
        raise ValueError(
            f"cannot read {size!r} as a byte size; write a number with an optional unit: "
            "B, kB, MB, GB, TB (powers of 1000) or KiB, MiB, GiB, TiB (powers of 1024), e.g. '2GiB'"
        )
    number = match.group(1)
    if "." not in number:
        return int(number) * _UNITS[unit]  # exact for any size (floats round above 2**53)
    return int(float(number) * _UNITS[unit])


def format_bytes(n: int | float) -> str:
    """Human-readable binary size for messages: ``format_bytes(3 * 2**20)`` -> ``'3.0 MiB'``."""
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(value) < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")
