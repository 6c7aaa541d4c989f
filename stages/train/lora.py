"""LoRA adapters on a base model (peft): the language model by default, the vision tower on
request, the connector trained fully. Trainable weights are kept in fp32 even when the frozen
base is bf16/fp16, so the optimizer never updates low-precision master weights."""

from __future__ import annotations

from pathlib import Path

import torch
from peft import LoraConfig, PeftModel, get_peft_model
from torch import nn

from stages.train.bundle import VlmBundle


def attach_lora(
    bundle: VlmBundle, r: int, alpha: int, dropout: float, include_vision: bool
) -> PeftModel:
    config = LoraConfig(
        r=r,
        lora_alpha=alpha,
        lora_dropout=dropout,
        target_modules=bundle.lora_targets.regex(include_vision),
        modules_to_save=list(bundle.lora_targets.fully_trained),
        bias="none",
    )
    model = get_peft_model(bundle.model, config)
    for param in model.parameters():
        if param.requires_grad and param.dtype != torch.float32:
            param.data = param.data.float()
    return model


def load_adapter(bundle: VlmBundle, adapter_dir: Path) -> PeftModel:
    """A saved adapter on top of its base model, for evaluation or inference."""
    return PeftModel.from_pretrained(bundle.model, str(adapter_dir), is_trainable=False)


def trainable_parameters(model: nn.Module) -> list[nn.Parameter]:
    return [p for p in model.parameters() if p.requires_grad]
