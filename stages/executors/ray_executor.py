"""``OrderedPool`` on Ray: the same interface (``submit`` batches, results in submission
order, ``crashed`` for items whose worker died, ``close``), run as Ray tasks over chunks.

A chunk is one task with no automatic retry: when its worker dies (a crash in native code,
the OOM killer, a kill from outside) its items are run again one task each, so only an item
that kills that worker too is reported through ``crashed``, as with the local pool. At most
``workers * CHUNKS_PER_WORKER`` chunks are unfinished at once, so memory stays flat. Closing
the pool force-cancels every unfinished task and waits (bounded) until they are gone, so
nothing keeps running after the stage has ended.
"""

from __future__ import annotations

import contextlib
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from itertools import islice
from typing import Any, Generic, TypeVar

from stages.executors.ray_session import RaySession, death_message, native
from stages.workpool import CHUNKS_PER_WORKER, DEFAULT_CHUNK_SIZE, Crashed, WorkerCrashed

T = TypeVar("T")
R = TypeVar("R")


def _run_chunk(work: Callable[[Any], Any], chunk: list[Any]) -> list[Any]:
    return [work(item) for item in chunk]


@dataclass(eq=False, slots=True)
class _Chunk(Generic[T]):
    items: list[T]
    ref: Any


class RayBatch(Generic[T, R]):
    """Items submitted together; iterate to get ``(item, result)`` in submission order."""

    def __init__(self, pool: RayOrderedPool[T, R], items: Iterator[T]) -> None:
        self._pool = pool
        self._items = items
        self._chunks: deque[_Chunk[T]] = deque()
        self._exhausted = False

    def __iter__(self) -> Iterator[tuple[T, R]]:
        pool = self._pool
        pool._top_up()
        while True:
            if self._chunks:
                chunk = self._chunks.popleft()
                results = pool._results(chunk)
                pool._top_up()
                yield from zip(chunk.items, results, strict=True)
            elif self._exhausted:
                return
            else:
                pool._pump()

    def cancel(self) -> None:
        """Drop what is not read yet; its unfinished tasks are cancelled."""
        self._exhausted = True
        for chunk in self._chunks:
            self._pool._cancel(chunk.ref)
        self._chunks.clear()
        if self in self._pool._queue:
            self._pool._queue.remove(self)

    def _next_chunk(self, size: int) -> list[T]:
        chunk = list(islice(self._items, size))
        if not chunk:
            self._exhausted = True
        return chunk


class RayOrderedPool(Generic[T, R]):
    """Runs ``work`` over items as Ray tasks, ``workers`` chunks' worth at a time."""

    def __init__(
        self,
        work: Callable[[T], R],
        workers: int,
        crashed: Crashed[T, R] | None = None,
        *,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        address: str | None = None,
    ) -> None:
        if workers < 1:
            raise ValueError("workers must be at least 1")
        self.work = work
        self.workers = workers
        self.crashed = crashed
        self.chunk_size = chunk_size
        self._session = RaySession(address, workers)
        ray = self._ray = self._session.ray
        self._remote = ray.remote(num_cpus=1, max_retries=0)(_run_chunk)
        self._work_ref = ray.put(work)
        self._queue: deque[RayBatch[T, R]] = deque()
        self._running: set[Any] = set()  # refs of tasks not known to be finished
        self._closed = False

    def submit(self, items: Iterable[T]) -> RayBatch[T, R]:
        batch: RayBatch[T, R] = RayBatch(self, iter(items))
        self._queue.append(batch)
        self._top_up()
        return batch

    def close(self) -> None:
        """Cancel every unfinished task, wait until they are gone, leave Ray."""
        if self._closed:
            return
        self._closed = True
        for batch in list(self._queue):
            batch.cancel()
        refs = list(self._running)
        for ref in refs:
            self._cancel(ref)
        self._running.clear()
        self._session.close(refs)

    def __enter__(self) -> RayOrderedPool[T, R]:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- scheduling ----

    def _submit_chunk(self, items: list[T]) -> Any:
        ref = self._remote.remote(self._work_ref, items)
        self._running.add(ref)
        return ref

    def _top_up(self) -> None:
        limit = self.workers * CHUNKS_PER_WORKER
        while self._queue and len(self._running) < limit:
            batch = self._queue[0]
            items = batch._next_chunk(self.chunk_size)
            if not items:
                self._queue.popleft()
                continue
            batch._chunks.append(_Chunk(items, self._submit_chunk(items)))

    def _pump(self) -> None:
        """Wait until some task finishes, then hand out more."""
        if not self._running:
            self._top_up()
            return
        self._running.difference_update(self._session.wait_ready(list(self._running)))
        self._top_up()

    def _cancel(self, ref: Any) -> None:
        with contextlib.suppress(Exception):  # already finished: nothing to stop
            self._ray.cancel(ref, force=True)

    # -- results and crashes ----

    def _results(self, chunk: _Chunk[T]) -> list[R]:
        ray = self._ray
        try:
            self._session.wait_ready([chunk.ref])
            return native(ray.get, chunk.ref)
        except ray.exceptions.RayTaskError as exc:  # ``work`` raised: raise it here too
            raise exc.as_instanceof_cause() from None
        except ray.exceptions.RayError as exc:
            message = death_message(exc)
        finally:
            self._running.discard(chunk.ref)
        self._session.watch.confirm()  # a dead cluster is the run's failure, not the items'
        return [self._isolated(item, message) for item in chunk.items]

    def _isolated(self, item: T, first: str) -> R:
        """Run one item alone, so a dead worker can only be its fault."""
        ray = self._ray
        ref = self._submit_chunk([item])
        try:
            self._session.wait_ready([ref])
            return native(ray.get, ref)[0]
        except ray.exceptions.RayTaskError as exc:
            raise exc.as_instanceof_cause() from None
        except ray.exceptions.RayError as exc:
            message = f"{death_message(exc)}, on its retry alone too (first: {first})"
        finally:
            self._running.discard(ref)
        self._session.watch.confirm()
        if self.crashed is None:
            raise WorkerCrashed(f"{message} on {item!r}")
        return self.crashed(item, message)
