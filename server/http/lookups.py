"""Finding what a request names, or answering 404: jobs by id (and kind), image files."""

from __future__ import annotations

import os
from pathlib import Path

from aiohttp import web

from server.appkeys import CONFIG, RUNNER, STORE
from server.http.jobviews import public_job
from server.http.problems import ProblemError, invalid, not_found
from server.http.redact import redactor_for
from server.jobs.store import Job

NAME_MAX = 255  # bytes in one file name: longer ones make the file system raise, not miss


async def job_or_404(
    request: web.Request, kinds: tuple[str, ...] | None = None, what: str = "job"
) -> Job:
    """The job named by the path's ``job_id``, from memory where memory is ahead of SQLite
    (a running job, an end the store has not taken yet), else from SQLite. ``kinds`` limits
    which kinds count."""
    job_id = request.match_info["job_id"]
    job = request.app[RUNNER].current_job(job_id) or await request.app[STORE].get_job(job_id)
    if job is None or (kinds is not None and job.kind not in kinds):
        raise not_found(what, job_id)
    return public_job(job, redactor_for(request.app[CONFIG]))


def image_or_404(filename: str, *folders: Path) -> web.FileResponse:
    """The PNG ``filename`` from the first of ``folders`` holding it: a name no file system
    can hold is a 422 and an unreadable folder a 503, never an OSError out of the handler.
    A link that leads out of its folder is not served (it could point anywhere)."""
    if len(os.fsencode(filename)) > NAME_MAX:
        raise invalid("filename", f"image names are at most {NAME_MAX} bytes")
    for folder in folders:
        path = folder / filename
        try:
            found = path.is_file() and _inside(path, folder)
        except OSError as exc:
            raise ProblemError(503, "the image could not be read", kind="storage-error") from exc
        if found:
            return web.FileResponse(path, headers={"Content-Type": "image/png"})
    raise not_found("image", filename)


def _inside(path: Path, folder: Path) -> bool:
    """``path`` is a file of ``folder`` itself, once every link is followed."""
    return not folder.is_symlink() and path.resolve().parent == folder.resolve()
