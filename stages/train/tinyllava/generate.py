"""Image to OpenECAD code: greedy decoding with a key/value cache, stopping at the end token.

OpenECAD generates greedily (temperature 0) from the chat template's inference prompt and cuts
the text at the end token. The prompt is the part of an encoded record the training loop never
learns (everything up to ``ASSISTANT:``), so training and generation cannot disagree on it.
Works for any model taking ``input_ids, pixel_values, past_key_values, use_cache,
logits_to_keep`` (the TinyLLaVA model here, transformers' LLaVA).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from PIL import Image
from torch import Tensor, nn

from stages.train.prompt import IGNORE_INDEX


@dataclass(frozen=True)
class Generation:
    """Generated token ids (without the end token) and whether the end token was reached."""

    token_ids: list[int]
    stopped: bool


def prompt_ids(bundle: Any, human: str) -> list[int]:
    """The inference prompt of a human turn, with the image expanded, as the bundle encodes it."""
    encoded = bundle.prompt.encode(
        bundle.tokenizer, human, "", bundle.image_token_id, bundle.num_image_tokens
    )
    first_learned = next(i for i, label in enumerate(encoded.labels) if label != IGNORE_INDEX)
    return list(encoded.input_ids[:first_learned])


@torch.no_grad()
def greedy_generate(
    model: nn.Module,
    input_ids: Tensor,
    pixel_values: Tensor,
    end_token_ids: set[int],
    max_new_tokens: int,
) -> Generation:
    """Decode one sequence (``input_ids`` ``[1, S]``) until an end token or the limit."""
    output = model(input_ids=input_ids, pixel_values=pixel_values, use_cache=True, logits_to_keep=1)
    tokens: list[int] = []
    while len(tokens) < max_new_tokens:
        next_id = int(output.logits[0, -1].argmax())
        if next_id in end_token_ids:
            return Generation(tokens, stopped=True)
        tokens.append(next_id)
        step = torch.tensor([[next_id]], device=input_ids.device)
        output = model(
            input_ids=step,
            past_key_values=output.past_key_values,
            use_cache=True,
            logits_to_keep=1,
        )
    return Generation(tokens, stopped=False)


def generate_answer(
    bundle: Any,
    model: nn.Module,
    image: Image.Image,
    human: str,
    max_new_tokens: int,
    device: torch.device,
) -> tuple[str, Generation]:
    """The decoded answer text for one image and human turn (at most the context's room)."""
    ids = prompt_ids(bundle, human)
    room = min(max_new_tokens, bundle.max_positions - len(ids))
    if room < 1:
        raise ValueError(f"the prompt takes {len(ids)} of {bundle.max_positions} positions")
    pixels = bundle.pixel_values([image.convert("RGB")]).to(device)
    generation = greedy_generate(
        model,
        torch.tensor([ids], device=device),
        pixels,
        {int(bundle.tokenizer.eos_token_id)},
        room,
    )
    text = bundle.tokenizer.decode(generation.token_ids, skip_special_tokens=True)
    return text.strip(), generation
