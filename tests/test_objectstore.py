"""ObjectStoreBackend: what the conformance suite does not pin down.

The contract itself runs in test_conformance.py on a moto S3 bucket. Here:
the physical layout on S3 (marker objects, no temp keys left), directories
made by other tools, the disk formats byte for byte, path rules, memory:// and
file:// roots, credentials from the environment, mount() and ``hcsvfs cp``.
"""

from __future__ import annotations

import io
import threading
import uuid
from pathlib import Path

import numpy as np
import pytest
import tifffile

from hcsvfs import FileManager
from hcsvfs.backends import DiskStorageBackend
from hcsvfs.backends.objectstore import DIR_MARKER, ObjectStoreBackend
from hcsvfs.errors import InvalidPathError, StorageError
from s3_server import new_s3_url, shared_server

pytestmark = pytest.mark.s3


def img(seed: int = 0, shape: tuple[int, ...] = (16, 24)) -> np.ndarray:
    return (np.arange(np.prod(shape)).reshape(shape) * (seed + 3) % 4093).astype(np.uint16)


@pytest.fixture
def s3() -> tuple[ObjectStoreBackend, str]:
    """A backend on a fresh bucket, and the bucket's name (to look at raw keys)."""
    url, options = new_s3_url("plates")
    return ObjectStoreBackend(url, **options), url.split("/")[2]


def raw_keys(bucket: str) -> list[str]:
    return shared_server().keys(bucket)


# ---------------------------------------------------------------- layout on S3
def test_directories_are_marker_objects_and_survive_empty(s3) -> None:
    b, bucket = s3
    b.ensure_directory("A01/field1")
    assert raw_keys(bucket) == [f"plates/A01/{DIR_MARKER}", f"plates/A01/field1/{DIR_MARKER}"]
    b.save(img(), "A01/field1/x.tif")
    b.delete("A01/field1/x.tif")
    assert b.is_dir("A01/field1") and b.list_dir("A01/field1") == [] and b.list_dir("A01") == ["field1"]
    b.delete_all("A01")
    assert raw_keys(bucket) == []


def test_no_temp_or_claim_keys_are_left_behind(s3) -> None:
    b, bucket = s3
    b.ensure_directory("w")
    b.save_batch([img(i) for i in range(4)], [f"w/{i}.npy" for i in range(4)])
    b.move("w/0.npy", "w/moved.npy")
    b.copy("w", "w2")
    b.save(img(9), "w/1.npy", overwrite=True)
    with pytest.raises(FileExistsError):
        b.save(img(9), "w/2.npy")
    hidden = [k for k in raw_keys(bucket) if "/.hcsvfs-" in k and not k.endswith(DIR_MARKER)]
    assert hidden == []


def test_prefixes_written_by_other_tools_are_directories(s3) -> None:
    b, bucket = s3
    buf = io.BytesIO()
    np.save(buf, img(5))
    b.fs.pipe_file(f"{bucket}/plates/foreign/deep/x.npy", buf.getvalue())  # no markers: written by another tool
    assert b.is_dir("foreign") and b.is_dir("foreign/deep")
    assert b.list_dir(".") == ["foreign"]
    assert b.list_files(".", recursive=True) == ["foreign/deep/x.npy"]
    assert np.array_equal(b.load("foreign/deep/x.npy"), img(5))
    b.ensure_directory("foreign/deep/new")  # works inside an implicit directory
    assert b.list_dir("foreign/deep") == ["new", "x.npy"]


def test_objects_are_the_disk_formats_byte_for_byte(s3, tmp_path: Path) -> None:
    b, bucket = s3
    disk = DiskStorageBackend(tmp_path)
    for name in ("x.tif", "x.npy", "x.json"):
        data = {"well": "A01", "n": 3} if name.endswith(".json") else img(2)
        b.save(data, name)
        disk.save(data, name)
        assert b.fs.cat_file(f"{bucket}/plates/{name}") == (tmp_path / name).read_bytes(), name
    with tifffile.TiffFile(io.BytesIO(b.fs.cat_file(f"{bucket}/plates/x.tif"))) as tif:
        assert np.array_equal(tif.asarray(), img(2))


def test_stat_reports_size_time_and_version(s3) -> None:
    b, _ = s3
    b.save(img(), "x.npy")
    st = b.stat("x.npy")
    assert st.is_file and st.size == img().nbytes + 128 and st.mtime is not None
    assert st.extra["url"].endswith("/plates/x.npy") and "ETag" in st.extra["version"]
    b.save(img(1), "x.npy", overwrite=True)
    assert b.stat("x.npy").extra["version"] != st.extra["version"]


def test_racing_creators_on_s3_have_one_winner(s3) -> None:
    b, bucket = s3
    b.ensure_directory("race")
    outcomes: list[object] = [None] * 6
    barrier = threading.Barrier(6)

    def create(i: int) -> None:
        barrier.wait(30)
        try:
            b.save(img(i), "race/x.npy")
        except BaseException as exc:  # noqa: BLE001 - the outcome is what is tested
            outcomes[i] = exc

    threads = [threading.Thread(target=create, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    winners = [i for i, o in enumerate(outcomes) if o is None]
    assert len(winners) == 1
    assert all(isinstance(o, FileExistsError) and isinstance(o, StorageError) for o in outcomes if o is not None)
    assert np.array_equal(b.load("race/x.npy"), img(winners[0]))


def _create_in_process(blob: bytes, seed: int, start_at: float) -> str:
    import pickle
    import time

    backend = pickle.loads(blob)
    time.sleep(max(0.0, start_at - time.time()))  # all processes fire together
    try:
        backend.save(img(seed), "race/p.npy")
    except FileExistsError as exc:
        return "lost" if isinstance(exc, StorageError) else f"untyped {exc!r}"
    return "won"


def test_racing_creator_processes_on_s3_have_one_winner(s3) -> None:
    import multiprocessing as mp
    import pickle
    import time

    b, _ = s3
    b.ensure_directory("race")
    ctx = mp.get_context("spawn")
    with ctx.Pool(3) as pool:
        pool.map(abs, range(3))  # start the workers (imports) before the race
        start_at = time.time() + 1.0
        outcomes = pool.starmap(_create_in_process, [(pickle.dumps(b), i, start_at) for i in range(3)])
    assert sorted(outcomes) == ["lost", "lost", "won"]
    assert np.array_equal(b.load("race/p.npy"), img(outcomes.index("won")))


# ---------------------------------------------------------------- path rules
@pytest.mark.parametrize(
    "bad",
    ["../x.npy", "a/../../x.npy", "/abs/x.npy", f"d/{DIR_MARKER}", "d/.hcsvfs-tmp-1.tmp", "tab\there", "new\nline"],
)
def test_bad_paths_are_rejected_with_a_clear_error(s3, bad: str) -> None:
    b, bucket = s3
    with pytest.raises(InvalidPathError):
        b.save(img(), bad)
    assert raw_keys(bucket) == []


def test_a_url_without_bucket_is_refused() -> None:
    with pytest.raises(InvalidPathError, match="bucket"):
        ObjectStoreBackend("s3://", **shared_server().storage_options())


# ---------------------------------------------------------------- other fsspec roots
@pytest.fixture(params=["memory", "file"])
def other_root(request: pytest.FixtureRequest, tmp_path: Path) -> ObjectStoreBackend:
    if request.param == "memory":
        url = f"memory://hcsvfs-test-{uuid.uuid4().hex[:8]}"
    else:
        url = (tmp_path / "root").as_uri()
    b = ObjectStoreBackend(url)
    yield b
    if request.param == "memory":
        b.fs.rm(b._root, recursive=True)


def test_memory_and_file_roots_keep_the_contract(other_root: ObjectStoreBackend) -> None:
    b = other_root
    b.ensure_directory("p/empty")
    b.ensure_directory("p/sub")
    b.save(img(1), "p/a.tif")
    b.save_batch([img(2), img(3)], ["p/sub/b.npy", "p/sub/c"])
    with pytest.raises(FileExistsError):
        b.save(img(4), "p/a.tif")
    with pytest.raises(FileNotFoundError):
        b.save(img(4), "missing/a.tif")
    assert b.list_dir("p") == ["a.tif", "empty", "sub"]
    assert b.list_files("p", recursive=True) == ["p/a.tif", "p/sub/b.npy", "p/sub/c"]
    assert np.array_equal(b.load("p/sub/c"), img(3))
    b.move("p/sub", "q")
    assert b.list_files("q") == ["q/b.npy", "q/c"] and not b.exists("p/sub")
    b.delete_all("p")
    assert b.list_dir(".") == ["q"]


def test_file_root_writes_plain_files_readable_by_the_disk_backend(tmp_path: Path) -> None:
    b = ObjectStoreBackend((tmp_path / "r").as_uri())
    b.ensure_directory("d")
    b.save(img(7), "d/x.tif")
    assert np.array_equal(DiskStorageBackend(tmp_path / "r").load("d/x.tif"), img(7))
    assert sorted(p.name for p in (tmp_path / "r" / "d").iterdir()) == ["x.tif"]  # no markers, no temp files


def test_two_memory_urls_are_two_namespaces() -> None:
    a = ObjectStoreBackend(f"memory://ns-{uuid.uuid4().hex[:8]}")
    c = ObjectStoreBackend(f"memory://ns-{uuid.uuid4().hex[:8]}")
    a.save(img(), "x.npy")
    assert a.exists("x.npy") and not c.exists("x.npy")
    a.delete("x.npy")


def test_a_pickled_backend_works_in_another_process(s3) -> None:
    import pickle
    import subprocess
    import sys

    b, _ = s3
    b.save(img(6), "x.npy")
    blob = pickle.dumps(b)
    code = "import pickle, sys; b = pickle.loads(sys.stdin.buffer.read()); b.save(b.load('x.npy') + 1, 'y.npy')"
    done = subprocess.run([sys.executable, "-c", code], input=blob, capture_output=True, timeout=120)
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    assert np.array_equal(b.load("y.npy"), img(6) + 1)


# ---------------------------------------------------------------- configuration
def test_endpoint_and_credentials_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    url, options = new_s3_url()
    monkeypatch.setenv("AWS_ENDPOINT_URL", options["endpoint_url"])
    b = ObjectStoreBackend(url)  # no arguments: botocore reads AWS_* variables
    b.save(img(), "x.npy")
    assert np.array_equal(b.load("x.npy"), img())


def test_repr_and_errors_never_show_credentials() -> None:
    url, options = new_s3_url()
    b = ObjectStoreBackend(url, key="AKIA-VISIBLE-NOT", secret="very-secret-value", **options)
    assert "very-secret-value" not in repr(b) and "AKIA" not in repr(b)
    with pytest.raises(FileNotFoundError) as info:
        b.load("nope.npy")
    assert "very-secret-value" not in str(info.value)


def test_mount_registers_a_backend_in_one_line() -> None:
    url, options = new_s3_url("plates")
    fm = FileManager()
    backend = fm.mount(url, name="lab_s3", **options)
    assert fm.get_backend("lab_s3") is backend
    fm.save(img(1), "P1/A01/s1.tif", "lab_s3")  # parents created by FileManager, as on disk
    assert np.array_equal(fm.load("P1/A01/s1.tif", "lab_s3"), img(1))
    assert fm.list_files("P1", "lab_s3", recursive=True) == ["P1/A01/s1.tif"]
    with pytest.raises(ValueError, match="already registered"):
        fm.mount(url, name="lab_s3", **options)
    with pytest.raises(StorageError):
        fm.mount(url, name="other", kind="nonsense")


def test_transfer_between_disk_and_s3(tmp_path: Path) -> None:
    url, options = new_s3_url()
    fm = FileManager()
    fm.registry.register_backend("local", DiskStorageBackend(tmp_path))
    fm.mount(url, name="remote", **options)
    for i in range(3):
        fm.save(img(i), f"plate/A0{i}/x.tif", "local")
    written = fm.transfer("plate", "local", "copy", "remote")
    assert written == ["copy/A00/x.tif", "copy/A01/x.tif", "copy/A02/x.tif"]
    back = fm.transfer("copy", "remote", "back", "local")
    assert len(back) == 3 and np.array_equal(fm.load("back/A02/x.tif", "local"), img(2))


def test_cli_cp_to_and_from_s3(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from hcsvfs.cli.app import app

    url, options = new_s3_url("in")
    monkeypatch.setenv("AWS_ENDPOINT_URL", options["endpoint_url"])
    monkeypatch.chdir(tmp_path)
    DiskStorageBackend(tmp_path).ensure_directory("src")
    DiskStorageBackend(tmp_path).save(img(4), "src/a.tif")
    runner = CliRunner()
    up = runner.invoke(app, ["cp", "src", f"{url}/copied", "--quiet"])
    assert up.exit_code == 0, up.output
    down = runner.invoke(app, ["cp", f"{url}/copied/a.tif", "disk:back.tif", "--quiet"])
    assert down.exit_code == 0, down.output
    assert np.array_equal(DiskStorageBackend(tmp_path).load("back.tif"), img(4))
