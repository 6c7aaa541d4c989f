"""The loaded model computes TinyLLaVA's forward pass: compared with the plain reference."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from transformers import CONFIG_MAPPING, AutoModelForCausalLM

from stages.train.data import Collator
from stages.train.tinyllava.loader import load_tinyllava_model
from tests.train.tinyllava import reference as ref
from tests.train.tinyllava.checkpoints import IMAGE_TOKENS, OPENELM_HEAD_DIM, OPENELM_LAYERS, VISION

# Two samples of different lengths (so the batch is right-padded), TinyLLaVA-style: one -200
# placeholder; the labels learn only the answer and its end token (2).
SAMPLES = [
    ([1, 17, 23, ref.IMAGE, 40, 41, 42, 43, 44, 2], [-100] * 6 + [42, 43, 44, 2]),
    ([1, 9, ref.IMAGE, 50, 51, 2], [-100] * 4 + [51, 2]),
]
LAYERS_USED = VISION["num_hidden_layers"] - 1  # hidden_states[-2]


def stored_tensors(directory: Path) -> dict[str, torch.Tensor]:
    return {k: v.double() for k, v in load_file(directory / "model.safetensors").items()}


def expanded(values: list[int], ids: list[int], fill: int) -> list[int]:
    """The placeholder as the training module feeds it: one id per image token."""
    out: list[int] = []
    for value, token in zip(values, ids, strict=True):
        out += [fill] * IMAGE_TOKENS if token == ref.IMAGE else [value]
    return out


def model_batch(pixels: torch.Tensor) -> dict:
    items = [
        {
            "input_ids": torch.tensor(expanded(ids, ids, ref.IMAGE)),
            "labels": torch.tensor(expanded(labels, ids, ref.IGNORE)),
            "pixel_values": pixel,
        }
        for (ids, labels), pixel in zip(SAMPLES, pixels, strict=True)
    ]
    return Collator(pad_token_id=0)(items)


def reference_inputs(w: dict, pixels: torch.Tensor, embeddings: torch.Tensor) -> list:
    """TinyLLaVA's merged embeddings (vision tower, connector, splice) per sample."""
    merged = []
    for (ids, _), pixel in zip(SAMPLES, pixels, strict=True):
        image = ref.connector(w, ref.siglip_features(w, pixel, VISION, LAYERS_USED))
        merged.append(ref.merge(ids, embeddings, image))
    return merged


def reference_labels() -> list[list[int]]:
    return [ref.merged_labels(labels, ids, IMAGE_TOKENS) for ids, labels in SAMPLES]


def pixels_for(seed: int) -> torch.Tensor:
    return torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(seed)).double() * 2 - 1


def run_model(directory: Path, pixels: torch.Tensor):
    model, _ = load_tinyllava_model(directory, torch.float64)
    batch = model_batch(pixels)
    assert batch["attention_mask"] is not None  # the shorter sample is padded
    with torch.no_grad():
        return model(
            input_ids=batch["input_ids"],
            attention_mask=batch["attention_mask"],
            pixel_values=batch["pixel_values"],
            labels=batch["labels"],
        )


def assert_matches(output, expected_logits: list, tolerance: float) -> None:
    for row, expected in enumerate(expected_logits):
        got = output.logits[row, : len(expected)]
        assert torch.allclose(got, expected, atol=tolerance, rtol=tolerance), (
            f"sample {row}: max difference {float((got - expected).abs().max()):.3g}"
        )
    expected_loss = ref.batch_loss(expected_logits, reference_labels())
    assert float(output.loss) == pytest.approx(float(expected_loss), rel=tolerance)


def test_openelm_forward_and_loss_equal_the_reference(openelm_checkpoint: Path) -> None:
    w = stored_tensors(openelm_checkpoint)
    pixels = pixels_for(0)
    inputs = reference_inputs(w, pixels, w["language_model.transformer.token_embeddings.weight"])
    expected = [ref.openelm_logits(w, x, OPENELM_LAYERS, OPENELM_HEAD_DIM) for x in inputs]
    assert_matches(run_model(openelm_checkpoint, pixels), expected, tolerance=1e-9)


def test_llama_forward_and_loss_equal_the_reference(checkpoint_for) -> None:
    directory = checkpoint_for("llama")
    w = stored_tensors(directory)
    _, config = load_tinyllava_model(directory, torch.float64)
    pixels = pixels_for(1)
    inputs = reference_inputs(w, pixels, w["language_model.model.embed_tokens.weight"])
    expected = [ref.llama_logits(w, x, config.text_config) for x in inputs]
    # transformers' Llama normalises in float32 even in a float64 model
    assert_matches(run_model(directory, pixels), expected, tolerance=1e-5)


@pytest.mark.parametrize("decoder", ["qwen2", "phi", "gemma"])
def test_other_decoders_equal_transformers_on_the_reference_merge(checkpoint_for, decoder) -> None:
    """Vision tower, connector and merge against the reference; the decoder is transformers'
    own class, loaded here separately from the stored tensors."""
    directory = checkpoint_for(decoder)
    w = stored_tensors(directory)
    _, config = load_tinyllava_model(directory, torch.float64)
    text = CONFIG_MAPPING[decoder].from_dict(config.text_config)
    decoder_model = AutoModelForCausalLM.from_config(text, dtype=torch.float64)
    prefix = "language_model."
    decoder_model.load_state_dict(
        {k[len(prefix) :]: v for k, v in w.items() if k.startswith(prefix)}, strict=False
    )
    decoder_model.tie_weights()
    pixels = pixels_for(2)
    embeddings = decoder_model.get_input_embeddings().weight.detach()
    # TinyLLaVA's (4.x) Gemma scaled all inputs, image features included, by sqrt(hidden)
    scale = text.hidden_size**0.5 if decoder == "gemma" else 1.0
    with torch.no_grad():
        expected = [
            decoder_model(inputs_embeds=scale * x[None]).logits[0]
            for x in reference_inputs(w, pixels, embeddings)
        ]
    assert_matches(run_model(directory, pixels), expected, tolerance=1e-7)
