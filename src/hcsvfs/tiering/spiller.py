"""The background spiller: a thread that brings a MemoryOverlay back to its target whenever it is woken.

Saves and restores that cross the target wake it. With a budget of bytes that is
the only way pressure rises, so it sleeps until then; a budget measured on the
process (RSS) can also rise through allocations the overlay never sees, so there
it looks again every ``budget.poll_s`` seconds as well.
"""

from __future__ import annotations

import logging
import threading
import weakref
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .overlay import MemoryOverlay

__all__ = ["start_spiller"]

log = logging.getLogger(__name__)


def start_spiller(overlay: MemoryOverlay, wake: threading.Event, poll_s: float | None) -> threading.Thread:
    """Start the thread; it holds the overlay weakly and ends when the overlay is closed or collected."""
    ref = weakref.ref(overlay)
    weakref.finalize(overlay, wake.set)  # a collected overlay wakes its thread, which then sees it gone
    thread = threading.Thread(target=_run, args=(ref, wake, poll_s), name="hcsvfs-overlay-spill", daemon=True)
    thread.start()
    return thread


def _run(ref: weakref.ref[MemoryOverlay], wake: threading.Event, poll_s: float | None) -> None:
    while True:
        overlay = ref()
        if overlay is None or overlay.closed:
            return
        try:
            overlay.spill_to_target()
        except Exception:  # the thread must survive a surprise; the saving thread still spills synchronously
            log.exception("background spill failed")
        del overlay
        wake.wait(poll_s)
        wake.clear()  # before the next spill: a wake-up that arrives during it is not lost
