"""Sources: a flat folder, a DeepCAD root with a split file, and what makes one unusable."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from stages.extract.sampling import TRAIN, VALIDATION, hashed_split
from stages.extract.sources import DeepcadSource, describe_source, open_source
from stages.protocol import UsageError
from tests.conftest import DEEPCAD_SAMPLES, REPO_ROOT
from tests.extract.roots import layout_root

SAMPLE_STEMS = sorted(p.stem for p in DEEPCAD_SAMPLES.glob("*.json"))


def test_flat_folder_splits_by_id_hash(deepcad_samples: Path) -> None:
    info = describe_source("deepcad", str(deepcad_samples))
    assert info["kind"] == "deepcad"
    assert info["train_available"] + info["validation_available"] == len(SAMPLE_STEMS) == 15
    source = DeepcadSource(deepcad_samples)
    train = [c.model_id for c in source.candidates(TRAIN)]
    val = [c.model_id for c in source.candidates(VALIDATION)]
    assert sorted(train + val) == SAMPLE_STEMS
    assert all(hashed_split(i) == VALIDATION for i in val)
    assert all(Path(c.path).is_file() for c in source.candidates(TRAIN))


def test_candidate_order_follows_the_seed(deepcad_samples: Path) -> None:
    def order(seed: int) -> list[str]:
        return [c.model_id for c in DeepcadSource(deepcad_samples, seed).candidates(TRAIN)]

    assert order(1) == order(1)
    assert order(1) != order(2)


def test_split_file_root(tmp_path: Path) -> None:
    root = layout_root(
        tmp_path,
        {
            "train": [("00000007", "00000007"), ("00000061", "00000061"), ("00000099", None)],
            "validation": [("00000131", "00000131"), ("00000007", "00000007")],
            "test": [("00000144", "00000144")],
        },
    )
    info = describe_source("deepcad", str(root))
    # An id listed in both train and validation stays only in train; test is never used.
    assert (info["train_available"], info["validation_available"]) == (3, 1)
    source = DeepcadSource(root)
    paths = {c.model_id: c.path for c in source.candidates(TRAIN)}
    assert paths["00000007"] == str(root / "cad_json" / "0000" / "00000007.json")


def test_root_from_environment(monkeypatch: pytest.MonkeyPatch, deepcad_samples: Path) -> None:
    monkeypatch.setenv("DEEPCAD_ROOT", str(deepcad_samples))
    assert describe_source("deepcad", None)["root"] == str(deepcad_samples.resolve())


@pytest.mark.parametrize("problem", ["unset", "missing", "file", "empty", "bad_split"])
def test_unusable_root_names_what_to_set(
    problem: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DEEPCAD_ROOT", raising=False)
    root: str | None = str(tmp_path)
    if problem == "unset":
        root = None
    elif problem == "missing":
        root = str(tmp_path / "nowhere")
    elif problem == "file":
        (tmp_path / "x.txt").write_text("x")
        root = str(tmp_path / "x.txt")
    elif problem == "bad_split":
        (tmp_path / "cad_json").mkdir()
        (tmp_path / "train_val_test_split.json").write_text("{not json")
    with pytest.raises(UsageError) as caught:
        describe_source("deepcad", root)
    message = str(caught.value)
    assert "\n" not in message
    if problem != "bad_split":
        assert "DEEPCAD_ROOT" in message


def test_unknown_kind_is_refused() -> None:
    with pytest.raises(UsageError):
        open_source("onshape", None)


def test_synthetic_source_needs_nothing() -> None:
    info = describe_source("synthetic", None)
    assert info == {
        "kind": "synthetic",
        "root": None,
        "train_available": None,
        "validation_available": None,
    }


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO_ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "stages.extract.sources", *args],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        env=env,
        timeout=60,
    )


def test_cli_prints_the_description(deepcad_samples: Path) -> None:
    done = run_cli("--source", "deepcad", "--root", str(deepcad_samples))
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["train_available"] > 0


@pytest.mark.parametrize("args", [["--source", "deepcad"], ["--source", "nope"]])
def test_cli_error_is_json_and_exit_2(args: list[str]) -> None:
    done = run_cli(*args)
    assert done.returncode == 2
    lines = done.stdout.strip().splitlines()
    assert len(lines) == 1
    assert json.loads(lines[0])["error"]
