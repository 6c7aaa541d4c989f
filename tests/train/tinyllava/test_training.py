"""LoRA training of a TinyLLaVA checkpoint through the standard training stage, then reload,
merge, and evaluation of the result."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from stages.train.data import Collator, read_split, record_texts
from stages.train.lora import attach_lora, load_adapter
from stages.train.models import load_base_model, resolve_base_model
from stages.train.synthetic import write_synthetic_dataset
from stages.train.tinyllava.chat import OPENECAD_SYSTEM, SYSTEM_PROMPT_KEY
from stages.train.tinyllava.merge import main as merge_main
from tests.conftest import REPO_ROOT
from tests.train.tinyllava.checkpoints import write_checkpoint

TRAIN, VAL, BATCH, EPOCHS = 8, 4, 4, 2


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """One training run: ``python -m stages.train --base-model <tiny TinyLLaVA dir>``."""
    root = tmp_path_factory.mktemp("train")
    data = write_synthetic_dataset(root / "data", train=TRAIN, val=VAL, image_size=64, seed=1)
    texts = record_texts(read_split(data, "train"), TRAIN)
    checkpoint = write_checkpoint(root / "OpenECADv2-tiny", texts, vocab_size=1000)
    run = root / "run"
    command = [
        sys.executable, "-m", "stages.train", "--dataset", str(data), "--output", str(run),
        "--base-model", str(checkpoint), "--train-samples", str(TRAIN),
        "--val-samples", str(VAL), "--epochs", str(EPOCHS), "--batch-size", str(BATCH),
        "--lora-r", "4", "--lora-alpha", "8", "--lora-vision", "--learning-rate", "5e-3",
        "--log-every", "1", "--device", "cpu", "--progress", "json",
    ]  # fmt: skip
    done = subprocess.run(
        command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=600,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    events = [json.loads(line) for line in done.stdout.splitlines()]
    return {"root": root, "data": data, "checkpoint": checkpoint, "run": run, "events": events}


@pytest.mark.slow
def test_lora_training_runs_through_the_training_stage(trained: dict) -> None:
    events = trained["events"]
    assert events[-1] == {"event": "done", "status": "completed"}
    result = next(e for e in events if e["event"] == "result")
    assert result["steps"] == result["total_steps"] == EPOCHS * TRAIN // BATCH
    assert result["base_model"]["model_type"] == "tinyllava"
    epochs = [e for e in events if e["event"] == "metric" and e["kind"] == "epoch"]
    assert len(epochs) == EPOCHS and all(e["val_loss"] is not None for e in epochs)

    adapter = Path(result["adapter_dir"])
    config = json.loads((adapter / "adapter_config.json").read_text())
    assert config["base_model_name_or_path"] == str(trained["checkpoint"])
    names = list(load_file(adapter / "adapter_model.safetensors"))
    assert any("language_model.transformer.layers.0.attn.qkv_proj.lora_A" in n for n in names)
    assert any("vision_tower._vision_tower.vision_model.encoder.layers.0" in n for n in names)
    assert "base_model.model.connector._connector.0.weight" in names  # trained fully


def first_batch(bundle, data: Path) -> dict:
    from stages.train.data import VlmDataset, encode_records, iter_records

    def encode(human: str, answer: str):
        return bundle.prompt.encode(
            bundle.tokenizer, human, answer, bundle.image_token_id, bundle.num_image_tokens
        )

    records = iter_records(read_split(data, "val"), data / "images", lambda *a: None)
    examples = encode_records(records, encode, 2048, 2, lambda *a: None)
    dataset = VlmDataset(examples, bundle.pixel_values)
    return Collator(bundle.tokenizer.pad_token_id)([dataset[0], dataset[1]])


@torch.no_grad()
def outputs(model, batch: dict):
    return model(
        input_ids=batch["input_ids"],
        attention_mask=batch["attention_mask"],
        pixel_values=batch["pixel_values"],
        labels=batch["labels"],
    )


@pytest.fixture
def keep_sigterm():
    """A stage run in-process installs its own SIGTERM handler; put pytest's back."""
    previous = signal.getsignal(signal.SIGTERM)
    yield
    signal.signal(signal.SIGTERM, previous)


def test_the_adapter_reloads_and_merges_into_a_tinyllava_checkpoint(trained, keep_sigterm) -> None:
    adapter = trained["run"] / "adapter"
    bundle = load_base_model(resolve_base_model(str(trained["checkpoint"])))
    batch = first_batch(bundle, trained["data"])
    base = outputs(bundle.model, batch)
    adapted = outputs(load_adapter(bundle, adapter), batch)
    assert not torch.allclose(base.logits, adapted.logits, atol=1e-3)  # the adapter changes it

    merged_dir = trained["root"] / "merged"
    argv = ["--adapter", str(adapter), "--output", str(merged_dir), "--dtype", "fp32"]
    assert merge_main([*argv, "--progress", "none"]) == 0
    merged_config = json.loads((merged_dir / "config.json").read_text())
    assert merged_config["model_type"] == "tinyllava"
    assert merged_config[SYSTEM_PROMPT_KEY] == OPENECAD_SYSTEM
    merged_bundle = load_base_model(resolve_base_model(str(merged_dir)))
    assert merged_bundle.prompt.system == OPENECAD_SYSTEM
    merged = outputs(merged_bundle.model, first_batch(merged_bundle, trained["data"]))
    assert torch.allclose(merged.logits, adapted.logits, atol=1e-4, rtol=1e-4)
    assert float(merged.loss) == pytest.approx(float(adapted.loss), rel=1e-4)


def test_the_trained_adapter_is_evaluated_on_validation_records(
    trained, keep_sigterm, capsys
) -> None:
    from stages.train.evaluate import main as evaluate_main

    generations = trained["root"] / "evaluation"
    argv = [
        "--checkpoint", str(trained["checkpoint"]), "--adapter", str(trained["run"] / "adapter"),
        "--dataset", str(trained["data"]), "--samples", "2", "--max-new-tokens", "12",
        "--device", "cpu", "--output", str(generations), "--progress", "json",
    ]  # fmt: skip
    assert evaluate_main(argv) == 0
    events = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    result = next(e for e in events if e["event"] == "result")
    assert result["count"] == 2
    assert 0.0 <= result["parse_rate"] <= 1.0 and 0.0 <= result["invalid_ratio"] <= 1.0
    rows = [json.loads(line) for line in (generations / "samples.jsonl").read_text().splitlines()]
    assert len(rows) == 2
    assert all(row["new_tokens"] <= 12 and isinstance(row["generated"], str) for row in rows)


@pytest.mark.parametrize("decoder", ["openelm", "llama"])
def test_activation_checkpointing_recomputes_layers_and_keeps_gradients(
    decoder, openelm_checkpoint, checkpoint_for, monkeypatch
) -> None:
    directory = openelm_checkpoint if decoder == "openelm" else checkpoint_for(decoder)
    ids = torch.tensor([[1, 5, 6, *[-200] * 15, 7, 8, 9, 2]] * 2)
    labels = ids.clone()
    labels[:, :18] = -100
    ids[1, -2:], labels[1, -2:] = 0, -100
    mask = (labels != -100) | (torch.arange(ids.shape[1]) < 20)
    pixels = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(5))

    def gradients(checkpointing: bool) -> tuple[dict, int]:
        bundle = load_base_model(resolve_base_model(str(directory)))
        torch.manual_seed(0)  # the same adapter initialisation both times
        model = attach_lora(bundle, r=4, alpha=8, dropout=0.0, include_vision=True)
        for name, param in model.named_parameters():
            if "lora_B" in name:  # non-zero, so adapter gradients flow everywhere
                torch.nn.init.normal_(param, std=0.1, generator=torch.Generator().manual_seed(0))
        if checkpointing:
            model.gradient_checkpointing_enable(
                gradient_checkpointing_kwargs={"use_reentrant": False}
            )
        calls = []
        attention = torch.nn.functional.scaled_dot_product_attention

        def counted(*args, **kwargs):
            calls.append(1)
            return attention(*args, **kwargs)

        # every attention layer, decoder and vision tower, goes through this function
        monkeypatch.setattr(torch.nn.functional, "scaled_dot_product_attention", counted)
        model.train()
        model(
            input_ids=ids, attention_mask=mask.long(), pixel_values=pixels, labels=labels
        ).loss.backward()
        monkeypatch.setattr(torch.nn.functional, "scaled_dot_product_attention", attention)
        grads = {n: p.grad for n, p in model.named_parameters() if p.requires_grad}
        return grads, len(calls)

    plain, plain_calls = gradients(False)
    checkpointed, checkpointed_calls = gradients(True)
    layers = (3 if decoder == "openelm" else 2) + 2  # decoder layers + vision layers used
    assert (plain_calls, checkpointed_calls) == (layers, 2 * layers)  # rerun in backward
    assert plain.keys() == checkpointed.keys() and all(g is not None for g in plain.values())
    for name, grad in plain.items():
        assert torch.allclose(grad, checkpointed[name], atol=1e-6), name
