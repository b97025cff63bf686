"""``ZarrConfig(compression="auto")``: the codec picked by a measured trial on a sample of the data.

Each candidate of a small grid (Blosc LZ4, LZ4HC and Zstd at a few levels, with byte, bit or no
shuffle, and no compression) encodes and decodes the same sample on this machine; the goal
turns the measured ratio and speeds into a cost, and the cheapest candidate wins:

- ``balanced``: seconds to encode, write, read back and decode the data once at the
  destination's bandwidth (a fast local disk favours the fastest codec, a slow object store
  the smallest output);
- ``speed``: seconds to encode and decode, among candidates that reach at least half the
  best ratio of the trial;
- ``size``: stored bytes, among candidates that decode at least :data:`SIZE_DECODE_FLOOR`.

Only codecs of the zarr v3 core (Blosc) are tried, so every NGFF reader opens the result;
the choice and its trial table are recorded with the data (:meth:`Choice.to_json`).
"""

from __future__ import annotations

import math
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from numcodecs import Blosc

from ...config import GOALS, ZarrConfig
from .store import StoreLocator

__all__ = ["Candidate", "Choice", "CodecChooser", "TrialRow", "CANDIDATES", "sample", "trial"]

#: The decode speed (bytes/s) a codec must reach for the ``size`` goal: data stored smaller but slower to
#: read than this would make every later analysis pay for the saved bytes.
SIZE_DECODE_FLOOR = 200e6

#: Bytes of data the trial encodes: a few tiles from planes spread across the array.
SAMPLE_BYTES = 256 * 1024
_TILE = 256
_PLANES = 4
_REPEAT_BELOW = 0.002  # seconds

_SHUFFLES = {"byte": Blosc.SHUFFLE, "bit": Blosc.BITSHUFFLE, "none": Blosc.NOSHUFFLE}


@dataclass(frozen=True)
class Candidate:
    """One codec setting, in :class:`~hcsvfs.config.ZarrConfig`'s own terms."""

    compression: str
    level: int = 0
    shuffle: str = "none"

    @property
    def name(self) -> str:
        if self.compression == "none":
            return "none"
        return f"blosc({self.compression}, {self.level}, {self.shuffle})"

    def apply(self, config: ZarrConfig) -> ZarrConfig:
        """``config`` with this codec in place of ``auto``."""
        return replace(config, compression=self.compression, compression_level=self.level, shuffle=self.shuffle)


#: The grid, in the order the trial runs it: fast codecs first, so that the slower ones can be ruled out
#: on an eighth of the sample when a faster one already does better (see ``_measure_all``).
CANDIDATES: tuple[Candidate, ...] = (
    Candidate("none"),
    *(Candidate("lz4", 1, s) for s in ("byte", "bit", "none")),
    *(Candidate("zstd", 1, s) for s in ("byte", "bit", "none")),
    *(Candidate("zstd", 3, s) for s in ("byte", "bit")),
    Candidate("lz4hc", 5, "bit"),
)


@dataclass(frozen=True)
class TrialRow:
    """What one candidate did with the sample on this machine."""

    candidate: Candidate
    ratio: float  #: raw bytes / stored bytes
    encode: float  #: bytes/s of raw data
    decode: float  #: bytes/s of raw data
    cost: float  #: the goal's figure of merit, lower is better (seconds or bytes per raw GB)
    #: measured on an eighth of the sample only: its codec time there already ruled it out
    pruned: bool = False


@dataclass(frozen=True)
class Choice:
    """The winning candidate, the goal and bandwidth it was chosen for, and the evidence."""

    candidate: Candidate
    goal: str
    bandwidth: float  #: bytes/s of the destination, as measured or given
    threads: int  #: cores the codec runs on (zarr encodes chunks in parallel)
    rows: tuple[TrialRow, ...]
    sample_bytes: int
    seconds: float  #: what the trial cost

    def to_json(self) -> dict[str, Any]:
        """The record kept in the array's (or plate's) ``attributes.hcsvfs.compression``."""
        return {
            "chosen": self.candidate.name,
            "codec": {"compression": self.candidate.compression, "level": self.candidate.level,
                      "shuffle": self.candidate.shuffle},
            "goal": self.goal,
            "bandwidth_MBps": round(self.bandwidth / 1e6, 1),
            "threads": self.threads,
            "sample_bytes": self.sample_bytes,
            "trial_ms": round(self.seconds * 1e3, 2),
            "trial": [
                {"codec": r.candidate.name, "ratio": round(r.ratio, 3), "encode_MBps": round(r.encode / 1e6, 1),
                 "decode_MBps": round(r.decode / 1e6, 1), "cost": round(r.cost, 6), "pruned": r.pruned}
                for r in self.rows
            ],
        }

    @staticmethod
    def codec_of(record: dict[str, Any]) -> Candidate:
        """The candidate a :meth:`to_json` record chose (what later writes of the same plate reuse)."""
        codec = record["codec"]
        return Candidate(str(codec["compression"]), int(codec["level"]), str(codec["shuffle"]))


def sample(data: Any, budget: int = SAMPLE_BYTES) -> np.ndarray:
    """Central tiles (up to ``_TILE`` px a side) of up to ``_PLANES`` planes spread evenly over the leading axes,
    ``budget`` bytes in all: tiles shrink so that every picked plane gets one.

    Tiles, not whole planes, because a trial must cost little next to the write it decides for; planes spread
    over the array (every channel of a field, say) because channels compress differently. ``data`` is a numpy
    array or any array that indexes with ints and slices (a lazy zarr view: only the tiles are read).
    """
    shape, itemsize = tuple(data.shape), np.dtype(data.dtype).itemsize
    if len(shape) < 2:
        return np.ascontiguousarray(data).reshape(-1)[: max(1, budget // max(1, itemsize))]
    lead, (h, w) = shape[:-2], shape[-2:]
    count = math.prod(lead)
    picks = np.unique(np.linspace(0, count - 1, min(count, _PLANES)).round().astype(int))
    side = max(16, min(_TILE, math.isqrt(budget // (len(picks) * itemsize))))
    th, tw = min(h, side), min(w, side)
    y, x = (h - th) // 2, (w - tw) // 2
    tile = (slice(y, y + th), slice(x, x + tw))
    return np.stack([np.asarray(data[(*(int(i) for i in np.unravel_index(k, lead)), *tile)]) for k in picks])


def trial(
    data: Any,
    goal: str,
    bandwidth: float,
    *,
    threads: int | None = None,
    candidates: tuple[Candidate, ...] = CANDIDATES,
) -> Choice:
    """Encode and decode a sample of ``data`` (an array, or a lazy one: see :func:`sample`) with every candidate
    here and now; the cheapest for ``goal`` wins.

    The trial runs on a worker thread, where Blosc encodes single-threaded as it does for zarr's chunks;
    zarr spreads the chunks over the cores, so the cost counts the codec's speed times ``threads``
    (default: the cores this process may use). Speeds in the table are per thread.
    """
    if goal not in GOALS:
        raise ValueError(f"unknown compression goal {goal!r}; valid values: {', '.join(GOALS)}")
    if not bandwidth > 0:
        raise ValueError(f"bandwidth must be a positive number of bytes/s, got {bandwidth!r}")
    start = time.perf_counter()
    picked = sample(data)
    threads = threads or len(os.sched_getaffinity(0))
    with ThreadPoolExecutor(1, thread_name_prefix="hcsvfs-codec-trial") as pool:
        measured = pool.submit(_measure_all, picked, candidates, goal, bandwidth, threads).result()
    rows = _score(measured, goal, bandwidth, threads)
    best = min(rows, key=lambda r: r.cost)
    return Choice(best.candidate, goal, bandwidth, threads, tuple(rows), picked.nbytes, time.perf_counter() - start)


def _measure_all(
    picked: np.ndarray, candidates: tuple[Candidate, ...], goal: str, bandwidth: float, threads: int
) -> list[tuple[Candidate, float, float, float, bool]]:
    """(candidate, ratio, encode and decode bytes/s, pruned) for each candidate.

    For the time-based goals every candidate first encodes an eighth of the sample, and one that cannot win
    is not run on the rest (the slow codecs are most of a trial's time): one whose codec time alone already
    costs more than twice the best balanced total so far, or one that a candidate already fully measured
    beats on that same eighth in both ratio and codec time (by 1.5x). Its row keeps what the eighth measured.
    """
    assert threading.current_thread() is not threading.main_thread()
    raw = picked.tobytes()
    head = raw[: max(picked.itemsize, len(raw) // 8 // picked.itemsize * picked.itemsize)]
    Blosc(cname="lz4", clevel=1).encode(head)  # the first call of a thread pays one-off setup
    out: list[tuple[Candidate, float, float, float, bool]] = []
    best = float("inf")
    measured_heads: list[tuple[float, float]] = []  # (ratio, cpu cost) on the eighth, of fully measured ones
    for c in candidates:
        if c.compression == "none":
            out.append((c, 1.0, float("inf"), float("inf"), False))
            if goal == "balanced":
                best = min(best, _balanced(1.0, float("inf"), float("inf"), bandwidth, threads))
            continue
        codec = Blosc(cname=c.compression, clevel=c.level, shuffle=_SHUFFLES[c.shuffle], typesize=picked.itemsize)
        ratio, enc, dec = _timed(codec, head, repeat=False)
        cpu = _cpu_cost(enc, dec, threads)
        pruned = goal != "size" and (
            (goal == "balanced" and cpu > 2 * best)
            or any(r >= ratio and 1.5 * t <= cpu for r, t in measured_heads)
        )
        if not pruned:
            measured_heads.append((ratio, cpu))
            ratio, enc, dec = _timed(codec, raw, repeat=True)
            if goal == "balanced":
                best = min(best, _balanced(ratio, enc, dec, bandwidth, threads))
        out.append((c, ratio, enc, dec, pruned))
    return out


def _timed(codec: Blosc, raw: bytes, *, repeat: bool) -> tuple[float, float, float]:
    """(ratio, encode bytes/s, decode bytes/s) of ``codec`` on ``raw``, in CPU time of this thread (not wall
    time: another process taking the core mid-encode must not make a codec look slow)."""
    enc_s = dec_s = float("inf")
    while True:
        t0 = time.thread_time()
        packed = codec.encode(raw)
        t1 = time.thread_time()
        codec.decode(packed)
        t2 = time.thread_time()
        first = enc_s == float("inf")
        enc_s, dec_s = min(enc_s, t1 - t0), min(dec_s, t2 - t1)
        if not (repeat and first and t2 - t0 < _REPEAT_BELOW):
            break  # fast codecs get a second pass (cheap, and their first is the noisiest); slow ones one
    n = len(raw)
    return n / len(packed), n / max(enc_s, 1e-9), n / max(dec_s, 1e-9)


def _cpu_cost(enc: float, dec: float, threads: int) -> float:
    """Seconds per raw GB to encode and decode on ``threads`` cores."""
    return (1e9 / enc + 1e9 / dec) / threads


def _balanced(ratio: float, enc: float, dec: float, bandwidth: float, threads: int) -> float:
    """Seconds per raw GB to encode, write, read back and decode once at ``bandwidth``."""
    return _cpu_cost(enc, dec, threads) + 2 * (1e9 / ratio) / bandwidth


def _score(
    measured: list[tuple[Candidate, float, float, float, bool]], goal: str, bandwidth: float, threads: int
) -> list[TrialRow]:
    gb = 1e9
    best_ratio = max(ratio for _, ratio, _, _, pruned in measured if not pruned)
    rows = []
    for c, ratio, enc, dec, pruned in measured:
        cpu = _cpu_cost(enc, dec, threads)
        if goal == "balanced":
            cost = _balanced(ratio, enc, dec, bandwidth, threads)
        elif goal == "speed":
            cost = cpu if ratio >= best_ratio / 2 else float("inf")
        else:  # size
            cost = gb / ratio if dec >= SIZE_DECODE_FLOOR else float("inf")
        rows.append(TrialRow(c, ratio, enc, dec, cost, pruned))
    if all(r.cost == float("inf") for r in rows):  # nothing decodes fast enough: the smallest after all
        rows = [replace(r, cost=gb / r.ratio) for r in rows]
    return rows


class CodecChooser:
    """Resolves ``compression="auto"`` for one backend: the destination's bandwidth measured once, and plain
    images of one folder with the same dtype, shape and kind decided once (their first write runs the trial).

    Plates keep their decision in the plate's own metadata instead (see ``PlateLayout``), so every later
    writer of the plate, in any process, uses it.
    """

    _MAX_REMEMBERED = 1024

    def __init__(self, locator: StoreLocator, config: ZarrConfig) -> None:
        self.locator = locator
        self.config = config
        self._bandwidth = config.bandwidth
        self._decided: dict[tuple[Any, ...], dict[str, Any]] = {}
        self._lock = threading.Lock()

    @property
    def active(self) -> bool:
        return self.config.compression == "auto"

    def bandwidth(self) -> float:
        """The destination's bytes/s: ``ZarrConfig.bandwidth``, else measured (once) by a probe in the store."""
        if self._bandwidth is None:
            self._bandwidth = self.locator.probe_bandwidth()
        return self._bandwidth

    def decide(self, data: np.ndarray) -> dict[str, Any]:
        """The trial's record (:meth:`Choice.to_json`) for ``data`` at this backend's goal and bandwidth."""
        return trial(data, self.config.goal, self.bandwidth()).to_json()

    def for_image(self, folder: str, data: np.ndarray, labels: bool) -> tuple[ZarrConfig, dict[str, Any] | None]:
        """The config to write a plain image in ``folder`` with, and the record to keep with it (None: not auto)."""
        if not self.active:
            return self.config, None
        key = (folder, data.dtype.str, data.shape, labels)
        with self._lock:  # one trial per key, also when threads save a folder's images at once
            record = self._decided.get(key)
            if record is None:
                record = self.decide(data)
                if len(self._decided) >= self._MAX_REMEMBERED:
                    self._decided.pop(next(iter(self._decided)))
                self._decided[key] = record
        return self.resolve(record), record

    def resolve(self, record: dict[str, Any]) -> ZarrConfig:
        """This backend's config with the codec a record chose."""
        return Choice.codec_of(record).apply(self.config)
