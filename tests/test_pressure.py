"""Memory limits (RAM, cgroup v1/v2, RLIMIT_AS), RSS, PSI, and byte budgets (hcsvfs.tiering.pressure, hcsvfs.units)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import psutil
import pytest
from hypothesis import given
from hypothesis import strategies as st

from hcsvfs.tiering.pressure import (
    MemoryBudget,
    MemoryMonitor,
    as_budget,
    effective_limit,
    memory_limits,
    process_rss,
    read_psi,
    system_available,
)
from hcsvfs.units import format_bytes, parse_bytes

GiB = 1024**3


# ---------------------------------------------------------------- byte sizes
@pytest.mark.parametrize(
    "text, expected",
    [
        ("2GiB", 2 * GiB),
        ("2 gib", 2 * GiB),
        ("512MB", 512_000_000),
        ("1.5KiB", 1536),
        ("10", 10),
        ("7B", 7),
        ("3k", 3000),
        (" 1 TiB ", 1024**4),
        (4096, 4096),
        (2.5e3, 2500),
    ],
)
def test_parse_bytes(text: str | int, expected: int) -> None:
    assert parse_bytes(text) == expected


@pytest.mark.parametrize("bad", ["", "GiB", "2 GiBs", "-1MB", "1.2.3MB", "2 parsecs", -5, True, None, [1]])
def test_parse_bytes_rejects_with_a_hint(bad: object) -> None:
    with pytest.raises(ValueError) as info:
        parse_bytes(bad)  # type: ignore[arg-type]
    assert "GiB" in str(info.value) or "negative" in str(info.value)


@given(st.integers(min_value=0, max_value=2**50), st.sampled_from(["", "B", "KiB", "MiB", "GiB", "kB", "MB", "GB"]))
def test_parse_bytes_integer_amounts_are_exact(n: int, unit: str) -> None:
    factor = {"": 1, "B": 1, "KiB": 1024, "MiB": 1024**2, "GiB": GiB, "kB": 1000, "MB": 10**6, "GB": 10**9}[unit]
    assert parse_bytes(f"{n}{unit}") == n * factor


def test_format_bytes() -> None:
    assert format_bytes(512) == "512 B"
    assert format_bytes(3 * 1024**2) == "3.0 MiB"
    assert format_bytes(5 * 1024**5) == "5120.0 TiB"


# ---------------------------------------------------------------- cgroup limits
def _fake_cgroups(tmp: Path, proc_lines: list[str], files: dict[str, str]) -> tuple[Path, Path]:
    root = tmp / "cgroup"
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    proc = tmp / "proc_self_cgroup"
    proc.write_text("\n".join(proc_lines) + "\n")
    return root, proc


def test_cgroup_v2_limit_of_own_cgroup(tmp_path: Path) -> None:
    root, proc = _fake_cgroups(tmp_path, ["0::/job/step"], {"job/step/memory.max": "1073741824\n", "memory.max": "max\n"})
    limits = memory_limits(root, proc)
    assert limits.cgroup_v2 == GiB and limits.cgroup_v1 is None
    assert limits.effective == min(GiB, limits.physical, limits.rlimit_as or GiB)


def test_cgroup_v2_max_means_unlimited(tmp_path: Path) -> None:
    root, proc = _fake_cgroups(tmp_path, ["0::/"], {"memory.max": "max\n"})
    limits = memory_limits(root, proc)
    assert limits.cgroup_v2 is None
    assert limits.effective == min(v for v in (limits.physical, limits.rlimit_as) if v is not None)


def test_cgroup_v1_limit_and_its_no_limit_sentinel(tmp_path: Path) -> None:
    root, proc = _fake_cgroups(
        tmp_path,
        ["4:memory:/docker/abc", "0::/"],
        {"memory/docker/abc/memory.limit_in_bytes": "536870912\n", "memory/memory.limit_in_bytes": "9223372036854771712\n"},
    )
    assert memory_limits(root, proc).cgroup_v1 == 512 * 1024**2
    root2, proc2 = _fake_cgroups(tmp_path / "b", ["4:memory:/"], {"memory/memory.limit_in_bytes": "9223372036854771712\n"})
    assert memory_limits(root2, proc2).cgroup_v1 is None


def test_smallest_limit_wins_and_garbage_is_ignored(tmp_path: Path) -> None:
    root, proc = _fake_cgroups(
        tmp_path,
        ["5:cpu,memory:/x", "0::/x"],
        {"x/memory.max": "2147483648", "memory/x/memory.limit_in_bytes": "1073741824", "memory.max": "garbage"},
    )
    limits = memory_limits(root, proc)
    assert (limits.cgroup_v2, limits.cgroup_v1) == (2 * GiB, GiB)
    assert limits.effective == min(GiB, limits.physical, limits.rlimit_as or GiB)


def test_missing_cgroup_files_mean_no_cgroup_limit(tmp_path: Path) -> None:
    limits = memory_limits(tmp_path / "nothing", tmp_path / "no_proc_file")
    assert limits.cgroup_v1 is None and limits.cgroup_v2 is None
    assert limits.physical == psutil.virtual_memory().total


def test_rlimit_as_lowers_the_effective_limit() -> None:
    # In a child: lowering RLIMIT_AS cannot be undone by an unprivileged process.
    code = textwrap.dedent(
        """
        import resource
        resource.setrlimit(resource.RLIMIT_AS, (3 * 2**30, resource.RLIM_INFINITY))
        from hcsvfs.tiering.pressure import memory_limits
        limits = memory_limits()
        print(limits.rlimit_as, limits.effective)
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    rlimit, effective = map(int, out.stdout.split())
    assert rlimit == 3 * GiB
    assert effective <= 3 * GiB


def test_effective_limit_on_this_machine_is_at_most_ram() -> None:
    assert 0 < effective_limit() <= psutil.virtual_memory().total


# ---------------------------------------------------------------- usage and PSI
def test_process_rss_tracks_an_allocation() -> None:
    before = process_rss()
    block = bytearray(64 * 1024**2)
    block[:: 4096] = b"x" * len(block[::4096])  # touch every page so it is resident
    after = process_rss()
    assert after - before >= 48 * 1024**2
    del block
    assert system_available() > 0


def test_read_psi(tmp_path: Path) -> None:
    f = tmp_path / "memory"
    f.write_text(
        "some avg10=12.50 avg60=3.00 avg300=1.00 total=100\nfull avg10=4.00 avg60=1.25 avg300=0.10 total=50\n"
    )
    psi = read_psi(f)
    assert psi is not None
    assert (psi.some_avg10, psi.some_avg60, psi.full_avg10, psi.full_avg60) == (12.5, 3.0, 4.0, 1.25)
    assert read_psi(tmp_path / "absent") is None
    f.write_text("some avg10=abc\n")
    assert read_psi(f) is None
    f.write_text("some avg10=1.0 avg60=1.0\n")  # no "full" line
    assert read_psi(f) is None


def test_monitor_uses_a_fraction_of_the_effective_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monitor = MemoryMonitor(0.5, psi_threshold=10.0)
    assert monitor.limit == int(monitor.limits.effective * 0.5)
    assert abs(monitor.process_used() - process_rss()) < 64 * 1024**2
    from hcsvfs.tiering import pressure

    monkeypatch.setattr(pressure, "read_psi", lambda: pressure.PSI(25.0, 5.0, 1.0, 0.5))
    assert monitor.under_pressure()
    monkeypatch.setattr(pressure, "read_psi", lambda: pressure.PSI(2.0, 5.0, 1.0, 0.5))
    assert not monitor.under_pressure()
    monkeypatch.setattr(pressure, "read_psi", lambda: None)
    assert not monitor.under_pressure()
    with pytest.raises(ValueError):
        MemoryMonitor(0)
    with pytest.raises(ValueError):
        MemoryMonitor(1.5)


def test_explicit_budget() -> None:
    budget = MemoryBudget("2GiB")
    assert budget.limit == 2 * GiB and budget.process_used() is None and not budget.under_pressure()
    with pytest.raises(ValueError):
        MemoryBudget(0)
    assert as_budget("1MiB").limit == 1024**2
    assert as_budget(budget) is budget
    assert isinstance(as_budget(None), MemoryMonitor)


def test_a_forked_child_measures_itself_not_its_parent() -> None:
    from reliability_helpers import run_in_child

    from hcsvfs.tiering import pressure

    pressure.process_rss()  # the parent has made its handle

    def child() -> tuple[int, int]:
        return os.getpid(), pressure._this_process().pid

    pid, measured = run_in_child(child)
    assert pid == measured != os.getpid()
