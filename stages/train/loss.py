"""The loss the loop minimises and reports: of one batch (under autocast on the run's device),
and token-weighted over a whole split (the validation loss of every epoch)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from typing import Any

import torch
from torch import nn

from stages.train.devices import Runtime
from stages.train.prompt import IGNORE_INDEX


def autocast(runtime: Runtime) -> contextlib.AbstractContextManager[Any]:
    if runtime.precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device_type=runtime.device.type, dtype=runtime.dtype)


def to_device(batch: dict[str, Any], runtime: Runtime) -> dict[str, Any]:
    return {
        key: value.to(runtime.device, non_blocking=True)
        if isinstance(value, torch.Tensor)
        else value
        for key, value in batch.items()
    }


def batch_loss(model: nn.Module, batch: dict[str, Any], runtime: Runtime) -> torch.Tensor:
    """Mean cross-entropy over the batch's answer tokens (the model shifts the labels)."""
    with autocast(runtime):
        output = model(
            input_ids=batch["input_ids"],
            attention_mask=batch["attention_mask"],
            pixel_values=batch["pixel_values"],
            labels=batch["labels"],
        )
    return output.loss


def answer_tokens(batch: dict[str, Any]) -> int:
    """The tokens a batch's loss is the mean over (the model shifts the labels by one)."""
    return int((batch["labels"][:, 1:] != IGNORE_INDEX).sum())


@torch.no_grad()
def split_loss_sums(
    model: nn.Module, batches: Iterable[dict[str, Any]], runtime: Runtime
) -> tuple[float, int]:
    """The summed loss of a split's answer tokens and their count (ranks add theirs up); the
    model's train/eval mode is left as it was found."""
    was_training = model.training
    model.eval()
    total, tokens = 0.0, 0
    for batch in batches:
        batch = to_device(batch, runtime)
        count = answer_tokens(batch)
        total += float(batch_loss(model, batch, runtime)) * count
        tokens += count
    model.train(was_training)
    return total, tokens


def split_loss(
    model: nn.Module, batches: Iterable[dict[str, Any]], runtime: Runtime
) -> float | None:
    """Token-weighted mean loss over a whole split (None when it is empty)."""
    total, tokens = split_loss_sums(model, batches, runtime)
    return total / tokens if tokens else None
