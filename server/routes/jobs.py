"""Job routes: progress, listing, cancel, resume, the SSE event stream and the log tail."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from typing import Any

from aiohttp import web
from aiohttp_sse import sse_response

from server.appkeys import CONFIG, HUB, RUNNER, STORE
from server.http.jobviews import progress_body, public_job, summary_body
from server.http.lookups import job_or_404
from server.http.openapi import documented
from server.http.problems import conflict, invalid
from server.http.redact import Redactor, redactor_for
from server.http.requests import query_int
from server.jobs.runner import JobStateError
from server.jobs.store import TERMINAL

routes = web.RouteTableDef()

JOB_STATUSES = ("queued", "running", *TERMINAL)
LOG_TAIL_MAX = 10_000
EVENT_ID_MAX = 2**63 - 1  # event ids are SQLite integers


@routes.get("/training/jobs/{job_id}/progress")
@documented("Progress of any job: counts, percentage, measured time remaining", tag="jobs")
async def job_progress(request: web.Request) -> web.Response:
    return web.json_response(progress_body(await job_or_404(request)))


@routes.get("/training/jobs")
@documented(
    "List jobs, newest first, filtered by status, kind or dataset",
    tag="jobs",
    query={
        "status": {
            "type": "string",
            "pattern": "^({0})(,({0}))*$".format("|".join(JOB_STATUSES)),
            "description": "comma-separated statuses",
        },
        "kind": {"type": "string", "description": "a job kind: extract, render, train, ..."},
        "dataset": {"type": "string"},
        "limit": {"type": "integer", "minimum": 1, "maximum": 500, "default": 50},
        "offset": {"type": "integer", "minimum": 0, "maximum": 10**9, "default": 0},
    },
)
async def list_jobs(request: web.Request) -> web.Response:
    statuses = [s for s in request.query.get("status", "").split(",") if s]
    unknown = [s for s in statuses if s not in JOB_STATUSES]
    if unknown:
        raise invalid("status", f"unknown status {unknown[0]!r}; one of {', '.join(JOB_STATUSES)}")
    limit = query_int(request, "limit", 50, 1, 500)
    offset = query_int(request, "offset", 0, 0, 10**9)
    jobs, total = await request.app[STORE].list_jobs(
        statuses=statuses,
        kind=request.query.get("kind") or None,
        dataset=request.query.get("dataset") or None,
        limit=limit,
        offset=offset,
    )
    redactor = redactor_for(request.app[CONFIG])
    return web.json_response(
        {
            "jobs": [summary_body(public_job(j, redactor)) for j in jobs],
            "total": total,
            "limit": limit,
            "offset": offset,
        }
    )


@routes.post("/training/jobs/{job_id}/cancel")
@documented(
    "Cancel a queued or running job (SIGTERM, then SIGKILL after a grace period)",
    tag="jobs",
    status=202,
    errors=(409,),
)
async def cancel_job(request: web.Request) -> web.Response:
    job = await job_or_404(request)
    try:
        job = await request.app[RUNNER].cancel(job.id)
    except JobStateError as exc:
        raise conflict(str(exc)) from exc
    body = progress_body(job)
    body["cancel_requested"] = True
    return web.json_response(body, status=202)


@routes.post("/training/jobs/{job_id}/resume")
@documented(
    "Resume an interrupted, cancelled or failed render or training job",
    tag="jobs",
    status=202,
    errors=(409,),
)
async def resume_job(request: web.Request) -> web.Response:
    job = await job_or_404(request)
    try:
        job = await request.app[RUNNER].resume(job.id)
    except JobStateError as exc:
        raise conflict(str(exc)) from exc
    return web.json_response(
        progress_body(job), status=202, headers={"Location": f"/training/jobs/{job.id}/progress"}
    )


@routes.get("/training/jobs/{job_id}/events")
@documented(
    "Server-Sent Events: every job event, replayed from Last-Event-ID, then live",
    tag="jobs",
    media_type="text/event-stream",
    query={"last_event_id": {"type": "integer", "minimum": 0, "maximum": EVENT_ID_MAX}},
    headers={"Last-Event-ID": {"type": "integer", "minimum": 0, "maximum": EVENT_ID_MAX}},
)
async def job_events(request: web.Request) -> web.StreamResponse:
    job = await job_or_404(request)
    store, hub, runner = request.app[STORE], request.app[HUB], request.app[RUNNER]
    raw_last = request.headers.get("Last-Event-ID") or request.query.get("last_event_id") or "0"
    try:
        last = int(raw_last)
    except ValueError:
        last = -1
    if not 0 <= last <= EVENT_ID_MAX:
        raise invalid("Last-Event-ID", f"Last-Event-ID must be an integer from 0 to {EVENT_ID_MAX}")
    redactor = redactor_for(request.app[CONFIG])
    subscription = hub.subscribe(job.id)
    try:
        await runner.flush()
        async with sse_response(request, ping_interval=request.app[CONFIG].heartbeat_s) as stream:
            last = await _replay(stream, store, job.id, last, redactor)
            current = await store.get_job(job.id)
            while current is not None and not current.terminal:
                subscription.wakeup.clear()
                while not subscription.queue.empty():
                    seq, event, data = subscription.queue.get_nowait()
                    if seq > last:
                        await stream.send(_dumps(redactor.value(data)), id=str(seq), event=event)
                        last = seq
                if subscription.closed:
                    # Job ended (the runner flushed first) or this client fell behind.
                    last = await _replay(stream, store, job.id, last, redactor)
                    current = await store.get_job(job.id)
                    if current is not None and not current.terminal:
                        return stream  # fell behind: the client reconnects with Last-Event-ID
                    break
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(subscription.wakeup.wait(), 30.0)
            status = current.status if current else "unknown"
            await stream.send(_dumps({"status": status}), event="end")
            return stream
    finally:
        hub.unsubscribe(job.id, subscription)


async def _replay(stream: Any, store: Any, job_id: str, last: int, redactor: Redactor) -> int:
    while True:
        rows = await store.events_after(job_id, last, limit=1000)
        for seq, event, data, _ts in rows:
            await stream.send(_dumps(redactor.value(data)), id=str(seq), event=event)
            last = seq
        if len(rows) < 1000:
            return last


def _dumps(data: dict[str, Any]) -> str:
    return json.dumps(data, separators=(",", ":"))


@routes.get("/training/jobs/{job_id}/log")
@documented(
    "The last lines of a job's stage log (stderr)",
    tag="jobs",
    query={"tail": {"type": "integer", "minimum": 1, "maximum": LOG_TAIL_MAX, "default": 200}},
)
async def job_log(request: web.Request) -> web.Response:
    job = await job_or_404(request)
    tail = query_int(request, "tail", 200, 1, LOG_TAIL_MAX)
    path = request.app[CONFIG].logs_dir / f"{job.id}.log"
    lines = await asyncio.to_thread(_tail_lines, path, tail)
    return web.json_response({"job_id": job.id, "lines": lines, "tail": tail})


def _tail_lines(path: os.PathLike[str], count: int, block: int = 65536) -> list[str]:
    """The last ``count`` lines, reading backwards in blocks: never the whole file."""
    try:
        f = open(path, "rb")  # noqa: SIM115 (closed below)
    except FileNotFoundError:
        return []
    with f:
        f.seek(0, os.SEEK_END)
        position = f.tell()
        data = b""
        while position > 0 and data.count(b"\n") <= count:
            step = min(block, position)
            position -= step
            f.seek(position)
            data = f.read(step) + data
    lines = data.decode("utf-8", errors="replace").splitlines()
    return lines[-count:]
