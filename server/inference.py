"""The inference worker the reconstruction route talks to: started on first use, one request
at a time, every call bounded in time, restarted when it died, stopped with the service.

The worker (``python -m <stages>.train.infer_worker``) keeps up to ``--inference-models``
models loaded between requests, so only the first request for a checkpoint pays for loading
it. It is started like every stage (``server.jobs.process.spawn_stage``: its own process
group), with a stdin pipe for requests; its stderr goes to ``logs/inference_worker.log``.

Each call may take ``--inference-timeout`` seconds once the worker is ready (loading,
generating, building, drawing); starting a fresh worker (importing torch) has its own limit,
at least ``START_TIMEOUT_S``. A call that runs out of time kills the worker's whole process
group and answers 504; so does a call whose request is cancelled mid-way (the channel's
state is then unknown). The next call starts a fresh worker. A worker found dead when a
request comes is replaced and the request sent again; one that dies answering is a 500.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator
from typing import IO, Any

from aiohttp import web

from server.appkeys import CONFIG
from server.config import Config
from server.http.problems import ProblemError
from server.http.redact import redactor_for
from server.jobs.process import group_processes, kill_and_reap, signal_group, spawn_stage

WORKER_STAGE = "train.infer_worker"
LOG_NAME = "inference_worker.log"
START_TIMEOUT_S = 180.0  # importing torch and choosing the device, on a slow machine
STOP_GRACE_S = 5.0  # after stdin closes, before the group is killed
MAX_WAITING = 8  # requests queued behind the running one before more are refused (503)

log = logging.getLogger("server.inference")


class InferenceManager:
    """One worker process, used by one request at a time."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.timeout_s = config.inference_timeout_s
        self._lock = asyncio.Lock()
        self._waiting = 0
        self._proc: asyncio.subprocess.Process | None = None
        self._log: IO[bytes] | None = None
        self._requests = 0
        self._stopped = False
        self.ready: dict[str, Any] = {}

    @property
    def pid(self) -> int | None:
        """The running worker's pid (also its process group), or None."""
        proc = self._proc
        return proc.pid if proc is not None and proc.returncode is None else None

    async def call(self, request: dict[str, Any]) -> dict[str, Any]:
        """Send ``request`` to the worker and return its answer (``ok`` true), with
        ``worker_start_s`` added (0 when it was running). A request it refused becomes the
        problem it names; no answer in time is a 504, a worker that died a 500."""
        if self._waiting >= MAX_WAITING:
            raise ProblemError(
                503, "too many reconstructions are waiting; try again later", kind="busy",
                headers={"Retry-After": "5"},
            )  # fmt: skip
        self._waiting += 1
        try:
            await self._lock.acquire()
        finally:
            self._waiting -= 1
        try:
            return await self._call_locked(request)
        finally:
            self._lock.release()

    async def _call_locked(self, request: dict[str, Any]) -> dict[str, Any]:
        started = time.perf_counter()
        fresh = await self._ensure_started()
        try:
            answer = await self._exchange(request)
        except _WorkerDied as exc:
            await self._kill()
            if fresh:
                log.warning("the inference worker died answering (exit code %s)", exc.returncode)
                raise ProblemError(
                    500, "the model worker died while answering; see the server log (the "
                    "next request starts a fresh one)", kind="inference-worker-died",
                ) from None  # fmt: skip
            # It had died while idle (asyncio had not seen it yet): once more, on a fresh one.
            log.warning("the inference worker had died (exit code %s): restarting it",
                        exc.returncode)  # fmt: skip
            return await self._call_locked(request)
        answer["worker_start_s"] = round(time.perf_counter() - started, 4) if fresh else 0.0
        return answer

    async def _exchange(self, request: dict[str, Any]) -> dict[str, Any]:
        """One request and its answer, bounded by the timeout."""
        proc = self._proc
        assert proc is not None and proc.stdin is not None
        self._requests += 1
        request = {**request, "id": self._requests}
        try:
            proc.stdin.write((json.dumps(request) + "\n").encode())
            answer = await asyncio.wait_for(self._answer(proc, request["id"]), self.timeout_s)
        except TimeoutError:
            log.warning("reconstruction %s ran past %g s: killing the worker", request["id"],
                        self.timeout_s)  # fmt: skip
            await self._kill()
            raise ProblemError(
                504,
                f"the reconstruction did not finish within {self.timeout_s:g} s; the model "
                "worker was stopped, and the next request starts a fresh one",
                kind="inference-timeout",
            ) from None
        except _WorkerDied:
            raise
        except BaseException:  # cancelled mid-way: what the worker will say next is unknown
            await self._kill()
            raise
        if not answer.get("ok"):
            raise self._problem(answer)
        return answer

    async def _answer(self, proc: asyncio.subprocess.Process, request_id: int) -> dict[str, Any]:
        """The worker's answer to request ``request_id`` (any other line is skipped)."""
        assert proc.stdin is not None and proc.stdout is not None
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            await proc.stdin.drain()  # a dead worker: the read below sees the end
        while True:
            line = await proc.stdout.readline()
            if not line:
                raise _WorkerDied(await self._exit_code(proc))
            try:
                answer = json.loads(line)
            except ValueError:
                log.warning("the inference worker wrote a line that is not JSON: %.200r", line)
                continue
            if isinstance(answer, dict) and answer.get("id") == request_id:
                return answer

    async def _ensure_started(self) -> bool:
        """Start a worker unless one is running; whether one was started now."""
        if self._proc is not None and self._proc.returncode is None:
            return False
        if self._stopped:
            raise ProblemError(503, "the service is stopping", kind="inference-unavailable")
        if self._proc is not None:
            log.warning("the inference worker had exited (%s): starting a new one",
                        self._proc.returncode)  # fmt: skip
            await self._kill()
        config = self.config
        config.logs_dir.mkdir(parents=True, exist_ok=True)
        self._log = open(config.logs_dir / LOG_NAME, "ab")  # noqa: SIM115 (closed in _kill)
        args = ["--models", str(config.inference_models)]
        self._proc = await spawn_stage(
            config, WORKER_STAGE, args, stderr=self._log, stdin=asyncio.subprocess.PIPE
        )
        log.info("inference worker started (pid %s)", self._proc.pid)
        try:
            ready = await asyncio.wait_for(
                self._ready(self._proc), max(START_TIMEOUT_S, self.timeout_s)
            )
        except (TimeoutError, _WorkerDied, asyncio.CancelledError) as exc:
            await self._kill()
            if isinstance(exc, asyncio.CancelledError):
                raise
            raise ProblemError(
                503, "the model worker could not start; see the server log",
                kind="inference-unavailable",
            ) from exc  # fmt: skip
        self.ready = ready
        return True

    async def _ready(self, proc: asyncio.subprocess.Process) -> dict[str, Any]:
        assert proc.stdout is not None
        while True:
            line = await proc.stdout.readline()
            if not line:
                raise _WorkerDied(await self._exit_code(proc))
            with contextlib.suppress(ValueError):
                said = json.loads(line)
                if isinstance(said, dict) and "ready" in said:
                    if not said["ready"]:
                        log.warning("inference worker refused to start: %s", said.get("error"))
                        raise _WorkerDied(None)
                    return said

    @staticmethod
    async def _exit_code(proc: asyncio.subprocess.Process) -> int | None:
        with contextlib.suppress(TimeoutError):
            return await asyncio.wait_for(proc.wait(), 5)
        return None

    def _problem(self, answer: dict[str, Any]) -> ProblemError:
        redact = redactor_for(self.config)
        status = int(answer.get("status") or 500)
        detail = redact.text(str(answer.get("error") or "the reconstruction failed"))
        if status >= 500:
            log.warning("inference failed: %s", detail)
            return ProblemError(500, "the reconstruction failed; see the server log",
                                kind="inference-failed")  # fmt: skip
        field = answer.get("field")
        kind = "invalid-value" if status == 422 else None
        return ProblemError(status, detail, field=field, kind=kind)

    async def _kill(self) -> None:
        """Kill the worker's process group and reap it."""
        proc, self._proc = self._proc, None
        if proc is not None:
            signal_group(proc.pid)
            with contextlib.suppress(ProcessLookupError):
                await proc.wait()
            left = await asyncio.to_thread(group_processes, proc.pid)
            if left:
                await asyncio.to_thread(kill_and_reap, left)
        self._close_log()

    def _close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None

    async def stop(self) -> None:
        """End the worker for good: close its stdin, give it a moment to exit, then kill its
        group. A request still running gets a 500 or 503; none starts another worker."""
        self._stopped = True
        proc = self._proc
        if proc is None:
            return
        if proc.returncode is None and proc.stdin is not None:
            with contextlib.suppress(OSError):
                proc.stdin.close()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(proc.wait(), STOP_GRACE_S)
        await self._kill()


class _WorkerDied(Exception):
    def __init__(self, returncode: int | None) -> None:
        super().__init__(f"the inference worker exited ({returncode})")
        self.returncode = returncode


INFERENCE = web.AppKey("inference", InferenceManager)


async def inference_system(app: web.Application) -> AsyncIterator[None]:
    """The manager for the app's lifetime (``cleanup_ctx``): no worker runs until a request
    needs one, and none is left when the app stops."""
    manager = InferenceManager(app[CONFIG])
    app[INFERENCE] = manager
    yield
    await manager.stop()
