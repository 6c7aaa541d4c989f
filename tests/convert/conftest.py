"""A converted dataset made once per session from the real samples; tests copy it to change it."""

from __future__ import annotations

import io
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from stages.convert.budget import DEFAULT_MAX_ANSWER_TOKENS, EstimatedCounter
from stages.convert.run import ConvertOptions, convert_dataset
from stages.protocol import Reporter
from tests.conftest import REPO_ROOT
from tests.convert.datasets import VIEWS, make_dataset


def convert_options(**changes: object) -> ConvertOptions:
    values: dict = {
        "layout": "per_view",
        "views": VIEWS,
        "randomize_templates": True,
        "seed": 0,
        "max_answer_tokens": DEFAULT_MAX_ANSWER_TOKENS,
        "workers": 1,
    }
    values.update(changes)
    return ConvertOptions(**values)


def quiet_reporter(stage: str) -> Reporter:
    return Reporter(stage, mode="json", out=io.StringIO())


def run_convert(dataset: Path, **changes: object) -> dict:
    return convert_dataset(
        dataset, convert_options(**changes), EstimatedCounter(), quiet_reporter("convert")
    )


def run_stage_cli(module: str, *args: str) -> subprocess.CompletedProcess[str]:
    """``python -m module --progress json args`` from the repository root."""
    return subprocess.run(
        [sys.executable, "-m", module, "--progress", "json", *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture(scope="session")
def converted(tmp_path_factory: pytest.TempPathFactory, deepcad_samples: Path) -> Path:
    """The samples as a rendered and converted dataset (per_view, default budget)."""
    dataset = make_dataset(tmp_path_factory.mktemp("converted") / "samples")
    run_convert(dataset)
    return dataset


@pytest.fixture
def dataset_copy(converted: Path, tmp_path: Path) -> Callable[[], Path]:
    """A fresh copy of the converted dataset, to corrupt in one way."""

    def copy() -> Path:
        return Path(shutil.copytree(converted, tmp_path / "copy"))

    return copy
