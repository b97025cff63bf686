"""The StorageBackend contract, run against every backend in backends_under_test.BACKENDS.

These tests *are* the semantics: a backend is done when it passes all of them.
Objects are 2-D numeric arrays so that every backend (zarr and object stores
included) can store them; paths mix ``.npy``, ``.tif`` and extension-less names.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from backends_under_test import BACKENDS
from hcsvfs.backends import StorageBackend
from hcsvfs.errors import StorageError


def arr(seed: int = 0, shape: tuple[int, int] = (8, 16), dtype: str = "uint16") -> np.ndarray:
    return (np.arange(np.prod(shape), dtype=np.int64).reshape(shape) * (seed + 1) % 251).astype(dtype)


def same(a: Any, b: np.ndarray) -> bool:
    got = np.asarray(a)
    return got.shape == b.shape and got.dtype == b.dtype and np.array_equal(got, b)


def put(b: StorageBackend, path: str, data: np.ndarray | None = None, **kw: Any) -> np.ndarray:
    data = arr() if data is None else data
    parent = path.rsplit("/", 1)[0] if "/" in path else None
    if parent:
        b.ensure_directory(parent)
    b.save(data, path, **kw)
    return data


# ---------------------------------------------------------------- save and load
@pytest.mark.parametrize("name", ["a.npy", "img.tif", "plain"])
def test_save_then_load_round_trips(backend: StorageBackend, name: str) -> None:
    data = put(backend, f"d/{name}", arr(3))
    assert same(backend.load(f"d/{name}"), data)


@pytest.mark.parametrize("dtype", ["uint8", "uint16", "int32", "float32", "float64"])
def test_round_trip_keeps_dtype(backend: StorageBackend, dtype: str) -> None:
    data = put(backend, "x.npy", arr(1, dtype=dtype))
    assert same(backend.load("x.npy"), data)


def test_top_level_save_needs_no_directory(backend: StorageBackend) -> None:
    data = put(backend, "top.npy")
    assert backend.is_file("top.npy")
    assert same(backend.load("top.npy"), data)


def test_logical_paths_are_normalised(backend: StorageBackend) -> None:
    data = put(backend, "a/b/x.npy")
    assert same(backend.load("a//b/./x.npy"), data)
    assert backend.exists("a/b/../b/x.npy")


def test_save_existing_fails_loud(backend: StorageBackend) -> None:
    put(backend, "d/x.npy", arr(1))
    with pytest.raises(FileExistsError) as info:
        backend.save(arr(2), "d/x.npy")
    assert isinstance(info.value, StorageError)
    assert "d/x.npy" in str(info.value) and "overwrite=True" in str(info.value)
    assert same(backend.load("d/x.npy"), arr(1))


def test_overwrite_replaces(backend: StorageBackend) -> None:
    put(backend, "d/x.npy", arr(1))
    backend.save(arr(2), "d/x.npy", overwrite=True)
    assert same(backend.load("d/x.npy"), arr(2))


def test_overwrite_may_change_shape_and_dtype(backend: StorageBackend) -> None:
    put(backend, "d/x.npy", arr(1))
    new = arr(2, shape=(4, 4), dtype="float32")
    backend.save(new, "d/x.npy", overwrite=True)
    assert same(backend.load("d/x.npy"), new)


def test_save_under_missing_parent_fails(backend: StorageBackend) -> None:
    with pytest.raises(FileNotFoundError) as info:
        backend.save(arr(), "missing/x.npy")
    assert isinstance(info.value, StorageError) and "missing" in str(info.value)
    assert not backend.exists("missing")
    assert not backend.exists("missing/x.npy")


def test_save_onto_directory_fails(backend: StorageBackend) -> None:
    backend.ensure_directory("d/sub")
    with pytest.raises(IsADirectoryError):
        backend.save(arr(), "d/sub")
    with pytest.raises(IsADirectoryError):
        backend.save(arr(), "d/sub", overwrite=True)
    assert backend.is_dir("d/sub")


def test_save_under_a_file_fails(backend: StorageBackend) -> None:
    put(backend, "f.npy")
    with pytest.raises((NotADirectoryError, FileNotFoundError)):
        backend.save(arr(), "f.npy/x.npy")


def test_load_missing_fails(backend: StorageBackend) -> None:
    with pytest.raises(FileNotFoundError) as info:
        backend.load("nope/x.npy")
    assert isinstance(info.value, StorageError) and "nope/x.npy" in str(info.value)


def test_load_directory_fails(backend: StorageBackend) -> None:
    backend.ensure_directory("d")
    with pytest.raises(IsADirectoryError):
        backend.load("d")


# ---------------------------------------------------------------- queries
def test_exists_is_file_is_dir(backend: StorageBackend) -> None:
    put(backend, "d/e/x.npy")
    assert backend.exists("d") and backend.is_dir("d") and not backend.is_file("d")
    assert backend.exists("d/e/x.npy") and backend.is_file("d/e/x.npy") and not backend.is_dir("d/e/x.npy")
    assert not backend.exists("d/nope") and not backend.is_file("d/nope") and not backend.is_dir("d/nope")
    assert backend.is_dir(".")


def test_stat(backend: StorageBackend) -> None:
    put(backend, "d/x.npy")
    st = backend.stat("d/x.npy")
    assert st.is_file and not st.is_dir and st.size > 0 and st.path == "d/x.npy"
    assert backend.stat("d").is_dir
    with pytest.raises(FileNotFoundError):
        backend.stat("d/nope")


def _tree(b: StorageBackend) -> None:
    for p in ["p/a.tif", "p/b.TIF", "p/c.npy", "p/sub/d.tif", "p/sub/deeper/e.npy", "p/A01_s1.tif"]:
        put(b, p)
    b.ensure_directory("p/empty")


def test_list_files_flat_sorted_full_paths(backend: StorageBackend) -> None:
    _tree(backend)
    assert backend.list_files("p") == sorted(["p/a.tif", "p/b.TIF", "p/c.npy", "p/A01_s1.tif"])


def test_list_files_recursive(backend: StorageBackend) -> None:
    _tree(backend)
    assert backend.list_files("p", recursive=True) == sorted(
        ["p/a.tif", "p/b.TIF", "p/c.npy", "p/A01_s1.tif", "p/sub/d.tif", "p/sub/deeper/e.npy"]
    )


def test_list_files_extensions_case_insensitive_dot_optional(backend: StorageBackend) -> None:
    _tree(backend)
    assert backend.list_files("p", extensions=[".tif"]) == sorted(["p/a.tif", "p/b.TIF", "p/A01_s1.tif"])
    assert backend.list_files("p", extensions={"npy"}, recursive=True) == ["p/c.npy", "p/sub/deeper/e.npy"]


def test_list_files_pattern(backend: StorageBackend) -> None:
    _tree(backend)
    assert backend.list_files("p", pattern="A01_*", recursive=True) == ["p/A01_s1.tif"]
    assert backend.list_files("p", pattern="*.tif", extensions=[".tif"], recursive=True) == sorted(
        ["p/a.tif", "p/A01_s1.tif", "p/sub/d.tif"]
    )


def test_list_files_on_root(backend: StorageBackend) -> None:
    put(backend, "top.npy")
    put(backend, "d/x.npy")
    assert backend.list_files(".") == ["top.npy"]
    assert backend.list_files(".", recursive=True) == ["d/x.npy", "top.npy"]


def test_list_files_errors(backend: StorageBackend) -> None:
    put(backend, "f.npy")
    with pytest.raises(FileNotFoundError):
        backend.list_files("nope")
    with pytest.raises(NotADirectoryError):
        backend.list_files("f.npy")


def test_list_dir_names_files_and_folders(backend: StorageBackend) -> None:
    _tree(backend)
    assert backend.list_dir("p") == sorted(["a.tif", "b.TIF", "c.npy", "A01_s1.tif", "sub", "empty"])
    assert backend.list_dir("p/empty") == []
    with pytest.raises(FileNotFoundError):
        backend.list_dir("nope")
    with pytest.raises(NotADirectoryError):
        backend.list_dir("p/a.tif")


def test_listings_sort_naturally(backend: StorageBackend) -> None:
    """Numbers in names sort by value (s2 before s10) in list_files and list_dir, recursive or not."""
    for name in ["A01_s10_w1.npy", "A01_s2_w1.npy", "A01_s1_w1.npy", "A10_s1_w1.npy", "A2_s1_w1.npy"]:
        put(backend, f"n/{name}")
    for folder in ["t10", "t2", "t1"]:
        put(backend, f"n/{folder}/x.npy")
    files = ["A01_s1_w1.npy", "A01_s2_w1.npy", "A01_s10_w1.npy", "A2_s1_w1.npy", "A10_s1_w1.npy"]
    assert backend.list_files("n") == [f"n/{f}" for f in files]
    assert backend.list_dir("n") == [*files, "t1", "t2", "t10"]
    assert backend.list_files("n", recursive=True) == [f"n/{f}" for f in files] + [
        "n/t1/x.npy", "n/t2/x.npy", "n/t10/x.npy"
    ]


def test_ensure_directory(backend: StorageBackend) -> None:
    backend.ensure_directory("a/b/c")
    backend.ensure_directory("a/b/c")  # idempotent
    assert backend.is_dir("a") and backend.is_dir("a/b") and backend.is_dir("a/b/c")
    assert backend.list_dir("a/b") == ["c"]
    put(backend, "f.npy")
    with pytest.raises(NotADirectoryError):
        backend.ensure_directory("f.npy/sub")
    with pytest.raises(NotADirectoryError):
        backend.ensure_directory("f.npy")


# ---------------------------------------------------------------- batches
def test_save_batch_and_load_batch(backend: StorageBackend) -> None:
    backend.ensure_directory("b")
    data = [arr(i) for i in range(5)]
    paths = [f"b/{i}.npy" for i in range(5)]
    backend.save_batch(data, paths)
    assert all(same(got, want) for got, want in zip(backend.load_batch(paths), data))
    assert backend.load_batch([]) == []


def test_save_batch_checks_every_path_first(backend: StorageBackend) -> None:
    put(backend, "b/2.npy", arr(9))
    with pytest.raises(FileExistsError):
        backend.save_batch([arr(i) for i in range(4)], [f"b/{i}.npy" for i in range(4)])
    assert backend.list_files("b") == ["b/2.npy"]  # nothing else written
    assert same(backend.load("b/2.npy"), arr(9))
    backend.save_batch([arr(i) for i in range(4)], [f"b/{i}.npy" for i in range(4)], overwrite=True)
    assert same(backend.load("b/2.npy"), arr(2))


def test_save_batch_bad_arguments(backend: StorageBackend) -> None:
    backend.ensure_directory("b")
    with pytest.raises(ValueError):
        backend.save_batch([arr(), arr()], ["b/x.npy"])
    with pytest.raises(ValueError):
        backend.save_batch([arr(), arr()], ["b/x.npy", "b//x.npy"])
    with pytest.raises(FileNotFoundError):
        backend.save_batch([arr()], ["missing/x.npy"])
    assert backend.list_files("b") == []


def test_load_batch_missing_fails(backend: StorageBackend) -> None:
    put(backend, "b/x.npy")
    with pytest.raises(FileNotFoundError):
        backend.load_batch(["b/x.npy", "b/nope.npy"])


# ---------------------------------------------------------------- delete
def test_delete_file_and_empty_dir(backend: StorageBackend) -> None:
    put(backend, "d/x.npy")
    backend.delete("d/x.npy")
    assert not backend.exists("d/x.npy") and backend.is_dir("d")
    backend.delete("d")
    assert not backend.exists("d")
    with pytest.raises(FileNotFoundError):
        backend.delete("d")


def test_delete_non_empty_dir_fails(backend: StorageBackend) -> None:
    put(backend, "d/x.npy")
    with pytest.raises(OSError) as info:
        backend.delete("d")
    assert isinstance(info.value, StorageError) and "delete_all" in str(info.value)
    assert backend.is_file("d/x.npy")


def test_delete_all(backend: StorageBackend) -> None:
    _tree(backend)
    put(backend, "keep.npy")
    backend.delete_all("p")
    assert not backend.exists("p") and not backend.exists("p/sub/deeper/e.npy")
    assert backend.is_file("keep.npy")
    backend.delete_all("keep.npy")
    assert not backend.exists("keep.npy")
    with pytest.raises(FileNotFoundError):
        backend.delete_all("p")


def test_deleting_the_root_is_refused(backend: StorageBackend) -> None:
    put(backend, "x.npy")
    with pytest.raises(ValueError):
        backend.delete_all(".")
    assert backend.is_file("x.npy")


# ---------------------------------------------------------------- move and copy
def test_move_file(backend: StorageBackend) -> None:
    data = put(backend, "a/x.npy", arr(4))
    backend.ensure_directory("b")
    backend.move("a/x.npy", "b/y.npy")
    assert not backend.exists("a/x.npy")
    assert same(backend.load("b/y.npy"), data)


def test_move_fails_loud_then_overwrites(backend: StorageBackend) -> None:
    put(backend, "a/x.npy", arr(1))
    put(backend, "a/y.npy", arr(2))
    with pytest.raises(FileExistsError):
        backend.move("a/x.npy", "a/y.npy")
    assert same(backend.load("a/x.npy"), arr(1)) and same(backend.load("a/y.npy"), arr(2))
    backend.move("a/x.npy", "a/y.npy", overwrite=True)
    assert not backend.exists("a/x.npy") and same(backend.load("a/y.npy"), arr(1))


def test_move_directory_tree(backend: StorageBackend) -> None:
    _tree(backend)
    backend.move("p", "q")
    assert not backend.exists("p")
    assert backend.list_files("q", recursive=True) == sorted(
        ["q/a.tif", "q/b.TIF", "q/c.npy", "q/A01_s1.tif", "q/sub/d.tif", "q/sub/deeper/e.npy"]
    )
    assert backend.is_dir("q/empty")
    assert same(backend.load("q/sub/deeper/e.npy"), arr())


def test_move_errors(backend: StorageBackend) -> None:
    _tree(backend)
    with pytest.raises(FileNotFoundError):
        backend.move("nope", "q")
    with pytest.raises(ValueError):
        backend.move("p", "p/sub/inside")
    with pytest.raises(FileNotFoundError):
        backend.move("p/a.tif", "missing/a.tif")
    backend.ensure_directory("q")
    with pytest.raises(FileExistsError):
        backend.move("p", "q")
    assert backend.is_file("p/a.tif")


def test_copy_file_and_tree(backend: StorageBackend) -> None:
    _tree(backend)
    backend.copy("p/c.npy", "p/c2.npy")
    assert same(backend.load("p/c2.npy"), arr()) and backend.is_file("p/c.npy")
    with pytest.raises(FileExistsError):
        backend.copy("p/c.npy", "p/c2.npy")
    backend.copy("p/sub", "copied")
    assert backend.list_files("copied", recursive=True) == ["copied/d.tif", "copied/deeper/e.npy"]
    assert backend.is_file("p/sub/d.tif")


def test_names_with_glob_characters_are_plain_names(backend: StorageBackend) -> None:
    """'*?[' in a name mean nothing special (fsspec's rm() would glob them: a move left its source behind)."""
    put(backend, "a[1]*?/x.npy", arr(1))
    put(backend, "a1b/y.npy", arr(2))  # would match the glob a[1]*?
    backend.move("a[1]*?", "moved")
    assert backend.list_dir(".") == sorted(["a1b", "moved"])
    backend.delete_all("moved")
    assert backend.list_files("a1b") == ["a1b/y.npy"] and not backend.exists("moved")


# ---------------------------------------------------------------- paths no backend stores
REFUSED = {
    "climbs out": "../up/x.npy",
    "climbs out later": "d/../../x.npy",
    "parent of the root": "..",
    "NUL byte": "d/x\x00.npy",
    "blank": "  ",
    "reserved name": "d/.hcsvfs-tmp-x.npy",
    "reserved folder": ".hcsvfs-locks/x.npy",
    "over-long name": "d/" + "n" * 300 + ".npy",
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_every_backend_refuses_the_same_paths(backend: StorageBackend, case: str) -> None:
    bad = REFUSED[case]
    put(backend, "d/ok.npy")
    calls = {
        "save": lambda: backend.save(arr(), bad),
        "load": lambda: backend.load(bad),
        "stat": lambda: backend.stat(bad),
        "exists": lambda: backend.exists(bad),
        "ensure_directory": lambda: backend.ensure_directory(bad),
        "list_dir": lambda: backend.list_dir(bad),
        "copy to": lambda: backend.copy("d/ok.npy", bad),
        "move to": lambda: backend.move("d/ok.npy", bad),
        "save_batch": lambda: backend.save_batch([arr()], [bad]),
    }
    for name, call in calls.items():
        with pytest.raises(ValueError) as info:
            call()
        assert isinstance(info.value, StorageError), (name, info.value)
    assert backend.list_dir(".") == ["d"] and backend.list_files("d") == ["d/ok.npy"]


# ---------------------------------------------------------------- one transcript for all
def _transcript(b: StorageBackend) -> list[Any]:
    """The same script on any backend must produce the same observable results."""
    out: list[Any] = []

    def step(fn: Any) -> None:
        try:
            value = fn()
        except Exception as exc:  # the kind of error is part of the contract
            kinds = [k.__name__ for k in (FileNotFoundError, FileExistsError, IsADirectoryError, NotADirectoryError, ValueError, TypeError, OSError) if isinstance(exc, k)]
            out.append(("error", kinds[0] if kinds else type(exc).__name__))
            return
        if isinstance(value, np.ndarray) or hasattr(value, "shape"):
            a = np.asarray(value)
            value = ("array", a.shape, str(a.dtype), int(a.astype(np.int64).sum()))
        out.append(value)

    step(lambda: b.ensure_directory("w/A01"))
    step(lambda: b.save(arr(1), "w/A01/f1.npy"))
    step(lambda: b.save(arr(2), "w/A01/f1.npy"))
    step(lambda: b.save(arr(2), "w/A02/f1.npy"))
    step(lambda: b.save_batch([arr(3), arr(4)], ["w/A01/f2.tif", "w/A01/f3"]))
    step(lambda: b.list_files("w", recursive=True))
    step(lambda: b.list_dir("w"))
    step(lambda: b.load("w/A01/f2.tif"))
    step(lambda: b.move("w/A01/f3", "w/A01/f1.npy"))
    step(lambda: b.move("w/A01/f3", "w/A01/f1.npy", overwrite=True))
    step(lambda: b.load("w/A01/f1.npy"))
    step(lambda: b.copy("w/A01", "w/B01"))
    step(lambda: b.delete("w/B01"))
    step(lambda: b.delete_all("w/B01"))
    step(lambda: b.list_files("w", recursive=True, extensions=["npy"]))
    step(lambda: b.exists("w/B01"))
    step(lambda: b.load("w/A01"))
    step(lambda: b.stat("w/A01").kind)
    return out


def test_same_script_same_results_on_every_backend(backend: StorageBackend, tmp_path, request) -> None:
    reference = _transcript(BACKENDS["memory"](tmp_path / "ref", request))
    assert _transcript(backend) == reference
