"""The convert stage on a dataset made from the real DeepCAD samples."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

import stages.convert.__main__ as convert_main
from stages.convert.templates import TEMPLATES
from stages.dataset.layout import folder_size
from stages.dataset.manifest import mark_stage
from stages.dataset.tokens import DEFAULT_MAX_ANSWER_TOKENS, EstimatedCounter
from stages.protocol import CancelFlag, StageCancelled
from tests.conftest import OPENECAD_GOLDEN
from tests.convert.datasets import (
    EMPTY_SAMPLE,
    TRAIN_IDS,
    VAL_IDS,
    VIEWS,
    make_dataset,
    quiet_reporter,
    read_manifest,
    read_records,
    run_convert,
    run_stage_cli,
)

ANSWER_PREFIX = "Of course, here are the codes:\n```python\n"


def golden_answer(model_id: str) -> str:
    return f"{ANSWER_PREFIX}{(OPENECAD_GOLDEN / f'{model_id}.py').read_text()}```"


def over_budget(model_ids: tuple[str, ...]) -> set[str]:
    """The samples whose answer the default budget drops (estimated tokens)."""
    ids = [i for i in model_ids if i != EMPTY_SAMPLE]
    counts = EstimatedCounter().count([golden_answer(i) for i in ids])
    return {i for i, n in zip(ids, counts, strict=True) if n > DEFAULT_MAX_ANSWER_TOKENS}


def model_of(record: dict) -> str:
    return record["id"].rsplit("_", 1)[0]


def test_per_view_records_hold_every_view_of_every_usable_model(converted: Path) -> None:
    train, val = read_records(converted, "train.json"), read_records(converted, "val.json")
    usable_train = [i for i in TRAIN_IDS if i != EMPTY_SAMPLE and i not in over_budget(TRAIN_IDS)]
    usable_val = [i for i in VAL_IDS if i not in over_budget(VAL_IDS)]
    assert [r["id"] for r in train] == [f"{m}_{v}" for m in usable_train for v in VIEWS]
    assert [r["id"] for r in val] == [f"{m}_{v}" for m in usable_val for v in VIEWS]
    for record in train + val:
        assert set(record) == {"id", "image", "conversations"}
        assert record["image"] == f"{record['id']}.png"
        human, gpt = record["conversations"]
        assert human["from"] == "human" and gpt["from"] == "gpt"
        assert human["value"].startswith("<image>\n")
        view = record["id"].rsplit("_", 1)[1]
        assert view in human["value"], "a per-view prompt names its view"
        assert gpt["value"] == golden_answer(model_of(record))


def test_result_counts_what_was_skipped(tmp_path: Path) -> None:
    dataset = make_dataset(tmp_path / "d")
    (dataset / "images" / "00000007_top.png").unlink()
    (dataset / "images" / "00000330_front.png").unlink()
    result = run_convert(dataset)
    dropped = over_budget(TRAIN_IDS + VAL_IDS)
    assert result["failed_models"] == {"no_geometry": 1}
    assert result["missing_images"] == 2
    # 00000330 is over the budget: its two remaining images are dropped as too long.
    assert result["dropped_too_long"] == 3 * len(dropped) - 1
    usable = len(TRAIN_IDS) + len(VAL_IDS) - 1 - len(dropped)
    assert result["train_conversations"] + result["val_conversations"] == 3 * usable - 1
    assert result["train_file"] == "train.json" and result["val_file"] == "val.json"
    assert result["token_counter"] == "estimate"
    assert result["layout"] == "per_view"
    records = read_records(dataset, "train.json") + read_records(dataset, "val.json")
    assert "00000007_top" not in {r["id"] for r in records}
    mean = sum(len(r["conversations"][1]["value"]) for r in records) / len(records)
    assert result["avg_answer_chars"] == pytest.approx(mean, abs=0.05)


def test_long_answers_are_dropped_never_truncated(tmp_path: Path) -> None:
    dataset = make_dataset(tmp_path / "d", train=("00000007", "00000061"), val=("00000131",))
    short = EstimatedCounter().count([golden_answer("00000007")])[0]
    result = run_convert(dataset, max_answer_tokens=short)
    assert result["dropped_too_long"] == 6  # three views each of 00000061 and 00000131
    train = read_records(dataset, "train.json")
    assert {model_of(r) for r in train} == {"00000007"}
    assert read_records(dataset, "val.json") == []
    assert all(r["conversations"][1]["value"].endswith("```") for r in train)


@pytest.mark.parametrize("layout", ["composite", "iso"])
def test_single_image_layouts_make_one_record_per_model(converted: Path, layout: str) -> None:
    result = run_convert(converted, layout=layout)
    train = read_records(converted, "train.json")
    assert result["layout"] == layout
    assert result["train_conversations"] == len(train) > 0
    for record in train:
        assert record["id"] == f"{model_of(record)}_{layout}"
        assert record["image"] == f"{model_of(record)}_{layout}.png"
        assert record["conversations"][0]["value"].removeprefix("<image>\n") in TEMPLATES[layout]
    run_convert(converted)  # leave the shared dataset per_view again


def test_prompts_are_fixed_by_seed_and_plain_without_randomizing(tmp_path: Path) -> None:
    dataset = make_dataset(tmp_path / "d", train=TRAIN_IDS[:4], val=VAL_IDS[:1])

    def prompts(**options: object) -> list[str]:
        run_convert(dataset, **options)
        return [r["conversations"][0]["value"] for r in read_records(dataset, "train.json")]

    first = prompts(seed=3)
    assert prompts(seed=3) == first
    assert prompts(seed=4) != first
    assert len(set(first)) > 3, "randomised prompts use several wordings"
    plain = prompts(randomize_templates=False)
    views = [r["id"].rsplit("_", 1)[1] for r in read_records(dataset, "train.json")]
    assert plain == [f"<image>\n{TEMPLATES['per_view'][0].format(view=v)}" for v in views]


def test_workers_give_the_same_files(tmp_path: Path) -> None:
    dataset = make_dataset(tmp_path / "d", train=TRAIN_IDS[:5], val=VAL_IDS[:2])
    run_convert(dataset, workers=1)
    alone = (dataset / "train.json").read_bytes(), (dataset / "val.json").read_bytes()
    run_convert(dataset, workers=2)
    assert ((dataset / "train.json").read_bytes(), (dataset / "val.json").read_bytes()) == alone


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return run_stage_cli("stages.convert", *args)


def test_cli_reports_events_and_result(tmp_path: Path) -> None:
    dataset = make_dataset(tmp_path / "d", train=TRAIN_IDS[:2], val=("00000767",))
    done = run_cli("--dataset", str(dataset), "--seed", "1", "--workers", "1")
    assert done.returncode == 0, done.stderr
    events = [json.loads(line) for line in done.stdout.splitlines()]
    assert events[0]["event"] == "start" and events[-1] == {"event": "done", "status": "completed"}
    result = next(e for e in events if e["event"] == "result")
    assert result["train_conversations"] == 6 and result["val_conversations"] == 3


@pytest.mark.parametrize(
    "args",
    [
        ("--layout", "sideways"),
        ("--format", "llava"),
        ("--views", "front,upside"),
        ("--max-answer-tokens", "0"),
        ("--tokenizer", "no/such/folder"),
    ],
)
def test_cli_bad_input_is_one_line_and_exit_2(converted: Path, args: tuple[str, ...]) -> None:
    done = run_cli("--dataset", str(converted), *args)
    assert done.returncode == 2
    assert len(done.stderr.strip().splitlines()) == 1


def test_cli_without_split_is_bad_input(tmp_path: Path) -> None:
    dataset = make_dataset(tmp_path / "d", train=TRAIN_IDS[:1], val=())
    (dataset / "split.json").unlink()
    done = run_cli("--dataset", str(dataset))
    assert done.returncode == 2 and "split.json" in done.stderr


def test_cli_defaults_to_the_views_the_dataset_was_rendered_with(tmp_path: Path) -> None:
    dataset = make_dataset(tmp_path / "d", train=TRAIN_IDS[:2], val=("00000767",))
    manifest = json.loads((dataset / "dataset.json").read_text())
    manifest["render"]["views"] = ["top", "iso"]
    (dataset / "dataset.json").write_text(json.dumps(manifest))
    assert run_cli("--dataset", str(dataset), "--workers", "1").returncode == 0
    ids = [r["id"] for r in read_records(dataset, "train.json")]
    assert ids == [f"{m}_{v}" for m in TRAIN_IDS[:2] for v in ("top", "iso")]


def test_a_layout_without_any_image_is_bad_input(tmp_path: Path) -> None:
    dataset = make_dataset(tmp_path / "d", train=TRAIN_IDS[:2], val=(), image_names=VIEWS)
    done = run_cli("--dataset", str(dataset), "--layout", "composite")
    assert done.returncode == 2 and "composite" in done.stderr


def test_the_stage_keeps_the_conversion_entry_of_the_manifest(tmp_path: Path) -> None:
    dataset = make_dataset(tmp_path / "d", train=TRAIN_IDS[:2], val=("00000767",))
    mark_stage(dataset, "validation", "completed", validation={"valid": True})
    done = run_cli(
        "--dataset", str(dataset), "--seed", "1", "--no-randomize-templates",
        "--max-answer-tokens", "900", "--workers", "1",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    result = next(e for e in map(json.loads, done.stdout.splitlines()) if e["event"] == "result")
    manifest = read_manifest(dataset)
    assert manifest["stages"]["rendering"] == "completed", "earlier stages are left alone"
    assert manifest["stages"]["conversion"] == "completed"
    assert manifest["stages"]["validation"] == "pending", "the new records are not validated"
    assert manifest["counts"]["conversations"] == {
        "train": result["train_conversations"],
        "val": result["val_conversations"],
    }
    measured, manifest_bytes = folder_size(dataset), (dataset / "dataset.json").stat().st_size
    assert measured - manifest_bytes < manifest["counts"]["bytes"] <= measured  # before it grew
    assert manifest["conversion"] == {
        "format": "tinyllava",
        "randomize_templates": False,
        "layout": "per_view",
        "seed": 1,
        "max_answer_tokens": 900,
    }


def test_a_failed_conversion_is_marked_failed(tmp_path: Path) -> None:
    dataset = make_dataset(tmp_path / "d", train=TRAIN_IDS[:2], val=(), image_names=VIEWS)
    done = run_cli("--dataset", str(dataset), "--layout", "composite")
    assert done.returncode == 2
    manifest = read_manifest(dataset)
    assert manifest["stages"]["conversion"] == "failed"
    assert manifest["counts"]["bytes"] > 0


@pytest.mark.parametrize("ending", [StageCancelled(), RuntimeError("a worker broke")])
def test_a_cancelled_or_broken_conversion_is_marked_failed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, ending: Exception
) -> None:
    dataset = make_dataset(tmp_path / "d", train=TRAIN_IDS[:1], val=())
    seen: list[str] = []

    def interrupted(path: Path, *rest: object) -> dict:
        seen.append(read_manifest(path)["stages"]["conversion"])
        raise ending

    monkeypatch.setattr(convert_main, "convert_dataset", interrupted)
    args = convert_main.build_parser().parse_args(["--dataset", str(dataset), "--workers", "1"])
    with pytest.raises(type(ending)):
        convert_main.body(args, quiet_reporter("convert"), CancelFlag())
    assert seen == ["in_progress"]
    assert read_manifest(dataset)["stages"]["conversion"] == "failed"


def failed_events(done: subprocess.CompletedProcess[str]) -> tuple[dict, dict]:
    """The result and done events of a run that must have failed with exit code 1."""
    assert done.returncode == 1, done.stderr
    events = [json.loads(line) for line in done.stdout.splitlines()]
    assert events[-1]["event"] == "done" and events[-1]["status"] == "failed"
    return next(e for e in events if e["event"] == "result"), events[-1]


def test_a_batch_where_no_model_gets_a_record_ends_failed(tmp_path: Path) -> None:
    dataset = make_dataset(tmp_path / "d", train=(EMPTY_SAMPLE, "00000007"), val=())
    done = run_cli("--dataset", str(dataset), "--workers", "1", "--max-answer-tokens", "5")
    result, end = failed_events(done)
    assert end["reason"] == "all_failed"
    assert end["error"] == "all_failed: all 2 models failed (no_geometry 1, too_long 1)"
    assert result["failed_models"] == {"no_geometry": 1} and result["dropped_too_long"] == 3
    assert not (dataset / "train.json").exists(), "a failed run writes no records"
    assert read_manifest(dataset)["stages"]["conversion"] == "failed"


def test_a_record_file_that_cannot_be_written_ends_write_failed(tmp_path: Path) -> None:
    dataset = make_dataset(tmp_path / "d", train=TRAIN_IDS[:2], val=("00000767",))
    (dataset / "val.json").mkdir()  # a folder where the file goes
    result, end = failed_events(run_cli("--dataset", str(dataset), "--workers", "1"))
    assert end["reason"] == "write_failed"
    assert end["error"].startswith(f"write_failed: cannot write {dataset / 'val.json'}")
    assert result["val_conversations"] == 3
    assert read_manifest(dataset)["stages"]["conversion"] == "failed"


def test_models_left_out_are_named_with_their_reason(tmp_path: Path) -> None:
    dataset = make_dataset(tmp_path / "d", train=(EMPTY_SAMPLE, "00000007"), val=("00000061",))
    for view in VIEWS:
        (dataset / "images" / f"00000061_{view}.png").unlink()
    run_convert(dataset)
    skipped = json.loads((dataset / "skipped.json").read_text())
    assert skipped == {"conversion": {EMPTY_SAMPLE: "no_geometry", "00000061": "missing_images"}}
