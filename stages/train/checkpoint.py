"""Where a run's files live, and checkpoints that are complete or absent, never half-written.

A checkpoint is a directory ``checkpoints/step-NNNNNNNN/`` holding the adapter in peft's own
format (loadable with ``PeftModel.from_pretrained``), the optimizer, scheduler, scaler and RNG
states, and ``trainer_state.json`` (where in the data the run is, its counters and history).
It is written under a temporary name and renamed into place; only the last ``keep_last`` stay,
and the one with the lowest validation loss.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from peft import set_peft_model_state_dict
from safetensors.torch import load_file
from torch import nn

from stages.train.runs import (
    CHECKPOINT_PREFIX,
    STATE_FILE,
    RunLayout,
    best_of,
    checkpoint_dirs,
    checkpoint_infos,
)

__all__ = ["CHECKPOINT_PREFIX", "STATE_FILE", "RunLayout", "TrainerState"]

TENSORS_FILE = "training_state.pt"
ADAPTER_WEIGHTS = "adapter_model.safetensors"


@dataclass
class TrainerState:
    """Everything besides tensors that a resumed run needs to continue as if never stopped.

    ``epoch`` is the epoch in progress (0-based) and ``batches_done`` its micro-batches already
    trained; ``window_*`` accumulate since the last logging step, ``epoch_*`` since the epoch
    began; ``step_losses`` ([step, loss] per logging step) and ``epochs`` (the per-epoch metric
    events) are the history the results and the loss curve are made from.
    """

    step: int = 0
    epoch: int = 0
    batches_done: int = 0
    window_loss_sum: float = 0.0
    window_batches: int = 0
    window_samples: int = 0
    window_tokens: int = 0
    window_seconds: float = 0.0
    epoch_loss_sum: float = 0.0
    epoch_batches: int = 0
    epoch_samples: int = 0
    epoch_tokens: int = 0
    epoch_seconds: float = 0.0
    train_seconds: float = 0.0
    samples_seen: int = 0
    micro_batches: int = 0
    world_size: int = 1  # the ranks that trained (a resume must have as many: same batches)
    step_losses: list[list[float]] = field(default_factory=list)
    epochs: list[dict[str, Any]] = field(default_factory=list)

    def add_batch(self, samples: int, tokens: int) -> None:
        """Count one trained micro-batch in the window, the epoch and the run."""
        self.batches_done += 1
        self.window_batches += 1
        self.epoch_batches += 1
        self.micro_batches += 1
        self.window_samples += samples
        self.epoch_samples += samples
        self.samples_seen += samples
        self.window_tokens += tokens
        self.epoch_tokens += tokens

    def add_time(self, seconds: float) -> None:
        self.window_seconds += seconds
        self.epoch_seconds += seconds
        self.train_seconds += seconds

    def add_loss(self, loss_sum: float) -> None:
        self.window_loss_sum += loss_sum
        self.epoch_loss_sum += loss_sum

    def start_next_epoch(self) -> None:
        """The epoch is finished (and recorded in ``epochs``): reset its counters."""
        self.epoch += 1
        self.batches_done = 0
        self.epoch_loss_sum, self.epoch_batches = 0.0, 0
        self.epoch_samples, self.epoch_tokens, self.epoch_seconds = 0, 0, 0.0


def list_checkpoints(layout: RunLayout) -> list[Path]:
    """Complete checkpoints, oldest first."""
    return checkpoint_dirs(layout)


def latest_checkpoint(layout: RunLayout) -> Path | None:
    found = list_checkpoints(layout)
    return found[-1] if found else None


def remove_partial(layout: RunLayout) -> None:
    """Drop temporary directories a killed run left behind."""
    if layout.checkpoints_dir.is_dir():
        for path in layout.checkpoints_dir.glob(".*"):
            shutil.rmtree(path, ignore_errors=True)


def save_checkpoint(
    layout: RunLayout,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    scaler: torch.amp.GradScaler | None,
    state: TrainerState,
    keep_last: int,
    rank_rng: list[Any] | None = None,
) -> Path:
    """``rank_rng``: every rank's random state (ranks 1.. under torchrun), restored on each."""
    final = layout.checkpoints_dir / f"{CHECKPOINT_PREFIX}{state.step:08d}"
    tmp = layout.checkpoints_dir / f".tmp-{final.name}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    model.save_pretrained(tmp)
    tensors: dict[str, Any] = {
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "scaler": scaler.state_dict() if scaler is not None else None,
        "cpu_rng": torch.get_rng_state(),
        "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
    }
    if rank_rng is not None:
        tensors["rank_rng"] = rank_rng
    torch.save(tensors, tmp / TENSORS_FILE)
    (tmp / STATE_FILE).write_text(json.dumps(dataclasses.asdict(state)) + "\n")
    if final.exists():  # the same step saved again (e.g. a cancel right after a periodic save)
        old = final.with_name(f".old-{final.name}")
        final.replace(old)
        tmp.replace(final)
        shutil.rmtree(old, ignore_errors=True)
    else:
        tmp.replace(final)
    best = best_of(checkpoint_infos(layout))
    for stale in list_checkpoints(layout)[:-keep_last]:
        if best is None or stale.name != best.name:  # the best is kept for evaluation
            shutil.rmtree(stale, ignore_errors=True)
    return final


def load_checkpoint(
    path: Path,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    scaler: torch.amp.GradScaler | None,
    rank: int = 0,
) -> TrainerState:
    """Restore a checkpoint into freshly built training objects; returns where to continue.
    Rank ``rank`` of a run on several processes takes its own random state."""
    result = set_peft_model_state_dict(model, load_file(path / ADAPTER_WEIGHTS))
    unexpected = getattr(result, "unexpected_keys", [])
    if unexpected:
        raise RuntimeError(f"checkpoint {path.name} does not fit the model: {unexpected[:3]}")
    tensors = torch.load(path / TENSORS_FILE, weights_only=True)
    optimizer.load_state_dict(tensors["optimizer"])
    scheduler.load_state_dict(tensors["scheduler"])
    if scaler is not None and tensors["scaler"] is not None:
        scaler.load_state_dict(tensors["scaler"])
    torch.set_rng_state(tensors["cpu_rng"])
    if tensors["cuda_rng"] is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(tensors["cuda_rng"])
    ranks_rng = tensors.get("rank_rng")
    if rank and ranks_rng is not None and rank < len(ranks_rng):
        cpu, cuda = ranks_rng[rank]
        torch.set_rng_state(cpu)
        if cuda is not None and torch.cuda.is_available():
            torch.cuda.set_rng_state(cuda)
    return TrainerState(**json.loads((path / STATE_FILE).read_text()))


def save_adapter(directory: Path, model: nn.Module, save_extras: Any) -> Path:
    """The final adapter (plus whatever ``save_extras(dir)`` adds: tokenizer, processor,
    config), written atomically like a checkpoint."""
    tmp = directory.with_name(f".{directory.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    save_extras(tmp)
    if directory.exists():
        shutil.rmtree(directory)
    tmp.replace(directory)
    return directory
