"""OpenECAD code benchmark: write and re-interpret 1,000 synthetic models.

Generates the models (not timed), then times, per model, ``write_code`` (CadModel -> code)
and ``parse_code`` (code -> CadModel, solid building not included). Prints the median,
90th percentile and maximum milliseconds of each direction and the median code length.
Targets: median under 2 ms to write and under 5 ms to interpret. ``--check-volumes`` also
builds both solids of every model and reports the worst relative volume difference (the
round trip must stay within 0.5%).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from stages.cad.deepcad import parse_deepcad  # noqa: E402
from stages.cad.model import CadModel  # noqa: E402
from stages.cad.openecad import parse_code, write_code  # noqa: E402
from stages.cad.solid import build_solid  # noqa: E402
from stages.cad.synth import generate_models  # noqa: E402

TARGET_WRITE_MS = 2.0
TARGET_PARSE_MS = 5.0
VOLUME_TOLERANCE = 0.005


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def report(name: str, millis: list[float], target: float) -> None:
    median = statistics.median(millis)
    verdict = "ok" if median < target else "OVER TARGET"
    print(
        f"{name:9s} median {median:.3f} ms  p90 {percentile(millis, 0.9):.3f} ms  "
        f"max {max(millis):.3f} ms  (target < {target} ms: {verdict})"
    )


def worst_volume_error(models: list[CadModel], codes: list[str]) -> tuple[float, str]:
    worst = (0.0, "")
    for model, code in zip(models, codes, strict=True):
        original = build_solid(model).volume
        rebuilt = build_solid(parse_code(code, model.id)).volume
        worst = max(worst, (abs(rebuilt - original) / original, model.id))
    return worst


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--check-volumes", action="store_true")
    args = parser.parse_args()

    started = time.monotonic()
    models = [parse_deepcad(data, i) for i, data in generate_models(args.count, args.seed)]
    print(f"{len(models)} synthetic models generated in {time.monotonic() - started:.1f} s")

    write_ms, parse_ms, codes = [], [], []
    for model in models:
        t0 = time.perf_counter()
        code = write_code(model)
        t1 = time.perf_counter()
        parse_code(code, model.id)
        t2 = time.perf_counter()
        write_ms.append((t1 - t0) * 1e3)
        parse_ms.append((t2 - t1) * 1e3)
        codes.append(code)
    print(f"code length median {statistics.median(len(c) for c in codes):.0f} characters")
    report("write", write_ms, TARGET_WRITE_MS)
    report("interpret", parse_ms, TARGET_PARSE_MS)

    if args.check_volumes:
        error, model_id = worst_volume_error(models, codes)
        verdict = "ok" if error < VOLUME_TOLERANCE else "OVER TOLERANCE"
        print(f"round trip: worst volume difference {error:.2e} ({model_id}): {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
