"""Keyword options: each backend and format declares the ones it takes, and any other is an error.

A misspelt option (``materialise=True``, ``overwirte=True``) must never vanish
silently, nor reach a third-party writer as a bare ``TypeError``.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from typing import Any

from .errors import UnknownOptionError

__all__ = ["check_options"]


def check_options(
    given: Mapping[str, Any], valid: Iterable[str], *, what: str, path: str | None = None, backend: str | None = None
) -> None:
    """Raise UnknownOptionError naming the options in ``given`` that ``valid`` lacks, the closest match, and the valid ones."""
    allowed = sorted(set(valid))
    unknown = sorted(set(given) - set(allowed))
    if not unknown:
        return
    close = difflib.get_close_matches(unknown[0], allowed, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    listed = ", ".join(allowed) if allowed else "none"
    where = f"{path!r}: " if path else ""
    raise UnknownOptionError(
        f"{where}{what} does not take the option{'s' if len(unknown) > 1 else ''} "
        f"{', '.join(repr(u) for u in unknown)}{hint}; the options it takes: {listed}",
        path=path,
        backend=backend,
    )
