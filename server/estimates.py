"""Time estimates from measured rates: past jobs of the same kind, never constants."""

from __future__ import annotations

from server.jobviews import human_duration
from server.store import JobStore


async def estimate(store: JobStore, kind: str, items: float) -> tuple[float | None, str | None]:
    """Seconds and a human string for ``items`` units of ``kind`` work (None if never measured)."""
    rate = await store.rate(kind)
    if not rate or items <= 0:
        return None, None
    seconds = items / rate
    return round(seconds, 1), human_duration(seconds)
