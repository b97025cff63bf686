"""Any other instrument: a regular expression with named groups for the parts of a file name."""

from __future__ import annotations

import re

from ...hcs import HCSName, parse_well, row_index
from .acquisition import FilenameParser

__all__ = ["pattern_parser", "PATTERN_GROUPS"]

#: The groups a pattern may name: a well (``A01``) or a row (``B`` or ``2``) and a column; field, channel,
#: z and t are optional and default to 1.
PATTERN_GROUPS = ("well", "row", "col", "field", "channel", "z", "t")


def pattern_parser(pattern: str) -> FilenameParser:
    """A parser from ``pattern``, which must match a whole file name, e.g.
    ``(?P<well>[A-P]\\d{2})-f(?P<field>\\d+)-c(?P<channel>\\d+)\\.tif``; ValueError for a pattern that cannot
    place a plane in a plate (no well, or a row without a column)."""
    try:
        compiled = re.compile(pattern)
    except re.error as exc:
        raise ValueError(f"--pattern {pattern!r} is not a regular expression: {exc}") from None
    groups = set(compiled.groupindex)
    unknown = groups - set(PATTERN_GROUPS)
    if unknown:
        raise ValueError(
            f"--pattern names groups {sorted(unknown)}; the groups it may name are {', '.join(PATTERN_GROUPS)}"
        )
    if "well" not in groups and not {"row", "col"} <= groups:
        raise ValueError(
            f"--pattern {pattern!r} must name a group 'well' (e.g. (?P<well>[A-P]\\d{{2}})) or both 'row' and 'col'"
        )

    def parse(name: str) -> HCSName | None:
        m = compiled.fullmatch(name)
        if m is None:
            return None
        try:
            if "well" in groups:
                row, column = parse_well(m["well"])
            else:
                raw = m["row"]
                row = int(raw) - 1 if raw.isdigit() else row_index(raw)
                column = int(m["col"]) - 1
            numbers = [int(m[g]) if g in groups and m[g] else 1 for g in ("field", "channel", "z", "t")]
        except ValueError:
            return None
        if row < 0 or column < 0 or min(numbers) < 1:
            return None
        return HCSName(row, column, *numbers)

    return parse
