"""An ordered, windowed process pool that survives a worker dying on one item.

Building solids holds Python's lock, so checking models in parallel needs processes. Results
come back in submission order (so every choice stays deterministic), only a bounded window of
chunks is in flight (so memory stays flat whatever the batch size), and batches queue in the
order they were submitted, so the next batch's work starts while the current one is read.

A worker that dies (a crash in native code, the OOM killer) breaks a
``ProcessPoolExecutor``: the pool is then restarted and the items of every broken chunk are
retried one at a time in a separate single-worker pool, so only the item that really kills
its worker is reported as ``crashed``, and the batch goes on.
"""

from __future__ import annotations

import signal
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from itertools import islice
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")

DEFAULT_CHUNK_SIZE = 8
CHUNKS_IN_FLIGHT_PER_WORKER = 3


def _init_worker() -> None:
    """Workers die on SIGTERM (the stage's cancel handler is for the parent only) and leave
    Ctrl-C to the parent, which then ends them."""
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _run_chunk(fn: Callable[[T], R], chunk: list[T]) -> list[R]:
    return [fn(item) for item in chunk]


@dataclass(slots=True)
class _Task(Generic[T, R]):
    items: list[T]
    future: Future[list[R]]
    generation: int


class Batch(Generic[T, R]):
    """Items submitted together; iterate to get ``(item, result)`` in submission order."""

    def __init__(self, pool: OrderedPool[T, R], items: Iterator[T]) -> None:
        self._pool = pool
        self._items = items
        self._tasks: deque[_Task[T, R]] = deque()
        self._exhausted = False

    def __iter__(self) -> Iterator[tuple[T, R]]:
        pool = self._pool
        pool._top_up()
        while True:
            if self._tasks:
                task = self._tasks.popleft()
                results = pool._results(task)
                pool._top_up()
                yield from zip(task.items, results, strict=True)
            elif self._exhausted:
                return
            else:  # earlier batches fill the window: wait for room, then submit ours
                pool._wait_for_room()

    def cancel(self) -> None:
        """Drop what is not read yet; queued chunks are not run."""
        self._exhausted = True
        for task in self._tasks:
            task.future.cancel()
        self._tasks.clear()
        if self in self._pool._queue:
            self._pool._queue.remove(self)

    def _next_chunk(self, size: int) -> list[T]:
        chunk = list(islice(self._items, size))
        if not chunk:
            self._exhausted = True
        return chunk


class OrderedPool(Generic[T, R]):
    """Runs ``fn`` (picklable, top level) over items in ``workers`` processes.

    ``crashed(item, message)`` makes the result for an item whose worker died.
    """

    def __init__(
        self,
        fn: Callable[[T], R],
        workers: int,
        crashed: Callable[[T, str], R],
        *,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
    ) -> None:
        if workers < 1:
            raise ValueError("workers must be at least 1")
        self.fn = fn
        self.workers = workers
        self.crashed = crashed
        self.chunk_size = chunk_size
        self.window = CHUNKS_IN_FLIGHT_PER_WORKER * workers
        self._queue: deque[Batch[T, R]] = deque()
        self._live: list[Future[list[R]]] = []
        self._generation = 0
        self._executor = self._new_executor(workers)
        self._isolation: ProcessPoolExecutor | None = None

    def submit(self, items: Iterable[T]) -> Batch[T, R]:
        """Queue ``items`` (read lazily, a chunk at a time) behind earlier batches."""
        batch: Batch[T, R] = Batch(self, iter(items))
        self._queue.append(batch)
        self._top_up()
        return batch

    def close(self) -> None:
        for batch in list(self._queue):
            batch.cancel()
        self._executor.shutdown(wait=False, cancel_futures=True)
        if self._isolation is not None:
            self._isolation.shutdown(wait=False, cancel_futures=True)

    def __enter__(self) -> OrderedPool[T, R]:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- scheduling ----

    def _top_up(self) -> None:
        self._live = [f for f in self._live if not f.done()]
        while self._queue and len(self._live) < self.window:
            batch = self._queue[0]
            chunk = batch._next_chunk(self.chunk_size)
            if not chunk:
                self._queue.popleft()
                continue
            future = self._submit_chunk(chunk)
            batch._tasks.append(_Task(chunk, future, self._generation))
            self._live.append(future)

    def _submit_chunk(self, chunk: list[T]) -> Future[list[R]]:
        try:
            return self._executor.submit(_run_chunk, self.fn, chunk)
        except BrokenProcessPool:
            self._restart()
            return self._executor.submit(_run_chunk, self.fn, chunk)

    def _wait_for_room(self) -> None:
        self._live = [f for f in self._live if not f.done()]
        if len(self._live) >= self.window:
            wait(self._live, return_when=FIRST_COMPLETED)
        self._top_up()

    # -- results and crashes ----

    def _results(self, task: _Task[T, R]) -> list[R]:
        try:
            return task.future.result()
        except BrokenProcessPool:
            if task.generation == self._generation:
                self._restart()
            return [self._isolated(item) for item in task.items]

    def _restart(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
        self._generation += 1
        self._executor = self._new_executor(self.workers)
        self._live = []

    def _isolated(self, item: T) -> R:
        """Run one item alone, so a dead worker can only be its fault."""
        if self._isolation is None:
            self._isolation = self._new_executor(1)
        try:
            return self._isolation.submit(_run_chunk, self.fn, [item]).result()[0]
        except BrokenProcessPool:
            self._isolation.shutdown(wait=False, cancel_futures=True)
            self._isolation = None
            return self.crashed(item, "the worker process died while checking it")

    @staticmethod
    def _new_executor(workers: int) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(max_workers=workers, initializer=_init_worker)
