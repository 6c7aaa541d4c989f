"""Extract benchmark: 10,000 + 1,000 models from a synthetic DeepCAD root of 20,000 on disk.

The root is written once by the synthetic generator into a cache folder (default
``var/bench/synthetic-<count>-seed<seed>``; its creation is not timed) and reused. The stage
then runs as the server runs it (``python -m stages.extract --progress json``), build check
included, while this script samples the memory of the stage and its workers. Prints wall time,
models/s, the stage's own counts, and peak RSS (the stage process alone, its largest worker,
and the whole process tree summed). Target: under 60 s, peak RSS under 300 MB.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from scripts.bench._measure import MB, MemorySampler, run_sampled_stage  # noqa: E402

TARGET_SECONDS = 60.0
TARGET_RSS_MB = 300.0


def ensure_root(cache: Path, count: int, seed: int, workers: int) -> Path:
    """Write the synthetic root once; the split file is written last, so its presence means
    a complete root."""
    if (cache / "train_val_test_split.json").is_file():
        return cache
    from stages.cad.synth import write_dataset

    print(f"writing a synthetic root of {count} models to {cache} (once; not timed)", flush=True)
    started = time.monotonic()
    counts = write_dataset(cache, count, seed, workers=workers)
    print(f"  done in {time.monotonic() - started:.0f} s: {counts}", flush=True)
    return cache


def run_stage(
    root: Path, output: Path, args: argparse.Namespace
) -> tuple[dict, MemorySampler, float]:
    command = [
        sys.executable, "-m", "stages.extract",
        "--source", "deepcad", "--root", str(root),
        "--train-size", str(args.train), "--val-size", str(args.val),
        "--output", str(output), "--seed", str(args.seed),
        "--workers", str(args.workers), "--progress", "json",
    ]  # fmt: skip
    run = run_sampled_stage(command, "stage", interval=0.1, pss=True)
    result = run.result
    result["cpu_seconds"] = run.cpu_seconds
    return result, run.memory, run.seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=20_000, help="size of the synthetic root")
    parser.add_argument("--train", type=int, default=10_000)
    parser.add_argument("--val", type=int, default=1_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=len(os.sched_getaffinity(0)))
    parser.add_argument("--cache", type=Path, help="where the synthetic root is kept")
    args = parser.parse_args()
    cache = args.cache or REPO / "var" / "bench" / f"synthetic-{args.models}-seed{args.seed}"
    root = ensure_root(cache, args.models, args.seed, args.workers)

    scratch = Path(tempfile.mkdtemp(prefix="bench-extract-"))
    try:
        result, memory, seconds = run_stage(root, scratch / "bench", args)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    models = result["models"]
    print(f"extract {args.train} + {args.val} from {args.models} models, {args.workers} workers")
    print(f"  wall time        {seconds:7.1f} s   (target < {TARGET_SECONDS:.0f} s)")
    print(f"  models/s         {models / seconds:7.1f}")
    cpu = result["cpu_seconds"]
    print(f"  stage's seconds  {result['seconds']:7.1f} s")
    print(
        f"  CPU time         {cpu:7.1f} s   ({1000 * cpu / models:.1f} ms/model, stage + workers)"
    )
    print(f"  CPU / workers    {cpu / args.workers:7.1f} s   (the wall time on idle cores)")
    print(f"  load average     {os.getloadavg()[0]:7.1f}     (other work on this machine)")
    print(f"  checked          {result['checked']:7d}   skipped {result['skipped']}")
    print(f"  peak RSS stage   {memory.peak_main / MB:7.0f} MB  (the stage's own process)")
    print(f"  peak RSS worker  {memory.peak_worker / MB:7.0f} MB  (its largest worker)")
    print(
        f"  peak PSS total   {memory.peak_tree_pss / MB:7.0f} MB  (stage + workers; target < 300)"
    )
    print(
        f"  peak RSS total   {memory.peak_tree_rss / MB:7.0f} MB  (the same, shared pages summed)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
