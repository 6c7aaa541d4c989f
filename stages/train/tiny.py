"""Random-weight LLaVA models built from configs: the ``tiny`` base model and benchmark shapes.

The tiny model is the same architecture as the real one (SigLIP vision tower, two-layer GELU
MLP connector, Llama decoder) at a size that trains on a CPU in seconds, with a byte-level BPE
tokenizer trained on the dataset's own texts. It is built once per run and saved as an ordinary
local LLaVA checkpoint, so training, resuming and reloading the adapter all take the same path
as a real local model.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import torch
from transformers import LlamaConfig, LlavaConfig, LlavaForConditionalGeneration, SiglipVisionConfig
from transformers.models.siglip.image_processing_pil_siglip import SiglipImageProcessorPil

from stages.train.tokenizer import train_bpe_tokenizer

DEFAULT_IMAGE_SIZE = 224


@dataclass(frozen=True)
class VlmShape:
    """The sizes that define a LLaVA-family model; ``patch_size`` None means image_size // 8."""

    vision_hidden: int
    vision_intermediate: int
    vision_layers: int
    vision_heads: int
    text_hidden: int
    text_intermediate: int
    text_layers: int
    text_heads: int
    text_kv_heads: int
    head_dim: int
    vocab_size: int
    tie_embeddings: bool = False
    patch_size: int | None = None
    init_std: float = 0.02
    head_init_std: float | None = None  # the output layer's own std; None: init_std


# About 0.8M parameters: 8x8 patches (63 image tokens), a 2-layer 64-wide vision tower and a
# 2-layer 128-wide decoder. Measured on the demo's test-run (scripts/bench/tiny_recipe.py), not
# guessed: at width 64 the frozen random decoder left LoRA too little to steer and the loss
# stalled near 2.7 nats per token; at width 128 it falls below 1. The frozen output layer is
# drawn with std 1/sqrt(width) so that it can make confident predictions at all (the usual
# 0.02 suits models thousands wide), the body with a smaller 0.08, which LoRA steers more
# easily than a body as rough as the head.
TINY_SHAPE = VlmShape(
    vision_hidden=64,
    vision_intermediate=128,
    vision_layers=2,
    vision_heads=2,
    text_hidden=128,
    text_intermediate=256,
    text_layers=2,
    text_heads=4,
    text_kv_heads=2,
    head_dim=32,
    vocab_size=1024,
    init_std=0.08,
    head_init_std=0.177,
)

# OpenECADv2-SigLIP-0.89B's shape: SigLIP so400m-patch14-384 and an OpenELM-450M-sized decoder
# (1536 wide, 20 layers, 64-wide heads; OpenELM's per-layer head counts 12..24 and FFN widths
# 768..6144 averaged to 18 query / 6 key-value heads and 3456), Llama-2 vocabulary, tied output.
OPENECAD_089B_SHAPE = VlmShape(
    vision_hidden=1152,
    vision_intermediate=4304,
    vision_layers=27,
    vision_heads=16,
    text_hidden=1536,
    text_intermediate=3456,
    text_layers=20,
    text_heads=18,
    text_kv_heads=6,
    head_dim=64,
    vocab_size=32000,
    tie_embeddings=True,
    patch_size=14,
)


def llava_config(
    shape: VlmShape,
    image_size: int,
    vocab_size: int,
    image_token_id: int,
    pad_token_id: int,
    bos_token_id: int,
    eos_token_id: int,
    max_positions: int,
) -> LlavaConfig:
    """A LLaVA config of ``shape``; features are the vision tower's second-to-last layer with
    the first patch dropped, as TinyLLaVA does (729 patches -> 728 tokens at 384 px)."""
    vision = SiglipVisionConfig(
        hidden_size=shape.vision_hidden,
        intermediate_size=shape.vision_intermediate,
        num_hidden_layers=shape.vision_layers,
        num_attention_heads=shape.vision_heads,
        image_size=image_size,
        patch_size=shape.patch_size or image_size // 8,
    )
    text = LlamaConfig(
        hidden_size=shape.text_hidden,
        intermediate_size=shape.text_intermediate,
        num_hidden_layers=shape.text_layers,
        num_attention_heads=shape.text_heads,
        num_key_value_heads=shape.text_kv_heads,
        head_dim=shape.head_dim,
        vocab_size=vocab_size,
        max_position_embeddings=max_positions,
        pad_token_id=pad_token_id,
        bos_token_id=bos_token_id,
        eos_token_id=eos_token_id,
        tie_word_embeddings=shape.tie_embeddings,
        initializer_range=shape.init_std,
    )
    return LlavaConfig(
        vision_config=vision,
        text_config=text,
        # older 4.x versions ignore image_token_id; the index is read by every version
        image_token_index=image_token_id,
        vision_feature_layer=-2,
        vision_feature_select_strategy="default",
        projector_hidden_act="gelu",
        tie_word_embeddings=shape.tie_embeddings,
    )


def build_tiny_checkpoint(
    directory: Path,
    texts: Iterable[str],
    image_size: int = DEFAULT_IMAGE_SIZE,
    max_positions: int = 2048,
    seed: int = 0,
    shape: VlmShape = TINY_SHAPE,
) -> Path:
    """Train a tokenizer on ``texts``, build a random model and save both (plus the image
    processor) into ``directory``, atomically: a half-written directory never appears."""
    tokenizer = train_bpe_tokenizer(texts, shape.vocab_size)
    config = llava_config(
        shape,
        image_size=image_size,
        vocab_size=len(tokenizer),
        image_token_id=tokenizer.convert_tokens_to_ids(tokenizer.image_token),
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        max_positions=max_positions,
    )
    torch.manual_seed(seed)
    model = LlavaForConditionalGeneration(config)
    if shape.head_init_std is not None and not shape.tie_embeddings:
        with torch.no_grad():
            model.lm_head.weight.normal_(0.0, shape.head_init_std)
    processor = SiglipImageProcessorPil(size={"height": image_size, "width": image_size})

    tmp = directory.with_name(f".{directory.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    processor.save_pretrained(tmp)
    tmp.replace(directory)
    return directory.resolve()
