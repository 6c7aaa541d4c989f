"""Synthetic generator benchmark: gated models per second, and the time 20,000 would take.

Runs ``stages.cad.synth.generate_models`` (draw, write JSON, parse, sliver check, build,
watertight/volume/solid checks, geometric key, dedup) for ``--count`` models with ``--workers``
processes, and times one candidate's phases on a single core. Prints models/s, candidates/s,
rejections by reason, the projected time for 20,000 models, per-phase milliseconds and the
peak RSS of this process and its workers.
"""

from __future__ import annotations

import argparse
import random
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
from stages.cad.synth import (  # noqa: E402
    DEFAULT_VARIETY,
    candidate_seed,
    draw_design,
    generate_models,
)
from stages.cad.synth.deepcad_json import design_to_json  # noqa: E402
from stages.cad.synth.slivers import find_sliver  # noqa: E402

PROJECTED = 20_000


def throughput(count: int, seed: int, workers: int) -> None:
    rejected: Counter[str] = Counter()
    start = time.perf_counter()
    produced = sum(
        1
        for _ in generate_models(
            count, seed, workers=workers, on_reject=lambda _, e: rejected.update([e.reason])
        )
    )
    seconds = time.perf_counter() - start
    candidates = produced + sum(rejected.values())
    print(f"generate_models: {produced} models from {candidates} candidates, {workers} worker(s)")
    rate = produced / seconds
    print(f"  {seconds:.1f} s, {rate:.1f} models/s, {candidates / seconds:.1f} candidates/s")
    print(f"  rejected: {dict(rejected.most_common())}")
    print(f"  projected for {PROJECTED:,} models: {PROJECTED / rate:.0f} s")


def phases(count: int, seed: int) -> None:
    """Milliseconds per phase of one candidate, in this process."""
    times: dict[str, list[float]] = {
        p: [] for p in ("draw+json", "parse", "slivers", "build", "key")
    }
    for index in range(count):
        clock = time.perf_counter()
        rng = random.Random(candidate_seed(seed, index))
        data = design_to_json(draw_design(rng, DEFAULT_VARIETY), rng, dict(DEFAULT_VARIETY.quirks))
        clock = _lap(times["draw+json"], clock)
        model = parse_deepcad(data, "bench")
        clock = _lap(times["parse"], clock)
        find_sliver(model, DEFAULT_VARIETY.min_feature_share)
        clock = _lap(times["slivers"], clock)
        try:
            solid = build_solid(model)
        except CadError:
            continue
        clock = _lap(times["build"], clock)
        geometric_key(solid)
        _lap(times["key"], clock)
    print(f"phases over {count} candidates (ms: median / p99 / mean):")
    for name, values in times.items():
        ordered = sorted(values)
        p99 = ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]
        median, mean = statistics.median(values), statistics.fmean(values)
        print(f"  {name:10s} {median:7.2f} {p99:7.2f} {mean:7.2f}")


def _lap(bucket: list[float], since: float) -> float:
    now = time.perf_counter()
    bucket.append((now - since) * 1000.0)
    return now


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=2000, help="models to generate")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--phase-count", type=int, default=300, help="candidates to time by phase")
    args = parser.parse_args()
    phases(args.phase_count, args.seed)
    throughput(args.count, args.seed, args.workers)
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(f"peak RSS: {own:.0f} MB (largest worker {children:.0f} MB)")


if __name__ == "__main__":
    main()
