"""Functions the pool tests run in worker processes."""

from __future__ import annotations

import os
import signal
import threading

BIG = 64 * 1024 * 1024  # far beyond a pipe's buffer: the reply takes many writes


def square_or_die(item: int) -> int:
    """Squares an item; item 13 kills its own worker, as a crash in native code would."""
    if item == 13:
        os.kill(os.getpid(), signal.SIGKILL)
    return item * item


def crashed(item: int, message: str) -> int:
    return -1


def big_reply_then_die(item: int) -> bytes:
    """Item 1 dies while its large reply is being sent: the parent reads half a message."""
    if item == 1:
        threading.Timer(0.005, os._exit, args=(1,)).start()
    return bytes(BIG if item == 1 else 1)


def fail_on_two(item: int) -> int:
    if item == 2:
        raise ValueError(f"item {item} is bad")
    return item
