"""A test-only stand-in for the render stage: accepts any arguments and renders nothing,
counting until cancelled, so a test can hold a dataset with a running render job."""

from __future__ import annotations

import argparse
import sys
import time

from stages.protocol import Reporter, run_stage


def body(args: argparse.Namespace, reporter: Reporter, cancel: object) -> dict:
    reporter.start(10**9, "models")
    while True:
        time.sleep(0.05)
        reporter.advance(ok=True)


class AnyArguments(argparse.ArgumentParser):
    def parse_args(self, args=None, namespace=None):  # type: ignore[override]
        return self.parse_known_args(args, namespace)[0]


def main() -> int:
    return run_stage("render", AnyArguments(), body)


if __name__ == "__main__":
    sys.exit(main())
