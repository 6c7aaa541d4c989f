"""The TinyLLaVA record format both convert (writing) and validate (checking) use."""

from __future__ import annotations

import json
from pathlib import Path

from stages.dataset.records import (
    HUMAN_PREFIX,
    RECORD_KEYS,
    dump_records,
    human_turn,
    make_record,
    write_records,
)


def test_human_turn_starts_with_the_image_line() -> None:
    assert HUMAN_PREFIX == "<image>\n"
    assert human_turn("Draw it.") == "<image>\nDraw it."


def test_a_record_has_the_image_and_a_human_then_gpt_turn() -> None:
    record = make_record("m_front", "m_front.png", "Draw it.", "code")
    assert tuple(record) == RECORD_KEYS
    assert record["conversations"] == [
        {"from": "human", "value": "<image>\nDraw it."},
        {"from": "gpt", "value": "code"},
    ]


def test_records_are_written_as_a_json_list_one_per_line(tmp_path: Path) -> None:
    records = [make_record(f"m{i}_top", f"m{i}_top.png", "Draw ü.", "x\ny") for i in range(3)]
    text = dump_records(records)
    assert text.splitlines()[0] == "[" and len(text.splitlines()) == 5
    assert json.loads(text) == records
    assert dump_records([]) == "[]\n"
    write_records(tmp_path / "train.json", records)
    assert json.loads((tmp_path / "train.json").read_text(encoding="utf-8")) == records
    assert [p.name for p in tmp_path.iterdir()] == ["train.json"], "no temporary file is left"
