"""The protocol's vocabulary: event names, exit codes, and one stdout line <-> one event.

Both sides use this module: a stage encodes its events with ``encode_event``, the server
turns each line it reads back into a typed ``Event`` with ``parse_line``. A line that is not
a protocol object is ``None`` there, never an exception: the caller counts it as a warning and
the job goes on.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class EventName(StrEnum):
    """Every event a stage may print; ``done`` is always the last one."""

    START = "start"
    PROGRESS = "progress"
    WARNING = "warning"
    METRIC = "metric"
    RESULT = "result"
    DONE = "done"


class DoneStatus(StrEnum):
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_CANCELLED = 130

# A progress line can carry large ``extra`` objects; anything longer is refused by the reader.
MAX_LINE_BYTES = 32 * 1024 * 1024


@dataclass(frozen=True)
class Event:
    """One protocol line: its name and the fields beside ``event``."""

    name: str
    data: dict[str, Any] = field(default_factory=dict)

    def get(self, key: str, default: Any = None) -> Any:
        return self.data.get(key, default)


def clean_json(value: Any) -> Any:
    """Make a value strict-JSON safe (NaN and infinities become null)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): clean_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [clean_json(v) for v in value]
    return value


def encode_event(name: str, **fields: Any) -> str:
    """The stdout line (without newline) for one event."""
    return json.dumps(clean_json({"event": str(name), **fields}), separators=(",", ":"))


def parse_line(raw: bytes | str) -> Event | None:
    """One stdout line as an event; ``None`` for anything that is not a protocol object.

    Unknown event names are kept (a newer stage may say more than this reader knows); a
    blank line is ``None`` too, so callers decide whether it counts as noise.
    """
    text = raw.decode("utf-8", errors="replace") if isinstance(raw, bytes) else raw
    text = text.strip()
    if not text:
        return None
    try:
        obj = json.loads(text)
    except (ValueError, RecursionError):
        return None
    if not isinstance(obj, dict) or not isinstance(obj.get("event"), str):
        return None
    name = obj.pop("event")
    return Event(name=name, data=obj)
