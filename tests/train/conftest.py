"""Fixtures for the training tests: a tiny dataset whose answers are the real OpenECAD code of
the shared DeepCAD samples (images are simple drawings), and one finished test-run on it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from stages.train.synthetic import ANSWER_PREFIX, write_synthetic_dataset
from tests.train.helpers import BROKEN_RECORDS, TRAIN_ARGS, run_cli


@pytest.fixture(scope="session")
def real_answers(openecad_golden: Path) -> list[str]:
    return [f"{ANSWER_PREFIX}{p.read_text()}```" for p in sorted(openecad_golden.glob("*.py"))]


@pytest.fixture(scope="session")
def golden_dataset(tmp_path_factory: pytest.TempPathFactory, real_answers: list[str]) -> Path:
    """12 train + 4 val records with the real answers in turn; two broken train records first."""
    directory = write_synthetic_dataset(
        tmp_path_factory.mktemp("dataset"), 12, 4, image_size=32, answers=real_answers
    )
    train_file = directory / "train.json"
    train_file.write_text(json.dumps(BROKEN_RECORDS + json.loads(train_file.read_text())))
    return directory


@pytest.fixture(scope="session")
def finished_run(
    tmp_path_factory: pytest.TempPathFactory, golden_dataset: Path
) -> tuple[Path, list[dict[str, Any]]]:
    """One uninterrupted test-run: its output directory and events."""
    output = tmp_path_factory.mktemp("run") / "ckpt"
    code, events = run_cli(["--dataset", str(golden_dataset), "--output", str(output), *TRAIN_ARGS])
    assert code == 0, events[-1]
    return output, events
