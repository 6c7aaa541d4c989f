"""Generation benchmark: greedy decoding of validation records one by one vs in batches.

    python scripts/bench/generate.py [--records 64] [--new-tokens 32] [--batch-sizes 8 16]
        [--device cpu]

The same work every run: a synthetic dataset of ``--records`` validation records (128 px
drawings), the tiny model (random weights, seed 0, tokenizer trained on the records) and up to
``--new-tokens`` greedy tokens per record, generated as the evaluate stage does (images opened
per batch, the prompt built from each record's human turn). One-by-one (``generate_answer``,
a batch of one) and each batch size (``generate_batch``) run in the same process over the same
records; each prints one JSON line: records/s, generated tokens/s, the peak RSS while it ran and
whether its tokens equal the one-by-one tokens, then a line with the speed-up of each batch
size over one by one (wall time, and CPU time: on shared cores the steadier of the two).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

import torch  # noqa: E402
from PIL import Image  # noqa: E402

from scripts.bench._measure import MB, MemorySampler  # noqa: E402
from stages.train.data import IMAGES_DIR, iter_records, read_split, record_texts  # noqa: E402
from stages.train.models import load_base_model, resolve_base_model  # noqa: E402
from stages.train.synthetic import write_synthetic_dataset  # noqa: E402
from stages.train.tiny import build_tiny_checkpoint  # noqa: E402
from stages.train.tinyllava.generate import (  # noqa: E402
    Generation,
    generate_answer,
    generate_batch,
)

Run = Callable[[list[Any]], list[Generation]]


def tiny_setup(root: Path, records: int) -> tuple[Any, list[Any]]:
    """The dataset's validation records and the tiny model (eval mode) built on their texts."""
    dataset = write_synthetic_dataset(root / "dataset", 0, records, image_size=128)
    raw = read_split(dataset, "val")
    checkpoint = build_tiny_checkpoint(root / "tiny", record_texts(raw, len(raw)), seed=0)
    bundle = load_base_model(resolve_base_model(str(checkpoint)))
    bundle.model.eval()
    skipped = lambda item, message, reason: None  # noqa: E731  (synthetic records are whole)
    return bundle, list(iter_records(raw, dataset / IMAGES_DIR, skipped))


def batched_run(bundle: Any, batch_size: int, new_tokens: int, device: torch.device) -> Run:
    """Generations of the records, ``batch_size`` at a time (1: ``generate_answer`` alone)."""

    def run(records: list[Any]) -> list[Generation]:
        out: list[Generation] = []
        for start in range(0, len(records), batch_size):
            chunk = records[start : start + batch_size]
            with contextlib.ExitStack() as stack:
                images = [stack.enter_context(Image.open(r.image)) for r in chunk]
                if batch_size == 1:
                    pairs = [generate_answer(bundle, bundle.model, images[0], chunk[0].human,
                                             new_tokens, device)]  # fmt: skip
                else:
                    humans = [r.human for r in chunk]
                    pairs = generate_batch(bundle, bundle.model, images, humans, new_tokens, device)
            out += [generation for _, generation in pairs]
        return out

    return run


def measure(name: str, run: Run, records: list[Any]) -> tuple[dict[str, Any], list[Generation]]:
    sampler = MemorySampler(os.getpid(), interval=0.02)
    sampler.start()
    start, cpu_start = time.perf_counter(), time.process_time()
    generations = run(records)
    seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu_start
    sampler.stop.set()
    sampler.join()
    tokens = sum(len(g.token_ids) for g in generations)
    row = {
        "bench": f"generate.{name}",
        "records": len(records),
        "new_tokens": tokens,
        "stopped": sum(g.stopped for g in generations),
        "seconds": round(seconds, 2),
        "cpu_seconds": round(cpu_seconds, 2),  # less swayed by other processes than wall time
        "records_per_s": round(len(records) / seconds, 2),
        "tokens_per_s": round(tokens / seconds, 1),
        "peak_rss_mb": round(sampler.peak_main / MB),
    }
    return row, generations


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=64)
    parser.add_argument("--new-tokens", type=int, default=32, help="at most, per record")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[8, 16])
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    device = torch.device(args.device)
    with tempfile.TemporaryDirectory() as tmp:
        bundle, records = tiny_setup(Path(tmp), args.records)
        bundle.model.to(device)
        measure("warmup", batched_run(bundle, 1, 2, device), records[:2])
        one, reference = measure(
            "one_by_one", batched_run(bundle, 1, args.new_tokens, device), records
        )
        print(json.dumps(one), flush=True)
        speedups: dict[str, float] = {}
        cpu_speedups: dict[str, float] = {}
        for size in args.batch_sizes:
            row, generations = measure(
                f"batch_{size}", batched_run(bundle, size, args.new_tokens, device), records
            )
            row["same_tokens_as_one_by_one"] = generations == reference
            print(json.dumps(row), flush=True)
            speedups[f"batch_{size}"] = round(row["records_per_s"] / one["records_per_s"], 2)
            cpu_speedups[f"batch_{size}"] = round(one["cpu_seconds"] / row["cpu_seconds"], 2)
    summary = {
        "bench": "generate.speedup",
        "records_per_s_vs_one_by_one": speedups,
        "cpu_time_one_by_one_vs_batched": cpu_speedups,
        "device": str(device),
        "threads": torch.get_num_threads(),
        # other processes on the same cores slow every step: say how busy the machine was
        "load_average_1min": round(os.getloadavg()[0], 2),
    }
    print(json.dumps(summary), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
