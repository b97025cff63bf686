"""Mutual exclusion for writers of one store, at the reach each store allows.

* :class:`KeyedLocks`: in-process locks by key, made on demand and dropped once
  nobody holds or waits for them (the table never grows with the keys seen).
* :func:`file_lock`: an advisory lock on a local file (``filelock``; flock on
  Linux), so it holds between processes and a killed holder releases it.
* :class:`S3Lease`: a lock object on S3 created with a conditional write
  (``If-None-Match: *``) and kept alive by a heartbeat (``If-Match`` rewrites).
  A waiter breaks a lease it has seen unchanged for ``ttl`` seconds of its own
  clock (so clocks of different machines never need to agree), with a
  conditional delete, so two waiters cannot both break and both take it.
"""

from __future__ import annotations

import contextlib
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from ..errors import LockTimeoutError

__all__ = ["KeyedLocks", "file_lock", "S3Lease", "LeaseLostError"]


class KeyedLocks:
    """One ``threading.Lock`` per key, alive only while held or awaited."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._slots: dict[str, list[Any]] = {}  # key -> [lock, holders and waiters]

    @contextlib.contextmanager
    def hold(self, key: str, timeout: float = -1, *, what: str = "") -> Iterator[None]:
        """Hold ``key``'s lock for the block; LockTimeoutError after ``timeout`` seconds (-1: wait forever)."""
        with self._guard:
            slot = self._slots.setdefault(key, [threading.Lock(), 0])
            slot[1] += 1
        try:
            if not slot[0].acquire(timeout=timeout):
                raise LockTimeoutError(
                    f"{what or key!r} stayed locked by another thread of this process for {timeout:g} s; "
                    "a writer may be stuck, or raise the lock timeout",
                    path=what or key,
                )
            try:
                yield
            finally:
                slot[0].release()
        finally:
            with self._guard:
                slot[1] -= 1
                if slot[1] == 0:
                    del self._slots[key]

    def __len__(self) -> int:
        with self._guard:
            return len(self._slots)


@contextlib.contextmanager
def file_lock(path: Path, timeout: float, *, what: str) -> Iterator[None]:
    """Hold an inter-process lock on ``path`` (created with its folder) for the block."""
    from filelock import FileLock, Timeout

    path.parent.mkdir(parents=True, exist_ok=True)
    # A new FileLock per use: its own file descriptor, so threads of one process exclude each other too.
    lock = FileLock(path, timeout=timeout, poll_interval=0.005, thread_local=False)
    try:
        lock.acquire()
    except Timeout:
        raise LockTimeoutError(
            f"{what!r} stayed locked by another process for {timeout:g} s (lock file {str(path)!r}); "
            "a writer may be stuck, or raise the lock timeout",
            path=what,
        ) from None
    try:
        yield
    finally:
        lock.release()


class LeaseLostError(LockTimeoutError):
    """Another writer broke this process's lease (its heartbeat stalled for the whole lease time)."""


#: ``call(method, **kwargs)``: one S3 API call (s3fs's ``call_s3``), errors translated by s3fs.
S3Call = Callable[..., dict[str, Any]]


class S3Lease:
    """A lock held as an object on S3; use as a context manager around the critical section.

    ``ttl`` is how long a lease may go without a heartbeat before a waiter may
    break it; the holder rewrites it every ``ttl / 4`` seconds.
    """

    def __init__(self, call: S3Call, bucket: str, key: str, *, ttl: float, timeout: float, what: str) -> None:
        self._call, self.bucket, self.key = call, bucket, key
        self.ttl, self.timeout, self.what = ttl, timeout, what
        self._etag: str | None = None
        self._stop = threading.Event()
        self._beat: threading.Thread | None = None
        self.lost = False

    def __enter__(self) -> S3Lease:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def acquire(self) -> None:
        deadline = time.monotonic() + self.timeout
        seen: tuple[str, float] | None = None  # (etag, when first seen) of the lease in the way
        pause = 0.01
        while True:
            etag = self._create()
            if etag is not None:
                self._etag = etag
                self._beat = threading.Thread(target=self._heartbeat, name="hcsvfs-lease", daemon=True)
                self._beat.start()
                return
            current = self._head()
            now = time.monotonic()
            if current is None:
                continue  # released between our two requests: try again at once
            if seen is None or seen[0] != current:
                seen = (current, now)
            elif now - seen[1] >= self.ttl:
                self._delete(current)  # unchanged for a whole lease: its holder is gone
                seen = None
                continue
            if now >= deadline:
                raise LockTimeoutError(
                    f"{self.what!r} stayed locked by another writer for {self.timeout:g} s (lease "
                    f"s3://{self.bucket}/{self.key}); a writer may be stuck, or raise the lock timeout",
                    path=self.what,
                )
            time.sleep(pause)
            pause = min(pause * 2, 0.2)

    def release(self) -> None:
        self._stop.set()
        if self._beat is not None:
            self._beat.join()
        if self._etag is not None and not self.lost:
            self._delete(self._etag)
        self._etag = None

    def verify(self) -> None:
        """Raise LeaseLostError if another writer broke this lease (call before committing)."""
        if self.lost:
            raise LeaseLostError(
                f"the lease on {self.what!r} was broken by another writer (no heartbeat for {self.ttl:g} s); "
                "nothing more was committed; write it again",
                path=self.what,
            )

    # ------------------------------------------------------------------ S3 requests
    def _create(self) -> str | None:
        try:
            out = self._call("put_object", Bucket=self.bucket, Key=self.key, Body=_body(), IfNoneMatch="*")
        except FileExistsError:
            return None
        except OSError as exc:
            if _conflict(exc):  # a concurrent conditional write: S3 says try again
                return None
            raise
        return str(out["ETag"])

    def _head(self) -> str | None:
        try:
            return str(self._call("head_object", Bucket=self.bucket, Key=self.key)["ETag"])
        except FileNotFoundError:
            return None

    def _delete(self, etag: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            try:
                self._call("delete_object", Bucket=self.bucket, Key=self.key, IfMatch=etag)
            except OSError as exc:
                if not _conflict(exc):
                    raise  # a precondition failure means someone else holds it now: leave it

    def _heartbeat(self) -> None:
        while not self._stop.wait(self.ttl / 4):
            try:
                out = self._call("put_object", Bucket=self.bucket, Key=self.key, Body=_body(), IfMatch=self._etag)
            except FileNotFoundError:
                self.lost = True
                return
            except OSError as exc:
                if _conflict(exc):
                    self.lost = True
                    return
                continue  # a transient failure: the next beat tries again within the lease
            self._etag = str(out["ETag"])


def _body() -> bytes:
    return f"{time.time():.3f} {secrets.token_hex(8)}".encode()


def _conflict(exc: BaseException) -> bool:
    """True for S3's 412 PreconditionFailed and 409 ConditionalRequestConflict (s3fs turns both into OSError)."""
    cause = exc.__cause__
    code = (getattr(cause, "response", None) or {}).get("Error", {}).get("Code", "")
    return code in ("PreconditionFailed", "ConditionalRequestConflict", "412", "409")
