"""Shared helpers for the reliability suite: forked workers, random SIGKILLs, tree checks.

Workers are *forked* from the test process, so they start in milliseconds with
NumPy and hcsvfs already imported; that is what makes 50 kill points per
operation affordable on two busy cores.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import random
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import numpy as np

from hcsvfs.backends.atomic import is_temp_name

_FORK = mp.get_context("fork")


def payload(version: int, shape: tuple[int, ...] = (16, 16), dtype: str = "uint16") -> np.ndarray:
    """A small array whose every element encodes ``version``, so a torn or mixed file is obvious."""
    return np.full(shape, version % 60000, dtype=dtype)


def version_of(arr: Any) -> int:
    """The version a :func:`payload` array carries; raises if its elements disagree (a torn write)."""
    a = np.asarray(arr)
    values = np.unique(a)
    assert values.size == 1, f"torn object: mixed versions {values[:5]} in one array"
    return int(values[0])


def temp_files(root: Path) -> list[Path]:
    """Every hcsvfs temp file or folder (in-flight or crashed atomic write; zarr writes folders) below ``root``."""
    return [Path(d) / n for d, dirs, names in os.walk(root) for n in [*dirs, *names] if is_temp_name(n)]


def files_outside(base: Path, root: Path) -> list[Path]:
    """Every file under ``base`` that is not under ``root`` (used to prove nothing escaped a jail)."""
    real_root = root.resolve()
    out = []
    for d, _, names in os.walk(base):
        for n in names:
            p = Path(d) / n
            if real_root not in p.resolve().parents:
                out.append(p)
    return out


def _child(work: Callable[[Connection], None], conn: Connection) -> None:
    # The parent learns "ready" before it starts the kill timer, so the delay measures work, not fork.
    try:
        conn.send(("ready", None))
        work(conn)
        conn.send(("done", None))
    finally:
        os._exit(0)


@dataclass
class KillRun:
    """What one forked worker reported before it was killed (or finished)."""

    acks: list[Any] = field(default_factory=list)
    finished: bool = False
    delay_s: float = 0.0


def run_and_kill(work: Callable[[Connection], None], *, max_delay_s: float, rng: random.Random) -> KillRun:
    """Fork a worker running ``work(conn)``, SIGKILL it a random time after it is ready, return its acks.

    ``work`` sends ``("ack", x)`` through ``conn`` after each step it completed,
    so the caller knows exactly which results were reported done before the kill.
    """
    recv, send = _FORK.Pipe(duplex=False)
    proc = _FORK.Process(target=_child, args=(work, send), daemon=True)
    proc.start()
    send.close()
    if not recv.poll(30):
        proc.kill()
        raise AssertionError("forked worker never became ready")
    assert recv.recv()[0] == "ready"
    run = KillRun(delay_s=rng.uniform(0, max_delay_s))
    time.sleep(run.delay_s)
    if proc.pid is not None:
        try:
            os.kill(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    proc.join(30)
    assert not proc.is_alive(), "worker survived SIGKILL"
    while True:
        try:
            kind, value = recv.recv()
        except (EOFError, OSError):
            break
        if kind == "ack":
            run.acks.append(value)
        elif kind == "done":
            run.finished = True
    recv.close()
    return run


def run_in_child(work: Callable[[], Any], *, timeout_s: float = 60, setup: Callable[[], None] | None = None) -> Any:
    """Run ``work()`` in a forked child and return its result, or re-raise its exception here.

    ``setup`` runs first in the child only (e.g. to set a resource limit that must
    not touch the test process).
    """
    recv, send = _FORK.Pipe(duplex=False)

    def target() -> None:
        try:
            if setup is not None:
                setup()
            try:
                send.send(("ok", work()))
            except BaseException as exc:  # noqa: BLE001 - shipped to the parent as it is
                send.send(("err", exc))
        finally:
            os._exit(0)

    proc = _FORK.Process(target=target, daemon=True)
    proc.start()
    send.close()
    if not recv.poll(timeout_s):
        proc.kill()
        raise AssertionError(f"child did not answer within {timeout_s} s (deadlock?)")
    kind, value = recv.recv()
    proc.join(timeout_s)
    if kind == "err":
        raise value
    return value


def start_together(n: int, target: Callable[[int, Any], Any]) -> list[Any]:
    """Fork ``n`` processes that all call ``target(i, barrier)`` after one barrier; return their outcomes.

    Each outcome is the return value, or the exception instance the process raised.
    """
    barrier = _FORK.Barrier(n)
    queue = _FORK.Queue()

    def body(i: int) -> None:
        try:
            barrier.wait(30)
            queue.put((i, "ok", target(i, barrier)))
        except BaseException as exc:  # noqa: BLE001 - the outcome is what is being tested
            queue.put((i, "err", exc))
        finally:
            queue.close()
            queue.join_thread()
            os._exit(0)

    procs = [_FORK.Process(target=body, args=(i,), daemon=True) for i in range(n)]
    for p in procs:
        p.start()
    outcomes: list[Any] = [None] * n
    for _ in range(n):
        i, kind, value = queue.get(timeout=60)
        outcomes[i] = value
    for p in procs:
        p.join(30)
        assert not p.is_alive(), "racing process did not finish (deadlock?)"
    return outcomes


def run_threads(n: int, target: Callable[[int], Any], *, join_s: float = 60) -> list[Any]:
    """Run ``target(i)`` in ``n`` threads released together by a barrier; each result or the exception it raised.

    A thread still running after ``join_s`` fails the test as a deadlock instead of hanging it.
    """
    barrier = threading.Barrier(n)
    out: list[Any] = [None] * n

    def body(i: int) -> None:
        barrier.wait(join_s)
        try:
            out[i] = target(i)
        except BaseException as exc:  # noqa: BLE001 - the outcome is what is being tested
            out[i] = exc

    threads = [threading.Thread(target=body, args=(i,), daemon=True) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(join_s)
        assert not t.is_alive(), "a thread did not finish: deadlock"
    return out
