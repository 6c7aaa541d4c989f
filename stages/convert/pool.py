"""A worker pool for per-model work that a cancel stops at once.

Both dataset stages spread models over processes. Workers take the default SIGTERM action (the
server signals the whole process group on cancel, and a worker has nothing to save) and ignore
SIGINT so that Ctrl-C at a terminal is handled once, by the parent. With one worker the work
runs in this process: no start-up cost, and tests see plain tracebacks.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")


def default_workers() -> int:
    """The cores this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:
        return max(1, os.cpu_count() or 1)


def _init_worker() -> None:
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def parallel_map(
    work: Callable[[Item], Result],
    items: Iterable[Item],
    workers: int,
    chunksize: int = 16,
) -> Iterator[Result]:
    """``work`` over ``items`` in order, on ``workers`` processes; the pool is terminated when
    the caller stops iterating (a cancel raises in the parent's loop)."""
    if workers <= 1:
        yield from map(work, items)
        return
    context = multiprocessing.get_context("fork")
    with context.Pool(workers, initializer=_init_worker) as pool:
        yield from pool.imap(work, items, chunksize=chunksize)
