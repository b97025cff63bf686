"""The hcsvfs command line through typer's runner and as a subprocess, bad arguments included."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image
from typer.testing import CliRunner

from hcsvfs import FileManager
from hcsvfs.cli.app import app
from hcsvfs.cli.errors import CliError
from hcsvfs.cli.targets import parse_target

runner = CliRunner()
REPO = Path(__file__).resolve().parents[1]
COMMANDS = ["demo", "ls", "info", "cp", "convert", "validate", "preview", "stats", "tune", "bench"]


def run(*args: str):
    return runner.invoke(app, list(args))


def one_error_line(result, code: int, *needles: str) -> None:
    assert result.exit_code == code, (result.exit_code, result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("hcsvfs: error: "), result.stderr
    for needle in needles:
        assert needle in lines[0]


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    root = tmp_path / "data"
    (root / "sub").mkdir(parents=True)
    tifffile.imwrite(root / "a.tif", np.arange(64 * 64, dtype=np.uint16).reshape(64, 64))
    np.save(root / "b.npy", np.ones((64, 64), np.float32))
    (root / "sub" / "c.txt").write_text("hello")
    return root


@pytest.fixture(scope="module")
def plate(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2x3 OME-NGFF 0.5 plate with 2 fields per well, written by ome-zarr-py (not by hcsvfs)."""
    import zarr

    with warnings.catch_warnings():  # ome-zarr's writer module builds a deprecated default Scaler at import
        warnings.simplefilter("ignore", DeprecationWarning)
        from ome_zarr.writer import write_image, write_plate_metadata, write_well_metadata

    path = tmp_path_factory.mktemp("plates") / "plate.zarr"
    root = zarr.open_group(str(path), mode="w")
    rows, cols = ["A", "B"], ["1", "2", "3"]
    write_plate_metadata(root, rows, cols, [f"{r}/{c}" for r in rows for c in cols], field_count=2)
    rng = np.random.default_rng(0)
    for r in rows:
        for c in cols:
            well = root.require_group(r).require_group(c)
            write_well_metadata(well, [{"path": "0"}, {"path": "1"}])
            for f in ("0", "1"):
                write_image(rng.integers(0, 4000, (1, 2, 3, 64, 64), dtype=np.uint16), well.require_group(f), axes="tczyx")
    return path


# ----------------------------------------------------------------- every command
@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(command: str) -> None:
    result = run(command, "--help")
    assert result.exit_code == 0 and "Usage" in result.stdout


def test_bad_arguments_are_one_line_with_usage_exit_code() -> None:
    one_error_line(run("ls", "--no-such-option"), 2, "--no-such-option", "--help")
    one_error_line(run("no-such-command"), 2, "no-such-command")
    one_error_line(run("ls", "--depth", "deep"), 2, "--depth")
    one_error_line(run("info"), 2, "Missing argument 'target'")


def test_unknown_backend_and_missing_path(tmp_path: Path) -> None:
    one_error_line(run("ls", "nosuch:x"), 2, "unknown backend 'nosuch'", "disk:")
    one_error_line(run("info", str(tmp_path / "missing.tif")), 1, "does not exist")
    one_error_line(run("cp", str(tmp_path / "missing"), str(tmp_path / "out")), 1, "does not exist")


def test_debug_shows_the_exception_instead(tmp_path: Path) -> None:
    result = run("--debug", "ls", str(tmp_path / "missing"))
    assert result.exit_code != 0 and isinstance(result.exception, CliError)


# ----------------------------------------------------------------- ls / info
def test_ls_tree_and_plain(folder: Path) -> None:
    result = run("ls", str(folder))
    assert result.exit_code == 0
    assert "a.tif" in result.stdout and "sub/" in result.stdout and "c.txt" in result.stdout and "KiB" in result.stdout
    plain = run("ls", "--plain", f"disk:{folder}")
    rows = [line.split("\t") for line in plain.stdout.strip().splitlines()]
    assert {Path(p).name: int(s) for s, p in rows} == {
        "a.tif": (folder / "a.tif").stat().st_size,
        "b.npy": (folder / "b.npy").stat().st_size,
        "c.txt": 5,
    }


def test_ls_plate_shows_wells_and_fields(plate: Path) -> None:
    result = runner.invoke(app, ["ls", str(plate), "--limit", "4"], env={"COLUMNS": "160"})
    assert result.exit_code == 0, result.stderr
    assert "plate 2x3, 6 wells" in result.stdout and "A/1" in result.stdout and "B/1" in result.stdout
    assert "1x2x3x64x64 uint16 tczyx, 5 level(s)" in result.stdout and "... 2 more wells" in result.stdout


def test_info_reads_headers(folder: Path, plate: Path) -> None:
    facts = json.loads(run("info", "--json", str(folder / "a.tif")).stdout)
    assert facts["shape"] == [64, 64] and facts["dtype"] == "uint16" and facts["format"] == "TIFF"
    facts = json.loads(run("info", "--json", str(folder / "b.npy")).stdout)
    assert facts["shape"] == [64, 64] and facts["dtype"] == "float32"
    facts = json.loads(run("info", "--json", str(plate)).stdout)
    assert facts["type"] == "plate" and facts["ngff_version"] == "0.5" and "another tool" in facts["written_by"]
    assert (facts["rows"], facts["columns"], facts["wells"], facts["fields_per_well"]) == (2, 3, 6, 2)
    facts = json.loads(run("info", "--json", str(plate / "A01_s2_w2_z003_t001.tif")).stdout)  # a plane, by name
    assert facts["type"] == "plane" and facts["shape"] == [64, 64] and facts["field_shape"] == [1, 2, 3, 64, 64]
    assert facts["axes"] == "tczyx" and facts["levels"] == 5 and facts["codec"]
    assert facts["chunks"] == [1, 2, 3, 64, 64]  # ome-zarr-py put 6 planes in one chunk: info says what that costs
    assert "each chunk holds 6 image planes" in facts["advice"]
    table = run("info", str(folder / "a.tif"))
    assert table.exit_code == 0 and "64x64" in table.stdout


# ----------------------------------------------------------------- cp / stats
def test_cp_tree_between_backends_with_metrics(folder: Path, tmp_path: Path) -> None:
    out, dump = tmp_path / "copy", tmp_path / "run.json"
    result = run("cp", str(folder), f"disk:{out}", "--metrics", str(dump))
    assert result.exit_code == 0, result.stderr
    assert "copied 3 file(s)" in result.stderr
    assert np.array_equal(tifffile.imread(out / "a.tif"), tifffile.imread(folder / "a.tif"))
    assert (out / "sub" / "c.txt").read_text() == "hello"
    snap = json.loads(dump.read_text())
    assert snap["operations"]["disk"]["save"]["count"] == 3
    again = run("cp", str(folder), str(out))
    one_error_line(again, 1, "already exists", "--overwrite")
    assert run("cp", "-f", "-q", str(folder), str(out)).exit_code == 0


def test_cp_into_memory_counts_files(folder: Path) -> None:
    result = run("cp", str(folder / "sub"), "memory:staged")
    assert result.exit_code == 0 and "copied 1 file(s) to memory:staged" in result.stderr


def test_url_targets_are_mounted(folder: Path) -> None:
    result = run("cp", str(folder), "memory://bucket/copy")  # fsspec's in-process store, through FileManager.mount
    assert result.exit_code == 0 and "copied 3 file(s) to memory://bucket/copy" in result.stderr, result.stderr
    one_error_line(run("ls", "nosuchscheme://bucket/x"), 2, "cannot open 'nosuchscheme://bucket/x'")


def test_stats_report_advice_and_prometheus(tmp_path: Path) -> None:
    fm = FileManager(metrics=True)
    for i in range(30):
        fm.save(np.zeros(4), f"x{i}", "memory")
        with pytest.raises(FileExistsError):
            fm.save(np.zeros(4), f"x{i}", "memory")
    dump = tmp_path / "m.json"
    fm.metrics.to_json(dump)
    table = runner.invoke(app, ["stats", str(dump)], env={"COLUMNS": "160"})
    assert table.exit_code == 0 and "memory" in table.stdout and "failing-operations" in table.stdout
    advice = [json.loads(line) for line in run("stats", "--advice", str(dump)).stdout.splitlines()]
    assert [a["rule"] for a in advice] == ["failing-operations"] and advice[0]["evidence"]["errors"] == 30
    prom = run("stats", "--prometheus", str(dump)).stdout
    assert 'hcsvfs_operations_total{backend="memory",operation="save"} 60.0' in prom


def test_stats_run_measures_a_command(tmp_path: Path) -> None:
    job = tmp_path / "job.py"
    job.write_text(
        "import numpy as np, sys\nfrom hcsvfs import FileManager\nfm = FileManager()\n"
        "for i in range(3):\n    fm.save(np.zeros(16), f'x{i}', 'memory')\nsys.exit(int(sys.argv[1]))\n"
    )
    keep = tmp_path / "kept.json"
    result = runner.invoke(app, ["stats", str(keep), "--run", f"{sys.executable} {job} 0"], env={"COLUMNS": "160"})
    assert result.exit_code == 0, result.stderr
    assert json.loads(keep.read_text())["operations"]["memory"]["save"]["bytes"] == 3 * 128
    failed = run("stats", "--advice", "--run", f"{sys.executable} {job} 3")
    one_error_line(failed, 3, "exited with 3")
    one_error_line(run("stats", "--run", f"{sys.executable} -c pass"), 1, "wrote no metrics")
    one_error_line(run("stats", "--run", "no-such-program-xyz"), 2, "no such program")
    one_error_line(run("stats"), 2, "--run")


def test_stats_rejects_missing_and_foreign_files(tmp_path: Path) -> None:
    one_error_line(run("stats", str(tmp_path / "none.json")), 1, "no metrics file")
    (tmp_path / "bad.json").write_text("{not json")
    one_error_line(run("stats", str(tmp_path / "bad.json")), 1, "invalid JSON")
    (tmp_path / "other.json").write_text('{"a": 1}')
    one_error_line(run("stats", str(tmp_path / "other.json")), 1, "not a metrics dump")


# ----------------------------------------------------------------- convert
@pytest.fixture
def tiff_plate(tmp_path: Path) -> dict[str, np.ndarray]:
    """An ImageXpress folder: wells A01, A02, B03 x 2 fields x 2 channels x 2 z of 32x48 uint16."""
    rng = np.random.default_rng(7)
    folder = tmp_path / "tiffs"
    folder.mkdir()
    planes = {}
    for well in ("A01", "A02", "B03"):
        for s in (1, 2):
            for w in (1, 2):
                for z in (1, 2):
                    name = f"{well}_s{s}_w{w}_z{z:03d}.tif"
                    planes[name] = rng.integers(0, 4000, (32, 48), dtype=np.uint16)
                    tifffile.imwrite(folder / name, planes[name])
    return planes


def test_convert_tiff_folder_to_valid_plate(tiff_plate: dict[str, np.ndarray], tmp_path: Path) -> None:
    out, dump = tmp_path / "out" / "plate.zarr", tmp_path / "convert.json"
    result = run("convert", str(tmp_path / "tiffs"), str(out), "--compression", "zstd", "--level", "3", "--metrics", str(dump))
    assert result.exit_code == 0, result.stderr
    assert "3 wells, 24 planes" in result.stderr and "valid OME-NGFF" in result.stderr
    fm = FileManager()
    for name, plane in tiff_plate.items():
        stored = fm.load(str(out / (name.removesuffix(".tif") + "_t001.tif")), "zarr")
        assert np.array_equal(np.asarray(stored), plane)
    assert json.loads(dump.read_text())["operations"]["zarr"]["save_batch"]["count"] == 3  # one batch per well
    facts = json.loads(run("info", "--json", str(out / "A01_s1_w1_z001_t001.tif")).stdout)
    assert facts["field_shape"] == [1, 2, 2, 32, 48] and "zstd" in facts["codec"]
    assert run("validate", str(out)).exit_code == 0
    one_error_line(run("convert", str(tmp_path / "tiffs"), str(out)), 1, "already exists", "--overwrite")
    assert run("convert", "-q", "-f", str(tmp_path / "tiffs"), str(out)).exit_code == 0


def test_convert_bad_arguments(tiff_plate: dict[str, np.ndarray], tmp_path: Path, folder: Path) -> None:
    tiffs = str(tmp_path / "tiffs")
    one_error_line(run("convert", tiffs, str(tmp_path / "plain")), 2, "ending in .zarr")
    one_error_line(run("convert", tiffs, str(tmp_path / "p.zarr"), "--compression", "brotli"), 2, "unknown compression")
    one_error_line(run("convert", str(tmp_path / "missing"), str(tmp_path / "p.zarr")), 1, "does not exist")
    one_error_line(run("convert", str(folder), str(tmp_path / "p.zarr")), 1, "do not parse")


# ----------------------------------------------------------------- validate / preview
def test_validate_good_and_bad_plates(plate: Path, tmp_path: Path, folder: Path) -> None:
    result = run("validate", "-v", str(plate))
    assert result.exit_code == 0 and "valid" in result.stdout and "19 group(s)" in result.stdout
    bad = tmp_path / "bad.zarr"
    shutil.copytree(plate, bad)
    meta = json.loads((bad / "B" / "2" / "zarr.json").read_text())
    meta["attributes"]["ome"]["well"]["images"] = [{"path": "0"}, {"path": "0"}]  # the same field twice
    (bad / "B" / "2" / "zarr.json").write_text(json.dumps(meta))
    one_error_line(run("validate", str(bad)), 1, "not valid OME-NGFF 0.5", "well/images")
    one_error_line(run("validate", str(tmp_path / "nothing.zarr")), 1, "no zarr store")
    one_error_line(run("validate", f"zarr:{folder}"), 1)
    one_error_line(run("validate", str(folder)), 2, "takes an OME-Zarr target")


def png_size(path: Path) -> tuple[int, int]:
    with Image.open(path) as img:
        img.verify()  # a truncated or corrupt PNG raises here
    with Image.open(path) as img:
        assert img.format == "PNG"
        return img.size


def test_preview_plate_overview_well_montage_and_folder(plate: Path, folder: Path, tmp_path: Path) -> None:
    out = tmp_path / "plate.png"
    assert run("preview", str(plate), "-o", str(out), "--size", "600").exit_code == 0
    assert 320 <= png_size(out)[0] <= 600  # the plate map (mean intensity: no pipeline measures here), thumbnails
    well = tmp_path / "well.png"
    assert run("preview", str(plate), "--well", "B02", "-o", str(well), "--size", "256", "-c", "1").exit_code == 0
    assert png_size(well) == (256, 128)  # 2 fields side by side
    montage = tmp_path / "folder.png"
    assert run("preview", str(folder), "-o", str(montage), "--size", "300").exit_code == 0
    assert png_size(montage) == (300, 150)  # a.tif and b.npy
    one_error_line(run("preview", str(plate), "--well", "H12", "-o", str(out)), 1, "well H12")
    one_error_line(run("preview", str(plate), "-c", "5", "-o", str(out)), 1, "channel 5")
    one_error_line(run("preview", str(folder / "sub"), "-o", str(out)), 1, "no images")
    one_error_line(run("preview", str(folder), "-o", str(tmp_path / "x.jpg")), 2, ".png")


def test_preview_pixels_follow_the_data(tmp_path: Path) -> None:
    img = np.zeros((100, 100), np.uint16)
    img[:, 50:] = 1000  # right half bright
    tifffile.imwrite(tmp_path / "half.tif", img)
    out = tmp_path / "half.png"
    assert run("preview", str(tmp_path / "half.tif"), "-o", str(out), "--size", "100").exit_code == 0
    px = np.asarray(Image.open(out))
    assert px.shape == (100, 100) and px[:, :40].max() == 0 and px[:, 60:].min() == 255


# ----------------------------------------------------------------- targets
def test_target_syntax(tmp_path: Path) -> None:
    fm = FileManager()
    assert parse_target("out/plate.zarr/A/1", fm).backend == "zarr"
    assert (parse_target("disk:a//b/", fm).backend, parse_target("disk:a//b/", fm).path) == ("disk", "a/b")
    assert parse_target("results/x.tif", fm).backend == "disk"
    assert parse_target("file:///tmp/x", fm).path == "/tmp/x"
    assert parse_target("memory:", fm).path == "."
    for bad in ("", "  ", "nope:x"):
        with pytest.raises(CliError) as exc:
            parse_target(bad, fm)
        assert exc.value.code == 2


# ----------------------------------------------------------------- bench
def test_bench_runs_scripts_and_writes_report(tmp_path: Path) -> None:
    bench_dir = tmp_path / "benchmarks"
    bench_dir.mkdir()
    shutil.copy(REPO / "benchmarks" / "report.py", bench_dir / "report.py")
    (bench_dir / "bench_fake.py").write_text(textwrap.dedent('''
        import argparse, json
        p = argparse.ArgumentParser(); p.add_argument("--quick", action="store_true"); p.add_argument("--json")
        a = p.parse_args()
        res = [{"name": "peer", "value": 100.0, "unit": "MB/s", "codec": "none"},
               {"name": "ours", "value": 80.0, "unit": "MB/s", "codec": "lz4", "ratio_to": "peer", "ratio": 0.8,
                "target": ">= 0.5x", "met": True}]
        json.dump({"benchmark": "fake", "quick": a.quick, "results": res, "notes": ["a note"]}, open(a.json, "w"))
    '''))
    (bench_dir / "bench_broken.py").write_text("raise SystemExit('cannot run here')\n")
    (bench_dir / "bench_labelled.py").write_text(textwrap.dedent('''
        import argparse, json
        p = argparse.ArgumentParser(); p.add_argument("--quick", action="store_true"); p.add_argument("--json")
        a = p.parse_args()
        res = {"zarr per-plane": {"write_MBps": 300.0, "plane_ms": 1.5}, "tiff folder": {"error": "no tifffile"}}
        json.dump({"results": res}, open(a.json, "w"))
    '''))
    result = run("bench", "--quick", "--dir", str(bench_dir))
    one_error_line(result, 1, "benchmark report failed")  # bench_broken failed; the report is still written
    md = (bench_dir / "RESULTS.md").read_text()
    assert "| fake | ours | 0.8x | peer | >= 0.5x | yes |" in md
    assert "**Did not complete:** exit 1: cannot run here" in md and "> a note" in md and "## Machine" in md
    assert png_size(bench_dir / "throughput.png")[0] > 0
    data = json.loads((bench_dir / "results.json").read_text())
    assert data["quick"] is True and [r["benchmark"] for r in data["runs"]] == ["broken", "fake", "labelled"]
    assert "| zarr per-plane: write_MBps | 300 | MB/s |  |  |" in md  # a {label: {metric: n}} dict is flattened
    assert "| zarr per-plane: plane_ms | 1.5 | ms |  |  |" in md and "failed: no tifffile" in md
    (bench_dir / "RESULTS.md").unlink()
    subprocess.run([sys.executable, str(bench_dir / "report.py"), "--render-only", "--out", str(bench_dir)], check=True, timeout=120)
    assert "| fake | ours | 0.8x | peer | >= 0.5x | yes |" in (bench_dir / "RESULTS.md").read_text()  # re-rendered, not re-run
    assert run("bench", "--dir", str(bench_dir), "--only", "fake").exit_code == 0
    one_error_line(run("bench", "--dir", str(tmp_path / "nowhere")), 2, "report.py not found")


# ----------------------------------------------------------------- as a subprocess
def cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "hcsvfs.cli", *args], capture_output=True, text=True, timeout=120, cwd=cwd)


def test_subprocess_exit_codes_and_one_line_errors(folder: Path, tmp_path: Path) -> None:
    ok = cli("ls", "--plain", str(folder))
    assert ok.returncode == 0 and "a.tif" in ok.stdout and ok.stderr == ""
    bad = cli("ls", "bogus:x")
    assert bad.returncode == 2 and bad.stdout == "" and len(bad.stderr.strip().splitlines()) == 1
    missing = cli("info", str(tmp_path / "nope.tif"))
    assert missing.returncode == 1 and missing.stderr.startswith("hcsvfs: error:") and "Traceback" not in missing.stderr
    debug = cli("--debug", "info", str(tmp_path / "nope.tif"))
    assert debug.returncode == 1 and "Traceback" in debug.stderr
    assert cli("--version").stdout.startswith("hcsvfs ")
    top = cli("--help")
    assert top.returncode == 0 and all(c in top.stdout for c in COMMANDS)


def test_preview_of_a_pipeline_plate_is_a_map_of_cells_per_well(tmp_path: Path) -> None:
    """The plate map reads the pipeline's per-well measures and outlines the segmentation on the thumbnails."""
    from hcsvfs import FileManager
    from hcsvfs.cli.demo import demo_pipeline
    from hcsvfs.cli.platemap import outline
    from hcsvfs.pipeline.synthetic import plate_wells, write_synthetic_plate

    write_synthetic_plate(FileManager(), str(tmp_path / "in"), plate_wells(6, columns=3), fields=1, channels=2,
                          shape=(128, 128), cells=20)
    report = demo_pipeline().run(str(tmp_path / "in"), str(tmp_path / "p.zarr"), labels="cells")
    out = tmp_path / "map.png"
    result = runner.invoke(app, ["preview", str(tmp_path / "p.zarr"), "-o", str(out), "--size", "900"])
    assert result.exit_code == 0 and "plate map of cells per well, 6 wells" in " ".join(result.stderr.split())
    png = np.asarray(Image.open(out).convert("RGB"))
    assert (png == [255, 220, 0]).all(axis=-1).sum() > 50  # yellow outlines drawn on the thumbnails
    cells = report.table().groupby("well").cells.sum()
    assert cells.max() > cells.min()  # the map has a real range to colour
    labels = np.zeros((5, 5), int)
    labels[1:4, 1:4] = 3
    assert outline(labels).sum() == 8 and not outline(labels)[2, 2]  # the ring, not the inside
