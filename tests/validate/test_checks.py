"""The checks no corruption elsewhere triggers: turns, answers outside the wrapper or that do
not build, sources that do not build, leakage found by geometric key alone and by answer alone,
and how models left out by convert are counted. Each edits the converted real samples."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

from stages.cad.openecad import unwrap_answer, wrap_answer
from tests.convert.datasets import (
    EMPTY_SAMPLE,
    VIEWS,
    read_records,
    run_stage_cli,
    write_records,
)
from tests.validate.test_validate import first_train, validate

ANSWER_PREFIX = "Of course, here are the codes:\n"


def model_of(record: dict) -> str:
    return record["id"].rsplit("_", 1)[0]


def answer_of(record: dict) -> str:
    return record["conversations"][1]["value"]


def set_answer(record: dict, answer: str) -> None:
    record["conversations"][1]["value"] = answer


def records_of(dataset: Path, name: str, model_id: str) -> list[dict]:
    return [r for r in read_records(dataset, name) if model_of(r) == model_id]


def test_a_conversation_that_is_not_human_gpt_pairs_is_turns(
    dataset_copy: Callable[[], Path],
) -> None:
    dataset = dataset_copy()
    records, record = first_train(dataset)
    record["conversations"].append({"from": "human", "value": "and the other side?"})
    write_records(dataset, "train.json", records)
    result = validate(dataset)
    assert result["problem_counts"] == {"turns": 1}
    assert result["problems"][0]["record"] == record["id"]
    assert result["validation"]["conversations_valid"] is False


def test_an_answer_outside_openecads_wrapper_is_answer_unwrap(
    dataset_copy: Callable[[], Path],
) -> None:
    dataset = dataset_copy()
    records, record = first_train(dataset)
    assert answer_of(record).startswith(ANSWER_PREFIX)
    set_answer(record, answer_of(record).removeprefix(ANSWER_PREFIX))
    write_records(dataset, "train.json", records)
    result = validate(dataset)
    assert result["problem_counts"] == {"answer_unwrap": 1}
    assert result["validation"]["answers_rebuild"] is False


def test_an_answer_that_parses_but_builds_nothing_is_answer_build(
    dataset_copy: Callable[[], Path],
) -> None:
    dataset = dataset_copy()
    records, record = first_train(dataset)
    answer = answer_of(record)
    flat = answer.replace("extent_one= ", "extent_one= 0. * ")
    assert flat != answer
    set_answer(record, flat)
    write_records(dataset, "train.json", records)
    result = validate(dataset)
    assert result["problem_counts"] == {"answer_build": 1}
    assert "zero depth" in result["problems"][0]["detail"]


def test_a_source_model_that_does_not_build_is_source_unbuildable(
    dataset_copy: Callable[[], Path],
) -> None:
    dataset = dataset_copy()
    _, record = first_train(dataset)
    model_id = model_of(record)
    source = dataset / "cad_json" / model_id[:4] / f"{model_id}.json"
    shutil.copyfile(dataset / "cad_json" / EMPTY_SAMPLE[:4] / f"{EMPTY_SAMPLE}.json", source)
    result = validate(dataset)
    assert result["problem_counts"] == {"source_unbuildable": len(VIEWS)}  # each view's record
    assert {p["record"] for p in result["problems"]} == {f"{model_id}_{v}" for v in VIEWS}
    assert result["validation"]["answers_rebuild"] is False


def test_the_same_shape_under_another_id_and_answer_is_leakage_by_key(
    dataset_copy: Callable[[], Path],
) -> None:
    """A validation model that is a train model's part under a new id, its answer written
    differently (a comment): neither its id nor its answer gives it away, its key does."""
    dataset = dataset_copy()
    train = read_records(dataset, "train.json")
    original = model_of(train[0])
    twin = "99990001"
    folder = dataset / "cad_json" / twin[:4]
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(
        dataset / "cad_json" / original[:4] / f"{original}.json", folder / f"{twin}.json"
    )
    split = json.loads((dataset / "split.json").read_text())
    split["validation"].append(twin)
    (dataset / "split.json").write_text(json.dumps(split))
    val = read_records(dataset, "val.json")
    for record in records_of(dataset, "train.json", original):
        view = record["id"].rsplit("_", 1)[1]
        shutil.copyfile(
            dataset / "images" / record["image"], dataset / "images" / f"{twin}_{view}.png"
        )
        copy = json.loads(json.dumps(record))
        copy.update(id=f"{twin}_{view}", image=f"{twin}_{view}.png")
        set_answer(copy, wrap_answer("# the same part\n" + unwrap_answer(answer_of(record))))
        val.append(copy)
    write_records(dataset, "val.json", val)
    result = validate(dataset)
    assert result["problem_counts"] == {"leakage": len(VIEWS)}  # each train record of it
    for problem in result["problems"]:
        assert problem["record"].rsplit("_", 1)[0] == original
        assert f"same geometric key as {twin}" in problem["detail"]
        assert "same answer" not in problem["detail"]
    assert result["validation"]["no_leakage"] is False


def test_the_same_answer_on_both_sides_is_leakage_even_when_it_builds_nothing(
    dataset_copy: Callable[[], Path],
) -> None:
    """An answer with no solid has no geometric key: only its text gives the leak away."""
    dataset = dataset_copy()
    train, record = first_train(dataset)
    broken = answer_of(record).replace("extent_one= ", "extent_one= 0. * ")
    set_answer(record, broken)
    write_records(dataset, "train.json", train)
    val = read_records(dataset, "val.json")
    set_answer(val[0], broken)
    write_records(dataset, "val.json", val)
    result = validate(dataset)
    assert result["problem_counts"] == {"answer_build": 2, "leakage": 1}
    (leak,) = [p for p in result["problems"] if p["check"] == "leakage"]
    assert leak["record"] == record["id"]
    assert leak["detail"] == f"same answer as {val[0]['id']} in val.json"


def test_models_convert_left_out_are_counted_not_errors(
    dataset_copy: Callable[[], Path],
) -> None:
    dataset = dataset_copy()
    skipped = json.loads((dataset / "skipped.json").read_text())["conversion"]
    assert skipped[EMPTY_SAMPLE] == "no_geometry"
    too_long = sum(1 for reason in skipped.values() if reason == "too_long")
    assert too_long > 0 and len(skipped) == too_long + 1
    result = validate(dataset)
    assert result["valid"] is True
    left_out = {"conversion": {"too_long": too_long, "no_geometry": 1}}
    assert result["stats"]["models_left_out"] == left_out


def test_a_report_that_cannot_be_written_fails_the_run(
    dataset_copy: Callable[[], Path],
) -> None:
    dataset = dataset_copy()
    (dataset / "validation.json").mkdir()
    done = run_stage_cli("stages.validate", "--dataset", str(dataset), "--workers", "1")
    assert done.returncode == 1, done.stderr
    end = json.loads(done.stdout.splitlines()[-1])
    assert (end["status"], end["reason"]) == ("failed", "write_failed")
    assert json.loads((dataset / "dataset.json").read_text())["stages"]["validation"] == "failed"
