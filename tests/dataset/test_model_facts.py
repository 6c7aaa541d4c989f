"""``models.json``: the facts extraction writes are the facts validation reads back."""

from __future__ import annotations

import json
from pathlib import Path

from stages.dataset.model_facts import ModelFacts, read_model_facts


def test_written_facts_read_back_and_malformed_entries_are_left_out(tmp_path: Path) -> None:
    good = ModelFacts("train", 1.5e-6, 1, "k1")
    data = {
        "00000007": good.as_json(),
        "no_volume": {"split": "train", "solids": 1, "key": "k"},
        "zero_volume": {**good.as_json(), "volume": 0.0},
        "bool_solids": {**good.as_json(), "solids": True},
        "not_an_object": [1, 2],
    }
    (tmp_path / "models.json").write_text(json.dumps(data))
    assert good.as_json() == {"split": "train", "volume": 1.5e-6, "solids": 1, "key": "k1"}
    assert read_model_facts(tmp_path) == ({"00000007": good}, None)


def test_no_file_is_no_facts_and_a_bad_file_is_a_warning(tmp_path: Path) -> None:
    assert read_model_facts(tmp_path) == ({}, None)
    (tmp_path / "models.json").write_text("{ not json")
    facts, warning = read_model_facts(tmp_path)
    assert facts == {} and warning is not None and "models.json" in warning
    (tmp_path / "models.json").write_text("[]")
    assert "not an object" in str(read_model_facts(tmp_path)[1])
