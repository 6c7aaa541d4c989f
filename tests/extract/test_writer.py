"""The dataset writer: nothing complete-looking exists until the final rename."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from stages.extract.sources import Candidate
from stages.extract.writer import DatasetWriter, remove_stale_partials
from stages.protocol import UsageError
from tests.extract.roots import sample


def partials(parent: Path) -> list[Path]:
    return sorted(parent.glob(".*.partial-*"))


def test_commit_moves_a_complete_folder_into_place(tmp_path: Path) -> None:
    output = tmp_path / "data" / "set1"
    with DatasetWriter(output) as writer:
        writer.add_model(Candidate("00000007", path=str(sample("00000007"))))
        writer.add_model(Candidate("12345678", text='{"generated": true}'))
        assert not output.exists()
        assert partials(output.parent) == [writer.partial]
        facts = {"00000007": {"split": "train", "volume": 1.5e-6, "solids": 1, "key": "k"}}
        writer.commit({"train": ["00000007"], "validation": ["12345678"]}, {"name": "set1"}, facts)
    assert partials(output.parent) == []
    copied = output / "cad_json" / "0000" / "00000007.json"
    assert copied.read_bytes() == sample("00000007").read_bytes()
    assert (output / "cad_json" / "1234" / "12345678.json").read_text() == '{"generated": true}'
    assert json.loads((output / "split.json").read_text())["validation"] == ["12345678"]
    assert json.loads((output / "dataset.json").read_text()) == {"name": "set1"}
    assert json.loads((output / "models.json").read_text()) == facts


def test_an_error_leaves_nothing(tmp_path: Path) -> None:
    output = tmp_path / "set2"
    with pytest.raises(RuntimeError), DatasetWriter(output) as writer:
        writer.add_model(Candidate("00000007", path=str(sample("00000007"))))
        raise RuntimeError("stage failed")
    assert list(tmp_path.iterdir()) == []


def test_existing_output_is_refused_but_an_empty_folder_is_used(tmp_path: Path) -> None:
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "dataset.json").write_text("{}")
    with pytest.raises(UsageError, match="already exists"):
        DatasetWriter(taken)
    empty = tmp_path / "empty"
    empty.mkdir()
    with DatasetWriter(empty) as writer:
        writer.commit({"train": [], "validation": []}, {"name": "empty"})
    assert (empty / "dataset.json").is_file()
    assert not (empty / "models.json").exists()  # no facts given, no file


def test_stale_partials_go_and_live_ones_stay(tmp_path: Path) -> None:
    stale = tmp_path / ".old.partial-deadbeef"
    (stale / "cad_json").mkdir(parents=True)
    with DatasetWriter(tmp_path / "new") as live:
        assert not stale.exists()  # opening a writer cleans what no one holds
        assert remove_stale_partials(tmp_path) == []
        assert live.partial.is_dir()
        live.abort()
    assert partials(tmp_path) == []
