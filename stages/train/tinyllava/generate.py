"""Image to OpenECAD code: greedy decoding with a key/value cache, stopping at the end token.

OpenECAD generates greedily (temperature 0) from the chat template's inference prompt and cuts
the text at the end token. The prompt is the part of an encoded record the training loop never
learns (everything up to ``ASSISTANT:``), so training and generation cannot disagree on it.
Works for any model taking ``input_ids, pixel_values, past_key_values, use_cache,
logits_to_keep`` (the TinyLLaVA model here, transformers' LLaVA); batches also need
``attention_mask`` and ``position_ids``.

Batches are left-padded so every row's next token comes out of the last column: padding is
masked out and each row's positions count from its own first token, so a row decodes exactly
as it would alone. Every row holds the same number of image placeholders, so the models'
image merges (``masked_scatter`` in row order) give each row its own image's features.
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


def left_pad(prompts: list[list[int]], pad_id: int, device: torch.device) -> tuple[Tensor, Tensor]:
    """``input_ids`` and ``attention_mask`` (``[B, longest]``) with each prompt right-aligned."""
    longest = max(len(ids) for ids in prompts)
    ids = torch.full((len(prompts), longest), pad_id, dtype=torch.long)
    mask = torch.zeros((len(prompts), longest), dtype=torch.long)
    for row, prompt in enumerate(prompts):
        ids[row, longest - len(prompt) :] = torch.tensor(prompt, dtype=torch.long)
        mask[row, longest - len(prompt) :] = 1
    return ids.to(device), mask.to(device)


def prompt_positions(attention_mask: Tensor) -> Tensor:
    """Each row's positions from its first real token (padding clamped to 0)."""
    return (attention_mask.cumsum(dim=-1) - 1).clamp(min=0)


class _Rows:
    """Per-row decoding state: tokens so far, whether the end token came, whether done."""

    def __init__(self, rooms: list[int], end_token_ids: set[int]) -> None:
        self.rooms = rooms
        self.end_token_ids = end_token_ids
        self.tokens: list[list[int]] = [[] for _ in rooms]
        self.stopped = [False] * len(rooms)
        self.done = [room < 1 for room in rooms]

    def take(self, next_ids: list[int]) -> None:
        """Record each live row's next token; a row ends at an end token or at its room."""
        for row, token in enumerate(next_ids):
            if self.done[row]:
                continue
            if token in self.end_token_ids:
                self.stopped[row] = self.done[row] = True
                continue
            self.tokens[row].append(token)
            self.done[row] = len(self.tokens[row]) >= self.rooms[row]

    def generations(self) -> list[Generation]:
        return [Generation(t, s) for t, s in zip(self.tokens, self.stopped, strict=True)]


@torch.no_grad()
def greedy_generate_batch(
    model: nn.Module,
    input_ids: Tensor,
    attention_mask: Tensor,
    pixel_values: Tensor,
    end_token_ids: set[int],
    rooms: list[int],
    pad_id: int,
) -> list[Generation]:
    """Decode a left-padded batch together, each row up to an end token or its own room
    (``rooms[row]`` new tokens); finished rows are fed ``pad_id``, masked out, ignored."""
    positions = prompt_positions(attention_mask)
    output = model(
        input_ids=input_ids,
        attention_mask=attention_mask,
        position_ids=positions,
        pixel_values=pixel_values,
        use_cache=True,
        logits_to_keep=1,
    )
    rows = _Rows(rooms, end_token_ids)
    last = positions[:, -1:]
    while True:
        next_ids = output.logits[:, -1].argmax(dim=-1)
        rows.take(next_ids.tolist())
        if all(rows.done):
            return rows.generations()
        live = torch.tensor([not d for d in rows.done], device=input_ids.device)
        step = torch.where(live, next_ids, pad_id)[:, None]
        attention_mask = torch.cat([attention_mask, live[:, None].to(attention_mask.dtype)], 1)
        last = last + 1
        output = model(
            input_ids=step,
            attention_mask=attention_mask,
            position_ids=last,
            past_key_values=output.past_key_values,
            use_cache=True,
            logits_to_keep=1,
        )


def pad_token_id(tokenizer: Any) -> int:
    """The tokenizer's pad id, or its end id when it has none (padding is masked anyway)."""
    pad = tokenizer.pad_token_id
    return int(tokenizer.eos_token_id if pad is None else pad)


def prompt_room(bundle: Any, prompt: list[int], max_new_tokens: int) -> int:
    """New tokens a prompt may have: ``max_new_tokens`` capped by the context left."""
    room = min(max_new_tokens, bundle.max_positions - len(prompt))
    if room < 1:
        raise ValueError(f"the prompt takes {len(prompt)} of {bundle.max_positions} positions")
    return room


def generate_batch(
    bundle: Any,
    model: nn.Module,
    images: list[Image.Image],
    humans: list[str],
    max_new_tokens: int,
    device: torch.device,
) -> list[tuple[str, Generation]]:
    """The decoded answer text of each image and human turn, decoded as one batch; each row's
    tokens equal its greedy decoding alone (up to float rounding)."""
    if len(images) != len(humans) or not humans:
        raise ValueError(f"{len(images)} images for {len(humans)} human turns")
    prompts = [prompt_ids(bundle, human) for human in humans]
    rooms = [prompt_room(bundle, prompt, max_new_tokens) for prompt in prompts]
    pad_id = pad_token_id(bundle.tokenizer)
    input_ids, attention_mask = left_pad(prompts, pad_id, device)
    pixels = bundle.pixel_values([image.convert("RGB") for image in images]).to(device)
    end = {int(bundle.tokenizer.eos_token_id)}
    generations = greedy_generate_batch(
        model, input_ids, attention_mask, pixels, end, rooms, pad_id
    )
    return [(decode_answer(bundle, g), g) for g in generations]


def decode_answer(bundle: Any, generation: Generation) -> str:
    return bundle.tokenizer.decode(generation.token_ids, skip_special_tokens=True).strip()


def generate_answer(
    bundle: Any,
    model: nn.Module,
    image: Image.Image,
    human: str,
    max_new_tokens: int,
    device: torch.device,
) -> tuple[str, Generation]:
    """The decoded answer text for one image and human turn (at most the context's room)."""
    return generate_batch(bundle, model, [image], [human], max_new_tokens, device)[0]
