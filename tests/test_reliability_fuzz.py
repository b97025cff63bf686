"""Bad-input fuzzing: random operation sequences, paths and objects, checked against a model.

``BackendMachine`` runs random sequences of save / load / delete / move / copy /
list on every backend in backends_under_test.BACKENDS and compares each outcome
with a plain dict model of the contract. Ordinary names must behave exactly as
the model says; exotic names (unicode, control characters, reserved Windows
names, over-long names) may instead be refused, but only with a typed
:class:`hcsvfs.errors.StorageError` and without changing anything. Property
tests then throw hostile paths at a rooted disk backend (nothing may appear
outside the root) and odd objects at every format (round trip or typed error).
"""

from __future__ import annotations

import os
import tempfile
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule, run_state_machine_as_test

from backends_under_test import BACKENDS
from hcsvfs import paths as P
from hcsvfs.backends import DiskStorageBackend, MemoryStorageBackend, StorageBackend
from hcsvfs.errors import DirectoryNotEmptyError, InvalidPathError, StorageError, UnsupportedTypeError
from reliability_helpers import files_outside, payload, version_of

ORDINARY = ["a", "b", "c.npy", "d.tif", "e"]
EXOTIC = [
    "ü.npy",
    "名前.tif",
    "😀",
    "CON",
    "nul.npy",
    "AUX",
    ".hidden",
    "...",
    "a b",
    "-rf",
    "tab\tname",
    "new\nline",
    "\u202etxt.npy",  # right-to-left override
    "x" * 250,  # fits NAME_MAX
    "y" * 300,  # over NAME_MAX on common file systems
    "a:b*?[c]",
    "\udcff",  # a lone surrogate: not valid UTF-8
]
_EXOTIC = set(EXOTIC)

# (examples, steps) per run; backends doing network or chunk I/O per call get a smaller budget
# so the whole suite stays within minutes on two busy cores.
MACHINE_BUDGET = {k: (100, 40) for k in ("memory", "disk", "shared_memory", "overlay", "overlay-tiny")}
MACHINE_BUDGET["zarr"] = (50, 40)
SLOW_BACKEND_BUDGET = (12, 25)
OPS: dict[str, int] = {}  # operations run per backend, printed and recorded in docs/reliability.md

component = st.one_of(st.sampled_from(ORDINARY), st.sampled_from(ORDINARY), st.sampled_from(ORDINARY), st.sampled_from(EXOTIC))
new_path = st.lists(component, min_size=1, max_size=3).map("/".join)


def _exotic(path: str) -> bool:
    return any(part in _EXOTIC for part in path.split("/"))


class _Expect:
    """An expected error class (None means success)."""

    def __init__(self, *errors: type[BaseException]) -> None:
        self.errors = errors


class BackendMachine(RuleBasedStateMachine):
    """Random operations on one backend compared against ``files`` (path -> version) and ``dirs``."""

    factory: Any = None
    kind = ""
    request: Any = None

    def __init__(self) -> None:
        super().__init__()
        self.tmp = Path(tempfile.mkdtemp(prefix="hcsvfs-fuzz-"))
        self.b: StorageBackend = self.factory(self.tmp, self.request)
        self.files: dict[str, int] = {}
        self.dirs: set[str] = set()

    def teardown(self) -> None:
        shutil.rmtree(self.tmp, ignore_errors=True)

    # ------------------------------------------------------------- model helpers
    def _pick(self, data: st.DataObject) -> str:
        existing = sorted(self.files) + sorted(self.dirs)
        if existing and data.draw(st.booleans(), label="existing?"):
            return data.draw(st.sampled_from(existing), label="path")
        return data.draw(new_path, label="path")

    def _missing_error(self, path: str) -> tuple[type[BaseException], ...]:
        return (FileNotFoundError, NotADirectoryError)

    def _parent_ok(self, path: str) -> tuple[type[BaseException], ...] | None:
        par = P.parent(path)
        if par == "." or par in self.dirs:
            return None
        return (FileNotFoundError, NotADirectoryError)

    def _below(self, path: str) -> list[str]:
        return [p for p in [*self.files, *self.dirs] if p.startswith(path + "/")]

    def _do(self, name: str, path: str, call: Any, expect: tuple[type[BaseException], ...] | None) -> tuple[bool, Any]:
        """Run ``call``; check it against ``expect``; return (succeeded, result). ``path`` may be "src -> dst"."""
        OPS[self.kind] = OPS.get(self.kind, 0) + 1
        try:
            result = call()
        except StorageError as exc:
            if expect is not None and isinstance(exc, expect):
                return False, None
            if any(_exotic(p) for p in path.split(" -> ")):
                return False, None  # a typed refusal of an exotic name is allowed (state checked by invariant)
            raise AssertionError(f"{name}({path!r}) raised {exc!r}; the model expected {expect}") from exc
        except BaseException as exc:
            raise AssertionError(f"{name}({path!r}) raised untyped {type(exc).__name__}: {exc}") from exc
        assert expect is None, f"{name}({path!r}) succeeded; the model expected {expect}"
        return True, result

    # ------------------------------------------------------------- rules
    @initialize()
    def start(self) -> None:
        assert self.b.list_dir(".") == []

    @rule(data=st.data())
    def ensure_directory(self, data: st.DataObject) -> None:
        p = P.normalize(self._pick(data))
        chain = [*P.ancestors(p), p]
        expect = (NotADirectoryError,) if any(c in self.files for c in chain) else None
        ok, _ = self._do("ensure_directory", p, lambda: self.b.ensure_directory(p), expect)
        if ok:
            self.dirs.update(chain)

    @rule(data=st.data(), version=st.integers(0, 50000), overwrite=st.booleans())
    def save(self, data: st.DataObject, version: int, overwrite: bool) -> None:
        p = P.normalize(self._pick(data))
        if p in self.dirs:
            expect: tuple[type[BaseException], ...] | None = (IsADirectoryError,)
        elif p in self.files:
            expect = None if overwrite else (FileExistsError,)
        else:
            expect = self._parent_ok(p)
        ok, _ = self._do("save", p, lambda: self.b.save(payload(version, (2, 3)), p, overwrite=overwrite), expect)
        if ok:
            self.files[p] = version

    @rule(data=st.data())
    def load(self, data: st.DataObject) -> None:
        p = P.normalize(self._pick(data))
        if p in self.files:
            expect = None
        elif p in self.dirs:
            expect = (IsADirectoryError,)
        else:
            expect = self._missing_error(p)
        ok, got = self._do("load", p, lambda: self.b.load(p), expect)
        if ok:
            assert np.asarray(got).shape == (2, 3)
            assert version_of(got) == self.files[p]

    @rule(data=st.data(), alias=st.sampled_from(["./{}", "{}/", "x/../{}", "{}/."]))
    def load_by_alias(self, data: st.DataObject, alias: str) -> None:
        if not self.files:
            return
        p = data.draw(st.sampled_from(sorted(self.files)))
        ok, got = self._do("load", p, lambda: self.b.load(alias.format(p)), None)
        assert version_of(got) == self.files[p]

    @rule(data=st.data())
    def delete(self, data: st.DataObject) -> None:
        p = P.normalize(self._pick(data))
        if p in self.files:
            expect = None
        elif p in self.dirs:
            expect = (DirectoryNotEmptyError,) if self._below(p) else None
        else:
            expect = self._missing_error(p)
        ok, _ = self._do("delete", p, lambda: self.b.delete(p), expect)
        if ok:
            self.files.pop(p, None)
            self.dirs.discard(p)

    @rule(data=st.data())
    def delete_all(self, data: st.DataObject) -> None:
        p = P.normalize(self._pick(data))
        expect = None if (p in self.files or p in self.dirs) else self._missing_error(p)
        ok, _ = self._do("delete_all", p, lambda: self.b.delete_all(p), expect)
        if ok:
            for q in [p, *self._below(p)]:
                self.files.pop(q, None)
                self.dirs.discard(q)

    @rule(data=st.data(), overwrite=st.booleans(), move=st.booleans())
    def transfer(self, data: st.DataObject, overwrite: bool, move: bool) -> None:
        s, d = P.normalize(self._pick(data)), P.normalize(self._pick(data))
        is_file = s in self.files
        if not is_file and s not in self.dirs:
            expect: tuple[type[BaseException], ...] | None = self._missing_error(s)
        elif s == d or P.is_within(d, s):
            expect = (ValueError,)
        elif is_file:
            if d in self.dirs:
                expect = (IsADirectoryError,)
            elif d in self.files:
                expect = None if overwrite else (FileExistsError,)
            else:
                expect = self._parent_ok(d)
        elif d in self.files or d in self.dirs:
            expect = (FileExistsError,)
        else:
            expect = self._parent_ok(d)
        op = self.b.move if move else self.b.copy
        ok, _ = self._do("move" if move else "copy", f"{s} -> {d}", lambda: op(s, d, overwrite=overwrite), expect)
        if not ok:
            return
        for q in [s, *self._below(s)]:
            target = d + q[len(s) :]
            if q in self.files:
                self.files[target] = self.files[q]
            else:
                self.dirs.add(target)
            if move:
                self.files.pop(q, None)
                self.dirs.discard(q)

    @rule(data=st.data())
    def list_dir(self, data: st.DataObject) -> None:
        p = P.normalize(self._pick(data))
        if p in self.dirs:
            expect = None
        elif p in self.files:
            expect = (NotADirectoryError,)
        else:
            expect = self._missing_error(p)
        ok, got = self._do("list_dir", p, lambda: self.b.list_dir(p), expect)
        if ok:
            want = sorted({q[len(p) + 1 :].split("/", 1)[0] for q in self._below(p)})
            assert got == want

    @invariant()
    def matches_model(self) -> None:
        OPS[self.kind] = OPS.get(self.kind, 0) + 1
        assert self.b.list_files(".", recursive=True) == sorted(self.files)
        assert self.b.list_dir(".") == sorted({q.split("/", 1)[0] for q in [*self.files, *self.dirs]})
        for d in self.dirs:
            assert self.b.is_dir(d), d


@pytest.mark.parametrize("kind", sorted(BACKENDS))
def test_random_operation_sequences_match_the_model(kind: str, request: pytest.FixtureRequest) -> None:
    machine = type(f"{kind}Machine", (BackendMachine,), {"factory": staticmethod(BACKENDS[kind]), "kind": kind, "request": request})
    examples, steps = MACHINE_BUDGET.get(kind, SLOW_BACKEND_BUDGET)
    run_state_machine_as_test(
        machine,
        settings=settings(
            max_examples=examples,
            stateful_step_count=steps,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        ),
    )
    assert OPS[kind] >= examples * 5
    print(f"\n[reliability] state machine on {kind}: {OPS[kind]} operations checked against the model")


# ---------------------------------------------------------------- hostile paths on a jail
hostile_part = st.one_of(
    st.sampled_from(["..", ".", "", "a", "b", "...", "~", "$HOME", "%2e%2e", "..\\..", "/", "//", "CON", "x" * 300]),
    st.text(min_size=1, max_size=12),
)
hostile_path = st.lists(hostile_part, min_size=1, max_size=6).map("/".join) | st.sampled_from(
    ["/etc/passwd", "/tmp/escape.npy", "../../escape.npy", "a/../../escape.npy", "a/./../../b"]
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(path=hostile_path, op=st.sampled_from(["save", "ensure_directory", "move_to", "copy_to", "load", "delete"]))
def test_hostile_paths_never_leave_the_root(tmp_path: Path, path: str, op: str) -> None:
    base = Path(tempfile.mkdtemp(dir=tmp_path))
    root = base / "root"
    disk = DiskStorageBackend(root)
    disk.save(payload(1), "seed.npy")
    calls = {
        "save": lambda: disk.save(payload(2), path),
        "ensure_directory": lambda: disk.ensure_directory(path),
        "move_to": lambda: disk.move("seed.npy", path),
        "copy_to": lambda: disk.copy("seed.npy", path),
        "load": lambda: disk.load(path),
        "delete": lambda: disk.delete(path),
    }
    try:
        calls[op]()
    except StorageError:
        pass  # typed: fine
    except BaseException as exc:
        raise AssertionError(f"{op}({path!r}) raised untyped {type(exc).__name__}: {exc}") from exc
    assert files_outside(base, root) == []
    assert [p for p in base.iterdir() if p != root] == []


def test_escapes_are_refused_with_invalid_path_error(tmp_path: Path) -> None:
    disk = DiskStorageBackend(tmp_path / "root")
    disk.save(payload(1), "seed.npy")
    for path in ["../x.npy", "a/../../x.npy", str(tmp_path / "x.npy"), "/etc/hcsvfs.npy"]:
        for call in (lambda: disk.save(payload(2), path), lambda: disk.move("seed.npy", path), lambda: disk.ensure_directory(path)):
            with pytest.raises(InvalidPathError) as info:
                call()
            assert "root" in str(info.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["root"]


# ---------------------------------------------------------------- odd objects
_RECORD = np.dtype([("x", "<i4"), ("y", "<f8")])


def _from_bytes(dtype: np.dtype, n: int, blob: bytes) -> np.ndarray:
    size = n * dtype.itemsize
    return np.frombuffer(blob[:size].ljust(size, b"\0"), dtype=dtype).copy()


odd_arrays = st.one_of(
    hnp.arrays(hnp.scalar_dtypes(), hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=5)),
    st.builds(
        _from_bytes,
        st.sampled_from([_RECORD, np.dtype("S2"), np.dtype("V4"), np.dtype(">u2"), np.dtype("<c16")]),
        st.integers(0, 6),
        st.binary(max_size=100),
    ),
    st.sampled_from(
        [
            np.array(["ab", "ü", "名"], dtype="U3"),
            np.array([{"a": 1}, None], dtype=object),  # object arrays need pickle
            np.empty((0, 2**31), dtype=np.uint8),  # a huge shape holding no data
            np.empty((2**40, 0), dtype=np.float32),
            np.zeros((1,) * 7),
            np.zeros((2, 1, 1, 1, 1, 1)),
            np.asfortranarray(np.arange(12.0).reshape(3, 4)),
            np.arange(20, dtype=np.int16)[::3],  # a strided view
        ]
    ),
)


def _equal(a: Any, b: np.ndarray) -> bool:
    """Same shape, same dtype up to byte order (TIFF may store big-endian as native), same bits."""
    a = np.asarray(a)
    same_type = a.dtype.newbyteorder("=") == b.dtype.newbyteorder("=")
    return a.shape == b.shape and same_type and a.astype(b.dtype).tobytes() == b.tobytes()


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(obj=odd_arrays, ext=st.sampled_from([".npy", ".tif", ".ome.tif", ".pt", ".json", ".txt", ".csv", ".bin", ""]))
def test_odd_arrays_round_trip_or_fail_typed(tmp_path: Path, obj: np.ndarray, ext: str) -> None:
    disk = DiskStorageBackend(Path(tempfile.mkdtemp(dir=tmp_path)))
    mem = MemoryStorageBackend()
    for b in (disk, mem):
        try:
            b.save(obj, f"obj{ext}")
        except StorageError as exc:
            assert isinstance(exc, (UnsupportedTypeError, ValueError)), repr(exc)
            assert f"obj{ext}" in str(exc)
            assert not b.exists(f"obj{ext}")  # a refused save leaves nothing behind
            continue
        except BaseException as exc:
            raise AssertionError(f"save of {obj.dtype} {obj.shape} as {ext!r} raised untyped {exc!r}") from exc
        got = b.load(f"obj{ext}")
        if b is mem:
            assert got is obj
        else:
            assert _equal(got, obj), (obj.dtype, obj.shape, np.asarray(got).dtype, np.asarray(got).shape)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(blob=st.binary(max_size=300), ext=st.sampled_from([".npy", ".tif", ".pt", ".json", ".csv", ".txt", ".pkl", ""]))
def test_garbage_files_load_or_fail_typed(tmp_path: Path, blob: bytes, ext: str) -> None:
    root = Path(tempfile.mkdtemp(dir=tmp_path))
    (root / f"g{ext}").write_bytes(blob)
    disk = DiskStorageBackend(root)
    try:
        disk.load(f"g{ext}")
    except StorageError as exc:
        assert f"g{ext}" in str(exc), str(exc)
    except BaseException as exc:
        raise AssertionError(f"loading garbage {blob[:20]!r} as {ext!r} raised untyped {exc!r}") from exc


def test_unusable_path_types_are_typed_errors() -> None:
    mem = MemoryStorageBackend()
    for bad in [None, 3, b"bytes", "", "   ", "a\x00b", ["a"]]:
        with pytest.raises(InvalidPathError):
            mem.save(payload(1), bad)  # type: ignore[arg-type]
