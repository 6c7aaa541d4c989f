"""Preflight: a bad training request is refused up front, naming the field and what to do."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import huggingface_hub.constants
import pytest
import torch

from stages.train.preflight import main


def _preflight(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict[str, Any]]:
    code = main(list(argv))
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1
    return code, json.loads(lines[0])


def _fake_checkpoint(directory: Path, model_type: str) -> Path:
    directory.mkdir(parents=True)
    (directory / "config.json").write_text(json.dumps({"model_type": model_type}))
    (directory / "tokenizer.json").write_text("{}")
    (directory / "preprocessor_config.json").write_text("{}")
    return directory


def test_a_good_request_is_resolved(
    capsys: pytest.CaptureFixture[str], golden_dataset: Path
) -> None:
    code, report = _preflight(
        capsys, "--base-model", "tiny", "--device", "cpu", "--dataset", str(golden_dataset)
    )
    assert code == 0 and report["ok"] is True
    assert "cpu" in report["devices"] and report["device"] == "cpu"
    assert report["precision"] == "fp32"
    assert report["base_model"]["kind"] == "tiny"
    assert report["dataset"]["train_records"] == 14 and report["dataset"]["val_records"] == 4


@pytest.mark.parametrize("device", ["cuda", "mps"])
def test_an_absent_accelerator_is_refused_naming_the_available_ones(
    capsys: pytest.CaptureFixture[str], device: str
) -> None:
    present = torch.cuda.is_available() if device == "cuda" else torch.backends.mps.is_available()
    if present:
        pytest.skip(f"this machine has {device}")
    code, report = _preflight(capsys, "--device", device)
    assert code == 2 and report["ok"] is False and report["field"] == "device"
    assert "cpu" in report["detail"]


def test_an_unknown_base_model_is_refused(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "cache"))
    code, report = _preflight(capsys, "--base-model", "nobody/no-such-model", "--device", "cpu")
    assert code == 2 and report["field"] == "base_model"
    assert "local model cache" in report["detail"]
    code, report = _preflight(capsys, "--base-model", str(tmp_path / "missing"), "--device", "cpu")
    assert code == 2 and report["field"] == "base_model"


def test_a_model_type_without_a_loader_is_refused(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    checkpoint = _fake_checkpoint(tmp_path / "ckpt", "mamba")
    code, report = _preflight(capsys, "--base-model", str(checkpoint), "--device", "cpu")
    assert code == 2 and report["field"] == "base_model"
    assert "'mamba'" in report["detail"] and "not supported" in report["detail"]


def test_a_cached_hub_id_resolves_to_its_snapshot(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = tmp_path / "cache"
    repo = cache / "models--someone--tiny-llava"
    snapshot = _fake_checkpoint(repo / "snapshots" / "abc123", "llava")
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("abc123")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(cache))
    code, report = _preflight(capsys, "--base-model", "someone/tiny-llava", "--device", "cpu")
    assert code == 0
    assert report["base_model"] == {
        "spec": "someone/tiny-llava",
        "kind": "hub",
        "model_type": "llava",
        "path": str(snapshot.resolve()),
    }


def test_a_dataset_not_converted_is_refused(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    (tmp_path / "images").mkdir()
    code, report = _preflight(capsys, "--device", "cpu", "--dataset", str(tmp_path))
    assert code == 2 and report["field"] == "dataset"
    assert "train.json" in report["detail"] and "convert" in report["detail"]
    code, report = _preflight(capsys, "--device", "cpu", "--dataset", str(tmp_path / "none"))
    assert code == 2 and report["field"] == "dataset"


def test_devices_lists_devices_precisions_and_versions(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, report = _preflight(capsys, "--devices")
    assert code == 0
    assert "cpu" in report["devices"] and report["precisions"]["cpu"] == ["fp32"]
    assert report["versions"]["torch"] == torch.__version__


def test_a_dataset_whose_records_are_all_broken_is_refused(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    (tmp_path / "images").mkdir()
    record = {"id": "a", "image": "gone.png", "conversations": []}
    (tmp_path / "train.json").write_text(json.dumps([record] * 3))
    (tmp_path / "val.json").write_text("[]")
    code, report = _preflight(capsys, "--device", "cpu", "--dataset", str(tmp_path))
    assert code == 2 and report["field"] == "dataset"
    assert "none of the first 3" in report["detail"]
