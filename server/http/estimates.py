"""Time estimates from measured rates: past jobs of the same kind, never constants."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from server.http.jobviews import human_duration
from server.jobs.store import Job, JobStore


async def estimate(store: JobStore, kind: str, items: float) -> tuple[float | None, str | None]:
    """Seconds and a human string for ``items`` units of ``kind`` work (None if never measured)."""
    rate = await store.rate(kind)
    if not rate or items <= 0:
        return None, None
    seconds = items / rate
    return round(seconds, 1), human_duration(seconds)


async def started_response(
    store: JobStore,
    job: Job,
    *,
    items: float,
    rate_kind: str | None = None,
    location: str | None = None,
    **fields: Any,
) -> web.Response:
    """The spec's answer to a request that started a job: 202, its id and a measured estimate.

    ``status`` is the spec's ``started`` whether the job runs at once or waits for a slot;
    ``job_status`` says which (``queued`` or ``running``).
    """
    seconds, text = await estimate(store, rate_kind or job.kind, items)
    body = {
        "success": True,
        "job_id": job.id,
        "status": "started",
        "job_status": job.status,
        "estimated_time": text,
        "estimated_time_s": seconds,
        **fields,
    }
    headers = {"Location": location or f"/training/jobs/{job.id}/progress"}
    return web.json_response(body, status=202, headers=headers)
