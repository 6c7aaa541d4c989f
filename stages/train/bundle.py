"""What a base model family hands the training loop: the ``VlmBundle`` and the values in it.

A loader (``models.LOADERS``, keyed by the checkpoint's ``model_type``) turns a resolved
``BaseModelRef`` into a ``VlmBundle``: the model with its tokenizer, image processor and prompt
format, the image-token layout, and where LoRA goes. The loop, the adapters and the evaluation
know nothing family-specific beyond this module; a new family writes one loader returning it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from stages.train.prompt import PromptFormat


@dataclass(frozen=True)
class BaseModelRef:
    """A resolved base model: ``kind`` is tiny, local or hub; ``path`` is absolute."""

    spec: str
    kind: str
    model_type: str
    path: Path | None = None

    def describe(self) -> dict[str, Any]:
        return {
            "spec": self.spec,
            "kind": self.kind,
            "model_type": self.model_type,
            "path": str(self.path) if self.path else None,
        }


@dataclass(frozen=True)
class LoraTargets:
    """peft target regexes (full match) and the modules trained fully (the connector)."""

    language: str
    vision: str
    fully_trained: tuple[str, ...]

    def regex(self, include_vision: bool) -> str:
        return f"(?:{self.language})|(?:{self.vision})" if include_vision else self.language


@dataclass
class VlmBundle:
    """Everything the loop needs from a base model family, and nothing family-specific beyond."""

    ref: BaseModelRef
    model: nn.Module
    tokenizer: Any
    image_processor: Any
    prompt: PromptFormat
    image_token_id: int
    num_image_tokens: int
    image_size: int
    max_positions: int
    lora_targets: LoraTargets
    decoder_layers: nn.ModuleList
    extra: dict[str, Any] = field(default_factory=dict)

    def pixel_values(self, images: list[Any]) -> torch.Tensor:
        return self.image_processor(images=images, return_tensors="pt")["pixel_values"]

    def save_processors(self, directory: Path) -> None:
        """Tokenizer and image preprocessing beside an adapter, so it loads on its own."""
        self.tokenizer.save_pretrained(directory)
        self.image_processor.save_pretrained(directory)


Loader = Callable[[BaseModelRef, torch.dtype, int | None], VlmBundle]
"""(resolved ref, dtype of the frozen base, requested image size or None) -> bundle."""
