"""A test-only stand-in for the extract stage: accepts its arguments and emits progress
events at a steady rate (``FAKE_RATE`` per second, for ``FAKE_SECONDS`` or until killed),
each stamped with the wall time it was written, so tests and the API load benchmark can
measure delivery delay without building any model."""

from __future__ import annotations

import argparse
import os
import sys
import time

from stages.protocol import Reporter, run_stage


def body(args: argparse.Namespace, reporter: Reporter, cancel: object) -> dict:
    rate = float(os.environ.get("FAKE_RATE", "20"))
    seconds = float(os.environ.get("FAKE_SECONDS", "1e9"))
    reporter.min_interval = 0.0
    total = int(rate * seconds) if seconds < 1e8 else 10**9
    reporter.start(total, "models")
    start = time.monotonic()
    for i in range(total):
        delay = start + (i + 1) / rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        reporter.advance(ok=True)
        reporter.progress(force=True, emitted_at=time.time())
    return {"output_path": args.output, "train": args.train_size, "val": args.val_size}


def main() -> int:
    parser = argparse.ArgumentParser()
    for flag in ("--source", "--root", "--output", "--name", "--max-extrudes", "--max-curves"):
        parser.add_argument(flag)
    for flag in ("--train-size", "--val-size", "--seed", "--workers"):
        parser.add_argument(flag, type=int)
    parser.add_argument("--unique-keys", action=argparse.BooleanOptionalAction, default=False)
    return run_stage("extract", parser, body)


if __name__ == "__main__":
    sys.exit(main())
