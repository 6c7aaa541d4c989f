"""The answer of a short stage call: what a check or a single render printed, as one object.

Request-time checks and one-model stages print either one plain JSON object or protocol
events. Either way the caller wants one object: the ``result`` fields, and on failure an
``error`` (a short machine key: the reason of the last warning, or the done status) and a
``detail`` (the human message).
"""

from __future__ import annotations

import json
from typing import Any

from stages.protocol.events import DoneStatus, EventName, parse_line


def summarise_output(text: str) -> dict[str, Any]:
    """What a short stage call printed on stdout, folded into one JSON object."""
    plain: list[dict[str, Any]] = []
    answer: dict[str, Any] = {}
    saw_events = False
    for line in text.splitlines():
        event = parse_line(line)
        if event is None:
            try:
                value = json.loads(line)
            except (ValueError, RecursionError):
                continue
            if isinstance(value, dict):
                plain.append(value)
            continue
        saw_events = True
        if event.name == EventName.RESULT:
            answer.update(event.data)
        elif event.name == EventName.WARNING and event.get("reason"):
            answer["error"] = event.get("reason")
        elif event.name == EventName.DONE and event.get("status") != DoneStatus.COMPLETED:
            answer.setdefault("error", event.get("status"))
            answer["detail"] = event.get("error") or answer.get("detail")
    if saw_events:
        return answer
    return plain[-1] if plain else {}
