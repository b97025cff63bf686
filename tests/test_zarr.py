"""The zarr backend for plain arrays: NGFF 0.5 images, lazy loads, codecs, layouts, checksums, pyramids, stores."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import zarr

from hcsvfs import Backend, FileManager, StorageRegistry, ZarrConfig
from hcsvfs.backends.zarr import InvalidMetadataError, ZarrArrayView, ZarrStorageBackend
from hcsvfs.errors import CorruptDataError, InvalidPathError, StorageError, UnsupportedTypeError


def image(shape: tuple[int, ...] = (32, 48), dtype: str = "uint16", seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 4000, shape).astype(dtype)


@pytest.fixture
def zb(tmp_path: Path) -> ZarrStorageBackend:
    return ZarrStorageBackend(tmp_path / "root")


def group_attrs(root: Path, logical: str) -> dict:
    return json.loads((root / logical / "zarr.json").read_text())["attributes"]


@pytest.mark.parametrize(("shape", "axes"), [((8, 9), "yx"), ((3, 8, 9), "zyx"), ((2, 3, 8, 9), "czyx"), ((2, 2, 3, 8, 9), "tczyx")])
def test_saved_arrays_are_valid_ngff_05_images(zb: ZarrStorageBackend, tmp_path: Path, shape: tuple, axes: str) -> None:
    data = image(shape)
    zb.save(data, "img")
    attrs = group_attrs(tmp_path / "root", "img")
    ms = attrs["ome"]["multiscales"][0]
    assert attrs["ome"]["version"] == "0.5"
    assert [a["name"] for a in ms["axes"]] == list(axes)
    assert all("unit" in a for a in ms["axes"] if a["type"] in ("space", "time"))
    assert ms["datasets"][0]["coordinateTransformations"][0]["type"] == "scale"
    arr = zarr.open_array(tmp_path / "root" / "img" / "0", mode="r")
    assert arr.metadata.zarr_format == 3 and list(arr.metadata.dimension_names) == list(axes)
    assert zb.validate("img") == ["img"]
    from ome_zarr_models.v05 import Image

    Image.from_zarr(zarr.open_group(tmp_path / "root" / "img", mode="r"))
    assert np.array_equal(np.asarray(zb.load("img")), data)


def test_load_is_lazy_and_indexable(zb: ZarrStorageBackend) -> None:
    data = image((4, 32, 48))
    zb.save(data, "stack")
    view = zb.load("stack")
    assert isinstance(view, ZarrArrayView) and view.shape == (4, 32, 48) and view.dtype == np.uint16
    assert np.array_equal(view[2], data[2]) and np.array_equal(view[1:3, ::4, 5], data[1:3, ::4, 5])
    assert np.array_equal(view[..., 0], data[..., 0]) and np.array_equal(view[[0, 3]], data[[0, 3]])
    loaded = zb.load("stack", materialize=True)
    assert type(loaded) is np.ndarray and np.array_equal(loaded, data)


def test_axes_override_and_bad_axes(zb: ZarrStorageBackend, tmp_path: Path) -> None:
    zb.save(image((3, 8, 9)), "cyx", axes="cyx")
    assert [a["name"] for a in group_attrs(tmp_path / "root", "cyx")["ome"]["multiscales"][0]["axes"]] == ["c", "y", "x"]
    for bad in ("xyz", "ccx", "yx", "zcyx"[:3]):
        with pytest.raises(ValueError, match="axes"):
            zb.save(image((3, 8, 9)), f"bad_{bad}", axes=bad)
        assert not zb.exists(f"bad_{bad}")


@pytest.mark.parametrize("shape", [(7,), (), (2, 2, 2, 2, 2, 2)])
def test_ranks_ngff_cannot_describe_are_stored_without_ngff(zb: ZarrStorageBackend, tmp_path: Path, shape: tuple) -> None:
    data = image(shape)
    zb.save(data, "odd")
    assert "ome" not in group_attrs(tmp_path / "root", "odd")
    assert np.array_equal(zb.load("odd", materialize=True), data)


def test_torch_tensors_and_numpy_scalars_are_saved_as_arrays(zb: ZarrStorageBackend) -> None:
    torch = pytest.importorskip("torch")
    zb.save(torch.arange(12, dtype=torch.int32).reshape(3, 4), "t")
    assert np.array_equal(zb.load("t", materialize=True), np.arange(12, dtype=np.int32).reshape(3, 4))


@pytest.mark.parametrize("bad", [{"a": 1}, "text", np.array(["a", "b"]), np.array([object()], dtype=object)])
def test_non_numeric_objects_are_refused(zb: ZarrStorageBackend, bad: object) -> None:
    with pytest.raises(UnsupportedTypeError, match="zarr backend stores"):
        zb.save(bad, "x")
    assert not zb.exists("x")


@pytest.mark.parametrize(
    ("config", "codec"),
    [
        (ZarrConfig(), "blosc"),
        (ZarrConfig(compression="zstd", compression_level=5, shuffle="bit"), "blosc"),
        (ZarrConfig(compression="gzip"), "gzip"),
        (ZarrConfig(compression="none"), None),
    ],
)
def test_codecs_round_trip_and_are_recorded(tmp_path: Path, config: ZarrConfig, codec: str | None) -> None:
    zb = ZarrStorageBackend(tmp_path, config=config)
    data = image((2, 64, 64))
    zb.save(data, "c")
    meta = json.loads((tmp_path / "c" / "0" / "zarr.json").read_text())
    text = json.dumps(meta["codecs"])
    if codec is None:
        assert "blosc" not in text and "gzip" not in text
    else:
        assert codec in text
    if config.compression == "zstd":
        assert '"cname": "zstd"' in text and '"bitshuffle"' in text
    assert np.array_equal(zb.load("c", materialize=True), data)


def test_layouts_plane_sharded_vs_single_chunk(tmp_path: Path) -> None:
    data = image((3, 64, 64))
    ZarrStorageBackend(tmp_path / "a").save(data, "x")
    ZarrStorageBackend(tmp_path / "b", config=ZarrConfig(chunks=None)).save(data, "x")
    plane = zarr.open_array(tmp_path / "a" / "x" / "0", mode="r")
    single = zarr.open_array(tmp_path / "b" / "x" / "0", mode="r")
    assert plane.chunks == (1, 64, 64) and plane.shards == (3, 64, 64)
    assert single.chunks == (3, 64, 64) and single.shards is None
    assert len(list((tmp_path / "a" / "x" / "0" / "c").rglob("*"))) >= 1


def test_chunk_rank_mismatch_fails_before_writing(tmp_path: Path) -> None:
    zb = ZarrStorageBackend(tmp_path, config=ZarrConfig(chunks=(8, 8)))
    with pytest.raises(ValueError, match="rank 2 but the array has rank 3"):
        zb.save(image((2, 8, 8)), "x")
    assert not zb.exists("x") and not (tmp_path / "x").exists()


def _corrupt_first_chunk(folder: Path) -> None:
    chunk = next(p for p in sorted((folder / "c").rglob("*")) if p.is_file())
    raw = bytearray(chunk.read_bytes())
    raw[len(raw) // 3] ^= 0xFF
    chunk.write_bytes(bytes(raw))


def test_corrupted_chunk_raises_clear_error_with_checksums(tmp_path: Path) -> None:
    zb = ZarrStorageBackend(tmp_path, config=ZarrConfig(checksum=True, chunks=None))
    zb.save(image((64, 64)), "x")
    assert "crc32c" in (tmp_path / "x" / "0" / "zarr.json").read_text()
    _corrupt_first_chunk(tmp_path / "x" / "0")
    view = zb.load("x")  # metadata is fine; the damage shows when pixels are decoded
    with pytest.raises(CorruptDataError, match="'x'.*corrupt"):
        np.asarray(view)
    with pytest.raises(CorruptDataError):
        zb.load("x", materialize=True)
    zb.save(image((64, 64), seed=5), "y")
    assert np.array_equal(zb.load_batch(["y"], materialize=True)[0], image((64, 64), seed=5))
    with pytest.raises(CorruptDataError, match="'x'.*corrupt"):  # a batch read concurrently names the bad one
        zb.load_batch(["y", "x"], materialize=True)


def test_corrupted_shard_raises_clear_error(tmp_path: Path) -> None:
    zb = ZarrStorageBackend(tmp_path, config=ZarrConfig(checksum=True))
    zb.save(image((4, 64, 64)), "x")
    _corrupt_first_chunk(tmp_path / "x" / "0")
    with pytest.raises(CorruptDataError):
        zb.load("x", materialize=True)


def test_pyramid_levels_mean_and_nearest(tmp_path: Path) -> None:
    zb = ZarrStorageBackend(tmp_path, config=ZarrConfig(pyramid_levels=2))
    data = image((2, 16, 20), "uint16")
    zb.save(data, "img")
    zb.save(data, "lab", labels=True)
    ms = group_attrs(tmp_path, "img")["ome"]["multiscales"][0]
    assert [d["path"] for d in ms["datasets"]] == ["0", "1", "2"]
    assert ms["datasets"][1]["coordinateTransformations"][0]["scale"] == [1.0, 2.0, 2.0]
    level1 = zb.load("img", level=1, materialize=True)
    expected = np.rint(data.reshape(2, 8, 2, 10, 2).mean(axis=(2, 4))).astype(np.uint16)
    assert np.array_equal(level1, expected)
    assert np.array_equal(zb.load("lab", level=2, materialize=True), data[:, ::4, ::4])
    assert zb.validate("img") == ["img"]
    with pytest.raises(InvalidPathError, match="levels 0..2"):
        zb.load("img", level=3)


def test_no_pyramid_by_default(zb: ZarrStorageBackend, tmp_path: Path) -> None:
    zb.save(image(), "img")
    assert len(group_attrs(tmp_path / "root", "img")["ome"]["multiscales"][0]["datasets"]) == 1


def test_ome_metadata_off_writes_bare_images(tmp_path: Path) -> None:
    zb = ZarrStorageBackend(tmp_path, config=ZarrConfig(ome_metadata=False))
    zb.save(image(), "img")
    assert "ome" not in group_attrs(tmp_path, "img") and zb.is_file("img")
    with pytest.raises(InvalidMetadataError, match="no OME-NGFF"):
        zb.validate("img")


def test_validate_reports_broken_metadata(zb: ZarrStorageBackend, tmp_path: Path) -> None:
    zb.save(image(), "img")
    meta_path = tmp_path / "root" / "img" / "zarr.json"
    meta = json.loads(meta_path.read_text())
    meta["attributes"]["ome"]["multiscales"][0]["axes"] = [{"name": "y", "type": "space"}]
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(InvalidMetadataError, match="not valid OME-NGFF 0.5") as info:
        zb.validate("img")
    assert isinstance(info.value, StorageError) and info.value.path == "img"


def test_overwrite_replaces_and_internals_are_not_files(zb: ZarrStorageBackend) -> None:
    zb.save(image(seed=1), "img")
    zb.save(image((5, 5), "float32"), "img", overwrite=True)
    assert zb.load("img").dtype == np.float32
    assert zb.list_dir(".") == ["img"]
    with pytest.raises(NotADirectoryError):
        zb.stat("img/0")


@pytest.mark.parametrize("swap", [True, False], ids=["rename-exchange", "two-renames"])
def test_overwrite_and_move_commit_by_rename_and_leave_no_temp_node(
    zb: ZarrStorageBackend, monkeypatch: pytest.MonkeyPatch, swap: bool
) -> None:
    """Local stores write a hidden temp image and rename it in; without RENAME_EXCHANGE two renames do it."""
    if not swap:
        monkeypatch.setattr("hcsvfs.backends.zarr.store.exchange", lambda a, b: False)
    zb.save(image(seed=1), "img")
    zb.save(image(seed=2), "img", overwrite=True)
    assert np.array_equal(zb.load("img", materialize=True), image(seed=2))
    with pytest.raises(FileExistsError):
        zb.save(image(seed=3), "img")
    zb.move("img", "moved")
    assert not zb.exists("img") and np.array_equal(zb.load("moved", materialize=True), image(seed=2))
    assert [p.name for p in zb.root.iterdir()] == ["moved"]  # no hidden temp or old node left behind


def test_an_image_renamed_in_between_two_reads_is_an_existing_file_not_a_directory(
    zb: ZarrStorageBackend, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A racing creator commits its image (one rename) just after this writer found no metadata there:
    the loser is told the image exists (FileExistsError), never that the path is a directory."""
    winner = ZarrStorageBackend(zb.root)
    is_folder = zb.locator.is_folder
    raced: list[str] = []

    def racer_commits_first(key: str) -> bool:
        if not raced:
            raced.append(key)
            winner.save(image(seed=1), "img")
        return is_folder(key)

    monkeypatch.setattr(zb.locator, "is_folder", racer_commits_first)
    with pytest.raises(FileExistsError, match="already exists"):
        zb.save(image(seed=2), "img")
    assert np.array_equal(zb.load("img", materialize=True), image(seed=1))


def test_any_zarr_store_memory_store() -> None:
    zb = ZarrStorageBackend(store=zarr.storage.MemoryStore())
    zb.ensure_directory("a/b")
    data = image()
    zb.save(data, "a/b/x.tif")
    assert zb.list_files("a", recursive=True) == ["a/b/x.tif"]
    assert np.array_equal(np.asarray(zb.load("a/b/x.tif")), data)
    with pytest.raises(InvalidPathError, match="leaves this zarr store"):
        zb.save(data, "/abs/x")
    with pytest.raises(InvalidPathError):
        zb.load("../x")
    with pytest.raises(ValueError, match="not both"):
        ZarrStorageBackend("x", store=zarr.storage.MemoryStore())


def test_jail_refuses_escapes(zb: ZarrStorageBackend, tmp_path: Path) -> None:
    with pytest.raises(InvalidPathError, match="escapes"):
        zb.save(image(), "../outside")
    with pytest.raises(InvalidPathError, match="outside"):
        zb.save(image(), str(tmp_path / "elsewhere"))
    assert not (tmp_path / "outside").exists()


def test_cwd_mode_like_the_disk_backend(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    zb = ZarrStorageBackend()
    zb.ensure_directory("results")
    zb.save(image(), "results/final")
    # the folder's images are in its store beside it, as in the original system: disk's results/ stays its own
    assert (work / "results.zarr" / "final" / "zarr.json").exists() and list((work / "results").iterdir()) == []
    absolute = tmp_path / "abs"
    zb.ensure_directory(str(absolute))
    zb.save(image(), str(absolute / "x"))
    assert zb.is_file(str(absolute / "x"))
    # zarr writes metadata into every missing parent of a new node; none may land outside the node's folder.
    assert not (tmp_path / "zarr.json").exists() and not (tmp_path.parent / "zarr.json").exists()
    assert not (work / "zarr.json").exists()


def test_filemanager_round_trip_with_parents(tmp_path: Path) -> None:
    reg = StorageRegistry(discover=False)
    reg.register_backend(Backend.ZARR, ZarrStorageBackend(tmp_path))
    fm = FileManager(reg)
    data = image()
    fm.save(data, "results/large_dataset", Backend.ZARR)
    z = fm.load("results/large_dataset", Backend.ZARR)
    assert isinstance(z, ZarrArrayView) and np.array_equal(z[:], data)


def test_default_registry_builds_a_cwd_zarr_backend() -> None:
    from hcsvfs import create_default_registry

    b = create_default_registry().get_backend("zarr")
    assert isinstance(b, ZarrStorageBackend) and "cwd" in repr(b)


def test_ome_zarr_py_reads_the_image_pixel_exact(zb: ZarrStorageBackend, tmp_path: Path) -> None:
    from ome_zarr.io import parse_url
    from ome_zarr.reader import Reader

    data = image((2, 3, 16, 16))
    zb.save(data, "img")
    node = next(iter(Reader(parse_url(str(tmp_path / "root" / "img")))()))
    assert np.array_equal(np.asarray(node.data[0]), data)


def test_fsspec_url_root_holds_images_and_plates() -> None:
    zb = ZarrStorageBackend("memory://hcsvfs-test-zarr/root")
    zb.ensure_directory("p.zarr")
    zb.save(image(), "p.zarr/A01_s1_w1.tif")
    zb.save(image(seed=2), "img")
    assert zb.list_dir(".") == ["img", "p.zarr"] and zb.list_dir("p.zarr") == ["A01_s1_w1.tif"]
    assert np.array_equal(zb.load("p.zarr/A01_s1_w1.tif", materialize=True), image())
    assert zb.validate("p.zarr")[0] == "p.zarr"
    zb.delete_all("p.zarr")
    assert zb.list_dir(".") == ["img"]


def test_a_batch_refuses_a_link_out_below_a_folder_it_already_checked(
    zb: ZarrStorageBackend, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Within load_batch a path below a checked folder costs an lstat per name, and a link there is still refused."""
    zb.ensure_directory("p.zarr")
    zb.save(image(), "p.zarr/A01_s1_w1.tif")
    outside = ZarrStorageBackend(tmp_path / "outside")
    outside.save(image(), "field")
    assert zb.root is not None
    field = zb.root / "p.zarr" / "A" / "1" / "0"
    shutil.rmtree(field)
    field.symlink_to(tmp_path / "outside" / "field", target_is_directory=True)

    fast: list[str] = []
    key = type(zb.locator)._key

    def spy(self: object, logical: str, *, checked: str | None = None) -> str:
        if checked is not None:
            fast.append(logical)
        return key(self, logical, checked=checked)  # type: ignore[arg-type]

    monkeypatch.setattr(type(zb.locator), "_key", spy)
    with pytest.raises(InvalidPathError, match="symlink"):
        zb.load_batch(["p.zarr/A01_s1_w1.tif"])
    # The link (a name between the checked well and the level array) was met on the lstat path.
    assert "p.zarr/A/1/0/0" in fast, fast


@pytest.mark.parametrize("link", ["a", "a/b", "a/b/c"])
@pytest.mark.parametrize("checked", [".", "a"])
def test_every_name_below_the_checked_folder_is_looked_at(tmp_path: Path, link: str, checked: str) -> None:
    from hcsvfs.backends.zarr.store import _link_below

    (tmp_path / "a" / "b" / "c").mkdir(parents=True)
    (tmp_path / "elsewhere").mkdir()
    target = tmp_path / link
    shutil.rmtree(target)
    target.symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    found = _link_below(tmp_path / "a" / "b" / "c", "a/b/c", checked)
    # a link at or above the checked folder was the checked folder's concern, not this path's
    assert found == (link != checked), (link, checked)


def test_node_type_says_what_a_path_is_from_its_own_metadata(zb: ZarrStorageBackend, tmp_path: Path) -> None:
    zb.ensure_directory("p.zarr")
    zb.save(image(), "p.zarr/A01_s1_w1.tif")
    zb.save(image(), "img")
    zb.ensure_directory("folder")
    zarr.create_array(tmp_path / "root" / "bare", shape=(4, 4), dtype="uint8")
    assert [zb.node_type(p) for p in ("p.zarr", "p.zarr/A01_s1_w1.tif", "img", "folder", "bare")] == [
        "plate", "plane", "image", "folder", "array"
    ]
    assert {zb.node_type(p) for p in ("p.zarr", "img", "folder", "bare")} == {
        zb.describe(p)["type"] for p in ("p.zarr", "img", "folder", "bare")
    }
    with pytest.raises(FileNotFoundError):
        zb.node_type("nothing")
    with pytest.raises(FileNotFoundError):
        zb.node_type("p.zarr/B02_s1_w1.tif")


def test_names_that_are_not_utf8_are_refused_before_anything_is_written(zb: ZarrStorageBackend) -> None:
    """zarr keys are UTF-8; a lone surrogate (undecodable bytes of a file name) was saved, then failed to load."""
    with pytest.raises(InvalidPathError, match="not valid UTF-8"):
        zb.save(image(), "\udcff")
    with pytest.raises(InvalidPathError, match="not valid UTF-8"):
        zb.load("a/\udcff")
    assert zb.list_dir(".") == []
