"""Cancel (SIGTERM) mid-epoch, resume, and reload: the acceptance of the checkpointing path."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import torch
from peft import PeftModel
from safetensors.torch import load_file

from stages.train.checkpoint import STATE_FILE, RunLayout, TrainerState, latest_checkpoint
from stages.train.data import Collator, VlmDataset, encode_records, iter_records, read_split
from stages.train.devices import resolve_runtime
from stages.train.lora import load_adapter
from stages.train.loss import split_loss
from stages.train.models import load_base_model, resolve_base_model
from tests.conftest import REPO_ROOT
from tests.train.helpers import TRAIN_ARGS, events_of, run_cli


def _cancel_at_step(argv: list[str], step: int, work: Path) -> tuple[int, list[dict[str, Any]]]:
    """Run the stage as a process held after optimizer step ``step`` (the test's wrapper of the
    real stage) and send SIGTERM while it waits there: the signal lands at a known step."""
    held, log = work / "held", work / "events.jsonl"
    env = dict(os.environ, FAKE_TRAIN_HOLD_STEP=str(step), FAKE_TRAIN_HELD=str(held))
    with open(log, "w") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "tests.fake_stages.train", *argv, "--progress", "json"],
            cwd=REPO_ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.DEVNULL,
        )
    deadline = time.monotonic() + 300
    while not held.exists():
        assert process.poll() is None, "the stage ended before reaching the step"
        assert time.monotonic() < deadline, "the stage never reached the step"
        time.sleep(0.05)
    process.send_signal(signal.SIGTERM)
    code = process.wait(timeout=300)
    return code, [json.loads(line) for line in log.read_text().splitlines()]


@pytest.fixture(scope="module")
def cancelled_run(
    tmp_path_factory: pytest.TempPathFactory, golden_dataset: Path
) -> tuple[Path, int, list[dict[str, Any]]]:
    work = tmp_path_factory.mktemp("cancel")
    output = work / "ckpt"
    argv = ["--dataset", str(golden_dataset), "--output", str(output), *TRAIN_ARGS]
    code, events = _cancel_at_step(argv, 1, work)
    return output, code, events


@pytest.mark.slow
def test_sigterm_saves_a_loadable_checkpoint_mid_epoch(
    cancelled_run: tuple[Path, int, list[dict[str, Any]]],
) -> None:
    output, code, events = cancelled_run
    assert code == 130
    assert events[-1] == {"event": "done", "status": "cancelled"}
    checkpoint = latest_checkpoint(RunLayout(output))
    assert checkpoint is not None
    state = TrainerState(**json.loads((checkpoint / STATE_FILE).read_text()))
    # saved at the step the signal arrived in, inside the first epoch, and nothing trained after
    assert (state.step, state.epoch, state.batches_done) == (1, 0, 1)
    assert [m["step"] for m in events_of(events, "metric")] == [1]
    bundle = load_base_model(resolve_base_model(str(output / "base_model")))
    model = PeftModel.from_pretrained(bundle.model, str(checkpoint))
    assert any("lora_A" in name for name, _ in model.named_parameters())


@pytest.mark.slow
def test_resume_finishes_like_an_uninterrupted_run(
    cancelled_run: tuple[Path, int, list[dict[str, Any]]],
    finished_run: tuple[Path, list[dict[str, Any]]],
    golden_dataset: Path,
) -> None:
    output, _, _ = cancelled_run
    code, events = run_cli(
        ["--dataset", str(golden_dataset), "--output", str(output), *TRAIN_ARGS, "--resume"]
    )
    assert code == 0, events[-1]
    resumed = events_of(events, "result")[0]
    reference_dir, reference_events = finished_run
    reference = events_of(reference_events, "result")[0]
    assert resumed["steps"] == reference["steps"] == 20
    assert events_of(events, "start")[0]["total"] == 20
    # the same batches in the same order: the same losses and the same adapter
    for ours, theirs in zip(
        resumed["loss_progression"], reference["loss_progression"], strict=True
    ):
        assert ours["train_loss"] == pytest.approx(theirs["train_loss"], rel=1e-4)
        assert ours["val_loss"] == pytest.approx(theirs["val_loss"], rel=1e-4)
    weights = load_file(output / "adapter" / "adapter_model.safetensors")
    expected = load_file(reference_dir / "adapter" / "adapter_model.safetensors")
    assert weights.keys() == expected.keys()
    for name, tensor in expected.items():
        torch.testing.assert_close(weights[name], tensor, rtol=1e-4, atol=1e-5)


def test_saved_adapter_reproduces_the_validation_loss(
    finished_run: tuple[Path, list[dict[str, Any]]], golden_dataset: Path
) -> None:
    _, events = finished_run
    result = events_of(events, "result")[0]
    adapter_dir = Path(result["adapter_dir"])
    base = json.loads((adapter_dir / "adapter_config.json").read_text())["base_model_name_or_path"]
    bundle = load_base_model(resolve_base_model(base))
    model = load_adapter(bundle, adapter_dir)
    raw = read_split(golden_dataset, "val")

    def encode(human: str, answer: str) -> Any:
        return bundle.prompt.encode(
            bundle.tokenizer, human, answer, bundle.image_token_id, bundle.num_image_tokens
        )

    def no_skips(*_: str) -> None:
        return None

    records = iter_records(raw, golden_dataset / "images", no_skips)
    examples = encode_records(records, encode, 1024, None, no_skips)
    dataset = VlmDataset(examples, bundle.pixel_values)
    collate = Collator(bundle.tokenizer.pad_token_id)
    batches = [
        collate([dataset[i] for i in range(j, min(j + 2, len(dataset)))])
        for j in range(0, len(dataset), 2)
    ]
    loss = split_loss(model, batches, resolve_runtime("cpu", "fp32"))
    assert loss == pytest.approx(result["final_val_loss"], rel=1e-5)
