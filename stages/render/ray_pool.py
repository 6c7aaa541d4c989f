"""``RenderPool`` on Ray: one actor per worker, each keeping its own GL context open.

The same contract as the local pool (``stages/render/worker.py``): ``run`` yields one outcome
per task in completion order, each actor draws one model at a time under a hard deadline (past
it the actor is killed and the model fails as ``timeout``), an actor that dies has its model
retried once in a fresh actor and only a second death makes it ``worker_crashed``, fresh
actors that keep dying stop the run, actors are replaced after ``recycle_after`` models, and
``stop_new`` hands out nothing more. The actors write the images themselves (the dataset's
storage must be visible to them); only the small outcome comes back. Closing kills every actor
and waits (bounded) until their calls have ended, so nothing is written after the stage ends.
"""

from __future__ import annotations

import contextlib
import time
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from stages.executors.ray_session import RaySession, death_message, native
from stages.render.settings import RenderSettings
from stages.render.task import ModelOutcome, ModelTask, SolidLoader, load_solid
from stages.render.worker import (
    HARD_LIMIT_GRACE_S,
    MAX_FRESH_CRASHES,
    RECYCLE_AFTER,
    STARTUP_ALLOWANCE_S,
    RenderSetupError,
    SetupFailed,
    peak_rss_mb,
    software_threads_per_worker,
)


class RenderActor:
    """Lives in a Ray worker process: makes a renderer on first use and keeps it."""

    def __init__(self, settings: RenderSettings, threads: int, load: SolidLoader) -> None:
        self.settings = settings
        self.threads = threads
        self.load = load
        self.renderer: Any = None

    def render(self, task: ModelTask) -> ModelOutcome | SetupFailed:
        from stages.render.renderer import OrthoRenderer
        from stages.render.task import run_task

        if self.renderer is None:
            try:
                self.renderer = OrthoRenderer(
                    self.settings.resolution, software_threads=self.threads
                )
            except Exception as exc:
                return SetupFailed(f"{type(exc).__name__}: {exc}")
        outcome = run_task(self.renderer, task, self.settings, self.load)
        outcome.peak_rss_mb = peak_rss_mb()
        return outcome


@dataclass(eq=False)
class _Actor:
    handle: Any
    ref: Any = None
    task: ModelTask | None = None
    deadline: float = 0.0
    done: int = 0


class RayRenderPool:
    """Runs ModelTasks on ``workers`` Ray actors and yields their outcomes as they finish."""

    def __init__(
        self,
        workers: int,
        settings: RenderSettings,
        *,
        load: SolidLoader = load_solid,
        recycle_after: int = RECYCLE_AFTER,
        grace_s: float = HARD_LIMIT_GRACE_S,
        address: str | None = None,
    ) -> None:
        if workers < 1:
            raise ValueError("a render pool needs at least one worker")
        self.settings = settings
        self.load = load
        self.recycle_after = recycle_after
        self.hard_limit_s = settings.time_limit + grace_s
        self.threads = software_threads_per_worker(workers)
        self._session = RaySession(address, workers)
        ray = self._ray = self._session.ray
        self._actor_class = ray.remote(num_cpus=1, max_restarts=0, max_task_retries=0)(RenderActor)
        self._size = workers
        self._actors: list[_Actor] = []
        self._fresh_crashes = 0
        self._retries: deque[ModelTask] = deque()
        self._retried: set[ModelTask] = set()
        self._pending: deque[ModelTask] = deque()
        self._stopping = False
        self._closed = False

    def __enter__(self) -> RayRenderPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _start_actor(self) -> _Actor:
        handle = self._actor_class.remote(self.settings, self.threads, self.load)
        actor = _Actor(handle)
        self._actors.append(actor)
        return actor

    def _kill(self, actor: _Actor) -> None:
        self._actors.remove(actor)
        with contextlib.suppress(Exception):  # already gone
            self._ray.kill(actor.handle, no_restart=True)
        if actor.ref is not None:
            self._session.wait_gone([actor.ref])

    def run(self, tasks: Iterable[ModelTask]) -> Iterator[ModelOutcome]:
        """Yield one outcome per task, in completion order."""
        pending = self._pending = deque(tasks)
        while pending or self._retries or any(a.task is not None for a in self._actors):
            self._fill(pending)
            busy = [a for a in self._actors if a.task is not None]
            timeout = max(0.0, min(a.deadline for a in busy) - time.monotonic())
            ready_set = set(self._session.wait_ready([a.ref for a in busy], timeout))
            for actor in busy:
                outcome = self._collect(actor, actor.ref in ready_set)
                if outcome is not None:
                    yield outcome

    def stop_new(self) -> None:
        self._stopping = True
        self._pending.clear()
        self._retries.clear()

    def _fill(self, pending: deque[ModelTask]) -> None:
        while self._retries and len(self._actors) < self._size:
            self._give(self._start_actor(), self._retries.popleft())
        while True:
            busy = sum(1 for a in self._actors if a.task is not None)
            while len(self._actors) < min(self._size, len(pending) + busy):
                self._start_actor()
            idle = [a for a in self._actors if a.task is None]
            if not pending or not idle:
                return
            self._give(idle[0], pending.popleft())

    def _give(self, actor: _Actor, task: ModelTask) -> None:
        actor.task = task
        actor.ref = actor.handle.render.remote(task)
        startup = STARTUP_ALLOWANCE_S if actor.done == 0 else 0.0
        actor.deadline = time.monotonic() + self.hard_limit_s + startup

    def _collect(self, actor: _Actor, ready: bool) -> ModelOutcome | None:
        ray = self._ray
        task = actor.task
        assert task is not None
        if ready:
            try:
                outcome = native(ray.get, actor.ref)
            except ray.exceptions.RayTaskError as exc:  # run_task never raises: a real bug
                raise exc.as_instanceof_cause() from None
            except ray.exceptions.RayError as exc:
                return self._crashed(actor, task, death_message(exc))
            if isinstance(outcome, SetupFailed):
                raise RenderSetupError(f"a render worker cannot draw: {outcome.message}")
            actor.task, actor.ref = None, None
            actor.done += 1
            self._fresh_crashes = 0
            if actor.done >= self.recycle_after:
                self._kill(actor)
            return outcome
        if time.monotonic() >= actor.deadline:
            self._kill(actor)
            return ModelOutcome(
                task.model_id,
                reason="timeout",
                message=f"still running after {self.hard_limit_s:.0f} s",
            )
        return None

    def _crashed(self, actor: _Actor, task: ModelTask, message: str) -> ModelOutcome | None:
        actor.ref = None
        self._kill(actor)
        self._session.watch.confirm()  # a dead cluster is the run's failure, not the model's
        if actor.done == 0:
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
        return ModelOutcome(task.model_id, reason="worker_crashed", message=message)

    def close(self) -> None:
        """Kill every actor, wait until their calls have ended, leave Ray."""
        if self._closed:
            return
        self._closed = True
        refs = [a.ref for a in self._actors if a.ref is not None]
        for actor in self._actors:
            with contextlib.suppress(Exception):
                self._ray.kill(actor.handle, no_restart=True)
        self._actors.clear()
        self._session.close(refs)
