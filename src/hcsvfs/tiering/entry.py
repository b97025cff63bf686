"""One file of a MemoryOverlay: its object (or GONE once only the persistent tier has it) and its state."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["GONE", "Entry"]

#: An entry's object once it lives only on the persistent tier.
GONE: Any = object()


@dataclass(eq=False)
class Entry:
    """Identity (not path) keys the LRU, so a move needs no re-keying. Changed only under the overlay's lock."""

    path: str
    obj: Any
    size: int
    options: dict[str, Any] = field(default_factory=dict)
    #: Where its copy on the persistent tier is (None: no copy). Its own path, except after a move whose
    #: relocation of the copy failed: then the copy stays where it was, and is still found.
    stored: str | None = None
    pinned: bool = False
    unspillable: str | None = None  #: why the persistent tier refused it
    #: "spill", "restore", "materialize" or "move" while persistent I/O on this entry runs outside the lock
    io: str | None = None
    touched: bool = False  #: handed to a reader while a spill was writing it (it may have changed)
    #: Kept once already because a reader took it during its spill; the next spill drops it regardless, or
    #: an entry that readers never leave alone would be written again and again and never leave memory.
    reprieved: bool = False

    @property
    def resident(self) -> bool:
        return self.obj is not GONE

    @property
    def persisted(self) -> bool:
        """A copy is on the persistent tier (current unless the entry is resident)."""
        return self.stored is not None

    def tier(self) -> str:
        if not self.resident:
            return "persistent"
        return "memory+persistent" if self.persisted else "memory"
