"""Security: no code runs on load without opt-in, and nothing is written outside a rooted backend.

Every malicious payload here tries to create a marker file when unpickled; the
tests assert that the marker never appears and that the refusal is a typed
error naming the path.
"""

from __future__ import annotations

import logging
import os
import pickle
from pathlib import Path

import numpy as np
import pytest

from hcsvfs import FileManager
from hcsvfs.backends import DiskStorageBackend
from hcsvfs.errors import InvalidPathError, StorageError, UnsafeLoadError
from hcsvfs.registry import StorageRegistry
from reliability_helpers import payload, version_of


class _Exploit:
    """Unpickling this creates ``marker``: the proof that code ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (os.mkdir, (str(self.marker),))


@pytest.fixture
def marker(tmp_path: Path) -> Path:
    return tmp_path / "code-ran"


@pytest.fixture
def disk(tmp_path: Path) -> DiskStorageBackend:
    return DiskStorageBackend(tmp_path / "root")


# ---------------------------------------------------------------- pickle needs an opt-in
@pytest.mark.parametrize("name", ["evil.pkl", "evil.pickle", "evil", "evil.npy", "evil.json", "evil.txt", "evil.tif"])
def test_pickle_is_never_loaded_without_opt_in(disk: DiskStorageBackend, marker: Path, name: str) -> None:
    """Pickle bytes under any name (its own extension, none, or a disguise) are refused, not run."""
    (disk.root / name).write_bytes(pickle.dumps(_Exploit(marker)))
    with pytest.raises(UnsafeLoadError) as info:
        disk.load(name)
    assert name in str(info.value) and "allow_pickle" in str(info.value)
    assert not marker.exists(), "unpickling ran code without allow_pickle"


def test_pickle_bytes_in_a_raw_bytes_file_stay_bytes(disk: DiskStorageBackend, marker: Path) -> None:
    blob = pickle.dumps(_Exploit(marker))
    (disk.root / "evil.bin").write_bytes(blob)
    assert disk.load("evil.bin") == blob  # .bin means raw bytes: returned, never unpickled
    assert not marker.exists()


def test_pickle_save_needs_opt_in_too(disk: DiskStorageBackend) -> None:
    with pytest.raises(UnsafeLoadError):
        disk.save({"a": object()}, "x.pkl")
    assert not disk.exists("x.pkl")
    disk.save({"a": 1}, "x.pkl", allow_pickle=True)
    with pytest.raises(UnsafeLoadError):
        disk.load("x.pkl")  # an opt-in on save does not carry over to load
    assert disk.load("x.pkl", allow_pickle=True) == {"a": 1}


def test_object_arrays_inside_npy_are_not_unpickled(disk: DiskStorageBackend, marker: Path) -> None:
    with open(disk.root / "obj.npy", "wb") as fh:
        np.save(fh, np.array([_Exploit(marker)], dtype=object), allow_pickle=True)
    with pytest.raises(StorageError) as info:
        disk.load("obj.npy")
    assert "obj.npy" in str(info.value)
    assert not marker.exists()


def test_malicious_pickle_inside_torch_file_does_not_run(disk: DiskStorageBackend, marker: Path) -> None:
    torch = pytest.importorskip("torch")
    with open(disk.root / "model.pt", "wb") as fh:
        torch.save({"weight": torch.zeros(3), "payload": _Exploit(marker)}, fh)
    with pytest.raises(UnsafeLoadError) as info:
        disk.load("model.pt")
    assert "model.pt" in str(info.value) and "weights_only" in str(info.value)
    assert not marker.exists(), "torch.load ran a pickled payload"
    # Plain tensors still load.
    disk.save({"weight": torch.arange(3)}, "ok.pt")
    assert torch.equal(disk.load("ok.pt")["weight"], torch.arange(3))


# ---------------------------------------------------------------- symlinks leading out of the root
@pytest.fixture
def outside(tmp_path: Path) -> Path:
    o = tmp_path / "outside"
    o.mkdir()
    (o / "secret.npy").write_bytes(b"not yours")
    return o


def test_symlinked_directory_pointing_out_is_not_followed_for_writes(
    disk: DiskStorageBackend, outside: Path
) -> None:
    (disk.root / "link").symlink_to(outside, target_is_directory=True)
    disk.save(payload(1), "inside.npy")
    attempts = {
        "save": lambda: disk.save(payload(2), "link/new.npy"),
        "overwrite": lambda: disk.save(payload(2), "link/secret.npy", overwrite=True),
        "ensure_directory": lambda: disk.ensure_directory("link/sub"),
        "move": lambda: disk.move("inside.npy", "link/moved.npy"),
        "copy": lambda: disk.copy("inside.npy", "link/copied.npy"),
        "save_batch": lambda: disk.save_batch([payload(3)], ["link/batch.npy"]),
        "delete": lambda: disk.delete("link/secret.npy"),
        "delete_all": lambda: disk.delete_all("link"),
        "load": lambda: disk.load("link/secret.npy"),
    }
    for op, call in attempts.items():
        with pytest.raises(InvalidPathError) as info:
            call()
        assert "symlink" in str(info.value) and "link" in str(info.value), op
    assert sorted(p.name for p in outside.iterdir()) == ["secret.npy"]
    assert (outside / "secret.npy").read_bytes() == b"not yours"
    assert version_of(disk.load("inside.npy")) == 1


def test_symlinked_file_pointing_out_is_not_written_through(disk: DiskStorageBackend, outside: Path) -> None:
    (disk.root / "x.npy").symlink_to(outside / "secret.npy")
    for call in (lambda: disk.save(payload(2), "x.npy", overwrite=True), lambda: disk.save(payload(2), "x.npy")):
        with pytest.raises(StorageError):
            call()
    assert (outside / "secret.npy").read_bytes() == b"not yours"


def test_symlink_inside_root_to_inside_is_still_not_written_through(disk: DiskStorageBackend) -> None:
    disk.save(payload(1), "real.npy")
    (disk.root / "alias.npy").symlink_to(disk.root / "real.npy")
    with pytest.raises(StorageError):
        disk.save(payload(2), "alias.npy", overwrite=True)
    assert version_of(disk.load("real.npy")) == 1


@pytest.mark.parametrize("kind", ["file", "directory", "nested through an inside link"])
def test_copying_a_folder_never_reads_through_a_link_leading_out(disk: DiskStorageBackend, outside: Path, kind: str) -> None:
    """A direct load of the link is refused; a copy of the folder holding it must not read what it points to."""
    disk.ensure_directory("d")
    disk.save(payload(1), "d/keep.npy")
    if kind == "file":
        (disk.root / "d" / "leak.npy").symlink_to(outside / "secret.npy")
    elif kind == "directory":
        (disk.root / "d" / "leak").symlink_to(outside, target_is_directory=True)
    else:  # d/alias -> (inside) other/, which holds a link out
        disk.ensure_directory("other")
        (disk.root / "other" / "leak.npy").symlink_to(outside / "secret.npy")
        (disk.root / "d" / "alias").symlink_to(disk.root / "other", target_is_directory=True)
    with pytest.raises(InvalidPathError) as info:
        disk.copy("d", "copied")
    assert "leak" in str(info.value) and "symlink" in str(info.value)
    assert not disk.exists("copied")  # refused before anything was copied
    assert not [p for p in disk.root.rglob("*") if not p.is_symlink() and p.is_file() and p.read_bytes() == b"not yours"]


def test_copying_a_folder_with_a_link_inside_copies_its_content(disk: DiskStorageBackend) -> None:
    disk.ensure_directory("d")
    disk.save(payload(1), "real.npy")
    (disk.root / "d" / "alias.npy").symlink_to(disk.root / "real.npy")
    disk.copy("d", "copied")
    assert version_of(disk.load("copied/alias.npy")) == 1 and not (disk.root / "copied" / "alias.npy").is_symlink()


def test_filemanager_parent_creation_does_not_follow_links_out(tmp_path: Path, outside: Path) -> None:
    disk = DiskStorageBackend(tmp_path / "root")
    (disk.root / "plate").symlink_to(outside, target_is_directory=True)
    reg = StorageRegistry(discover=False)
    reg.register_backend("disk", disk)
    with pytest.raises(InvalidPathError):
        FileManager(reg).save(payload(1), "plate/A01/x.tif", "disk")
    assert sorted(p.name for p in outside.iterdir()) == ["secret.npy"]


# ---------------------------------------------------------------- object-store credentials
SECRET = "hcsvfs-SECRET-do-not-leak-7f3a9"
KEY_ID = "AKIAHCSVFSNEVERSHOWN"


@pytest.mark.s3
def test_object_store_credentials_never_reach_logs_reprs_or_errors(caplog: pytest.LogCaptureFixture) -> None:
    """Every log record (all loggers, DEBUG), repr and error message of a session stays free of the secret."""
    import traceback

    pytest.importorskip("s3fs")
    from s3_server import free_port, new_s3_url

    from hcsvfs.backends.objectstore import ObjectStoreBackend

    url, options = new_s3_url()
    seen: list[str] = []
    with caplog.at_level(logging.DEBUG):
        b = ObjectStoreBackend(url, key=KEY_ID, secret=SECRET, **options)
        reg = StorageRegistry(discover=False)
        reg.register_backend("s3", b)
        fm = FileManager(reg)
        fm.save(payload(1), "plate/A01/x.npy", "s3")
        assert version_of(fm.load("plate/A01/x.npy", "s3")) == 1
        fm.list_files("plate", "s3", recursive=True)
        seen += [repr(b), str(b), repr(reg), repr(fm)]
        failures = [
            lambda: fm.load("plate/missing.npy", "s3"),
            lambda: fm.save(payload(2), "plate/A01/x.npy", "s3"),
            lambda: b.load("../escape.npy"),
            lambda: ObjectStoreBackend(
                url, key=KEY_ID, secret=SECRET, endpoint_url=f"http://127.0.0.1:{free_port()}",
                config_kwargs={"connect_timeout": 1, "read_timeout": 1},
            ).load("x.npy"),
        ]
        for call in failures:
            with pytest.raises(StorageError) as info:
                call()
            seen += [str(info.value), repr(info.value), "".join(traceback.format_exception(info.value))]
            seen.append(repr(pickle.loads(pickle.dumps(info.value))))  # as a worker would send it back
    seen += [r.getMessage() for r in caplog.records]
    seen += [str(r.args) for r in caplog.records]
    assert len(caplog.records) > 0  # logging really was captured
    leaks = [s for s in seen if SECRET in s]
    assert not leaks, leaks[:3]
    own = [r.getMessage() for r in caplog.records if r.name.startswith("hcsvfs")]
    assert not [s for s in [*own, *seen[:4]] if KEY_ID in s]
