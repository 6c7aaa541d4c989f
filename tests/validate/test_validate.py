"""The validate stage: a clean dataset passes, and each corruption is reported as exactly
the problem it is."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

import stages.validate.__main__ as validate_main
from stages.dataset.layout import folder_size
from stages.dataset.manifest import mark_stage
from stages.dataset.tokens import DEFAULT_MAX_ANSWER_TOKENS, EstimatedCounter
from stages.protocol import CancelFlag, StageCancelled
from stages.validate.run import ValidateOptions, validate_dataset
from tests.convert.datasets import (
    RESOLUTION,
    make_dataset,
    quiet_reporter,
    read_manifest,
    read_records,
    run_convert,
    run_stage_cli,
    write_records,
)

FLAGS = (
    "format_valid",
    "all_images_exist",
    "conversations_valid",
    "no_missing_files",
    "answers_rebuild",
    "no_leakage",
    "within_token_budget",
    "images_valid",
)


def validate(
    dataset: Path,
    resolution: int | None = RESOLUTION,
    max_answer_tokens: int = DEFAULT_MAX_ANSWER_TOKENS,
    workers: int = 1,
) -> dict:
    options = ValidateOptions(
        resolution=resolution,
        resolution_source="manifest" if resolution else "most common",
        max_answer_tokens=max_answer_tokens,
        workers=workers,
    )
    return validate_dataset(dataset, options, EstimatedCounter(), quiet_reporter("validate"))


def checks_found(result: dict) -> set[str]:
    return {problem["check"] for problem in result["problems"]}


def test_the_converted_samples_validate_clean(converted: Path) -> None:
    result = validate(converted, workers=2)
    assert result["problems"] == [] and result["problems_total"] == 0
    assert result["valid"] is True
    assert all(result["validation"][flag] is True for flag in FLAGS)
    train, val = read_records(converted, "train.json"), read_records(converted, "val.json")
    images = {r["image"] for r in train + val}
    assert result["validation"]["images_checked"] == result["validation"]["total_images"]
    assert result["validation"]["total_images"] == len(images)
    stats = result["stats"]
    assert (stats["train_samples"], stats["val_samples"]) == (len(train), len(val))
    assert stats["image_resolution"] == f"{RESOLUTION}x{RESOLUTION}"
    assert stats["models_checked"] == len({r["id"].rsplit("_", 1)[0] for r in train + val})
    assert stats["answers_interpreted"] == stats["models_checked"]  # once per model, not view
    tokens = stats["answer_tokens"]
    assert 0 < tokens["p50"] <= tokens["p90"] <= tokens["p99"] <= tokens["max"]
    assert tokens["max"] <= DEFAULT_MAX_ANSWER_TOKENS
    assert json.loads((converted / "validation.json").read_text()) == result


def first_train(dataset: Path) -> tuple[list[dict], dict]:
    records = read_records(dataset, "train.json")
    return records, records[0]


def delete_image(dataset: Path) -> None:
    _, record = first_train(dataset)
    (dataset / "images" / record["image"]).unlink()


def truncate_image(dataset: Path) -> None:
    _, record = first_train(dataset)
    path = dataset / "images" / record["image"]
    path.write_bytes(path.read_bytes()[:-40])


def drop_image_token(dataset: Path) -> None:
    records, record = first_train(dataset)
    human = record["conversations"][0]
    human["value"] = human["value"].removeprefix("<image>\n")
    write_records(dataset, "train.json", records)


def swap_answer(dataset: Path) -> None:
    records, record = first_train(dataset)
    other = next(r for r in records if r["id"].split("_")[0] != record["id"].split("_")[0])
    record["conversations"][1]["value"] = other["conversations"][1]["value"]
    write_records(dataset, "train.json", records)


def duplicate_id(dataset: Path) -> None:
    records, record = first_train(dataset)
    records[1]["id"] = record["id"]
    write_records(dataset, "train.json", records)


def val_model_in_train(dataset: Path) -> None:
    train, val = read_records(dataset, "train.json"), read_records(dataset, "val.json")
    train.append(val.pop(0))
    write_records(dataset, "train.json", train)
    write_records(dataset, "val.json", val)


@pytest.mark.parametrize(
    ("corrupt", "check", "flag"),
    [
        (delete_image, "image_missing", "all_images_exist"),
        (truncate_image, "image_corrupt", "images_valid"),
        (drop_image_token, "image_token", "conversations_valid"),
        (swap_answer, "volume_mismatch", "answers_rebuild"),
        (duplicate_id, "duplicate_id", "format_valid"),
        (val_model_in_train, "leakage", "no_leakage"),
    ],
)
def test_each_corruption_is_reported_as_exactly_that_problem(
    dataset_copy: Callable[[], Path], corrupt: Callable[[Path], None], check: str, flag: str
) -> None:
    dataset = dataset_copy()
    corrupt(dataset)
    result = validate(dataset)
    assert checks_found(result) == {check}
    assert result["valid"] is False
    assert result["validation"][flag] is False
    untouched = set(FLAGS) - {flag} - ({"no_missing_files"} if check == "image_missing" else set())
    assert all(result["validation"][name] for name in untouched)
    assert any(str(result["problems_total"]) in w for w in result["warnings"])


def test_an_image_of_another_size_is_reported(dataset_copy: Callable[[], Path]) -> None:
    dataset = dataset_copy()
    assert checks_found(validate(dataset, resolution=RESOLUTION * 2)) == {"image_resolution"}
    # Without a stated resolution the most common size is expected: all agree.
    assert validate(dataset, resolution=None)["valid"] is True


def test_answers_over_the_budget_are_reported(converted: Path) -> None:
    result = validate(converted, max_answer_tokens=300)
    assert checks_found(result) == {"token_budget"}
    assert result["validation"]["within_token_budget"] is False


def test_an_answer_that_does_not_parse_is_reported(dataset_copy: Callable[[], Path]) -> None:
    dataset = dataset_copy()
    records, record = first_train(dataset)
    gpt = record["conversations"][1]
    gpt["value"] = gpt["value"].replace("add_extrude(", "add_extrusion(", 1)
    write_records(dataset, "train.json", records)
    result = validate(dataset)
    assert checks_found(result) == {"answer_parse"}
    assert result["validation"]["answers_rebuild"] is False


def test_missing_record_file_and_source_model(dataset_copy: Callable[[], Path]) -> None:
    dataset = dataset_copy()
    (dataset / "val.json").unlink()
    _, record = first_train(dataset)
    model_id = record["id"].rsplit("_", 1)[0]
    (dataset / "cad_json" / model_id[:4] / f"{model_id}.json").unlink()
    result = validate(dataset)
    assert checks_found(result) == {"missing_file", "source_missing"}
    assert result["validation"]["no_missing_files"] is False
    assert any("val.json holds no records" in w for w in result["warnings"])


def test_schema_problems_do_not_stop_the_rest(dataset_copy: Callable[[], Path]) -> None:
    dataset = dataset_copy()
    records, _ = first_train(dataset)
    records.insert(1, {"id": "stray", "image": "../escape.png", "conversations": []})
    records.insert(2, ["not", "a", "record"])
    write_records(dataset, "train.json", records)
    result = validate(dataset)
    assert checks_found(result) == {"schema"}
    assert {p["record"] for p in result["problems"]} == {"stray", "train.json[2]"}


def test_problems_are_capped_with_a_total(dataset_copy: Callable[[], Path]) -> None:
    dataset = dataset_copy()
    for image in (dataset / "images").iterdir():
        image.unlink()
    records, _ = first_train(dataset)
    many = [dict(records[0], id=f"copy{n}") for n in range(300)]
    write_records(dataset, "train.json", records + many)
    result = validate(dataset)
    assert result["problems_total"] > len(result["problems"]) == 200
    # Models convert left out (no records) are missing their rendered images too.
    left_out = len(json.loads((dataset / "skipped.json").read_text())["conversion"])
    assert checks_found(result) == {"image_missing", "model_images_missing"}
    assert result["problem_counts"]["model_images_missing"] == left_out
    assert result["problem_counts"]["image_missing"] == result["problems_total"] - left_out


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return run_stage_cli("stages.validate", *args)


def test_cli_reports_bad_data_in_the_result_not_the_exit_code(tmp_path: Path) -> None:
    dataset = make_dataset(tmp_path / "d", train=("00000007", "00000061"), val=("00000767",))
    run_convert(dataset)
    (dataset / "images" / "00000007_front.png").unlink()
    done = run_cli("--dataset", str(dataset), "--workers", "1")
    assert done.returncode == 0, done.stderr
    events = [json.loads(line) for line in done.stdout.splitlines()]
    result = next(e for e in events if e["event"] == "result")
    assert result["valid"] is False and result["validation"]["all_images_exist"] is False
    assert result["stats"]["image_resolution_from"] == "manifest"
    assert events[-1] == {"event": "done", "status": "completed"}


@pytest.mark.parametrize("args", [("--dataset", "absent"), ("--dataset", ".", "--resolution", "0")])
def test_cli_bad_input_exits_2(tmp_path: Path, args: tuple[str, ...]) -> None:
    named = [str(tmp_path / a) if a in ("absent", ".") else a for a in args]
    done = run_cli(*named)
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1


def test_the_stage_keeps_the_validation_entry_of_the_manifest(tmp_path: Path) -> None:
    dataset = make_dataset(tmp_path / "d", train=("00000007",), val=("00000767",))
    run_convert(dataset)
    mark_stage(dataset, "conversion", "completed")
    (dataset / "images" / "00000767_top.png").unlink()
    done = run_cli("--dataset", str(dataset), "--workers", "1")
    assert done.returncode == 0, done.stderr
    result = next(e for e in map(json.loads, done.stdout.splitlines()) if e["event"] == "result")
    manifest = read_manifest(dataset)
    assert manifest["stages"] == {
        "rendering": "completed",
        "conversion": "completed",
        "validation": "completed",  # the run completed: the data's problems are in the result
    }
    assert manifest["validation"] == {"valid": False, "validation": result["validation"]}
    assert manifest["validation"]["validation"]["all_images_exist"] is False
    measured, manifest_bytes = folder_size(dataset), (dataset / "dataset.json").stat().st_size
    assert measured - manifest_bytes < manifest["counts"]["bytes"] <= measured


@pytest.mark.parametrize("ending", [StageCancelled(), RuntimeError("a worker broke")])
def test_a_cancelled_or_broken_validation_is_marked_failed(
    dataset_copy: Callable[[], Path], monkeypatch: pytest.MonkeyPatch, ending: Exception
) -> None:
    dataset = dataset_copy()
    seen: list[str] = []

    def interrupted(path: Path, *rest: object) -> dict:
        seen.append(read_manifest(path)["stages"]["validation"])
        raise ending

    monkeypatch.setattr(validate_main, "validate_dataset", interrupted)
    args = validate_main.build_parser().parse_args(["--dataset", str(dataset), "--workers", "1"])
    with pytest.raises(type(ending)):
        validate_main.body(args, quiet_reporter("validate"), CancelFlag())
    assert seen == ["in_progress"]
    manifest = read_manifest(dataset)
    assert manifest["stages"]["validation"] == "failed"
    assert "validation" not in manifest, "no result: no validation section"
    assert manifest["counts"]["bytes"] > 0


def test_bad_input_marks_the_validation_failed(dataset_copy: Callable[[], Path]) -> None:
    dataset = dataset_copy()
    done = run_cli("--dataset", str(dataset), "--resolution", "0")
    assert done.returncode == 2
    assert read_manifest(dataset)["stages"]["validation"] == "failed"
