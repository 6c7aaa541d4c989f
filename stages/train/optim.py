"""What changes the weights: AdamW over the trainable parameters, a cosine schedule with linear
warm-up, gradient clipping, and a loss scaler for fp16. Built once per run, stepped together."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from transformers import get_cosine_schedule_with_warmup

from stages.train.config import TrainConfig
from stages.train.devices import Runtime
from stages.train.lora import trainable_parameters


@dataclass
class Optimization:
    """The objects that change the weights: kept together because they step together."""

    optimizer: torch.optim.Optimizer
    scheduler: Any
    scaler: torch.amp.GradScaler | None
    params: list[nn.Parameter]
    max_grad_norm: float

    def backward(self, loss: torch.Tensor) -> None:
        (self.scaler.scale(loss) if self.scaler is not None else loss).backward()

    def step(self) -> float:
        """Clip, step, advance the schedule; returns the learning rate this step used."""
        lr = self.last_lr()
        if self.scaler is not None:
            self.scaler.unscale_(self.optimizer)
        torch.nn.utils.clip_grad_norm_(self.params, self.max_grad_norm)
        if self.scaler is not None:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        return lr

    def last_lr(self) -> float:
        return float(self.scheduler.get_last_lr()[0])


def build_optimization(
    model: nn.Module, config: TrainConfig, runtime: Runtime, total_steps: int
) -> Optimization:
    """AdamW (fused on CUDA), warm-up over ``warmup_ratio`` of ``total_steps``, then cosine."""
    params = trainable_parameters(model)
    optimizer = torch.optim.AdamW(
        params,
        lr=config.learning_rate,
        weight_decay=config.weight_decay,
        fused=runtime.is_cuda,
    )
    warmup = math.ceil(config.warmup_ratio * total_steps)
    scheduler = get_cosine_schedule_with_warmup(optimizer, warmup, total_steps)
    scaler = torch.amp.GradScaler("cuda") if runtime.precision == "fp16" else None
    return Optimization(optimizer, scheduler, scaler, params, config.max_grad_norm)
