"""Functions the pool tests run in worker processes (they must be importable by name)."""

from __future__ import annotations

import os
import signal


def square_or_die(item: int) -> int:
    """Squares an item; item 13 kills its own worker, as a crash in native code would."""
    if item == 13:
        os.kill(os.getpid(), signal.SIGKILL)
    return item * item


def crashed(item: int, message: str) -> int:
    return -1
