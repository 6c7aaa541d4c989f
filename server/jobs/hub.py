"""Fan-out of live job events to SSE subscribers (in memory; the store keeps the history)."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

Event = tuple[int, str, dict[str, Any]]  # (seq, event name, data)


@dataclass(eq=False)
class Subscription:
    """One listener's queue. ``closed`` means no more events will come: drain, then stop.

    A listener too slow to keep up is closed early; it reconnects with Last-Event-ID and
    the store replays what it missed.
    """

    queue: asyncio.Queue[Event] = field(default_factory=lambda: asyncio.Queue(10_000))
    closed: bool = False
    wakeup: asyncio.Event = field(default_factory=asyncio.Event)


class EventHub:
    def __init__(self) -> None:
        self._subscribers: dict[str, set[Subscription]] = defaultdict(set)

    def subscribe(self, job_id: str) -> Subscription:
        sub = Subscription()
        self._subscribers[job_id].add(sub)
        return sub

    def unsubscribe(self, job_id: str, sub: Subscription) -> None:
        subscribers = self._subscribers.get(job_id)
        if subscribers is not None:
            subscribers.discard(sub)
            if not subscribers:
                del self._subscribers[job_id]

    def publish(self, job_id: str, event: Event) -> None:
        for sub in list(self._subscribers.get(job_id, ())):
            try:
                sub.queue.put_nowait(event)
            except asyncio.QueueFull:
                self._close(job_id, sub)
            sub.wakeup.set()

    def close_job(self, job_id: str) -> None:
        """Tell every subscriber the job's stream has ended."""
        for sub in list(self._subscribers.get(job_id, ())):
            self._close(job_id, sub)

    def _close(self, job_id: str, sub: Subscription) -> None:
        sub.closed = True
        sub.wakeup.set()
        self.unsubscribe(job_id, sub)
