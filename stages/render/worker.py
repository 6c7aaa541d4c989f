"""A pool of render processes, one GL context each, with a hard time limit per model.

Why not ``concurrent.futures``: a model that hangs inside native code (a boolean, the
rasteriser) cannot be interrupted from Python, and a ProcessPoolExecutor can neither kill one
worker nor say which model broke it. Here the parent hands each worker one model at a time over
its own pipe, so it always knows what every worker is doing and since when. A worker past its
deadline is killed and replaced (the model fails as ``timeout``). A worker that dies (a crash in
native code, the OOM killer, a kill from outside) may not be its model's fault, so the model is
retried once, alone in a fresh worker; only when it kills that one too does it fail as
``worker_crashed``. When fresh workers keep dying before finishing any model, the set-up is
broken and the run stops. Workers are also replaced after ``recycle_after`` models, a second
line of defence against slow leaks in native libraries.

Each worker creates its renderer itself (GL contexts do not survive a fork) and caps Mesa's
rasteriser threads so that the workers together use the cores without oversubscribing them.
"""

from __future__ import annotations

import multiprocessing
import resource
import signal
import time
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from typing import Any

from stages.render.settings import RenderSettings
from stages.render.task import ModelOutcome, ModelTask, SolidLoader, load_solid
from stages.workpool import default_workers

RECYCLE_AFTER = 2000
HARD_LIMIT_GRACE_S = 10.0  # beyond the model's own time limit, for rendering
MAX_FRESH_CRASHES = 3  # fresh workers dying in a row before this many models: a broken set-up
STARTUP_ALLOWANCE_S = 60.0  # a fresh worker's first model also waits for imports and GL set-up


def software_threads_per_worker(workers: int) -> int:
    """llvmpipe threads for each worker: the spare cores shared out. With a worker per core
    this is 0, which makes llvmpipe rasterise in the calling thread: measured the cheapest in
    CPU per frame (helper threads only add hand-offs when every core is busy anyway)."""
    cores = default_workers()
    return 0 if workers >= cores else cores // max(1, workers)


def peak_rss_mb() -> float:
    """This process's peak resident memory (Linux reports kilobytes)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


class RenderSetupError(RuntimeError):
    """A worker could not make a renderer (no usable GL platform): the run cannot go on."""


@dataclass(frozen=True)
class SetupFailed:
    """What a worker sends instead of an outcome when it cannot render at all."""

    message: str


def _worker_main(
    connection: Connection, settings: RenderSettings, threads: int, load: SolidLoader
) -> None:
    """A worker's life: make a renderer on first use, then draw models until told to stop."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when to stop
    from stages.render.renderer import OrthoRenderer
    from stages.render.task import run_task

    renderer: OrthoRenderer | None = None
    try:
        while True:
            task = connection.recv()
            if task is None:
                break
            if renderer is None:
                try:
                    renderer = OrthoRenderer(settings.resolution, software_threads=threads)
                except Exception as exc:  # no GL here: no model can be drawn, say so and stop
                    connection.send(SetupFailed(f"{type(exc).__name__}: {exc}"))
                    break
            outcome = run_task(renderer, task, settings, load)
            outcome.peak_rss_mb = peak_rss_mb()
            connection.send(outcome)
    except (EOFError, KeyboardInterrupt):
        pass
    finally:
        if renderer is not None:
            renderer.close()


@dataclass
class _Worker:
    process: Any
    connection: Connection
    task: ModelTask | None = None
    deadline: float = 0.0
    done: int = 0


class RenderPool:
    """Runs ModelTasks on ``workers`` processes and yields their outcomes as they finish."""

    def __init__(
        self,
        workers: int,
        settings: RenderSettings,
        *,
        load: SolidLoader = load_solid,
        recycle_after: int = RECYCLE_AFTER,
        grace_s: float = HARD_LIMIT_GRACE_S,
    ) -> None:
        if workers < 1:
            raise ValueError("a render pool needs at least one worker")
        self.settings = settings
        self.load = load
        self.recycle_after = recycle_after
        self.hard_limit_s = settings.time_limit + grace_s
        self.threads = software_threads_per_worker(workers)
        self._context = multiprocessing.get_context("spawn")
        self._size = workers
        self._workers: list[_Worker] = []
        self._fresh_crashes = 0  # workers in a row that died before finishing any model
        self._retries: deque[ModelTask] = deque()  # models whose worker died, to run again
        self._retried: set[ModelTask] = set()  # models given their one retry
        self._pending: deque[ModelTask] = deque()  # what run() has not handed out yet
        self._stopping = False  # stop_new() was called: no retries either

    def __enter__(self) -> RenderPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _start_worker(self) -> _Worker:
        parent_end, child_end = self._context.Pipe(duplex=True)
        process = self._context.Process(
            target=_worker_main,
            args=(child_end, self.settings, self.threads, self.load),
            daemon=True,
        )
        process.start()
        child_end.close()
        return _Worker(process, parent_end)

    def _stop_worker(self, worker: _Worker, kill: bool = False) -> None:
        if not kill:
            try:
                worker.connection.send(None)
            except (OSError, ValueError):
                kill = True
        if kill and worker.process.is_alive():
            worker.process.kill()
        worker.process.join(timeout=5.0)
        if worker.process.is_alive():
            worker.process.kill()
            worker.process.join()
        worker.connection.close()

    def _replace(self, worker: _Worker, kill: bool) -> None:
        self._workers.remove(worker)
        self._stop_worker(worker, kill=kill)

    def run(self, tasks: Iterable[ModelTask]) -> Iterator[ModelOutcome]:
        """Yield one outcome per task, in completion order."""
        pending = self._pending = deque(tasks)
        while pending or self._retries or any(w.task is not None for w in self._workers):
            self._fill(pending)
            busy = [w for w in self._workers if w.task is not None]
            timeout = max(0.0, min(w.deadline for w in busy) - time.monotonic())
            ready = wait([w.connection for w in busy] + [w.process.sentinel for w in busy], timeout)
            for worker in busy:
                outcome = self._collect(worker, ready)
                if outcome is not None:
                    yield outcome

    def stop_new(self) -> None:
        """Hand out nothing more (retries included): ``run`` yields the outcomes of the models
        running now, then ends. For a fault that every later model would meet too."""
        self._stopping = True
        self._pending.clear()
        self._retries.clear()

    def _fill(self, pending: deque[ModelTask]) -> None:
        """Give each retry a worker of its own, freshly started (the dead one's place is free),
        then every idle worker a task, starting workers up to the pool size."""
        while self._retries and len(self._workers) < self._size:
            worker = self._start_worker()
            self._workers.append(worker)
            self._give(worker, self._retries.popleft(), self._retries)
        while True:
            while len(self._workers) < min(self._size, len(pending) + self._busy_count()):
                self._workers.append(self._start_worker())
            idle = [w for w in self._workers if w.task is None]
            if not pending or not idle:
                return
            self._give(idle[0], pending.popleft(), pending)

    def _give(self, worker: _Worker, task: ModelTask, queue: deque[ModelTask]) -> None:
        """Hand ``task`` to an idle worker; one that died meanwhile is replaced and the task
        goes back to the front of ``queue``."""
        try:
            worker.connection.send(task)
        except (OSError, ValueError):
            queue.appendleft(task)
            self._replace(worker, kill=True)
            return
        worker.task = task
        startup = STARTUP_ALLOWANCE_S if worker.done == 0 else 0.0
        worker.deadline = time.monotonic() + self.hard_limit_s + startup

    def _busy_count(self) -> int:
        return sum(1 for w in self._workers if w.task is not None)

    def _collect(self, worker: _Worker, ready: list[Any]) -> ModelOutcome | None:
        """The worker's outcome if it has one (or its failure), replacing it when needed."""
        task = worker.task
        assert task is not None
        if worker.connection in ready:
            try:
                outcome: ModelOutcome | SetupFailed = worker.connection.recv()
            except (EOFError, OSError):
                return self._crashed(worker, task)
            if isinstance(outcome, SetupFailed):
                raise RenderSetupError(f"a render worker cannot draw: {outcome.message}")
            worker.task = None
            worker.done += 1
            self._fresh_crashes = 0
            if worker.done >= self.recycle_after:
                self._replace(worker, kill=False)
            return outcome
        if worker.process.sentinel in ready:
            return self._crashed(worker, task)
        if time.monotonic() >= worker.deadline:
            self._replace(worker, kill=True)
            return _lost(task, "timeout", f"still running after {self.hard_limit_s:.0f} s")
        return None

    def _crashed(self, worker: _Worker, task: ModelTask) -> ModelOutcome | None:
        """The worker died on ``task``: the model is retried once in a fresh worker (None now),
        and fails as ``worker_crashed`` when it kills that one too. Workers that keep dying
        before finishing any model mean a broken set-up, not broken models, and stop the run."""
        message = self._exit_message(worker)
        self._replace(worker, kill=True)
        if worker.done == 0:
            self._fresh_crashes += 1
            if self._fresh_crashes >= MAX_FRESH_CRASHES:
                raise RenderSetupError(
                    f"{self._fresh_crashes} render workers in a row died before finishing a "
                    f"model ({message})"
                )
        if task not in self._retried and not self._stopping:
            self._retried.add(task)
            self._retries.append(task)
            return None
        if task in self._retried:
            message += ", on its retry in a fresh worker too"
        return _lost(task, "worker_crashed", message)

    @staticmethod
    def _exit_message(worker: _Worker) -> str:
        worker.process.join(timeout=1.0)
        return f"the render worker died (exit code {worker.process.exitcode})"

    def close(self) -> None:
        """Stop every worker: idle ones are asked, busy ones are killed."""
        for worker in list(self._workers):
            self._stop_worker(worker, kill=worker.task is not None)
        self._workers.clear()


def _lost(task: ModelTask, reason: str, message: str) -> ModelOutcome:
    return ModelOutcome(task.model_id, reason=reason, message=message)
