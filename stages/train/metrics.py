"""What the loop reports: the ``metric`` events (per logging step and per epoch), progress, and
the run's throughput. Losses are summed on the device and moved to the host only when logged,
so the loop never waits on the device between logging steps."""

from __future__ import annotations

from typing import Any

import torch

from stages.protocol import Reporter
from stages.train.checkpoint import TrainerState
from stages.train.config import TrainConfig
from stages.train.devices import Runtime


def rate(count: float, seconds: float) -> float:
    return round(count / seconds, 3) if seconds > 0 else 0.0


def gpu_memory(runtime: Runtime) -> dict[str, float]:
    """The peak GPU memory so far (nothing on other devices)."""
    if not runtime.is_cuda:
        return {}
    return {"gpu_mem_gb": round(torch.cuda.max_memory_allocated(runtime.device) / 2**30, 3)}


def flush_losses(state: TrainerState, pending: torch.Tensor) -> None:
    """Move the losses summed on the device into the state (one host sync)."""
    state.add_loss(float(pending.item()))
    pending.zero_()


def step_metric(state: TrainerState, lr: float, runtime: Runtime) -> dict[str, Any]:
    """The metric of the window since the last logging step; records it and opens a new one."""
    record = {
        "kind": "step",
        "epoch": state.epoch + 1,
        "step": state.step,
        "train_loss": state.window_loss_sum / max(state.window_batches, 1),
        "lr": lr,
        "samples_per_s": rate(state.window_samples, state.window_seconds),
        "tokens_per_s": rate(state.window_tokens, state.window_seconds),
        **gpu_memory(runtime),
    }
    state.step_losses.append([state.step, record["train_loss"]])
    state.window_loss_sum, state.window_batches = 0.0, 0
    state.window_samples, state.window_tokens, state.window_seconds = 0, 0, 0.0
    return record


def epoch_metric(
    state: TrainerState, lr: float, val_loss: float | None, runtime: Runtime
) -> dict[str, Any]:
    """The metric of the epoch in progress, with its validation loss."""
    return {
        "kind": "epoch",
        "epoch": state.epoch + 1,
        "step": state.step,
        "train_loss": state.epoch_loss_sum / max(state.epoch_batches, 1),
        "val_loss": val_loss,
        "lr": lr,
        "samples_per_s": rate(state.epoch_samples, state.epoch_seconds),
        "tokens_per_s": rate(state.epoch_tokens, state.epoch_seconds),
        **gpu_memory(runtime),
    }


def report_progress(
    reporter: Reporter, state: TrainerState, config: TrainConfig, total_steps: int, force: bool
) -> None:
    reporter.current = reporter.succeeded = state.step
    reporter.progress(
        force=force,
        epoch=min(state.epoch + 1, config.epochs),
        total_epochs=config.epochs,
        step=state.step,
        total_steps=total_steps,
    )


def performance(state: TrainerState) -> dict[str, float]:
    """The whole run's throughput (samples/s) and mean micro-batch time, for the results."""
    return {
        "throughput": rate(state.samples_seen, state.train_seconds),
        "avg_batch_time": round(state.train_seconds / max(state.micro_batches, 1), 4),
    }
