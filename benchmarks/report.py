"""Run every benchmarks/bench_*.py and write benchmarks/RESULTS.md, results.json and throughput.png.

    python benchmarks/report.py [--quick] [--only NAME ...] [--timeout S] [--out DIR] [--render-only]

Each script is run as ``python bench_X.py [--quick] --json FILE`` (see
docs/benchmarks.md); a script that fails or times out is reported as such and
the others still run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
PACKAGES = ("hcsvfs", "numpy", "zarr", "zarrs", "numcodecs", "tifffile", "imagecodecs", "ome-zarr", "fsspec", "s3fs", "dask", "torch")


def machine() -> dict[str, Any]:
    """What the numbers were measured on."""
    import psutil

    cpu = platform.processor() or platform.machine()
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else psutil.cpu_count()
    return {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "platform": platform.platform(),
        "cpu": cpu,
        "cores": f"{usable} usable of {psutil.cpu_count()}",
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "load_average": " ".join(f"{x:.2f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "n/a",
        "python": platform.python_version(),
        "commit": _git_commit(),
    }


def _git_commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=HERE, capture_output=True, text=True, timeout=10)
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"


def versions() -> dict[str, str]:
    """Installed versions of the packages whose speed the results depend on."""
    out = {}
    for name in PACKAGES:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "not installed"
    return out


def run_one(script: Path, quick: bool, timeout: int, workdir: Path) -> dict[str, Any]:
    """Run one script; its JSON, or a record of how it failed."""
    name = script.stem.removeprefix("bench_")
    out = workdir / f"{script.stem}.json"
    cmd = [sys.executable, str(script), "--json", str(out)] + (["--quick"] if quick else [])
    print(f"== {script.name}", flush=True)
    start = time.perf_counter()
    try:
        proc = subprocess.run(cmd, timeout=timeout, capture_output=True, text=True, cwd=HERE.parent)
    except subprocess.TimeoutExpired:
        return {"benchmark": name, "error": f"timed out after {timeout} s", "results": []}
    elapsed = time.perf_counter() - start
    print(proc.stdout, end="", flush=True)
    if proc.returncode != 0 or not out.exists():
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        return {"benchmark": name, "error": f"exit {proc.returncode}: {tail[0]}", "results": [], "seconds": elapsed}
    try:
        data = json.loads(out.read_text())
    except json.JSONDecodeError as exc:
        return {"benchmark": name, "error": f"wrote invalid JSON ({exc})", "results": [], "seconds": elapsed}
    data.setdefault("benchmark", name)
    data["seconds"] = elapsed
    data["results"] = rows(data.get("results", []))
    return data


_UNITS = {"MBps": "MB/s", "ms": "ms", "s": "s", "us": "us", "pct": "%", "x": "x"}


def rows(results: Any) -> list[dict[str, Any]]:
    """Results as the documented list of {name, value, unit, ...}; a ``{label: {metric: number}}`` dict is flattened."""
    if isinstance(results, list):
        return [r for r in results if isinstance(r, dict) and "name" in r and "value" in r]
    out: list[dict[str, Any]] = []
    if isinstance(results, dict):
        for label, metrics in results.items():
            if not isinstance(metrics, dict):
                continue
            for key, value in metrics.items():
                if isinstance(value, (int, float)) and not isinstance(value, bool):
                    suffix = key.rsplit("_", 1)[-1]
                    out.append({"name": f"{label}: {key}", "value": float(value), "unit": _UNITS.get(suffix, "")})
                elif key == "error":
                    out.append({"name": f"{label}: error", "value": None, "unit": "", "error": str(value)})
    return out


def _fmt(x: Any) -> str:
    if isinstance(x, float):
        return f"{x:.3g}" if abs(x) < 1000 else f"{x:,.0f}"
    return "" if x is None else str(x)


def markdown(meta: dict[str, Any], vers: dict[str, str], runs: list[dict[str, Any]], plot: str | None, quick: bool) -> str:
    """RESULTS.md: machine, versions, then one table per benchmark with every ratio and target."""
    lines = ["# Benchmark results", "", f"Generated by `hcsvfs bench`{' --quick' if quick else ''} (benchmarks/report.py). "
             "Ratios compare numbers measured in the same run on this machine.", "", "## Machine", ""]
    lines += [f"- **{k}**: {v}" for k, v in meta.items()]
    lines += ["", "## Versions", "", " | ".join(f"{k} {v}" for k, v in vers.items()), ""]
    ratios = [(run["benchmark"], r) for run in runs for r in run.get("results", []) if "ratio" in r]
    if ratios:
        lines += ["## Every ratio", "", "| benchmark | measurement | ratio | against | target | met |", "|---|---|---:|---|---|---|"]
        for bench, r in ratios:
            met = {True: "yes", False: "**no**"}.get(r.get("met"), "")
            lines.append(f"| {bench} | {r['name']} | {_fmt(r['ratio'])}x | {r.get('ratio_to', '')} | {r.get('target', '')} | {met} |")
        lines.append("")
    if plot:
        lines += ["## Throughput per layout / codec", "", f"![throughput]({plot})", ""]
    for run in runs:
        lines += [f"## {run['benchmark']}", ""]
        if "error" in run:
            lines += [f"**Did not complete:** {run['error']}", ""]
            continue
        if run.get("params"):
            lines += ["Parameters: " + ", ".join(f"{k}={v}" for k, v in run["params"].items()), ""]
        lines += ["| measurement | value | unit | ratio | against |", "|---|---:|---|---:|---|"]
        for r in run.get("results", []):
            ratio = f"{_fmt(r['ratio'])}x" if "ratio" in r else ""
            value = _fmt(r.get("value")) if "error" not in r else f"failed: {r['error']}"
            lines.append(f"| {r.get('name')} | {value} | {r.get('unit', '')} | {ratio} | {r.get('ratio_to', '')} |")
        lines += [""] + [f"> {n}" for n in run.get("notes", [])] + ([""] if run.get("notes") else [])
        lines += [f"_ran in {run.get('seconds', 0):.1f} s_", ""]
    return "\n".join(lines)


def throughput_plot(runs: list[dict[str, Any]], path: Path) -> bool:
    """One panel of horizontal MB/s bars per benchmark (own scale each), so layouts and codecs compare at a glance.

    Within a benchmark, results tagged with a layout or codec are drawn if there are any, else all MB/s results.
    False if no benchmark reported a throughput.
    """
    panels = []
    for run in runs:
        mbs = [r for r in run.get("results", []) if r.get("unit") == "MB/s" and r.get("value")]
        tagged = [r for r in mbs if "layout" in r or "codec" in r]
        if mbs:
            panels.append((run["benchmark"], [(r["name"], float(r["value"])) for r in (tagged or mbs)]))
    if not panels:
        return False
    import matplotlib

    matplotlib.use("Agg")  # files only, no display needed
    import matplotlib.pyplot as plt

    heights = [len(bars) for _, bars in panels]
    fig, axes = plt.subplots(
        len(panels), 1, figsize=(10, 0.32 * sum(heights) + 1.0 * len(panels)), gridspec_kw={"height_ratios": heights}, squeeze=False
    )
    for ax, (bench, bars) in zip(axes[:, 0], panels):
        ax.barh([name for name, _ in bars], [v for _, v in bars], color="#4c72b0")
        ax.invert_yaxis()
        ax.set_title(bench, loc="left", fontsize=10)
        ax.tick_params(axis="y", labelsize=8)
        for i, (_, v) in enumerate(bars):
            ax.text(v, i, f" {v:,.0f}" if v >= 100 else f" {v:.3g}", va="center", fontsize=7)
    axes[-1, 0].set_xlabel("MB/s (higher is better)")
    fig.suptitle("Throughput per layout / codec")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True


def write_outputs(out: Path, meta: dict[str, Any], vers: dict[str, str], runs: list[dict[str, Any]], quick: bool) -> None:
    """results.json, throughput.png and RESULTS.md in ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    plot = "throughput.png" if throughput_plot(runs, out / "throughput.png") else None
    (out / "results.json").write_text(json.dumps({"machine": meta, "versions": vers, "quick": quick, "runs": runs}, indent=2))
    (out / "RESULTS.md").write_text(markdown(meta, vers, runs, plot, quick))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="pass --quick to every script")
    parser.add_argument("--only", action="append", default=[], help="run only bench_NAME.py (repeatable)")
    parser.add_argument("--timeout", type=int, default=1800, help="seconds per script")
    parser.add_argument("--out", type=Path, default=HERE, help="folder for RESULTS.md, results.json, throughput.png")
    parser.add_argument("--render-only", action="store_true", help="rewrite RESULTS.md and the plot from results.json, run nothing")
    args = parser.parse_args(argv)
    if args.render_only:
        saved = json.loads((args.out / "results.json").read_text())
        write_outputs(args.out, saved["machine"], saved["versions"], saved["runs"], saved["quick"])
        return 0
    scripts = sorted(HERE.glob("bench_*.py"))
    if args.only:
        wanted = {n.removeprefix("bench_").removesuffix(".py") for n in args.only}
        scripts = [s for s in scripts if s.stem.removeprefix("bench_") in wanted]
        missing = wanted - {s.stem.removeprefix("bench_") for s in scripts}
        if missing:
            print(f"report.py: no benchmarks/bench_{sorted(missing)[0]}.py", file=sys.stderr)
            return 2
    if not scripts:
        print("report.py: no benchmarks/bench_*.py to run", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        runs = [run_one(s, args.quick, args.timeout, Path(tmp)) for s in scripts]
    write_outputs(args.out, machine(), versions(), runs, args.quick)
    failed = [r["benchmark"] for r in runs if "error" in r]
    print(f"wrote {args.out / 'RESULTS.md'} ({len(runs)} benchmark(s){', failed: ' + ', '.join(failed) if failed else ''})")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
