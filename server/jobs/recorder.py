"""Writes running jobs' events and state to the store, and keeps what a refused write left.

Events are published to live subscribers at once and written in batches; a write the store
refuses (a full disk) keeps its rows pending for the next flush. A job's end that cannot be
written is kept in memory (``unrecorded``) and answered from there until the store takes it,
so a full disk never leaves a job ``running`` in anyone's view.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from server.jobs.hub import EventHub
from server.jobs.live import LiveJob
from server.jobs.store import JobStore

log = logging.getLogger("server.jobs.recorder")

FINAL_WRITE_ATTEMPTS = 5
FINAL_WRITE_RETRY_S = 0.2


class JobRecorder:
    def __init__(self, store: JobStore, hub: EventHub) -> None:
        self.store = store
        self.hub = hub
        # Ended jobs whose end the store refused: written at each flush until it takes them.
        self.unrecorded: dict[str, LiveJob] = {}

    def record(self, live: LiveJob, event: str, data: dict[str, Any]) -> None:
        """Publish one event of a running job now; it reaches the store at the next flush."""
        live.seq += 1
        live.pending_events.append((live.job.id, live.seq, event, data, time.time()))
        live.dirty = True
        self.hub.publish(live.job.id, (live.seq, event, data))

    async def append(self, job_id: str, event: str, data: dict[str, Any]) -> None:
        """Write and publish one event of a job that has no process (queued or stopped)."""
        seq = await self.store.last_seq(job_id) + 1
        await self.store.append_events([(job_id, seq, event, data, time.time())])
        self.hub.publish(job_id, (seq, event, data))

    async def flush(self, lives: list[LiveJob]) -> None:
        """Write pending events and changed jobs; what could not be written stays pending."""
        for live in lives:
            await self._flush_events(live)
            if live.dirty:
                live.dirty = False
                job = live.job
                try:
                    await self.store.update_job(
                        job.id, progress=job.progress, stats=job.stats, result=job.result
                    )
                except Exception:
                    live.dirty = True
                    raise

    async def record_rate(self, live: LiveJob) -> None:
        """A measured rate for future estimates; losing one is not worth failing the job."""
        if live.started_mono is None:
            return
        seconds = time.monotonic() - live.started_mono
        total = float(live.job.progress.get("total") or 0)
        try:
            await self.store.record_rate(live.job.kind, total, seconds)
        except Exception:
            log.exception("recording the rate of %s failed", live.job.id)

    async def write_final(self, live: LiveJob) -> None:
        """The job's last events and final row, retried while the store refuses writes."""
        for attempt in range(FINAL_WRITE_ATTEMPTS):
            try:
                await self.write_end(live)
                return
            except Exception:
                if attempt == FINAL_WRITE_ATTEMPTS - 1:
                    raise
                log.warning("writing the end of job %s failed; retrying", live.job.id)
                await asyncio.sleep(FINAL_WRITE_RETRY_S * (attempt + 1))

    async def write_end(self, live: LiveJob) -> None:
        job = live.job
        await self._flush_events(live)
        await self.store.update_job(
            job.id,
            status=job.status,
            error=job.error,
            result=job.result,
            progress=job.progress,
            stats=job.stats,
            finished_at=job.finished_at,
            pid=None,
        )

    async def settle(self, job_id: str) -> None:
        """Write a job's unrecorded end now (before it may start again); raises if refused."""
        live = self.unrecorded.get(job_id)
        if live is not None:
            await self.write_end(live)
            self.unrecorded.pop(job_id, None)

    async def write_unrecorded(self) -> None:
        for job_id, live in list(self.unrecorded.items()):
            try:
                await self.write_end(live)
            except Exception:  # still refused: the next flush tries again
                continue
            log.info("the end of job %s is recorded", job_id)
            self.unrecorded.pop(job_id, None)

    async def _flush_events(self, live: LiveJob) -> None:
        if live.pending_events:
            rows, live.pending_events = live.pending_events, []
            try:
                await self.store.append_events(rows)
            except Exception:
                live.pending_events = rows + live.pending_events
                raise
