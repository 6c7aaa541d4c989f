"""The extract stage on the synthetic source: no files needed, deterministic by seed."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.extract.stage_runs import (
    assert_models_json_matches,
    keys_of,
    model_file,
    read_split,
    run_extract,
)

TRAIN_SIZE, VAL_SIZE = 10, 4


def synthetic(output: Path, seed: int) -> list[str]:
    return [
        "--source", "synthetic", "--train-size", str(TRAIN_SIZE), "--val-size", str(VAL_SIZE),
        "--output", str(output), "--seed", str(seed), "--workers", "2",
    ]  # fmt: skip


def dataset_bytes(dataset: Path) -> dict[str, bytes]:
    split = read_split(dataset)
    return {i: model_file(dataset, i).read_bytes() for i in split["train"] + split["validation"]}


@pytest.fixture(scope="module")
def seed_5(tmp_path_factory: pytest.TempPathFactory) -> Path:
    output = tmp_path_factory.mktemp("synth") / "synth5"
    run = run_extract(*synthetic(output, 5))
    assert run.returncode == 0, run.stderr
    assert run.result["models"] == TRAIN_SIZE + VAL_SIZE
    return output


def test_exact_sizes_and_disjoint_splits(seed_5: Path) -> None:
    split = read_split(seed_5)
    assert (len(split["train"]), len(split["validation"])) == (TRAIN_SIZE, VAL_SIZE)
    assert not set(split["train"]) & set(split["validation"])
    assert not keys_of(seed_5, split["train"]) & keys_of(seed_5, split["validation"])


def test_models_json_records_the_generated_models(seed_5: Path) -> None:
    assert_models_json_matches(seed_5)


def test_same_seed_writes_the_same_dataset(seed_5: Path, tmp_path: Path) -> None:
    run = run_extract(*synthetic(tmp_path / "again", 5))
    assert run.returncode == 0, run.stderr
    assert read_split(tmp_path / "again") == read_split(seed_5)
    assert dataset_bytes(tmp_path / "again") == dataset_bytes(seed_5)


def test_another_seed_writes_other_models(seed_5: Path, tmp_path: Path) -> None:
    run = run_extract(*synthetic(tmp_path / "other", 6))
    assert run.returncode == 0, run.stderr
    assert set(dataset_bytes(tmp_path / "other").values()).isdisjoint(
        dataset_bytes(seed_5).values()
    )
