"""Whole-pipeline benchmark through the HTTP service.

Extract 10,000 + 1,000 synthetic models, render three views at 512 px, convert, validate,
then the spec's test-run (100 train, 20 val samples, 5 epochs, tiny model): the same calls
the frontend makes. Prints each stage's time, items and throughput, and the total.
Target on a 2-core machine: under 15 minutes.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from scripts.demo import free_port, start_server, wait_healthy  # noqa: E402
from scripts.pipeline_client import PipelineClient  # noqa: E402


async def run(args: argparse.Namespace, base_url: str) -> None:
    client = PipelineClient(base_url, on_message=print)
    started = time.monotonic()
    await client.run_pipeline(
        name=f"bench_{secrets.token_hex(3)}",
        source="synthetic",
        train_size=args.train_size,
        val_size=args.val_size,
        views=["front", "top", "right"],
        resolution=args.resolution,
        test_run={"train_samples": 100, "val_samples": 20, "epochs": 5, "device": "auto",
                  "batch_size": 4},
        training=None,
    )  # fmt: skip
    total = time.monotonic() - started
    print(f"\n{'stage':<10} {'items':>8} {'unit':<8} {'seconds':>8} {'per second':>11}")
    for r in client.records:
        print(f"{r.stage:<10} {r.items:>8} {r.unit:<8} {r.seconds:>8.1f} {r.throughput:>11.1f}")
    print(f"{'total':<10} {'':>8} {'':<8} {total:>8.1f}   ({total / 60:.1f} minutes)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--train-size", type=int, default=10_000)
    parser.add_argument("--val-size", type=int, default=1_000)
    parser.add_argument("--resolution", type=int, default=512)
    parser.add_argument("--var", help="state folder (default: a temporary one, removed after)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        var = Path(args.var or tmp).resolve()
        var.mkdir(parents=True, exist_ok=True)
        port = free_port()
        base_url = f"http://127.0.0.1:{port}"
        server = start_server(port, var, None)
        try:
            asyncio.run(wait_healthy(base_url, server))
            asyncio.run(run(args, base_url))
        finally:
            server.terminate()
            server.wait(60)


if __name__ == "__main__":
    main()
