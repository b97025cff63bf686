"""Tiering: a memory tier that spills to persistent storage, memory-pressure signals, and Backend.AUTO's policy."""

from __future__ import annotations

from .overlay import MemoryOverlay
from .pressure import (
    MemoryBudget,
    MemoryLimits,
    MemoryMonitor,
    effective_limit,
    memory_limits,
    read_psi,
)
from .selection import AutoPolicy, Placement, choose_backend

__all__ = [
    "AutoPolicy",
    "MemoryBudget",
    "MemoryLimits",
    "MemoryMonitor",
    "MemoryOverlay",
    "Placement",
    "choose_backend",
    "effective_limit",
    "memory_limits",
    "read_psi",
]
