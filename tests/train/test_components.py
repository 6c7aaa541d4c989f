"""The loop's small parts on their own: config, verdict, batching, collation, prompt encoding."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from PIL import Image

from stages.train.config import ConfigError, build_config
from stages.train.data import Collator, epoch_batches, parse_record
from stages.train.prompt import IGNORE_INDEX, PromptError, PromptFormat
from stages.train.summary import convergence, overfitting, summarize, total_improvement
from stages.train.tokenizer import train_bpe_tokenizer


def _epochs(train: list[float], val: list[float | None]) -> list[dict[str, float | None]]:
    return [
        {"epoch": i + 1, "step": 10 * (i + 1), "train_loss": t, "val_loss": v}
        for i, (t, v) in enumerate(zip(train, val, strict=True))
    ]


# -- config -------------------------------------------------------------------------------------
def test_modes_fill_unset_fields_and_keep_given_ones() -> None:
    full = build_config(Path("d"), Path("o"), "full", epochs=2)
    assert (full.lora_r, full.lora_alpha, full.learning_rate, full.epochs) == (128, 256, 1e-4, 2)
    assert full.train_samples is None
    test = build_config(Path("d"), Path("o"), "test-run")
    assert (test.train_samples, test.val_samples, test.epochs, test.base_model) == (
        100,
        20,
        5,
        "tiny",
    )
    pretrained = build_config(Path("d"), Path("o"), "test-run", base_model="some/dir")
    assert pretrained.learning_rate < test.learning_rate


@pytest.mark.parametrize(
    ("field", "value"),
    [("epochs", 0), ("batch_size", 0), ("learning_rate", -1.0), ("warmup_ratio", 1.0),
     ("lora_dropout", 1.0), ("image_size", 30), ("device", "tpu"), ("train_samples", 0)],
)  # fmt: skip
def test_invalid_values_name_their_field(field: str, value: object) -> None:
    with pytest.raises(ConfigError) as caught:
        build_config(Path("d"), Path("o"), "test-run", **{field: value})
    assert caught.value.field == field


# -- verdict ------------------------------------------------------------------------------------
def test_improvement_and_convergence_follow_the_documented_thresholds() -> None:
    epochs = _epochs([4.0, 2.0, 1.0], [3.0, 2.0, 1.5])
    assert total_improvement(epochs, []) == 75.0
    assert convergence(epochs, 75.0) == "excellent"
    assert convergence(epochs, 50.0) == "excellent"
    assert convergence(epochs, 49.9) == "good"
    assert convergence(epochs, 20.0) == "good"
    assert convergence(epochs, 19.9) == "poor"
    assert convergence(epochs, -0.1) == "diverged"
    assert convergence(_epochs([4.0, math.nan], [3.0, 2.0]), 10.0) == "diverged"


def test_a_single_epoch_compares_its_first_and_last_logged_losses() -> None:
    assert total_improvement(_epochs([3.0], [2.0]), [[1, 8.0], [2, 5.0], [3, 2.0]]) == 75.0


def test_overfitting_needs_val_loss_rising_while_train_loss_falls() -> None:
    assert overfitting(_epochs([3.0, 2.0, 1.0, 0.5], [2.0, 1.5, 1.7, 1.9])) is True
    assert overfitting(_epochs([3.0, 2.0, 1.0, 0.5], [2.0, 1.5, 1.2, 1.1])) is False
    assert overfitting(_epochs([3.0, 2.0, 2.5, 2.9], [2.0, 1.5, 1.7, 1.9])) is False  # both rise
    assert overfitting(_epochs([3.0, 2.0], [None, None])) is False


def test_summary_is_built_from_the_epoch_records() -> None:
    epochs = _epochs([4.0, 2.0, 1.0], [3.0, 1.0, 1.5])
    summary = summarize(epochs, [])
    assert summary["loss_progression"][1] == {"epoch": 2, "train_loss": 2.0, "val_loss": 1.0}
    assert (summary["final_train_loss"], summary["final_val_loss"]) == (1.0, 1.5)
    assert summary["best_val_loss"] == 1.0 and summary["overfitting"] is True


# -- batching and collation -----------------------------------------------------------------------
def test_batch_order_is_a_function_of_seed_and_epoch() -> None:
    lengths = list(range(10, 30))
    first = epoch_batches(lengths, 4, seed=0, epoch=0, group_by_length=False)
    assert first == epoch_batches(lengths, 4, seed=0, epoch=0, group_by_length=False)
    assert first != epoch_batches(lengths, 4, seed=0, epoch=1, group_by_length=False)
    assert sorted(i for b in first for i in b) == list(range(20))
    grouped = epoch_batches(lengths, 4, seed=0, epoch=0, group_by_length=True)
    flat = [lengths[i] for b in grouped for i in b]
    assert flat == sorted(flat, reverse=True)  # one megabatch: longest first


def test_collator_pads_right_and_drops_the_mask_when_nothing_is_padded() -> None:
    def item(n: int) -> dict[str, torch.Tensor]:
        return {
            "input_ids": torch.arange(1, n + 1),
            "labels": torch.arange(1, n + 1),
            "pixel_values": torch.zeros(3, 4, 4),
        }

    batch = Collator(pad_token_id=0)([item(3), item(5)])
    assert batch["input_ids"].tolist()[0] == [1, 2, 3, 0, 0]
    assert batch["labels"].tolist()[0] == [1, 2, 3, IGNORE_INDEX, IGNORE_INDEX]
    assert batch["attention_mask"].tolist() == [[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]]
    assert batch["num_tokens"] == 8 and batch["pixel_values"].shape == (2, 3, 4, 4)
    even = Collator(pad_token_id=0)([item(4), item(4)])
    assert even["attention_mask"] is None


# -- prompt encoding ------------------------------------------------------------------------------
def test_only_the_answer_and_its_end_token_are_learned() -> None:
    tokenizer = train_bpe_tokenizer(["USER: draw ASSISTANT: add_line(1, 2)"] * 3, 300)
    image_id = tokenizer.convert_tokens_to_ids(tokenizer.image_token)
    encoded = PromptFormat().encode(tokenizer, "<image>\ndraw", "add_line(1, 2)", image_id, 5)
    assert encoded.input_ids[0] == tokenizer.bos_token_id
    assert encoded.input_ids.count(image_id) == 5
    learned = [
        t
        for t, label in zip(encoded.input_ids, encoded.labels, strict=True)
        if label != IGNORE_INDEX
    ]
    assert tokenizer.decode(learned) == f"add_line(1, 2){tokenizer.eos_token}"
    assert learned[-1] == tokenizer.eos_token_id
    with pytest.raises(PromptError):
        PromptFormat().encode(tokenizer, "no image here", "x", image_id, 5)


# -- records ------------------------------------------------------------------------------------
def test_records_must_name_a_real_image_inside_the_images_folder(tmp_path: Path) -> None:
    images = tmp_path / "images"
    images.mkdir()
    Image.new("RGB", (8, 8)).save(images / "ok.png")
    (images / "text.png").write_text("not an image")
    turns = [{"from": "human", "value": "<image>\nq"}, {"from": "gpt", "value": "a"}]

    def record(image: str) -> dict[str, object]:
        return {"id": image, "image": image, "conversations": turns}

    assert parse_record(record("ok.png"), images).answer == "a"
    for bad in ("../ok.png", "/etc/hostname", "text.png"):
        with pytest.raises(ValueError):
            parse_record(record(bad), images)
    with pytest.raises(FileNotFoundError):
        parse_record(record("gone.png"), images)
