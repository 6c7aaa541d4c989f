"""Finding what a request names, or answering 404: jobs by id (and kind)."""

from __future__ import annotations

from aiohttp import web

from server.appkeys import RUNNER, STORE
from server.http.problems import not_found
from server.jobs.store import Job


async def job_or_404(
    request: web.Request, kinds: tuple[str, ...] | None = None, what: str = "job"
) -> Job:
    """The job named by the path's ``job_id``; a running job's state comes from memory
    (current to its last line), others from SQLite. ``kinds`` limits which kinds count."""
    job_id = request.match_info["job_id"]
    live = request.app[RUNNER].live_job(job_id)
    job = live.job if live is not None and live.job.status == "running" else None
    if job is None:
        job = await request.app[STORE].get_job(job_id)
    if job is None or (kinds is not None and job.kind not in kinds):
        raise not_found(what, job_id)
    return job
