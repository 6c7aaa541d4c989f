"""TinyLLaVA conversation records: their shape, building one, and writing a list of them.

A record is ``{"id", "image", "conversations": [human, gpt, ...]}``; ``image`` is relative to
the dataset's images folder, turns alternate ``human`` and ``gpt``, and the first human turn
starts with ``<image>\\n`` (TinyLLaVA silently drops the image of a record without it). The
convert stage writes records with this module and the validate stage checks them against it.

Files are written one record per line (readable, and many times faster than an indented dump)
to a temporary name and renamed into place, so a reader never sees half a file.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from stages.atomic import write_text_atomic

Record = dict[str, Any]

RECORD_KEYS = ("id", "image", "conversations")
HUMAN = "human"
GPT = "gpt"
ROLES = (HUMAN, GPT)
IMAGE_TOKEN = "<image>"
HUMAN_PREFIX = IMAGE_TOKEN + "\n"


def human_turn(prompt: str) -> str:
    """The human turn's value: the image placeholder on its own line, then the prompt."""
    return HUMAN_PREFIX + prompt


def make_record(record_id: str, image: str, prompt: str, answer: str) -> Record:
    """One record; ``prompt`` is the text after the ``<image>`` line."""
    return {
        "id": record_id,
        "image": image,
        "conversations": [
            {"from": HUMAN, "value": human_turn(prompt)},
            {"from": GPT, "value": answer},
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
