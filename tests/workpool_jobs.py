"""Functions the pool tests run in worker processes."""

from __future__ import annotations

import os
import signal
from multiprocessing.connection import Connection

BIG = 64 * 1024 * 1024  # far beyond a pipe's buffer: the reply takes many writes
_send = Connection._send


def square_or_die(item: int) -> int:
    """Squares an item; item 13 kills its own worker, as a crash in native code would."""
    if item == 13:
        os.kill(os.getpid(), signal.SIGKILL)
    return item * item


def crashed(item: int, message: str) -> int:
    return -1


def big_reply_then_die(item: int) -> bytes:
    """Item 1's worker dies halfway through sending its large reply: the parent reads half a
    message. The worker (a fork: nothing here reaches the parent) sends the first half of
    the reply's bytes and exits, whatever the timing."""
    if item == 1:
        Connection._send = _send_half_then_exit
    return bytes(BIG if item == 1 else 1)


def _send_half_then_exit(self: Connection, buf: bytes, write=os.write) -> None:
    if len(buf) < BIG:  # the length header and small messages go whole
        _send(self, buf)
        return
    rest = memoryview(buf)[: len(buf) // 2]
    while rest:
        rest = rest[write(self.fileno(), rest) :]
    os._exit(1)


def fail_on_two(item: int) -> int:
    if item == 2:
        raise ValueError(f"item {item} is bad")
    return item
