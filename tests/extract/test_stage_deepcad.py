"""The extract stage on real DeepCAD files: the samples as a flat root, and small split-file
roots built from them to stage duplicates and broken models."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from stages.extract.sampling import TRAIN, VALIDATION
from stages.extract.sources import DeepcadSource
from tests.conftest import DEEPCAD_SAMPLES, REPO_ROOT
from tests.extract.roots import layout_root, sample
from tests.extract.stage_runs import (
    assert_models_json_matches,
    keys_of,
    model_file,
    read_split,
    run_extract,
)

NO_GEOMETRY = "00000176"
TRAIN_SIZE, VAL_SIZE = 9, 3


def seed_sampling(root: Path, split: str, first: set[str]) -> int:
    """A seed whose first ``len(first)`` candidates of ``split`` are ``first``... or, for one
    id, any seed that samples it among the first ``TRAIN_SIZE``."""
    for seed in range(200):
        order = [c.model_id for c in DeepcadSource(root, seed).candidates(split)]
        if len(first) == 1 and first <= set(order[:TRAIN_SIZE]):
            return seed
        if len(first) > 1 and set(order[: len(first)]) == first:
            return seed
    raise AssertionError(f"no seed samples {first} first")


def flat_args(output: Path, seed: int, *extra: str) -> list[str]:
    return [
        "--source", "deepcad", "--root", str(DEEPCAD_SAMPLES),
        "--train-size", str(TRAIN_SIZE), "--val-size", str(VAL_SIZE),
        "--output", str(output), "--seed", str(seed), *extra,
    ]  # fmt: skip


@pytest.fixture(scope="module")
def flat_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int, object]:
    seed = seed_sampling(DEEPCAD_SAMPLES, TRAIN, {NO_GEOMETRY})
    output = tmp_path_factory.mktemp("flat") / "samples_set"
    run = run_extract(*flat_args(output, seed, "--name", "samples_set"))
    assert run.returncode == 0, run.stderr
    return output, seed, run


def test_exact_sizes_disjoint_splits_and_files(flat_run) -> None:
    output, _, run = flat_run
    split = read_split(output)
    assert (len(split["train"]), len(split["validation"])) == (TRAIN_SIZE, VAL_SIZE)
    assert not set(split["train"]) & set(split["validation"])
    assert not keys_of(output, split["train"]) & keys_of(output, split["validation"])
    for model_id in split["train"] + split["validation"]:
        written = model_file(output, model_id).read_bytes()
        assert written == sample(model_id).read_bytes()
    assert run.result["output_path"] == str(output)
    assert (run.result["train"], run.result["val"], run.result["models"]) == (9, 3, 12)


def test_models_json_records_what_building_each_model_gives(flat_run) -> None:
    output, _, _ = flat_run
    assert_models_json_matches(output)
    facts = json.loads((output / "models.json").read_text())
    assert NO_GEOMETRY not in facts
    assert all(fact["volume"] > 0 and fact["solids"] >= 1 for fact in facts.values())


def test_unbuildable_model_is_replaced_and_counted(flat_run) -> None:
    output, _, run = flat_run
    assert NO_GEOMETRY not in read_split(output)["train"]
    assert run.result["skipped"] == {"no_geometry": 1}
    assert run.result["replaced"] == 1
    assert run.result["checked"] == TRAIN_SIZE + VAL_SIZE + 1
    (warning,) = run.of("warning")
    assert (warning["item"], warning["reason"]) == (NO_GEOMETRY, "no_geometry")
    start = run.of("start")[0]
    assert start["total"] == TRAIN_SIZE + VAL_SIZE
    assert run.of("progress")[-1]["extra"]["checked"] == run.result["checked"]
    assert run.of("done")[-1]["status"] == "completed"


def test_manifest(flat_run) -> None:
    output, seed, _ = flat_run
    manifest = json.loads((output / "dataset.json").read_text())
    assert manifest["name"] == "samples_set"
    assert manifest["source"] == {"kind": "deepcad", "root": str(DEEPCAD_SAMPLES.resolve())}
    assert (manifest["train_size"], manifest["val_size"], manifest["seed"]) == (9, 3, seed)
    assert manifest["filters"]["max_extrudes"] is None
    assert manifest["created_at"].endswith("+00:00")
    assert manifest["counts"]["models"] == 12
    assert manifest["counts"]["skipped"] == {"no_geometry": 1}
    assert manifest["stages"] == {
        "extraction": "completed",
        "rendering": "pending",
        "conversion": "pending",
        "validation": "pending",
    }


@pytest.mark.slow
def test_same_seed_same_choice_whatever_the_workers(flat_run, tmp_path: Path) -> None:
    output, seed, _ = flat_run
    again = run_extract(*flat_args(tmp_path / "again", seed, "--workers", "1"))
    assert again.returncode == 0, again.stderr
    assert read_split(tmp_path / "again") == read_split(output)
    other = run_extract(*flat_args(tmp_path / "other", seed + 1))
    assert other.returncode == 0, other.stderr
    assert read_split(tmp_path / "other") != read_split(output)


@pytest.mark.parametrize(
    ("train", "message"),
    [("12", "larger than the source's train split"), ("11", "ran out")],
)
def test_too_large_a_size_fails_clearly_and_leaves_nothing(
    tmp_path: Path, train: str, message: str
) -> None:
    args = flat_args(tmp_path / "big", 0)
    args[args.index("--train-size") + 1] = train
    run = run_extract(*args)
    assert run.returncode == 2
    assert message in run.stderr
    assert len(run.stderr.strip().splitlines()) == 1
    assert run.of("done")[-1]["status"] == "failed"
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("flag", "value"),
    [
        ("--train-size", "0"),
        ("--val-size", "1.5"),
        ("--source", "onshape"),
        ("--workers", "0"),
        ("--time-limit", "nan"),
    ],
)
def test_bad_arguments_are_one_line_and_exit_2(tmp_path: Path, flag: str, value: str) -> None:
    args = dict(zip(*[iter(flat_args(tmp_path / "x", 0))] * 2, strict=True))
    args[flag] = value
    run = run_extract(*(item for pair in args.items() for item in pair))
    assert run.returncode == 2
    assert len(run.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "x").exists()


def test_missing_root_names_deepcad_root(tmp_path: Path) -> None:
    run = run_extract(
        "--source", "deepcad", "--train-size", "1", "--val-size", "1",
        "--output", str(tmp_path / "x"),
    )  # fmt: skip
    assert run.returncode == 2
    assert "DEEPCAD_ROOT" in run.stderr


def test_existing_output_is_refused(flat_run) -> None:
    output, seed, _ = flat_run
    before = (output / "split.json").read_bytes()
    run = run_extract(*flat_args(output, seed + 2))
    assert run.returncode == 2
    assert "already exists" in run.stderr
    assert (output / "split.json").read_bytes() == before


# -- split-file roots: duplicates and broken models ----------------------------------------------


def test_validation_copy_of_a_train_part_is_dropped_and_replaced(tmp_path: Path) -> None:
    root = layout_root(
        tmp_path / "root",
        {
            "train": [("00000001", "00000007"), ("00000002", "00000061")],
            "validation": [
                ("90000001", "00000007"),
                ("90000002", "00000131"),
                ("90000003", "00000144"),
            ],
        },
    )
    output = tmp_path / "dups"
    seed = seed_sampling(root, VALIDATION, {"90000001", "90000002"})  # the copy is sampled
    run = run_extract(
        "--source", "deepcad", "--root", str(root), "--train-size", "2", "--val-size", "2",
        "--output", str(output), "--seed", str(seed),
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    split = read_split(output)
    assert sorted(split["validation"]) == ["90000002", "90000003"]
    assert run.result["duplicates_dropped"] == 1
    assert run.result["skipped"] == {"duplicate_key": 1}
    assert not keys_of(output, split["train"]) & keys_of(output, split["validation"])


@pytest.mark.parametrize("unique", [False, True])
def test_unique_keys_keeps_one_of_each_part(tmp_path: Path, unique: bool) -> None:
    train = [("00000001", "00000007"), ("00000002", "00000007"), ("00000003", "00000061")]
    root = layout_root(
        tmp_path / "root", {"train": train, "validation": [("90000001", "00000131")]}
    )
    seed = seed_sampling(root, TRAIN, {"00000001", "00000002"})  # the two copies come first
    run = run_extract(
        "--source", "deepcad", "--root", str(root), "--train-size", "2", "--val-size", "1",
        "--output", str(tmp_path / "out"), "--seed", str(seed),
        *(["--unique-keys"] if unique else []),
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    chosen = read_split(tmp_path / "out")["train"]
    assert len(chosen) == 2
    assert len(keys_of(tmp_path / "out", chosen)) == (2 if unique else 1)
    assert run.result["duplicates_dropped"] == (1 if unique else 0)


def test_every_skip_reason_is_counted(tmp_path: Path) -> None:
    train = [
        ("00000001", None),  # listed, but no file
        ("00000002", "{ not json"),
        ("00000003", NO_GEOMETRY),
        ("00000004", "00001616"),  # 9 extrudes
        ("00000005", "00000007"),
        ("00000006", "00000061"),
    ]
    root = layout_root(
        tmp_path / "root", {"train": train, "validation": [("90000001", "00000131")]}
    )
    seed = seed_sampling(root, TRAIN, {f"0000000{i}" for i in range(1, 5)})  # the bad ones first
    run = run_extract(
        "--source", "deepcad", "--root", str(root), "--train-size", "2", "--val-size", "1",
        "--output", str(tmp_path / "out"), "--max-extrudes", "3", "--seed", str(seed),
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert sorted(read_split(tmp_path / "out")["train"]) == ["00000005", "00000006"]
    assert run.result["skipped"] == {
        "missing_file": 1,
        "bad_json": 1,
        "no_geometry": 1,
        "too_many_extrudes": 1,
    }
    assert sorted(w["reason"] for w in run.of("warning")) == sorted(run.result["skipped"])


def test_spec_script_is_the_same_stage(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(REPO_ROOT / "scripts" / "extract_deepcad_subset.py"),
         "--source", "deepcad", "--train-size", "0", "--val-size", "1",
         "--output", str(tmp_path / "x")],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "python -m stages.extract: argument --train-size: 0 is not at least 1"
    ]
