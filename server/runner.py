"""Runs stages as subprocesses and turns their protocol lines into job state.

Each job is ``python -m <stages_package>.<module> ...`` in its own process group. Every line
it prints is parsed (a line that is not a protocol object becomes a warning; the job goes
on), published to live SSE subscribers at once and written to the store in batches. Slots
bound how many jobs run at once per kind of slot; the rest wait as ``queued``, first in,
first out. Nothing here knows what a stage does.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import secrets
import signal
import sys
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import psutil

from server.config import REPO_ROOT, Config
from server.hub import EventHub
from server.store import Job, JobStore

log = logging.getLogger("server.runner")

FLUSH_INTERVAL_S = 0.25
STDERR_TAIL_BYTES = 2000
MAX_LINE_BYTES = 32 * 1024 * 1024

FinishHook = Callable[[Job], Awaitable[None]]


class JobStateError(Exception):
    """The job is not in a state that allows the requested action."""


def new_job_id(kind: str) -> str:
    return f"{kind}_{secrets.token_hex(5)}"


@dataclass
class LiveJob:
    """In-memory state of a running job, flushed to the store periodically."""

    job: Job
    seq: int
    process: asyncio.subprocess.Process | None = None
    stop_reason: str | None = None  # "cancel" or "interrupt" once asked to stop
    pending_events: list[tuple[str, int, str, dict[str, Any], float]] = field(default_factory=list)
    dirty: bool = False
    done_event: dict[str, Any] | None = None
    started_mono: float | None = None
    finished: asyncio.Event = field(default_factory=asyncio.Event)


def group_processes(pgid: int) -> list[psutil.Process]:
    """Every live process whose process group is ``pgid``."""
    found = []
    for proc in psutil.process_iter(["pid"]):
        try:
            if os.getpgid(proc.pid) == pgid and proc.status() != psutil.STATUS_ZOMBIE:
                found.append(proc)
        except (ProcessLookupError, psutil.NoSuchProcess, PermissionError):
            continue
    return found


def kill_and_reap(processes: list[psutil.Process], timeout: float = 10.0) -> None:
    """SIGKILL each process and wait until it is gone (or a zombie nobody will reap)."""
    for proc in processes:
        with contextlib.suppress(psutil.NoSuchProcess):
            proc.kill()
    psutil.wait_procs(processes, timeout=timeout)


def kill_group(pgid: int, sig: int = signal.SIGKILL) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


class JobRunner:
    def __init__(self, store: JobStore, config: Config, hub: EventHub) -> None:
        self.store = store
        self.config = config
        self.hub = hub
        self.capacity = {"cpu": config.cpu_slots, "gpu": config.gpu_slots}
        self.queues: dict[str, deque[str]] = {slot: deque() for slot in self.capacity}
        self.running: dict[str, dict[str, LiveJob]] = {slot: {} for slot in self.capacity}
        self.live: dict[str, LiveJob] = {}
        self.finish_hooks: dict[str, list[FinishHook]] = {}
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
        await self._flush()

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
        for job in await self.store.jobs_with_status("queued"):
            self.queues[job.slot].append(job.id)

    # -- submitting, cancelling, resuming ----
    async def submit(
        self,
        kind: str,
        module: str,
        args: list[str],
        params: dict[str, Any],
        *,
        dataset: str | None = None,
        slot: str = "cpu",
        job_id: str | None = None,
    ) -> Job:
        job = Job(
            id=job_id or new_job_id(kind),
            kind=kind,
            status="queued",
            dataset=dataset,
            slot=slot,
            argv=[module, *args],
            params=params,
            created_at=time.time(),
        )
        await self.store.create_job(job)
        await self._append_direct(job.id, "status", {"status": "queued"})
        self.queues[slot].append(job.id)
        await self._schedule()
        return await self.store.get_job(job.id) or job

    async def cancel(self, job_id: str) -> Job:
        job = await self.store.get_job(job_id)
        if job is None:
            raise KeyError(job_id)
        if job.terminal:
            raise JobStateError(f"job {job_id} is already {job.status}")
        live = self.live.get(job_id)
        if live is None:  # queued
            with contextlib.suppress(ValueError):
                self.queues[job.slot].remove(job_id)
            await self._append_direct(job_id, "status", {"status": "cancelled"})
            await self.store.update_job(job_id, status="cancelled", finished_at=time.time())
            self.hub.close_job(job_id)
        else:
            await self._terminate(live, interrupt=False)
        return await self.store.get_job(job_id) or job

    async def resume(self, job_id: str, extra_args: list[str]) -> Job:
        """Queue an interrupted, cancelled or failed job again under the same id."""
        job = await self.store.get_job(job_id)
        if job is None:
            raise KeyError(job_id)
        if job.status not in ("interrupted", "cancelled", "failed"):
            raise JobStateError(f"job {job_id} is {job.status}; only stopped jobs can be resumed")
        argv = [a for a in job.argv if a not in extra_args] + extra_args
        await self.store.update_job(
            job_id, status="queued", argv=argv, error=None, result=None, finished_at=None, pid=None
        )
        await self._append_direct(job_id, "status", {"status": "queued", "resumed": True})
        self.queues[job.slot].append(job_id)
        await self._schedule()
        return await self.store.get_job(job_id) or job

    async def wait(self, job_id: str, timeout: float) -> Job | None:
        """Wait until the job ends or ``timeout`` passes; returns its latest state."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            job = await self.store.get_job(job_id)
            if job is None or job.terminal:
                return job
            live = self.live.get(job_id)
            remaining = deadline - time.monotonic()
            if live is not None:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(live.finished.wait(), min(remaining, 1.0))
            else:
                await asyncio.sleep(min(remaining, 0.1))
        return await self.store.get_job(job_id)

    def on_finish(self, kind: str, hook: FinishHook) -> None:
        self.finish_hooks.setdefault(kind, []).append(hook)

    def live_job(self, job_id: str) -> LiveJob | None:
        return self.live.get(job_id)

    async def flush_job(self, job_id: str) -> None:
        """Write a job's pending events now (SSE replay reads the store)."""
        await self._flush()

    # -- scheduling ----
    async def _schedule(self) -> None:
        if self._stopping:
            return
        async with self._lock:
            for slot, queue in self.queues.items():
                while queue and len(self.running[slot]) < self.capacity[slot]:
                    job = await self.store.get_job(queue.popleft())
                    if job is None or job.status != "queued":
                        continue
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
        module = f"{self.config.stages_package}.{job.argv[0]}"
        argv = [sys.executable, "-m", module, *job.argv[1:], "--progress", "json"]
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
        env["PYTHONUNBUFFERED"] = "1"
        now = time.time()
        job.status, job.started_at, job.finished_at = "running", now, None
        job.attempts += 1
        try:
            with open(self._log_path(job.id), "ab") as stderr:
                stderr.write(f"--- attempt {job.attempts}: {' '.join(argv[1:])}\n".encode())
                stderr.flush()
                live.process = await asyncio.create_subprocess_exec(
                    *argv,
                    stdout=asyncio.subprocess.PIPE,
                    stderr=stderr,
                    stdin=asyncio.subprocess.DEVNULL,
                    cwd=REPO_ROOT,
                    env=env,
                    start_new_session=True,
                    limit=MAX_LINE_BYTES,
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
            self._record(live, "status", {"status": "running", "attempt": job.attempts})
            assert live.process.stdout is not None
            while True:
                try:
                    line = await live.process.stdout.readline()
                except ValueError:  # a line longer than the limit
                    self._record(live, "warning", {"item": "stdout", "message": "line too long"})
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
        text = raw.decode("utf-8", errors="replace").strip()
        if not text:
            return
        try:
            obj = json.loads(text)
            if not isinstance(obj, dict) or not isinstance(obj.get("event"), str):
                raise ValueError("not a protocol object")
        except ValueError:
            live.job.stats["warnings"] = live.job.stats.get("warnings", 0) + 1
            self._record(
                live, "warning", {"item": "stdout", "message": f"unparseable line: {text[:200]}"}
            )
            return
        event = obj.pop("event")
        job = live.job
        if event == "start":
            live.started_mono = time.monotonic()
            job.progress.update(current=0, total=obj.get("total", 0), unit=obj.get("unit"))
        elif event == "progress":
            for key in ("current", "total"):
                if key in obj:
                    job.progress[key] = obj[key]
            if isinstance(obj.get("extra"), dict):
                job.progress.setdefault("extra", {}).update(obj["extra"])
            for key in ("succeeded", "failed", "warnings"):
                if key in obj:
                    job.stats[key] = obj[key]
        elif event == "result":
            job.result = obj
        elif event == "done":
            live.done_event = obj
        elif event == "metric":
            job.progress.setdefault("metrics", {}).update(obj)
        live.dirty = True
        self._record(live, event, obj)

    def _record(self, live: LiveJob, event: str, data: dict[str, Any]) -> None:
        live.seq += 1
        live.pending_events.append((live.job.id, live.seq, event, data, time.time()))
        live.dirty = True
        self.hub.publish(live.job.id, (live.seq, event, data))

    async def _finish(self, live: LiveJob, rc: int) -> None:
        job = live.job
        if live.process is not None:
            kill_group(live.process.pid)  # stragglers left in the job's process group
        done = live.done_event or {}
        if live.stop_reason == "interrupt":
            status = "interrupted"
        elif live.stop_reason == "cancel":
            status = "cancelled"
        elif done.get("status") == "completed" and rc == 0:
            status = "completed"
        else:
            status = "failed"
            job.error = done.get("error") or self._stderr_tail(job.id, rc)
        job.status, job.finished_at = status, time.time()
        if status == "completed" and live.started_mono is not None:
            seconds = time.monotonic() - live.started_mono
            await self.store.record_rate(job.kind, float(job.progress.get("total") or 0), seconds)
        # Hooks (e.g. the dataset manifest) run before anyone can see the job as finished.
        for hook in self.finish_hooks.get(job.kind, []):
            try:
                await hook(job)
            except Exception:
                log.exception("finish hook for %s failed", job.id)
        self._record(
            live, "status", {"status": status, **({"error": job.error} if job.error else {})}
        )
        await self._flush()
        await self.store.update_job(
            job.id,
            status=status,
            error=job.error,
            result=job.result,
            progress=job.progress,
            stats=job.stats,
            finished_at=job.finished_at,
            pid=None,
        )
        self.running[job.slot].pop(job.id, None)
        self.live.pop(job.id, None)
        live.finished.set()
        self.hub.close_job(job.id)
        await self._schedule()

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
        kill_group(proc.pid, signal.SIGTERM)
        grace = (
            self.config.train_kill_grace_s if live.job.slot == "gpu" else self.config.kill_grace_s
        )

        async def escalate() -> None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(live.finished.wait(), grace)
                return
            kill_group(proc.pid, signal.SIGKILL)

        task = asyncio.create_task(escalate())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- writing to the store ----
    async def _append_direct(self, job_id: str, event: str, data: dict[str, Any]) -> None:
        live = self.live.get(job_id)
        if live is not None:
            self._record(live, event, data)
            return
        seq = await self.store.last_seq(job_id) + 1
        await self.store.append_events([(job_id, seq, event, data, time.time())])
        self.hub.publish(job_id, (seq, event, data))

    async def _flush(self) -> None:
        rows: list[tuple[str, int, str, dict[str, Any], float]] = []
        dirty: list[LiveJob] = []
        for live in list(self.live.values()):
            if live.pending_events:
                rows.extend(live.pending_events)
                live.pending_events = []
            if live.dirty:
                live.dirty = False
                dirty.append(live)
        await self.store.append_events(rows)
        for live in dirty:
            job = live.job
            await self.store.update_job(
                job.id, progress=job.progress, stats=job.stats, result=job.result
            )

    async def _flush_loop(self) -> None:
        while True:
            await asyncio.sleep(FLUSH_INTERVAL_S)
            try:
                await self._flush()
            except Exception:
                log.exception("flushing job state failed")
