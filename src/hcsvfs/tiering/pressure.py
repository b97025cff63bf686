"""How much memory this process may use, how much it uses, and whether the system is under pressure.

The effective limit is the smallest of physical RAM, the cgroup v2
``memory.max``, the cgroup v1 ``memory.limit_in_bytes`` and ``RLIMIT_AS``
(a container that sees 512 GB of host RAM but may use 8 GB gets 8 GB).
"max" and the huge sentinel values kernels write for "no limit" count as
unlimited. PSI (``/proc/pressure/memory``) is read where the kernel has it:
tasks stalling on memory is an earlier signal than a full budget.
"""

from __future__ import annotations

import os
import resource
import time
from dataclasses import dataclass
from pathlib import Path

import psutil

from ..units import parse_bytes

__all__ = [
    "PSI",
    "MemoryBudget",
    "MemoryLimits",
    "MemoryMonitor",
    "as_budget",
    "effective_limit",
    "memory_limits",
    "process_rss",
    "read_psi",
    "system_available",
]

# cgroup v1 writes PAGE_COUNTER_MAX (about 2**63 rounded down to a page) for "no limit".
_UNLIMITED_ABOVE = 2**60


@dataclass(frozen=True)
class MemoryLimits:
    """Every limit found, in bytes (None where absent or unlimited), and the effective one."""

    physical: int
    cgroup_v2: int | None
    cgroup_v1: int | None
    rlimit_as: int | None

    @property
    def effective(self) -> int:
        """The smallest limit that applies."""
        return min(v for v in (self.physical, self.cgroup_v2, self.cgroup_v1, self.rlimit_as) if v is not None)


@dataclass(frozen=True)
class PSI:
    """Memory pressure stall information: % of time some / all tasks waited on memory (10 s and 60 s averages)."""

    some_avg10: float
    some_avg60: float
    full_avg10: float
    full_avg60: float


def _read_limit(path: Path) -> int | None:
    """One cgroup limit file: bytes, or None for absent, "max" or a no-limit sentinel."""
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    if not text or text == "max":
        return None
    try:
        value = int(text)
    except ValueError:
        return None
    return None if value <= 0 or value >= _UNLIMITED_ABOVE else value


def _own_cgroup_dirs(root: Path, proc_cgroup: Path) -> tuple[list[Path], list[Path]]:
    """Candidate v2 and v1 cgroup folders of this process: its own cgroup first, then the mount root."""
    v2: list[Path] = []
    v1: list[Path] = []
    try:
        lines = proc_cgroup.read_text().splitlines()
    except OSError:
        lines = []
    for line in lines:
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        _hier, controllers, rel = parts
        rel = rel.lstrip("/")
        if controllers == "":
            v2.append(root / rel)
        elif "memory" in controllers.split(","):
            v1.append(root / "memory" / rel)
    v2.append(root)
    v1.append(root / "memory")
    return v2, v1


def memory_limits(
    cgroup_root: str | os.PathLike[str] = "/sys/fs/cgroup", proc_cgroup: str | os.PathLike[str] = "/proc/self/cgroup"
) -> MemoryLimits:
    """Read every memory limit that applies to this process (the paths are parameters so tests can fake them)."""
    root = Path(cgroup_root)
    v2_dirs, v1_dirs = _own_cgroup_dirs(root, Path(proc_cgroup))
    v2 = next((v for v in (_read_limit(d / "memory.max") for d in v2_dirs) if v is not None), None)
    v1 = next((v for v in (_read_limit(d / "memory.limit_in_bytes") for d in v1_dirs) if v is not None), None)
    soft, _hard = resource.getrlimit(resource.RLIMIT_AS)
    rlimit = None if soft == resource.RLIM_INFINITY or soft >= _UNLIMITED_ABOVE else int(soft)
    return MemoryLimits(physical=int(psutil.virtual_memory().total), cgroup_v2=v2, cgroup_v1=v1, rlimit_as=rlimit)


def effective_limit() -> int:
    """Bytes this process may use: min(RAM, cgroup v2, cgroup v1, RLIMIT_AS)."""
    return memory_limits().effective


_PROCESS: psutil.Process | None = None


def _this_process() -> psutil.Process:
    """psutil's handle on *this* process: made on first use and again after a fork (a handle made at import
    would keep measuring the parent in every forked child)."""
    global _PROCESS
    if _PROCESS is None or _PROCESS.pid != os.getpid():
        _PROCESS = psutil.Process()
    return _PROCESS


def process_rss() -> int:
    """Resident set size of this process in bytes."""
    return int(_this_process().memory_info().rss)


def system_available() -> int:
    """Bytes the system could give to new allocations without swapping (psutil's ``available``)."""
    return int(psutil.virtual_memory().available)


def read_psi(path: str | os.PathLike[str] = "/proc/pressure/memory") -> PSI | None:
    """Parse memory PSI; None where the kernel has no PSI (older kernels, some containers, macOS)."""
    try:
        text = Path(path).read_text()
    except OSError:
        return None
    values: dict[str, float] = {}
    for line in text.splitlines():
        kind, _, rest = line.partition(" ")
        for field in rest.split():
            key, _, val = field.partition("=")
            if key in ("avg10", "avg60"):
                try:
                    values[f"{kind}_{key}"] = float(val)
                except ValueError:
                    return None
    try:
        return PSI(values["some_avg10"], values["some_avg60"], values["full_avg10"], values["full_avg60"])
    except KeyError:
        return None


class MemoryBudget:
    """A fixed number of bytes to stay under, measured by what the caller manages (tests, explicit user budgets).

    ``process_used()`` is None: with an explicit budget only managed bytes count,
    so behaviour is exactly reproducible.
    """

    def __init__(self, limit: int | str) -> None:
        self.limit = parse_bytes(limit)
        if self.limit <= 0:
            raise ValueError(f"a memory budget must be positive, got {limit!r}; e.g. budget='2GiB'")

    #: Pressure on a budget of bytes rises only through the overlay's own saves, which wake its spiller.
    poll_s: float | None = None

    def process_used(self) -> int | None:
        """Not tracked for an explicit budget."""
        return None

    def under_pressure(self) -> bool:
        """An explicit budget has no outside signal."""
        return False

    def __repr__(self) -> str:
        return f"MemoryBudget({self.limit})"


class MemoryMonitor:
    """A fraction of the effective memory limit, measured by process RSS, with PSI as an early signal.

    An overlay's spiller checks it whenever a save wakes it and every ``poll_s`` seconds.
    Polling is cheap (one ``/proc/self/statm`` read through psutil); results are
    cached for ``cache_s`` so a hot save loop does not re-read them every call.
    """

    def __init__(
        self, fraction: float = 0.8, *, psi_threshold: float = 10.0, cache_s: float = 0.01, poll_s: float = 1.0
    ) -> None:
        if not 0 < fraction <= 1:
            raise ValueError(f"fraction of the memory limit must be in (0, 1], got {fraction}")
        if not poll_s > 0:
            raise ValueError(f"poll_s must be a positive number of seconds, got {poll_s!r}")
        #: RSS can rise through allocations the overlay never sees: its spiller looks this often as well.
        self.poll_s: float | None = poll_s
        self.limits = memory_limits()
        self.limit = int(self.limits.effective * fraction)
        self.psi_threshold = psi_threshold
        self.cache_s = cache_s
        self._rss = (0.0, 0)

    def process_used(self) -> int:
        """This process's RSS in bytes (cached for ``cache_s``)."""
        stamp, value = self._rss
        now = time.monotonic()
        if now - stamp > self.cache_s:
            value = process_rss()
            self._rss = (now, value)
        return value

    def available(self) -> int:
        """Bytes the system can still give out."""
        return system_available()

    def psi(self) -> PSI | None:
        """Current memory PSI, or None where absent."""
        return read_psi()

    def under_pressure(self) -> bool:
        """True when tasks stalled on memory more than ``psi_threshold`` % of the last 10 s."""
        psi = self.psi()
        return psi is not None and psi.some_avg10 >= self.psi_threshold

    def __repr__(self) -> str:
        return f"<MemoryMonitor limit={self.limit}>"


def as_budget(budget: int | str | MemoryBudget | MemoryMonitor | None) -> MemoryBudget | MemoryMonitor:
    """``"2GiB"`` or 2**31 -> MemoryBudget; None -> MemoryMonitor over the effective limit; objects pass through."""
    if budget is None:
        return MemoryMonitor()
    if isinstance(budget, (MemoryBudget, MemoryMonitor)):
        return budget
    return MemoryBudget(budget)
