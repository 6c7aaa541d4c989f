"""Schedules jobs into slots and runs each as a stage process until it ends in a true state.

Each job is one stage process (``server.jobs.process``). Every line it prints is read with the
protocol's reader (a line that is not a protocol object becomes a warning; the job goes on),
folded into the job's state (``server.jobs.live``), published to live SSE subscribers at once
and written to the store in batches. Slots bound how many jobs run at once per kind of slot;
the rest wait as ``queued``, first in, first out. Nothing here knows what a stage does.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import time
from collections import deque
from typing import Any

from server.config import Config
from server.jobs.hub import EventHub
from server.jobs.live import LiveJob, new_job_id
from server.jobs.process import group_processes, kill_and_reap, signal_group, spawn_stage
from server.jobs.recorder import JobRecorder
from server.jobs.store import Job, JobStore
from stages.protocol.events import EventName, parse_line
from stages.torchrun import Launch

log = logging.getLogger("server.jobs.runner")

FLUSH_INTERVAL_S = 0.25
STDERR_TAIL_BYTES = 2000


class JobStateError(Exception):
    """The job is not in a state that allows the requested action."""


class JobRunner:
    def __init__(self, store: JobStore, config: Config, hub: EventHub) -> None:
        self.store = store
        self.config = config
        self.hub = hub
        self.capacity = {"cpu": config.cpu_slots, "gpu": config.gpu_slots}
        self.queues: dict[str, deque[str]] = {slot: deque() for slot in self.capacity}
        self.running: dict[str, dict[str, LiveJob]] = {slot: {} for slot in self.capacity}
        self.live: dict[str, LiveJob] = {}
        self.recorder = JobRecorder(store, hub)
        self._tasks: set[asyncio.Task[Any]] = set()
        self._flusher: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()
        self._stopping = False

    # -- lifecycle ----
    async def start(self) -> None:
        self.config.logs_dir.mkdir(parents=True, exist_ok=True)
        await self._recover()
        self._flusher = asyncio.create_task(self._flush_loop())
        await self._schedule()

    async def stop(self) -> None:
        """Stop the service: running jobs are terminated and left ``interrupted`` (resumable)."""
        self._stopping = True
        for live in list(self.live.values()):
            live.job.error = "the server stopped while the job was running"
            await self._terminate(live, interrupt=True)
        for live in list(self.live.values()):
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(live.finished.wait(), self.config.kill_grace_s + 5)
        if self._flusher:
            self._flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._flusher
        await self.recorder.flush(list(self.live.values()))

    async def _recover(self) -> None:
        """Jobs a dead server left running become ``interrupted``; their processes are killed."""
        for job in await self.store.jobs_with_status("running"):
            if job.pgid:
                await asyncio.to_thread(kill_and_reap, group_processes(job.pgid))
            seq = await self.store.last_seq(job.id) + 1
            message = "the server stopped while the job was running"
            await self.store.append_events(
                [(job.id, seq, "status", {"status": "interrupted", "error": message}, time.time())]
            )
            await self.store.update_job(
                job.id, status="interrupted", error=message, finished_at=time.time(), pid=None
            )
            if job.dataset is not None:
                await self.store.release(job.dataset, job.id)
        for job in await self.store.jobs_with_status("queued"):
            self.queues[job.slot].append(job.id)
        await self.store.drop_orphan_claims()

    # -- submitting, cancelling, resuming ----
    async def submit(
        self,
        kind: str,
        stage: str,
        args: list[str],
        params: dict[str, Any],
        *,
        dataset: str | None = None,
        slot: str = "cpu",
        job_id: str | None = None,
        resume_args: list[str] | None = None,
    ) -> Job:
        """Queue ``python -m stages.<stage> args``; ``resume_args`` (when given) is what a
        resume adds to continue where the job stopped, and makes the job resumable."""
        job = Job(
            id=job_id or new_job_id(kind),
            kind=kind,
            status="queued",
            dataset=dataset,
            slot=slot,
            argv=[stage, *args],
            params=params,
            created_at=time.time(),
            resume_args=resume_args,
        )
        await self.store.create_job(job)
        await self._append_direct(job.id, "status", {"status": "queued"})
        self.queues[slot].append(job.id)
        await self._schedule()
        return await self.store.get_job(job.id) or job

    async def cancel(self, job_id: str) -> Job:
        job = await self._job(job_id)
        if job.terminal:
            raise JobStateError(f"job {job_id} is already {job.status}")
        live = self.live.get(job_id)
        if live is None:  # queued
            with contextlib.suppress(ValueError):
                self.queues[job.slot].remove(job_id)
            await self._append_direct(job_id, "status", {"status": "cancelled"})
            await self.store.update_job(job_id, status="cancelled", finished_at=time.time())
            if job.dataset is not None:
                await self.store.release(job.dataset, job_id)
            self.hub.close_job(job_id)
        else:
            await self._terminate(live, interrupt=False)
        return await self.store.get_job(job_id) or job

    async def resume(self, job_id: str) -> Job:
        """Queue an interrupted, cancelled or failed job again under the same id."""
        job = await self._job(job_id)
        await self.recorder.settle(job_id)  # its end must be in the store before it restarts
        if job.resume_args is None:
            raise JobStateError(f"{job.kind} jobs cannot be resumed; start a new one")
        extra_args = job.resume_args
        if job.status not in ("interrupted", "cancelled", "failed"):
            raise JobStateError(f"job {job_id} is {job.status}; only stopped jobs can be resumed")
        argv = [a for a in job.argv if a not in extra_args] + extra_args
        await self.store.requeue(
            job, argv=argv, error=None, result=None, finished_at=None, pid=None
        )
        await self._append_direct(job_id, "status", {"status": "queued", "resumed": True})
        self.queues[job.slot].append(job_id)
        await self._schedule()
        return await self.store.get_job(job_id) or job

    async def wait(self, job_id: str, timeout: float) -> Job | None:
        """Wait until the job ends or ``timeout`` passes; returns its latest state."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            live = self.live.get(job_id)
            job = self.current_job(job_id) or await self.store.get_job(job_id)
            if job is None or (job.terminal and live is None):
                return job
            remaining = deadline - time.monotonic()
            if live is not None:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(live.finished.wait(), min(remaining, 1.0))
            else:
                await asyncio.sleep(min(remaining, 0.1))
        return self.current_job(job_id) or await self.store.get_job(job_id)

    def current_job(self, job_id: str) -> Job | None:
        """The job as memory knows it when memory is ahead of the store: running (current to
        its last line), or ended while the store refused to record it."""
        live = self.live.get(job_id) or self.recorder.unrecorded.get(job_id)
        return live.job if live is not None else None

    async def _job(self, job_id: str) -> Job:
        job = self.current_job(job_id) or await self.store.get_job(job_id)
        if job is None:
            raise KeyError(job_id)
        return job

    async def flush(self) -> None:
        """Write every pending event now (SSE replay and metric queries read the store)."""
        await self.recorder.flush(list(self.live.values()))

    # -- scheduling ----
    def slots_taken(self, job: Job) -> int:
        """The slots a job holds while it runs: one, or a gpu slot per process of a torchrun
        launch on this node (never more than there are, so no job can wait forever)."""
        launch = Launch.from_json(job.params.get("launch"))
        return max(1, min(launch.nproc_per_node, self.capacity[job.slot]))

    def slots_in_use(self, slot: str) -> int:
        return sum(self.slots_taken(live.job) for live in self.running[slot].values())

    async def _schedule(self) -> None:
        if self._stopping:
            return
        async with self._lock:
            for slot, queue in self.queues.items():
                while queue:  # first in, first out: a job waits until its slots are free
                    job = await self.store.get_job(queue[0])
                    if job is None or job.status != "queued":
                        queue.popleft()
                        continue
                    if self.slots_in_use(slot) + self.slots_taken(job) > self.capacity[slot]:
                        break
                    queue.popleft()
                    seq = await self.store.last_seq(job.id)
                    live = LiveJob(job=job, seq=seq)
                    self.running[slot][job.id] = live
                    self.live[job.id] = live
                    task = asyncio.create_task(self._run(live))
                    self._tasks.add(task)
                    task.add_done_callback(self._tasks.discard)

    # -- running one job ----
    def _log_path(self, job_id: str) -> os.PathLike[str]:
        return self.config.logs_dir / f"{job_id}.log"

    async def _run(self, live: LiveJob) -> None:
        job = live.job
        name, args = job.argv[0], [*job.argv[1:], "--progress", "json"]
        now = time.time()
        job.status, job.started_at, job.finished_at = "running", now, None
        job.attempts += 1
        try:
            with open(self._log_path(job.id), "ab") as stderr:
                stderr.write(f"--- attempt {job.attempts}: {name} {' '.join(args)}\n".encode())
                stderr.flush()
                launch = Launch.from_json(job.params.get("launch"))
                live.process = await spawn_stage(
                    self.config, name, args, stderr=stderr, launch=launch
                )
            pid = live.process.pid
            await self.store.update_job(
                job.id,
                status="running",
                started_at=now,
                finished_at=None,
                pid=pid,
                pgid=pid,
                attempts=job.attempts,
            )
            self.recorder.record(live, "status", {"status": "running", "attempt": job.attempts})
            assert live.process.stdout is not None
            while True:
                try:
                    line = await live.process.stdout.readline()
                except ValueError:  # a line longer than the limit
                    warning = {"item": "stdout", "message": "line too long"}
                    self.recorder.record(live, EventName.WARNING, warning)
                    continue
                if not line:
                    break
                self._handle_line(live, line)
            rc = await live.process.wait()
        except Exception as exc:  # could not start the process at all
            log.exception("job %s failed to run", job.id)
            rc, live.done_event = -1, {"status": "failed", "error": f"could not start: {exc}"}
        await self._finish(live, rc)

    def _handle_line(self, live: LiveJob, raw: bytes) -> None:
        event = parse_line(raw)
        if event is None:
            text = raw.decode("utf-8", errors="replace").strip()
            if text:
                live.count_noise()
                warning = {"item": "stdout", "message": f"unparseable line: {text[:200]}"}
                self.recorder.record(live, EventName.WARNING, warning)
            return
        live.apply(event)
        self.recorder.record(live, event.name, event.data)

    async def _finish(self, live: LiveJob, rc: int) -> None:
        """End the job in a true state and free its slot, whatever fails on the way.

        A store that cannot be written (a full disk) must not leave the job ``running`` with
        its slot held: the final state is retried, and the slot is freed in any case.
        """
        job = live.job
        if job.dataset is not None:  # before anyone can see the job ended: it holds nothing
            with contextlib.suppress(Exception):  # a lost release heals at the next claim
                await self.store.release(job.dataset, job.id)
        try:
            if live.process is not None:
                signal_group(live.process.pid)  # stragglers left in the job's process group
            status = live.final_status(rc)
            if status == "failed":
                job.error = (live.done_event or {}).get("error") or self._stderr_tail(job.id, rc)
            job.status, job.finished_at = status, time.time()
            if status == "completed":
                await self.recorder.record_rate(live)
            error = {"error": job.error} if job.error else {}
            self.recorder.record(live, "status", {"status": status, **error})
            await self.recorder.write_final(live)
        except Exception as exc:  # never leave a dead task behind a running job
            log.exception("finishing job %s failed", job.id)
            job.status, job.finished_at = "failed", time.time()
            job.error = f"the job's end could not be recorded: {type(exc).__name__}: {exc}"
            self.recorder.record(live, "status", {"status": "failed", "error": job.error})
            self.recorder.unrecorded[job.id] = live
        finally:
            self.running[job.slot].pop(job.id, None)
            self.live.pop(job.id, None)
            live.finished.set()
            self.hub.close_job(job.id)
            try:
                await self._schedule()
            except Exception:  # the next job stays queued; the next finish or flush retries
                log.exception("starting the next job after %s failed", job.id)

    def _stderr_tail(self, job_id: str, rc: int) -> str:
        try:
            with open(self._log_path(job_id), "rb") as f:
                f.seek(0, os.SEEK_END)
                f.seek(max(0, f.tell() - STDERR_TAIL_BYTES))
                tail = f.read().decode("utf-8", errors="replace").strip()
        except OSError:
            tail = ""
        prefix = f"stage exited with code {rc} without finishing"
        return f"{prefix}: {tail}" if tail else prefix

    async def _terminate(self, live: LiveJob, *, interrupt: bool) -> None:
        """SIGTERM the job's process group, then SIGKILL after the grace period."""
        live.stop_reason = "interrupt" if interrupt else "cancel"
        proc = live.process
        if proc is None or proc.returncode is not None:
            return
        signal_group(proc.pid, signal.SIGTERM)
        grace = (
            self.config.train_kill_grace_s if live.job.slot == "gpu" else self.config.kill_grace_s
        )

        async def escalate() -> None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(live.finished.wait(), grace)
                return
            signal_group(proc.pid, signal.SIGKILL)

        task = asyncio.create_task(escalate())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _append_direct(self, job_id: str, event: str, data: dict[str, Any]) -> None:
        live = self.live.get(job_id)
        if live is not None:
            self.recorder.record(live, event, data)
        else:
            await self.recorder.append(job_id, event, data)

    async def _flush_loop(self) -> None:
        """Write what is pending; heal what a refused write left behind (an unrecorded end,
        a queue that could not start its next job)."""
        while True:
            await asyncio.sleep(FLUSH_INTERVAL_S)
            try:
                await self.recorder.flush(list(self.live.values()))
                await self.recorder.write_unrecorded()
                if any(self.queues.values()):
                    await self._schedule()
            except Exception:
                log.exception("flushing job state failed")
