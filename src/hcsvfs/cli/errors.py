"""Exit codes and the one-line error the command line prints instead of a traceback."""

from __future__ import annotations

import sys

__all__ = ["CliError", "EXIT_OK", "EXIT_FAILED", "EXIT_USAGE", "EXIT_INTERRUPTED", "one_line"]

EXIT_OK = 0
EXIT_FAILED = 1  #: the command ran and something was wrong (missing path, invalid plate, I/O error)
EXIT_USAGE = 2  #: bad arguments: unknown option or backend, malformed target
EXIT_INTERRUPTED = 130  #: Ctrl-C, like a shell


class CliError(Exception):
    """A problem the user can fix; printed as one line, exits with ``code``."""

    def __init__(self, message: str, code: int = EXIT_FAILED) -> None:
        super().__init__(message)
        self.code = code


def one_line(message: str) -> None:
    """Print ``hcsvfs: error: <message>`` on stderr, folded onto one line."""
    print(f"hcsvfs: error: {' '.join(str(message).split())}", file=sys.stderr)
