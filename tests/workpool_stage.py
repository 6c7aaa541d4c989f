"""A stage whose work is a pool of slow items with large replies: what the cancel test runs.

Run as ``python -m tests.workpool_stage``; SIGTERM to its process group must end it at once,
with ``done``/``cancelled`` and no worker left behind.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from stages.protocol import CancelFlag, Reporter, run_stage
from stages.workpool import parallel_map

ITEMS = 100_000


def slow_big_reply(item: int) -> bytes:
    time.sleep(0.01)
    return bytes(1_000_000)  # several pipe buffers: a worker is often cut off mid-reply


def body(args: argparse.Namespace, reporter: Reporter, cancel: CancelFlag) -> dict[str, Any]:
    reporter.start(ITEMS)
    for _ in parallel_map(slow_big_reply, range(ITEMS), 2, chunksize=1):
        reporter.advance(ok=True)
    return {}


if __name__ == "__main__":
    sys.exit(run_stage("workpool", argparse.ArgumentParser(), body))
