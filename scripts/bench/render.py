"""Render benchmark: 1,000 synthetic models, three views at 512 px, every core.

The synthetic dataset is written once into a cache folder (default
``var/bench/synthetic-<count>-seed<seed>``; not timed) and reused. The stage runs as the server
runs it (``python -m stages.render --progress json``) into a fresh temporary output folder, so
nothing is skipped. Prints models/s and images/s (the stage's own clock, from the first model
handed out to the last written, and the wall clock with start-up), CPU ms per model split into
solid / render / PNG (measured in the workers), peak RSS per worker, the CPU time of the whole
stage (what an idle machine would need), and the machine's load before and after (other work on
the cores lowers the measured rate, not the CPU per model). Target on a 2-core machine:
at least 25 models/s, worker RSS under 400 MB.

    .venv/bin/python scripts/bench/render.py [--models 1000] [--workers N] [--resolution 512]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from scripts.bench._measure import children_cpu_seconds  # noqa: E402

TARGET_MODELS_PER_S = 25.0
TARGET_WORKER_RSS_MB = 400.0


def ensure_dataset(cache: Path, count: int, seed: int, workers: int) -> Path:
    """Write the synthetic dataset once; its split file is written last, so it marks a
    complete dataset."""
    if (cache / "train_val_test_split.json").is_file():
        return cache
    from stages.cad.synth import write_dataset

    print(f"writing {count} synthetic models to {cache} (once; not timed)", flush=True)
    started = time.monotonic()
    write_dataset(cache, count, seed, workers=workers)
    print(f"  done in {time.monotonic() - started:.0f} s", flush=True)
    return cache


def run_stage(dataset: Path, output: Path, args: argparse.Namespace) -> tuple[dict, float]:
    """Run the render stage; returns its result event and the wall time with start-up."""
    command = [
        sys.executable, "-m", "stages.render",
        "--input", str(dataset), "--output", str(output),
        "--views", args.views, "--resolution", str(args.resolution),
        "--workers", str(args.workers), "--progress", "json",
    ]  # fmt: skip
    env = dict(os.environ)
    if args.threads is not None:
        env["LP_NUM_THREADS"] = str(args.threads)
    started = time.monotonic()
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, env=env)
    wall = time.monotonic() - started
    events = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    results = [e for e in events if e.get("event") == "result"]
    if done.returncode != 0 or not results:
        sys.exit(f"render stage failed ({done.returncode}): {done.stderr.strip()[-2000:]}")
    return results[0], wall


def main() -> int:
    from stages.workpool import default_workers

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--views", default="front,top,right")
    parser.add_argument("--resolution", type=int, default=512)
    parser.add_argument("--workers", type=int, default=default_workers())
    parser.add_argument("--threads", type=int, help="llvmpipe threads per worker (LP_NUM_THREADS)")
    parser.add_argument("--cache", type=Path, help="synthetic dataset folder to reuse")
    args = parser.parse_args()

    cache = args.cache or REPO / "var" / "bench" / f"synthetic-{args.models}-seed{args.seed}"
    dataset = ensure_dataset(cache, args.models, args.seed, args.workers)
    load_before = os.getloadavg()
    output = Path(tempfile.mkdtemp(prefix="render-bench-"))
    cpu_before = children_cpu_seconds()
    try:
        result, wall = run_stage(dataset, output, args)
        cpu_s = children_cpu_seconds() - cpu_before
    finally:
        shutil.rmtree(output, ignore_errors=True)
    load_after = os.getloadavg()

    ms = result["ms_per_model"]
    stage_s = result["elapsed_s"]
    print(f"machine: {os.cpu_count()} cores, backend {result['backend']}, "
          f"{result['workers']} workers; load average before {load_before[0]:.1f}, "
          f"after {load_after[0]:.1f} (1 min)")  # fmt: skip
    print(f"models: {result['models']} ({result['rendered']} rendered, {result['failed']} failed "
          f"{result['failures_by_reason']}), views {','.join(result['views'])} "
          f"at {result['resolution']} px")  # fmt: skip
    print(f"models/s: {result['models_per_s']:.1f} (stage clock {stage_s:.1f} s); "
          f"{result['models'] / wall:.1f} with start-up (wall {wall:.1f} s)")  # fmt: skip
    print(f"images/s: {result['images_per_s']:.1f}")
    print(f"CPU ms per model: solid {ms['solid']:.1f}, render {ms['render']:.1f}, "
          f"PNG {ms['png']:.1f}, total {sum(ms.values()):.1f}")  # fmt: skip
    print(f"peak RSS per worker: {result['peak_worker_rss_mb']:.0f} MB")
    cores = os.cpu_count() or 1
    print(f"CPU of the stage and its workers: {cpu_s:.1f} s, {1000 * cpu_s / result['models']:.1f} "
          f"ms per model with start-up and hand-offs; on {cores} idle cores that is "
          f"{cores * result['models'] / cpu_s:.1f} models/s (an estimate)")  # fmt: skip
    speed_ok = result["models_per_s"] >= TARGET_MODELS_PER_S
    rss_ok = result["peak_worker_rss_mb"] < TARGET_WORKER_RSS_MB
    verdict = {True: "met", False: "NOT met"}
    print(f"target >= {TARGET_MODELS_PER_S:.0f} models/s: {verdict[speed_ok]}; "
          f"worker RSS < {TARGET_WORKER_RSS_MB:.0f} MB: {verdict[rss_ok]}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
