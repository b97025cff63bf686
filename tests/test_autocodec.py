"""compression="auto": the measured codec trial, what it records, and what reads the result."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import zarr
from typer.testing import CliRunner

from hcsvfs import FileManager
from hcsvfs.backends.zarr import ZarrStorageBackend, autocodec
from hcsvfs.backends.zarr.autocodec import CANDIDATES, SIZE_DECODE_FLOOR, Candidate, sample, trial
from hcsvfs.backends.zarr.codecs import compressors, describe_codecs
from hcsvfs.backends.zarr.image import open_levels
from hcsvfs.cli.app import app
from hcsvfs.config import ZarrConfig

GB = 1e9
rng = np.random.default_rng(7)


def fluorescence(planes: int = 3, side: int = 256) -> np.ndarray:
    yy, xx = np.mgrid[:side, :side]
    base = 300 + 80 * np.sin(xx / 23.0) * np.cos(yy / 31.0)
    return np.stack([(base * (c + 1) + rng.poisson(20, (side, side))).astype(np.uint16) for c in range(planes)])


def labels(side: int = 256) -> np.ndarray:
    out = np.zeros((side, side), np.int32)
    for i in range(1, 60):
        y, x = rng.integers(0, side - 20, 2)
        out[y : y + 16, x : x + 16] = i
    return out


def noise(side: int = 256) -> np.ndarray:
    return rng.integers(0, 2**16, (side, side), dtype=np.uint16)


def expected_cost(row: autocodec.TrialRow, goal: str, bandwidth: float, threads: int, best_ratio: float) -> float:
    """The cost model of the docs, recomputed from what the row says was measured."""
    cpu = (GB / row.encode + GB / row.decode) / threads
    if goal == "balanced":
        return cpu + 2 * GB / row.ratio / bandwidth
    if goal == "speed":
        return cpu if row.ratio >= best_ratio / 2 else float("inf")
    return GB / row.ratio if row.decode >= SIZE_DECODE_FLOOR else float("inf")


# ---------------------------------------------------------------- the trial
@pytest.mark.parametrize("goal", ["balanced", "speed", "size"])
@pytest.mark.parametrize("bandwidth", [100e6, 2e9])
@pytest.mark.parametrize("kind", ["fluorescence", "labels", "float"])
def test_the_choice_is_the_one_the_trial_table_supports(goal: str, bandwidth: float, kind: str) -> None:
    data = {"fluorescence": fluorescence, "labels": labels, "float": lambda: fluorescence().astype(np.float32) / 7}[kind]()
    choice = trial(data, goal, bandwidth)
    assert [r.candidate for r in choice.rows] == list(CANDIDATES)  # every candidate was measured
    best_ratio = max(r.ratio for r in choice.rows if not r.pruned)  # the floor counts fully measured codecs
    assert goal != "size" or not any(r.pruned for r in choice.rows)  # size: nothing ruled out by time
    for row in choice.rows:
        want = expected_cost(row, goal, bandwidth, choice.threads, best_ratio)
        assert row.cost == pytest.approx(want, rel=1e-9) or (np.isinf(want) and np.isinf(row.cost)), row
    assert choice.candidate == min(choice.rows, key=lambda r: r.cost).candidate
    assert 0 < choice.sample_bytes <= autocodec.SAMPLE_BYTES and choice.seconds > 0


def test_every_candidate_really_round_trips_the_sample() -> None:
    data = fluorescence()
    for c in CANDIDATES:
        z = zarr.create_array(zarr.storage.MemoryStore(), shape=data.shape, dtype=data.dtype,
                              compressors=compressors(c.apply(ZarrConfig())))
        z[...] = data
        assert np.array_equal(z[...], data), c.name


def test_incompressible_data_is_stored_raw_when_speed_is_the_goal() -> None:
    choice = trial(noise(), "speed", 1e9)
    assert choice.candidate == Candidate("none")


def test_a_slow_destination_takes_the_smallest_a_fast_one_the_cheapest_on_cpu() -> None:
    data = labels()
    slow = trial(data, "balanced", 1e3)  # 1 kB/s: only bytes count
    assert slow.candidate == min(slow.rows, key=lambda r: 1 / r.ratio).candidate
    fast = trial(data, "balanced", 1e18)  # bytes are free: only the codec's time counts
    assert fast.candidate == Candidate("none")


def test_size_respects_the_decode_floor() -> None:
    choice = trial(labels(), "size", 1e8)
    allowed = [r for r in choice.rows if r.decode >= SIZE_DECODE_FLOOR]
    assert allowed and choice.candidate == max(allowed, key=lambda r: r.ratio).candidate


def test_bad_goal_and_bandwidth_are_refused() -> None:
    with pytest.raises(ValueError, match=r"unknown compression goal 'fast'.*balanced, speed, size"):
        trial(labels(), "fast", 1e8)
    with pytest.raises(ValueError, match="bandwidth must be a positive"):
        trial(labels(), "size", 0)
    with pytest.raises(ValueError, match="unknown compression goal"):
        ZarrConfig(compression="auto", goal="tiny")
    for bad in (0, -5, True, "100MB"):
        with pytest.raises(ValueError, match="bandwidth must be None or a positive number"):
            ZarrConfig(compression="auto", bandwidth=bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="resolved per array"):
        compressors(ZarrConfig(compression="auto"))


@pytest.mark.parametrize("shape", [(7,), (3, 5), (2, 1000, 900), (40, 3, 64, 64), (1, 1, 1, 2048, 2048)])
def test_the_sample_is_small_and_spread_over_the_planes(shape: tuple[int, ...]) -> None:
    data = np.arange(np.prod(shape), dtype=np.uint32).reshape(shape)
    s = sample(data)
    assert s.nbytes <= autocodec.SAMPLE_BYTES
    assert s.ndim == 1 or s.shape[0] == min(4, int(np.prod(shape[:-2])))  # a tile of up to 4 planes, each
    if len(shape) >= 3 and np.prod(shape[:-2]) > 1:
        planes = data.reshape(-1, *shape[-2:])
        y0, x0 = (shape[-2] - s.shape[-2]) // 2, (shape[-1] - s.shape[-1]) // 2
        corners = s.reshape(-1, *s.shape[-2:])[:, 0, 0]
        # central tiles of distinct planes, the first and the last among them
        assert len(set(corners.tolist())) == len(corners) > 1
        assert corners[0] == planes[0][y0, x0] and corners[-1] == planes[-1][y0, x0]


# ---------------------------------------------------------------- through the backend
@pytest.fixture
def auto(tmp_path: Path) -> ZarrStorageBackend:
    return ZarrStorageBackend(tmp_path / "root", config=ZarrConfig(compression="auto", bandwidth=100e6))


def attrs(path: Path) -> dict:
    return json.loads((path / "zarr.json").read_text())["attributes"]


def test_an_image_records_its_choice_and_is_written_with_it(auto: ZarrStorageBackend, tmp_path: Path) -> None:
    data = fluorescence()
    auto.save(data, "img")
    record = attrs(tmp_path / "root" / "img")["hcsvfs"]["compression"]
    assert record["goal"] == "balanced" and record["bandwidth_MBps"] == 100.0
    assert {r["codec"] for r in record["trial"]} == {c.name for c in CANDIDATES}
    chosen = autocodec.Choice.codec_of(record)
    assert record["chosen"] == chosen.name == min(record["trial"], key=lambda r: r["cost"])["codec"]
    stored = describe_codecs(open_levels(auto.locator, "img")[0])
    assert stored == "none" if chosen.compression == "none" else chosen.compression in stored
    assert np.array_equal(np.asarray(auto.load("img")), data)
    facts = auto.describe("img")
    assert chosen.name in facts["auto codec"] and "hcsvfs tune" in facts["auto codec"]


def test_images_of_one_folder_share_one_trial(auto: ZarrStorageBackend, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[int, ...]] = []
    real = autocodec.trial

    def counted(data: np.ndarray, *a: object, **k: object) -> autocodec.Choice:
        calls.append(data.shape)
        return real(data, *a, **k)  # type: ignore[arg-type]

    monkeypatch.setattr(autocodec, "trial", counted)
    auto.ensure_directory("a")
    auto.ensure_directory("b")
    for i in range(4):
        auto.save(fluorescence(), f"a/img{i}")
    auto.save(fluorescence(), "b/img0")  # another folder
    auto.save(labels(), "a/mask")  # another dtype and shape
    assert len(calls) == 3


def test_fixed_codecs_run_no_trial_and_record_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(autocodec, "trial", lambda *a, **k: pytest.fail("a fixed codec ran a trial"))
    zb = ZarrStorageBackend(tmp_path / "root")
    zb.save(fluorescence(), "img")
    assert "compression" not in attrs(tmp_path / "root" / "img")["hcsvfs"]


def test_a_plate_decides_once_for_images_and_once_for_labels_for_every_writer(
    auto: ZarrStorageBackend, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = fluorescence(3)
    auto.ensure_directory("p.zarr")
    auto.save_batch(list(data), [f"p.zarr/A01_s1_w{c + 1}.tif" for c in range(3)])
    auto.save(labels(), "p.zarr/A01_s1_w1.tif", label="cells")
    records = attrs(tmp_path / "root" / "p.zarr")["hcsvfs"]["compression"]
    assert sorted(records) == ["image", "labels"]
    # The trial saw a tile of every channel.
    assert records["image"]["sample_bytes"] == sample(data).nbytes and sample(data).shape[0] == 3

    # Another writer (a new backend, as in another process) reuses the plate's record: no trial.
    monkeypatch.setattr(autocodec, "trial", lambda *a, **k: pytest.fail("the plate's choice was not reused"))
    other = ZarrStorageBackend(tmp_path / "root", config=ZarrConfig(compression="auto", bandwidth=1e3))
    other.save_batch(list(data), [f"p.zarr/B02_s2_w{c + 1}.tif" for c in range(3)])
    first = describe_codecs(open_levels(auto.locator, "p.zarr/A/1/0")[0])
    later = describe_codecs(open_levels(other.locator, "p.zarr/B/2/1")[0])
    assert first == later
    assert np.array_equal(np.asarray(other.load("p.zarr/B02_s2_w3.tif")), data[2])
    plate = other.describe("p.zarr")
    assert records["image"]["chosen"] in plate["auto codec (image)"]
    assert records["labels"]["chosen"] in plate["auto codec (labels)"]


def test_a_plate_written_with_auto_reads_in_ome_zarr_py(auto: ZarrStorageBackend, tmp_path: Path) -> None:
    from ome_zarr.io import parse_url
    from ome_zarr.reader import Reader

    data = fluorescence(2)
    auto.ensure_directory("p.zarr")
    auto.save_batch(list(data), ["p.zarr/C03_s1_w1.tif", "p.zarr/C03_s1_w2.tif"])
    field = next(iter(Reader(parse_url(str(tmp_path / "root" / "p.zarr" / "C" / "3" / "0")))()))
    assert np.array_equal(np.asarray(field.data[0])[0, :, 0], data)


def test_the_bandwidth_probe_is_measured_once_and_leaves_nothing(tmp_path: Path) -> None:
    zb = ZarrStorageBackend(tmp_path / "root", config=ZarrConfig(compression="auto"))
    zb.save(labels(), "mask")
    speed = zb.codecs.bandwidth()
    assert speed > 1e6 and zb.codecs.bandwidth() == speed
    assert sorted(p.name for p in (tmp_path / "root").iterdir()) == ["mask"]
    assert attrs(tmp_path / "root" / "mask")["hcsvfs"]["compression"]["bandwidth_MBps"] == round(speed / 1e6, 1)


# ---------------------------------------------------------------- hcsvfs tune
def test_tune_prints_the_trial_of_stored_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    fm = FileManager()
    fm.save(fluorescence(), "img.tif", "disk")
    (tmp_path / "notes.txt").write_text("hello")
    runner = CliRunner()
    shown = runner.invoke(app, ["tune", "img.tif", "--bandwidth", "100MB"])
    assert shown.exit_code == 0, shown.stderr
    assert "<- auto" in shown.stdout and "default" in shown.stdout and "blosc(lz4, 1, byte)" in shown.stdout
    as_json = runner.invoke(app, ["tune", "img.tif", "--goal", "size", "--bandwidth", "1GB", "--json"])
    record = json.loads(as_json.stdout)
    assert record["goal"] == "size" and record["bandwidth_MBps"] == 1000.0
    assert record["chosen"] == min(record["trial"], key=lambda r: r["cost"])["codec"]

    bad_goal = runner.invoke(app, ["tune", "img.tif", "--goal", "fast"])
    assert bad_goal.exit_code == 2 and "valid goals: balanced, speed, size" in bad_goal.stderr
    bad_speed = runner.invoke(app, ["tune", "img.tif", "--bandwidth", "fast"])
    assert bad_speed.exit_code == 2 and "--bandwidth" in bad_speed.stderr
    text = runner.invoke(app, ["tune", "notes.txt"])
    assert text.exit_code == 1 and "not an image" in text.stderr
    missing = runner.invoke(app, ["tune", "nope.tif"])
    assert missing.exit_code == 1 and "does not exist" in missing.stderr


def test_tune_on_a_plate_samples_its_first_field(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    zb = ZarrStorageBackend(tmp_path)
    zb.ensure_directory("p.zarr")
    data = fluorescence(2)
    zb.save_batch(list(data), ["p.zarr/A01_s1_w1.tif", "p.zarr/A01_s1_w2.tif"])
    result = CliRunner().invoke(app, ["tune", "p.zarr", "--bandwidth", "100MB", "--json"])
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["sample_bytes"] == sample(data).nbytes == 2 * 256 * 256 * 2


def test_convert_with_auto_records_the_choice_in_the_plate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import tifffile

    monkeypatch.chdir(tmp_path)
    (tmp_path / "tiffs").mkdir()
    data = fluorescence(2, 64)
    for c in range(2):
        tifffile.imwrite(tmp_path / "tiffs" / f"A01_s1_w{c + 1}.tif", data[c])
    runner = CliRunner()
    result = runner.invoke(app, ["convert", "-q", "tiffs", "out.zarr", "--compression", "auto", "--goal", "size"])
    assert result.exit_code == 0, result.stderr
    record = attrs(tmp_path / "out.zarr")["hcsvfs"]["compression"]["image"]
    assert record["goal"] == "size"
    info = json.loads(runner.invoke(app, ["info", "--json", "out.zarr"]).stdout)
    assert record["chosen"] in info["auto codec (image)"]
    bad = runner.invoke(app, ["convert", "-q", "tiffs", "bad.zarr", "--compression", "auto", "--goal", "tiny"])
    assert bad.exit_code == 2 and "unknown compression goal 'tiny'" in bad.stderr
