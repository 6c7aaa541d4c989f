"""A job stage stand-in: accepts any arguments, counts a few items and ends, touching no
file, so the datasets the fuzzer works on keep their state."""

from __future__ import annotations

import argparse
import sys
import time

from stages.protocol import Reporter, run_stage

ITEMS = 5
DELAY_S = 0.05


class AnyArguments(argparse.ArgumentParser):
    def parse_args(self, args=None, namespace=None):  # type: ignore[override]
        return self.parse_known_args(args, namespace)[0]


def body(args: argparse.Namespace, reporter: Reporter, cancel: object) -> dict:
    reporter.start(ITEMS, "items")
    for _ in range(ITEMS):
        time.sleep(DELAY_S)
        reporter.advance(ok=True)
    return {"items": ITEMS}


def run(name: str) -> int:
    return run_stage(name, AnyArguments(), body)


if __name__ == "__main__":
    sys.exit(run("job"))
