"""A test-run end to end on CPU: the loss falls, results equal the emitted metrics, files exist."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from stages.train.__main__ import main
from stages.train.checkpoint import RunLayout, list_checkpoints
from tests.train.helpers import TRAIN_ARGS, events_of, run_cli


@pytest.mark.slow
def test_test_run_completes_and_loss_falls(finished_run: tuple[Path, list[dict[str, Any]]]) -> None:
    _, events = finished_run
    assert events[-1] == {"event": "done", "status": "completed"}
    result = events_of(events, "result")[0]
    epochs = result["loss_progression"]
    assert len(epochs) == result["epochs"] == 4
    assert epochs[-1]["train_loss"] < epochs[0]["train_loss"]
    assert epochs[-1]["val_loss"] < epochs[0]["val_loss"]
    assert result["total_improvement"] > 0
    assert result["convergence"] in ("excellent", "good", "poor")


def test_results_match_the_metric_events(finished_run: tuple[Path, list[dict[str, Any]]]) -> None:
    _, events = finished_run
    result = events_of(events, "result")[0]
    per_epoch = events_of(events, "metric", kind="epoch")
    assert result["loss_progression"] == [
        {"epoch": m["epoch"], "train_loss": m["train_loss"], "val_loss": m["val_loss"]}
        for m in per_epoch
    ]
    assert result["final_train_loss"] == per_epoch[-1]["train_loss"]
    assert result["final_val_loss"] == per_epoch[-1]["val_loss"]
    assert result["best_val_loss"] == min(m["val_loss"] for m in per_epoch)
    assert result["steps"] == per_epoch[-1]["step"] == events_of(events, "start")[0]["total"]
    assert events_of(events, "start")[0]["unit"] == "steps"


def test_metric_and_progress_events_carry_the_documented_fields(
    finished_run: tuple[Path, list[dict[str, Any]]],
) -> None:
    _, events = finished_run
    steps = events_of(events, "metric", kind="step")
    # 9 or 10 usable training records, batch 2: 5 optimizer steps per epoch, logged every step
    assert [m["step"] for m in steps] == list(range(1, 21))
    for metric in steps:
        assert {"epoch", "step", "train_loss", "lr", "samples_per_s", "tokens_per_s"} <= set(metric)
        assert "gpu_mem_gb" not in metric  # CPU run
    assert steps[0]["lr"] == 0 and all(m["lr"] > 0 for m in steps[1:])  # warm-up from 0
    last_progress = events_of(events, "progress")[-1]
    assert last_progress["extra"] == {"epoch": 4, "total_epochs": 4, "step": 20, "total_steps": 20}
    result = events_of(events, "result")[0]
    assert result["performance"]["throughput"] > 0
    assert result["performance"]["avg_batch_time"] > 0


def test_broken_and_overlong_records_are_counted_warnings(
    finished_run: tuple[Path, list[dict[str, Any]]],
) -> None:
    _, events = finished_run
    warnings = events_of(events, "warning")
    reasons = [w["reason"] for w in warnings]
    assert reasons.count("missing_image") == 1
    assert reasons.count("bad_record") == 1
    assert reasons.count("too_long") >= 1
    result = events_of(events, "result")[0]
    assert result["warning_reasons"] == {r: reasons.count(r) for r in set(reasons)}
    too_long = [w["item"] for w in warnings if w["reason"] == "too_long"]
    assert result["train_samples"] == 12 - sum(item.startswith("train/") for item in too_long)


def test_run_leaves_adapter_curve_and_pruned_checkpoints(
    finished_run: tuple[Path, list[dict[str, Any]]],
) -> None:
    output, events = finished_run
    result = events_of(events, "result")[0]
    layout = RunLayout(output.resolve())
    adapter_config = json.loads((layout.adapter_dir / "adapter_config.json").read_text())
    base = Path(adapter_config["base_model_name_or_path"])
    assert base.is_absolute() and (base / "config.json").is_file()
    assert (layout.adapter_dir / "train_config.json").is_file()
    assert (layout.adapter_dir / "tokenizer.json").is_file()
    with Image.open(result["loss_curve"]) as curve:
        assert curve.format == "PNG" and curve.size[0] > 100
    kept = list_checkpoints(layout)
    # saved every 2 steps and after every epoch (5 steps), the last 2 kept
    assert [p.name for p in kept] == ["step-00000018", "step-00000020"]
    assert not list(layout.checkpoints_dir.glob(".*"))
    assert json.loads(layout.results_file.read_text()) == {
        k: v for k, v in result.items() if k != "event"
    }


def test_second_run_into_the_same_directory_is_refused(
    finished_run: tuple[Path, list[dict[str, Any]]], golden_dataset: Path
) -> None:
    output, _ = finished_run
    code, events = run_cli(["--dataset", str(golden_dataset), "--output", str(output), *TRAIN_ARGS])
    assert code == 2
    assert "--resume" in events[-1]["error"]


@pytest.mark.parametrize(
    ("flag", "value", "field"),
    [
        ("--epochs", "0", "epochs"),
        ("--batch-size", "0", "batch_size"),
        ("--device", "mps", "device"),
    ],
)
def test_bad_requests_exit_2_with_one_line(
    flag: str,
    value: str,
    field: str,
    golden_dataset: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import torch

    if value == "mps" and torch.backends.mps.is_available():
        pytest.skip("this machine has MPS")
    code = main(
        [
            "--dataset",
            str(golden_dataset),
            "--output",
            str(tmp_path / "o"),
            flag,
            value,
            "--progress",
            "none",
        ]
    )
    assert code == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1 and field in err[0]
    assert not (tmp_path / "o").exists()


@pytest.mark.slow
def test_vision_adapters_checkpointing_and_accumulation(
    golden_dataset: Path, tmp_path: Path
) -> None:
    """The optional paths: LoRA on the vision tower, gradient checkpointing, a data worker
    process, accumulation (4 samples, batch 1, 3 micro-batches per step: steps of 3 and 1)."""
    output = tmp_path / "ckpt"
    argv = ["--dataset", str(golden_dataset), "--output", str(output), *TRAIN_ARGS]
    extra = ["--epochs", "1", "--batch-size", "1", "--gradient-accumulation", "3",
             "--train-samples", "4", "--val-samples", "1", "--lora-vision",
             "--gradient-checkpointing", "--num-workers", "1"]  # fmt: skip
    code, events = run_cli([*argv, *extra])
    assert code == 0, events[-1]
    result = events_of(events, "result")[0]
    assert result["steps"] == 2 and result["performance"]["avg_batch_time"] > 0
    adapter = json.loads((output / "adapter" / "adapter_config.json").read_text())
    assert "vision_tower" in adapter["target_modules"]
    assert adapter["modules_to_save"] == ["multi_modal_projector"]


@pytest.mark.slow
def test_compiled_decoder_layers_train(golden_dataset: Path, tmp_path: Path) -> None:
    """``--compile on`` (the default on CUDA) compiles each adapted decoder layer; on CPU too,
    so the compiled path is proven where a GPU is absent: it trains and the loss falls."""
    output = tmp_path / "compiled"
    argv = ["--dataset", str(golden_dataset), "--output", str(output), *TRAIN_ARGS]
    extra = ["--epochs", "2", "--train-samples", "4", "--val-samples", "2", "--compile", "on"]
    code, events = run_cli([*argv, *extra])
    assert code == 0, events[-1]
    epochs = events_of(events, "result")[0]["loss_progression"]
    assert epochs[-1]["train_loss"] < epochs[0]["train_loss"]
