"""How a job looks over HTTP: the spec's progress shape, estimates and time strings."""

from __future__ import annotations

import dataclasses
import time
from datetime import UTC, datetime
from typing import Any

from server.http.redact import Redactor
from server.jobs.store import Job


def public_job(job: Job, redactor: Redactor) -> Job:
    """The job as a caller may see it: its error and result without server paths."""
    return dataclasses.replace(
        job,
        error=None if job.error is None else redactor.text(job.error),
        result=redactor.value(job.result),
    )


def human_duration(seconds: float | None) -> str | None:
    """'45 seconds', '12 minutes', '2.5 hours': what a person reads on a progress screen."""
    if seconds is None:
        return None
    seconds = max(0.0, seconds)
    if seconds < 90:
        return _count(max(1, round(seconds)), "second")
    if seconds < 90 * 60:
        return _count(round(seconds / 60), "minute")
    hours = seconds / 3600
    return f"{hours:.1f} hours".replace(".0 hours", " hours")


def _count(n: int, unit: str) -> str:
    return f"{n} {unit}" if n == 1 else f"{n} {unit}s"


def iso(ts: float | None) -> str | None:
    return datetime.fromtimestamp(ts, UTC).isoformat() if ts else None


def remaining_seconds(job: Job, now: float | None = None) -> float | None:
    """Remaining time from the rate this attempt measured (None until it has one).

    Items an earlier attempt did (``reused``) took no time now: counting them in the rate
    would make a resumed job's estimate far too low.
    """
    current = job.progress.get("current") or 0
    total = job.progress.get("total") or 0
    worked = current - (job.progress.get("reused") or 0)
    if job.status != "running" or not job.started_at or worked <= 0 or total <= current:
        return 0.0 if job.status == "completed" else None
    elapsed = (now or time.time()) - job.started_at
    return elapsed / worked * (total - current)


def percentage(job: Job) -> float:
    total = job.progress.get("total") or 0
    if job.status == "completed":
        return 100.0
    if total <= 0:
        return 0.0
    return round(100.0 * min(job.progress.get("current") or 0, total) / total, 1)


def progress_body(job: Job) -> dict[str, Any]:
    remaining = remaining_seconds(job)
    progress: dict[str, Any] = {
        "current": job.progress.get("current") or 0,
        "total": job.progress.get("total") or 0,
        "percentage": percentage(job),
        "estimated_remaining": human_duration(remaining),
        "estimated_remaining_s": None if remaining is None else round(remaining, 1),
    }
    if job.progress.get("unit"):
        progress["unit"] = job.progress["unit"]
    progress.update(job.progress.get("extra") or {})
    return {
        "job_id": job.id,
        "kind": job.kind,
        "status": job.status,
        "dataset": job.dataset,
        "progress": progress,
        "stats": {
            "succeeded": job.stats.get("succeeded", 0),
            "failed": job.stats.get("failed", 0),
            "warnings": job.stats.get("warnings", 0),
        },
        "error": job.error,
        "result": job.result,
        "created_at": iso(job.created_at),
        "started_at": iso(job.started_at),
        "finished_at": iso(job.finished_at),
        "links": {
            "progress": f"/training/jobs/{job.id}/progress",
            "events": f"/training/jobs/{job.id}/events",
            "log": f"/training/jobs/{job.id}/log",
            "cancel": f"/training/jobs/{job.id}/cancel",
        },
    }


def summary_body(job: Job) -> dict[str, Any]:
    return {
        "job_id": job.id,
        "kind": job.kind,
        "status": job.status,
        "dataset": job.dataset,
        "percentage": percentage(job),
        "created_at": iso(job.created_at),
        "finished_at": iso(job.finished_at),
        "error": job.error,
    }
