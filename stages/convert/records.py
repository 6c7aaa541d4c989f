"""TinyLLaVA conversation records: building one, and writing a list of them atomically.

A record is ``{"id", "image", "conversations": [human, gpt]}``; ``image`` is relative to the
dataset's ``images/`` folder and the human turn starts with ``<image>\\n``. Files are written
one record per line (readable, and many times faster than an indented dump) to a temporary
name and renamed into place, so a reader never sees half a file.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from stages.convert.templates import human_turn
from stages.manifest import write_text_atomic

Record = dict[str, Any]


def make_record(record_id: str, image: str, prompt: str, answer: str) -> Record:
    """One record; ``prompt`` is the text after the ``<image>`` line."""
    return {
        "id": record_id,
        "image": image,
        "conversations": [
            {"from": "human", "value": human_turn(prompt)},
            {"from": "gpt", "value": answer},
        ],
    }


def dump_records(records: Sequence[Record]) -> str:
    """A JSON list with one record per line."""
    if not records:
        return "[]\n"
    lines = ",\n".join(json.dumps(record, ensure_ascii=False) for record in records)
    return f"[\n{lines}\n]\n"


def write_records(path: Path, records: Sequence[Record]) -> None:
    """Write ``records`` to ``path`` so readers see the old file or the whole new one."""
    write_text_atomic(path, dump_records(records))
