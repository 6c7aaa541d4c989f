"""Geometry benchmark: parse and build 1,000 synthetic models and every real sample on one core.

The synthetic models are the generator's gated output (``stages.cad.synth.generate_models``),
drawn before timing starts; the real ones are ``../shared/deepcad_samples/*.json``. Each model
is timed from its JSON object to a finished ``Solid`` (``parse_deepcad`` + ``build_solid``),
and separately with its geometric key. The process is pinned to one CPU first, so manifold3d
cannot spread work over more. Prints models/s, median, p99 and max ms per model, failures by
reason, and the peak RSS of the process. Targets: median under 15 ms, no model over 1 s,
peak RSS under 300 MB.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import sys
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from stages.cad.deepcad import parse_deepcad  # noqa: E402
from stages.cad.key import geometric_key  # noqa: E402
from stages.cad.model import CadError  # noqa: E402
from stages.cad.solid import build_solid  # noqa: E402
from stages.cad.synth import generate_models  # noqa: E402

TARGET_MEDIAN_MS = 15.0
TARGET_MAX_MS = 1000.0
TARGET_RSS_MB = 300.0


def pin_to_one_core() -> str:
    """Run on a single CPU (the first this process may use); returns a note for the report."""
    if not hasattr(os, "sched_setaffinity"):
        return "not pinned (no sched_setaffinity here)"
    cpu = min(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {cpu})
    return f"pinned to CPU {cpu}"


def load_real(samples: Path) -> list[tuple[str, dict]]:
    models = []
    for path in sorted(samples.glob("*.json")):
        try:
            models.append((path.stem, json.loads(path.read_text())))
        except (OSError, ValueError) as exc:
            print(f"skipping {path.name}: {exc}", file=sys.stderr)
    return models


def time_models(models: list[tuple[str, dict]], with_key: bool) -> tuple[list[float], Counter]:
    """Milliseconds per model, and failures by reason."""
    times: list[float] = []
    failures: Counter = Counter()
    for model_id, data in models:
        start = time.perf_counter()
        try:
            solid = build_solid(parse_deepcad(data, model_id))
            if with_key:
                geometric_key(solid)
        except CadError as exc:
            failures[exc.reason] += 1
        times.append((time.perf_counter() - start) * 1000.0)
    return times, failures


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def report(name: str, times: list[float], failures: Counter) -> None:
    total_s = sum(times) / 1000.0
    print(
        f"{name:<24} {len(times):>5} models  {len(times) / total_s:8.1f} models/s  "
        f"median {statistics.median(times):6.2f} ms  p99 {percentile(times, 0.99):7.2f} ms  "
        f"max {max(times):7.2f} ms  failed {dict(failures) or 0}"
    )


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1000, help="synthetic models to build")
    parser.add_argument("--seed", type=int, default=0, help="synthetic generator seed")
    parser.add_argument(
        "--samples",
        type=Path,
        default=REPO.parent / "shared" / "deepcad_samples",
        help="folder of real DeepCAD json files",
    )
    args = parser.parse_args()
    if args.count < 1:
        print("geometry: --count must be at least 1", file=sys.stderr)
        return 2

    pinning = pin_to_one_core()
    started = time.perf_counter()
    synthetic = list(generate_models(args.count, args.seed))
    generated_s = time.perf_counter() - started
    real = load_real(args.samples)
    print(
        f"geometry benchmark: {len(synthetic)} synthetic (seed {args.seed}, generated and gated "
        f"in {generated_s:.1f} s, untimed), {len(real)} real from {args.samples}; {pinning}"
    )
    time_models(real[:1] or synthetic[:1], with_key=True)  # warm imports and caches

    everything = synthetic + real
    results = {
        "synthetic": time_models(synthetic, with_key=False),
        "real": time_models(real, with_key=False),
        "all (parse+build)": time_models(everything, with_key=False),
        "all (parse+build+key)": time_models(everything, with_key=True),
    }
    for name, (times, failures) in results.items():
        if times:
            report(name, times, failures)

    times = results["all (parse+build)"][0]
    median, worst, rss = statistics.median(times), max(times), peak_rss_mb()
    print(f"peak RSS {rss:.0f} MB")
    checks = [
        (f"median {median:.2f} ms < {TARGET_MEDIAN_MS:g} ms", median < TARGET_MEDIAN_MS),
        (f"max {worst:.1f} ms < {TARGET_MAX_MS:g} ms", worst < TARGET_MAX_MS),
        (f"peak RSS {rss:.0f} MB < {TARGET_RSS_MB:g} MB", rss < TARGET_RSS_MB),
    ]
    for text, ok in checks:
        print(f"  {'met   ' if ok else 'MISSED'} {text}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
