"""Greedy generation with the cache equals recomputing everything, and stops at the end token."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from PIL import Image

from stages.train.models import load_base_model, resolve_base_model
from stages.train.tinyllava.generate import generate_answer, greedy_generate, prompt_ids

HUMAN = "<image>\nThis image is a view of a 3D model from a certain angle."
STEPS = 8


def inputs(bundle) -> tuple[torch.Tensor, torch.Tensor]:
    ids = torch.tensor([prompt_ids(bundle, HUMAN)])
    pixels = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(3)) * 2 - 1
    return ids, pixels


@torch.no_grad()
def recomputed_greedy(model, ids: torch.Tensor, pixels: torch.Tensor, steps: int) -> list[int]:
    """No cache: the whole sequence through the model for every new token."""
    tokens: list[int] = []
    for _ in range(steps):
        sequence = torch.cat([ids, torch.tensor([tokens], dtype=torch.long)], dim=1)
        tokens.append(int(model(input_ids=sequence, pixel_values=pixels).logits[0, -1].argmax()))
    return tokens


@pytest.mark.parametrize("decoder", ["openelm", "llama"])
def test_cached_decoding_equals_recomputing(decoder, openelm_checkpoint, checkpoint_for) -> None:
    directory = openelm_checkpoint if decoder == "openelm" else checkpoint_for(decoder)
    bundle = load_base_model(resolve_base_model(str(directory)), torch.float64)
    ids, pixels = inputs(bundle)
    generation = greedy_generate(bundle.model, ids, pixels.double(), set(), STEPS)
    assert not generation.stopped
    assert generation.token_ids == recomputed_greedy(bundle.model, ids, pixels.double(), STEPS)


def test_generation_stops_at_the_end_token(openelm_checkpoint: Path) -> None:
    """The end token made the best choice once three tokens are out: exactly three come back."""
    bundle = load_base_model(resolve_base_model(str(openelm_checkpoint)))
    ids, pixels = inputs(bundle)
    eos = bundle.tokenizer.eos_token_id

    def end_after_three(module, args, kwargs, output):
        if output.past_key_values.get_seq_length() >= ids.shape[1] + 3:
            output.logits[..., eos] = 1e9
        return output

    hook = bundle.model.register_forward_hook(end_after_three, with_kwargs=True)
    try:
        generation = greedy_generate(bundle.model, ids, pixels, {eos}, max_new_tokens=50)
    finally:
        hook.remove()
    assert generation.stopped
    assert len(generation.token_ids) == 3
    assert eos not in generation.token_ids


def test_an_answer_without_end_token_runs_to_the_limit(openelm_checkpoint: Path) -> None:
    bundle = load_base_model(resolve_base_model(str(openelm_checkpoint)))
    eos = bundle.tokenizer.eos_token_id

    def never_end(module, args, kwargs, output):
        output.logits[..., eos] = -1e9
        return output

    hook = bundle.model.register_forward_hook(never_end, with_kwargs=True)
    try:
        image = Image.new("RGB", (64, 64), "white")
        text, generation = generate_answer(
            bundle, bundle.model, image, HUMAN, 5, torch.device("cpu")
        )
    finally:
        hook.remove()
    assert not generation.stopped
    assert len(generation.token_ids) == 5
    assert text == bundle.tokenizer.decode(generation.token_ids, skip_special_tokens=True).strip()
