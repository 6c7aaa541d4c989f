"""A process pool for per-model work that neither a cancel nor a crashing model can hang.

Building solids holds Python's lock, so the dataset stages spread models over processes.
Results come back in submission order (so every choice stays deterministic), only a bounded
window of chunks is in flight (so memory stays flat whatever the batch size), and batches queue
in the order they were submitted, so the next batch's work starts while the current one is read.

Why not ``concurrent.futures`` or ``multiprocessing.Pool``: on cancel the server sends SIGTERM
to the whole process group, so workers die at arbitrary points, possibly halfway through
writing a result or holding a lock they share with the parent. Both standard pools can then
block forever (a helper thread reading a truncated message, ``Pool.terminate`` waiting for a
dead worker's queue lock). Here every worker has its own pipe and shares nothing else with the
parent, and the parent has no helper threads: a dead worker only ever shows up as an
end-of-file or its exit sentinel, and closing the pool kills and reaps workers without waiting
on anything they hold.

A worker that dies on a chunk (a crash in native code, the OOM killer) is replaced, and the
items of its unfinished chunks are retried one at a time in a separate worker, so only the
item that really kills its worker is reported (through ``crashed``) and the batch goes on.
Workers are forked: they start in milliseconds and inherit the work function, which therefore
need not be importable by name.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import pickle
import signal
import traceback
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from itertools import islice
from multiprocessing.connection import Connection, wait
from typing import Any, Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")

DEFAULT_CHUNK_SIZE = 8
CHUNKS_PER_WORKER = 2  # one running, one waiting, so a worker never idles while the parent reads
STOP_WAIT_S = 5.0  # an idle worker asked to stop gets this long before it is killed
PARENT_CHECK_S = 1.0  # how often an idle worker checks that its parent is still there

Crashed = Callable[[T, str], R]


class WorkerCrashed(RuntimeError):
    """A worker died on an item and the pool has no ``crashed`` handler to report it with."""


def default_workers() -> int:
    """The cores this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:
        return max(1, os.cpu_count() or 1)


def parallel_map(
    work: Callable[[T], R],
    items: Iterable[T],
    workers: int,
    chunksize: int = DEFAULT_CHUNK_SIZE,
    crashed: Crashed[T, R] | None = None,
) -> Iterator[R]:
    """``work`` over ``items`` in order, on ``workers`` processes; the workers are stopped when
    the caller stops iterating. With one worker the work runs in this process: no start-up
    cost, and tests see plain tracebacks."""
    if workers <= 1:
        yield from map(work, items)
        return
    with OrderedPool(work, workers, crashed, chunk_size=chunksize) as pool:
        for _, result in pool.submit(items):
            yield result


def _serve(connection: Connection, work: Callable[[Any], Any]) -> None:
    """A worker's life: run chunks until told to stop or the parent goes away.

    Workers take the default SIGTERM action (a cancel signals the whole group and a worker has
    nothing to save) and ignore SIGINT, so that Ctrl-C at a terminal is handled once, by the
    parent. An idle worker also leaves when its parent is gone: a forked sibling holds a copy
    of its pipe, so the end-of-file alone may never come."""
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    parent = os.getppid()
    while True:
        try:
            while not connection.poll(PARENT_CHECK_S):
                if os.getppid() != parent:
                    return
            chunk = connection.recv()
        except (EOFError, OSError):
            return
        if chunk is None:
            return
        try:
            reply: tuple[bool, Any] = (True, [work(item) for item in chunk])
        except Exception as exc:
            reply = (False, _portable(exc))
        connection.send(reply)


def _portable(exc: Exception) -> Exception:
    """The exception itself if it survives pickling, else its traceback as a RuntimeError."""
    try:
        pickle.loads(pickle.dumps(exc))
    except Exception:
        return RuntimeError("".join(traceback.format_exception(exc)).rstrip())
    return exc


@dataclass(eq=False, slots=True)
class _Task(Generic[T, R]):
    items: list[T]
    results: list[R] | None = None
    error: Exception | None = None
    lost: str = ""  # why its worker died before answering

    @property
    def finished(self) -> bool:
        return self.results is not None or self.error is not None or bool(self.lost)


@dataclass(eq=False)
class _Worker:
    process: Any
    connection: Connection
    tasks: deque[_Task[Any, Any]] = field(default_factory=deque)

    @classmethod
    def start(cls, context: Any, work: Callable[[Any], Any]) -> _Worker:
        parent_end, child_end = context.Pipe(duplex=True)
        process = context.Process(target=_serve, args=(child_end, work), daemon=True)
        process.start()
        child_end.close()
        return cls(process, parent_end)

    def give(self, task: _Task[Any, Any]) -> None:
        self.tasks.append(task)
        with contextlib.suppress(OSError, ValueError):  # it died: the next wait sees that
            self.connection.send(task.items)

    def receive(self) -> bool:
        """Read every reply that has arrived; False once the worker is gone."""
        try:
            while self.tasks and self.connection.poll():
                ok, value = self.connection.recv()
                task = self.tasks.popleft()
                if ok:
                    task.results = value
                else:
                    task.error = value
        except (EOFError, OSError, pickle.UnpicklingError):
            return False
        return not (self.tasks and _ended(self.process))

    def lose_tasks(self) -> None:
        """Its unanswered chunks will be retried item by item."""
        self.process.join(timeout=1.0)
        message = f"the worker process died (exit code {self.process.exitcode})"
        for task in self.tasks:
            task.lost = message
        self.tasks.clear()

    def stop(self, kill: bool = False) -> None:
        """Ask an idle worker to leave; kill a busy or unresponsive one. Never blocks on it."""
        if not kill and not self.tasks:
            try:
                self.connection.send(None)
            except (OSError, ValueError):
                pass
            else:
                self.process.join(timeout=STOP_WAIT_S)
        if self.process.is_alive():
            self.process.kill()
        self.process.join()
        self.connection.close()


def _ended(process: Any) -> bool:
    return process.sentinel in wait([process.sentinel], timeout=0)


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
                task = self._tasks[0]
                while not task.finished:
                    pool._pump()
                self._tasks.popleft()
                pool._top_up()
                yield from zip(task.items, pool._results(task), strict=True)
            elif self._exhausted:
                return
            else:  # earlier batches fill the window: wait for room, then submit ours
                pool._pump()

    def cancel(self) -> None:
        """Drop what is not read yet; chunks not yet handed to a worker are not run."""
        self._exhausted = True
        self._tasks.clear()
        if self in self._pool._queue:
            self._pool._queue.remove(self)

    def _next_chunk(self, size: int) -> list[T]:
        chunk = list(islice(self._items, size))
        if not chunk:
            self._exhausted = True
        return chunk


class OrderedPool(Generic[T, R]):
    """Runs ``work`` over items in ``workers`` processes.

    ``crashed(item, message)`` makes the result for an item whose worker died; without it such
    an item raises WorkerCrashed. An exception ``work`` raises is raised again here.
    """

    def __init__(
        self,
        work: Callable[[T], R],
        workers: int,
        crashed: Crashed[T, R] | None = None,
        *,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
    ) -> None:
        if workers < 1:
            raise ValueError("workers must be at least 1")
        self.work = work
        self.workers = workers
        self.crashed = crashed
        self.chunk_size = chunk_size
        self._context = multiprocessing.get_context("fork")
        self._queue: deque[Batch[T, R]] = deque()
        self._workers: list[_Worker] = []
        self._isolation: _Worker | None = None

    def submit(self, items: Iterable[T]) -> Batch[T, R]:
        """Queue ``items`` (read lazily, a chunk at a time) behind earlier batches."""
        batch: Batch[T, R] = Batch(self, iter(items))
        self._queue.append(batch)
        self._top_up()
        return batch

    def close(self) -> None:
        """Stop every worker; safe to call at any point, also halfway through a cancel."""
        for batch in list(self._queue):
            batch.cancel()
        workers = [*self._workers, *([self._isolation] if self._isolation else [])]
        self._workers, self._isolation = [], None
        for worker in workers:
            if worker.tasks:
                worker.process.kill()  # all at once: a cancel should not wait worker by worker
        for worker in workers:
            worker.stop()

    def __enter__(self) -> OrderedPool[T, R]:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- scheduling ----

    def _top_up(self) -> None:
        """Hand chunks of queued batches to workers with room, starting workers as needed."""
        while self._queue:
            worker = self._worker_with_room()
            if worker is None:
                return
            batch = self._queue[0]
            chunk = batch._next_chunk(self.chunk_size)
            if not chunk:
                self._queue.popleft()
                continue
            task: _Task[T, R] = _Task(chunk)
            batch._tasks.append(task)
            worker.give(task)

    def _worker_with_room(self) -> _Worker | None:
        idle = min(self._workers, key=lambda w: len(w.tasks), default=None)
        if idle is not None and not idle.tasks:
            return idle
        if len(self._workers) < self.workers:
            worker = _Worker.start(self._context, self.work)
            self._workers.append(worker)
            return worker
        return idle if idle is not None and len(idle.tasks) < CHUNKS_PER_WORKER else None

    def _pump(self) -> None:
        """Wait until some worker answers or dies, and take in what it says."""
        busy = [w for w in self._workers if w.tasks]
        if not busy:
            self._top_up()
            return
        wait([w.connection for w in busy] + [w.process.sentinel for w in busy])
        for worker in busy:
            if not worker.receive():
                self._workers.remove(worker)
                worker.lose_tasks()
                worker.stop(kill=True)
        self._top_up()

    # -- results and crashes ----

    def _results(self, task: _Task[T, R]) -> list[R]:
        if task.error is not None:
            raise task.error
        if task.results is not None:
            return task.results
        return [self._isolated(item) for item in task.items]

    def _isolated(self, item: T) -> R:
        """Run one item alone, so a dead worker can only be its fault."""
        if self._isolation is None:
            self._isolation = _Worker.start(self._context, self.work)
        worker = self._isolation
        task: _Task[T, R] = _Task([item])
        worker.give(task)
        while not task.finished:
            wait([worker.connection, worker.process.sentinel])
            if not worker.receive():
                worker.lose_tasks()
                worker.stop(kill=True)
                self._isolation = None
        if task.lost:
            if self.crashed is None:
                raise WorkerCrashed(f"{task.lost} on {item!r}")
            return self.crashed(item, task.lost)
        return self._results(task)[0]
