"""A running job in memory, and how each protocol event changes its state.

The runner owns the process; this module owns the meaning of what it prints: ``start`` sets
the total, ``progress`` the counters, ``metric`` the latest training figures, ``result`` the
answer and ``done`` the stage's own verdict. State lives here between the store's batched
writes, so progress requests for a running job are answered from memory.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from server.jobs.store import Job
from stages.protocol.events import Event, EventName

# (job id, sequence number, event name, data, unix time): one row of a job's event log.
EventRow = tuple[str, int, str, dict[str, Any], float]


def new_job_id(kind: str) -> str:
    return f"{kind}_{secrets.token_hex(5)}"


@dataclass
class LiveJob:
    """In-memory state of a running job, flushed to the store periodically."""

    job: Job
    seq: int
    process: asyncio.subprocess.Process | None = None
    stop_reason: str | None = None  # "cancel" or "interrupt" once asked to stop
    pending_events: list[EventRow] = field(default_factory=list)
    dirty: bool = False
    done_event: dict[str, Any] | None = None
    started_mono: float | None = None
    finished: asyncio.Event = field(default_factory=asyncio.Event)

    def apply(self, event: Event) -> None:
        """Fold one protocol event into the job's progress, stats and result."""
        job, data = self.job, event.data
        if event.name == EventName.START:
            self.started_mono = time.monotonic()
            job.progress.update(
                current=0, total=data.get("total", 0), unit=data.get("unit"), reused=0
            )
        elif event.name == EventName.PROGRESS:
            for key in ("current", "total", "reused"):
                if key in data:
                    job.progress[key] = data[key]
            if isinstance(data.get("extra"), dict):
                job.progress.setdefault("extra", {}).update(data["extra"])
            for key in ("succeeded", "failed", "warnings"):
                if key in data:
                    job.stats[key] = data[key]
        elif event.name == EventName.RESULT:
            job.result = dict(data)
        elif event.name == EventName.DONE:
            self.done_event = dict(data)
        elif event.name == EventName.METRIC:
            job.progress.setdefault("metrics", {}).update(data)
        self.dirty = True

    def count_noise(self) -> None:
        """A line that is not a protocol object: counted as a warning, the job goes on."""
        self.job.stats["warnings"] = self.job.stats.get("warnings", 0) + 1
        self.dirty = True

    def final_status(self, returncode: int) -> str:
        """What the job ended as: asked to stop, the stage's own ``done``, else failed."""
        if self.stop_reason == "interrupt":
            return "interrupted"
        if self.stop_reason == "cancel":
            return "cancelled"
        done = self.done_event or {}
        if done.get("status") == "completed" and returncode == 0:
            return "completed"
        return "failed"
