"""Render on Ray against the local pool: the same 2,000-model synthetic render, side by side.

A synthetic dataset is extracted once (default ``var/bench/render-ray-<count>``; not timed),
then rendered twice by the render stage as the server runs it (``--progress json``), into two
fresh output folders: ``--executor local`` and ``--executor ray`` (a private Ray instance with
``num_cpus`` = the workers, started and stopped by the stage, so its start-up is counted). For
each: models/s on the wall clock (start-up included) and on the stage's own clock, the peak
memory of the whole process tree (PSS: Ray's raylet, GCS and workers included), and at the end
Ray's overhead in percent of the local wall time (target: at most 15%). The two outputs must
hold the same images, byte for byte.

    .venv/bin/python scripts/bench/render_ray.py [--models 2000] [--workers N] [--resolution 512]
"""

from __future__ import annotations

import argparse
import filecmp
import shutil
import sys
import tempfile
import threading
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from scripts.bench._measure import MB, run_sampled_stage  # noqa: E402

TARGET_OVERHEAD_PERCENT = 15.0


def ensure_dataset(folder: Path, count: int, workers: int) -> Path:
    if (folder / "dataset.json").is_file():
        return folder
    val = max(1, count // 10)
    print(f"extracting {count} synthetic models to {folder} (once; not timed)", flush=True)
    command = [
        sys.executable, "-m", "stages.extract", "--source", "synthetic",
        "--train-size", str(count - val), "--val-size", str(val),
        "--output", str(folder), "--workers", str(workers), "--progress", "json",
    ]  # fmt: skip
    run_sampled_stage(command, "extract", interval=1.0)
    return folder


class TreeCpu(threading.Thread):
    """CPU seconds of every process of this process's tree, each taken at its last sample:
    Ray's workers are the raylet's children, never reaped by the stage, so the rusage of
    finished children misses them. Independent of other load on the machine, unlike wall
    time."""

    def __init__(self, interval: float = 0.5) -> None:
        super().__init__(daemon=True)
        self.interval = interval
        self.stop = threading.Event()
        self.seen: dict[tuple[int, float], float] = {}

    def run(self) -> None:
        me = psutil.Process()
        while not self.stop.is_set():
            for child in me.children(recursive=True):
                try:
                    times = child.cpu_times()
                    self.seen[(child.pid, child.create_time())] = times.user + times.system
                except psutil.Error:
                    continue
            self.stop.wait(self.interval)

    def total(self) -> float:
        self.stop.set()
        self.join()
        return sum(self.seen.values())


def same_images(a: Path, b: Path) -> bool:
    names = sorted(p.name for p in a.iterdir())
    if names != sorted(p.name for p in b.iterdir()):
        return False
    _, mismatch, errors = filecmp.cmpfiles(a, b, names, shallow=False)
    return not mismatch and not errors


def main() -> int:
    from stages.workpool import default_workers

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", type=int, default=2000)
    parser.add_argument("--views", default="front,top,right")
    parser.add_argument("--resolution", type=int, default=512)
    parser.add_argument("--workers", type=int, default=default_workers())
    parser.add_argument("--cache", type=Path, help="extracted dataset folder to reuse")
    args = parser.parse_args()

    dataset = args.cache or REPO / "var" / "bench" / f"render-ray-{args.models}"
    ensure_dataset(dataset, args.models, args.workers)
    scratch = Path(tempfile.mkdtemp(prefix="render-ray-bench-"))
    runs = {}
    cpus: dict[str, float] = {}
    try:
        for executor in ("local", "ray"):
            output = scratch / executor
            command = [
                sys.executable, "-m", "stages.render", "--input", str(dataset),
                "--output", str(output), "--views", args.views,
                "--resolution", str(args.resolution), "--workers", str(args.workers),
                "--executor", executor, "--progress", "json",
            ]  # fmt: skip
            cpu = TreeCpu()
            cpu.start()
            runs[executor] = run = run_sampled_stage(command, f"render ({executor})", 0.5, True)
            cpus[executor] = cpu.total()
            result = run.result
            print(
                f"{executor:>5}: {result['models']} models ({result['failed']} failed), "
                f"{result['models'] / run.seconds:.1f} models/s wall ({run.seconds:.1f} s, "
                f"start-up included), {result['models_per_s']:.1f} models/s stage clock; "
                f"peak memory {run.memory.peak_tree_pss / MB:.0f} MB PSS (whole tree), "
                f"worker RSS {result['peak_worker_rss_mb']:.0f} MB; CPU {cpus[executor]:.0f} s "
                f"({1000 * cpus[executor] / result['models']:.1f} ms per model, every process)",
                flush=True,
            )
        identical = same_images(scratch / "local" / "images", scratch / "ray" / "images")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    local, ray = runs["local"], runs["ray"]
    overhead = 100.0 * (ray.seconds - local.seconds) / local.seconds
    cpu_overhead = 100.0 * (cpus["ray"] - cpus["local"]) / cpus["local"]
    ok = overhead <= TARGET_OVERHEAD_PERCENT
    print(
        f"Ray overhead: {overhead:+.1f}% wall time ({ray.seconds - local.seconds:+.1f} s), "
        f"{cpu_overhead:+.1f}% CPU time ({cpus['ray'] - cpus['local']:+.1f} s), "
        f"memory {(ray.memory.peak_tree_pss - local.memory.peak_tree_pss) / MB:+.0f} MB; "
        f"images identical: {identical}; target <= {TARGET_OVERHEAD_PERCENT:.0f}%: "
        f"{'met' if ok else 'NOT met'}"
    )
    return 0 if identical else 1


if __name__ == "__main__":
    sys.exit(main())
