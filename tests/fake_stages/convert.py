"""A test-only stand-in for the convert stage: accepts any arguments and converts nothing.

With ``FAKE_CONVERT_GATE=PATH`` in its environment it first waits until PATH exists, so a
test decides when the job may end (a request that must outlive its sync wait); without it
the job ends at once.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

from stages.protocol import Reporter, run_stage
from tests.fake_stages.render import AnyArguments

GATE = "FAKE_CONVERT_GATE"


def body(args: argparse.Namespace, reporter: Reporter, cancel: object) -> dict:
    reporter.start(1, "datasets")
    gate = os.environ.get(GATE)
    while gate and not os.path.exists(gate):
        time.sleep(0.02)
    reporter.advance(ok=True)
    return {"train_conversations": 0, "val_conversations": 0}


def main() -> int:
    return run_stage("convert", AnyArguments(), body)


if __name__ == "__main__":
    sys.exit(main())
