"""The validate stage with the source models' facts that extraction recorded (``models.json``):
a listed source model is not built again, yet answers are checked against its volume exactly
as before; a model the file does not list, or a dataset without the file, is built."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

import stages.validate.work
from stages.dataset.layout import find_model_files, read_split
from stages.extract.check import CheckSettings, check_candidate
from stages.extract.sources import Candidate
from tests.validate.test_validate import checks_found, swap_answer, validate

SPLIT_NAMES = {"train": "train", "val": "validation"}


def write_models_json(dataset: Path, leave_out: frozenset[str] = frozenset()) -> dict:
    """``models.json`` as extraction writes it, from extraction's own check of each model."""
    files = find_model_files(dataset)
    facts = {}
    for side, ids in read_split(dataset).items():
        for model_id in ids:
            check = check_candidate(Candidate(model_id, path=str(files[model_id])), CheckSettings())
            if check.ok and model_id not in leave_out:
                facts[model_id] = {
                    "split": SPLIT_NAMES[side],
                    "volume": check.volume,
                    "solids": check.solids,
                    "key": check.key,
                }
    (dataset / "models.json").write_text(json.dumps(facts))
    return facts


@pytest.fixture
def source_builds(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The source models validation builds (one worker: the work runs in this process)."""
    built: list[str] = []
    real = stages.validate.work.source_volume

    def counted(path: str) -> tuple[float | None, str]:
        built.append(Path(path).stem)
        return real(path)

    monkeypatch.setattr(stages.validate.work, "source_volume", counted)
    return built


def test_listed_sources_are_not_built_again(
    dataset_copy: Callable[[], Path], source_builds: list[str]
) -> None:
    dataset = dataset_copy()
    write_models_json(dataset)
    result = validate(dataset)
    assert result["valid"] is True and result["problems"] == []
    assert source_builds == []
    stats = result["stats"]
    assert (stats["sources_recorded"], stats["sources_built"]) == (stats["models_checked"], 0)


def test_a_swapped_answer_is_still_a_volume_mismatch(
    dataset_copy: Callable[[], Path], source_builds: list[str]
) -> None:
    dataset = dataset_copy()
    write_models_json(dataset)
    swap_answer(dataset)
    result = validate(dataset)
    assert checks_found(result) == {"volume_mismatch"}
    assert result["validation"]["answers_rebuild"] is False
    assert source_builds == []


def test_the_volume_compared_with_is_the_recorded_one(
    dataset_copy: Callable[[], Path], source_builds: list[str]
) -> None:
    dataset = dataset_copy()
    facts = write_models_json(dataset)
    model_id = next(iter(facts))
    facts[model_id]["volume"] *= 1.5
    (dataset / "models.json").write_text(json.dumps(facts))
    result = validate(dataset)
    assert checks_found(result) == {"volume_mismatch"}
    assert {p["record"].rsplit("_", 1)[0] for p in result["problems"]} == {model_id}
    assert source_builds == []


def test_models_the_file_does_not_list_are_built(
    dataset_copy: Callable[[], Path], source_builds: list[str]
) -> None:
    dataset = dataset_copy()
    facts = write_models_json(dataset)
    missing = sorted(facts)[:2]
    write_models_json(dataset, leave_out=frozenset(missing))
    result = validate(dataset)
    assert result["valid"] is True
    assert sorted(source_builds) == missing
    assert result["stats"]["sources_built"] == 2


def test_without_the_file_every_source_is_built(
    dataset_copy: Callable[[], Path], source_builds: list[str]
) -> None:
    dataset = dataset_copy()
    result = validate(dataset)
    assert result["valid"] is True
    assert len(source_builds) == result["stats"]["models_checked"] > 0
    assert result["stats"]["sources_recorded"] == 0
    swap_answer(dataset)
    assert checks_found(validate(dataset)) == {"volume_mismatch"}


def test_an_unreadable_file_is_a_warning_and_sources_are_built(
    dataset_copy: Callable[[], Path], source_builds: list[str]
) -> None:
    dataset = dataset_copy()
    (dataset / "models.json").write_text("{ not json")
    result = validate(dataset)
    assert result["valid"] is True
    assert any("models.json" in warning for warning in result["warnings"])
    assert len(source_builds) == result["stats"]["models_checked"]


def test_a_listed_model_without_its_file_is_still_missing(
    dataset_copy: Callable[[], Path], source_builds: list[str]
) -> None:
    dataset = dataset_copy()
    facts = write_models_json(dataset)
    model_id = next(iter(facts))
    (dataset / "cad_json" / model_id[:4] / f"{model_id}.json").unlink()
    result = validate(dataset)
    assert checks_found(result) == {"source_missing"}
    assert source_builds == []
