"""Tiny TinyLLaVA checkpoints with random weights, in TinyLLaVA's on-disk layout.

Config keys, parameter names and per-layer shapes are written out here by hand, from
TinyLLaVA's and Apple's code (not taken from the loader), so loading these files checks the
loader against the real layout: ``config.json`` (``model_type`` tinyllava, the decoder's and
SigLIP's configs inside, hub ids it must not fetch), ``model.safetensors`` in fp16, a
SentencePiece ``tokenizer.model`` trained here with its config files, ``generation_config.json``.
"""

from __future__ import annotations

import io
import json
import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import sentencepiece as spm
import torch
from safetensors.torch import save_file
from transformers import CONFIG_MAPPING, AutoModelForCausalLM, SiglipVisionConfig, SiglipVisionModel

HIDDEN = 64
VISION = {
    "model_type": "siglip_vision_model",
    "hidden_size": 32,
    "intermediate_size": 64,
    "num_hidden_layers": 3,
    "num_attention_heads": 2,
    "image_size": 32,
    "patch_size": 8,
    "hidden_act": "gelu_pytorch_tanh",
    "layer_norm_eps": 1e-6,
    "num_channels": 3,
    # TinyLLaVA adds these to the stored vision config
    "model_name_or_path": "google/siglip-so400m-patch14-384",
    "model_name_or_path2": "",
}
IMAGE_TOKENS = (32 // 8) ** 2 - 1  # 16 patches, the first dropped

# OpenELM as Apple's config stores it: 3 layers whose widths differ, worked out by hand from
# make_divisible(64 * [0.5, 0.75, 1.0], 16 * 2) and make_divisible([0.5, 2.25, 4.0] * 64, 16).
OPENELM_LAYERS = ((2, 1, 32), (4, 2, 144), (4, 2, 256))  # (query heads, kv heads, ffn width)
OPENELM_HEAD_DIM = 16
OPENELM_TEXT = {
    "_name_or_path": "apple/OpenELM-450M-Instruct",
    "architectures": ["OpenELMForCausalLM"],
    "auto_map": {"AutoConfig": "apple/OpenELM-450M-Instruct--configuration_openelm.OpenELMConfig"},
    "model_type": "openelm",
    "model_dim": HIDDEN,
    "num_transformer_layers": 3,
    "head_dim": OPENELM_HEAD_DIM,
    "num_gqa_groups": 2,
    "qkv_multipliers": [0.5, 1.0],
    "num_query_heads": [2, 4, 4],
    "num_kv_heads": [1, 2, 2],
    "ffn_multipliers": [0.5, 2.25, 4.0],
    "ffn_dim_divisor": 16,
    "ffn_with_glu": True,
    "activation_fn_name": "swish",
    "normalization_layer_name": "rms_norm",
    "normalize_qk_projections": True,
    "share_input_output_layers": True,
    "rope_freq_constant": 10000,
    "rope_max_length": 4096,
    "max_context_length": 2048,
    "initializer_range": 0.02,
    "bos_token_id": 1,
    "eos_token_id": 2,
    "use_cache": True,
    "torch_dtype": "float16",
}
# transformers families: kwargs of their configs (TinyLLaVA stores the full config dicts)
HF_TEXT = {
    "llama": {
        "intermediate_size": 128,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "head_dim": 16,
        "_name_or_path": "TinyLlama/TinyLlama-1.1B-Chat-v1.0",
    },
    "qwen2": {
        "intermediate_size": 128,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "_name_or_path": "Qwen/Qwen2-0.5B",
    },
    "phi": {"intermediate_size": 128, "num_attention_heads": 4, "_name_or_path": "microsoft/phi-2"},
    "gemma": {
        "intermediate_size": 128,
        "num_attention_heads": 4,
        "num_key_value_heads": 1,
        "head_dim": 16,
        "_name_or_path": "google/gemma-2b-it",
    },
}
TEMPLATE_TEXTS = [
    "A chat between a curious user and an artificial intelligence assistant. USER: ASSISTANT:",
    "You are a mechanical part designer. Please try to use OpenECAD-style API to render this.",
    "Of course, here are the codes:\n```python\nSketchPlane0 = add_sketchplane(\n```",
]


def train_sentencepiece(texts: Iterable[str], vocab_size: int) -> bytes:
    """A Llama-style SentencePiece BPE model (byte fallback, ids 0..2 = unk, bos, eos)."""
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter([*texts, *TEMPLATE_TEXTS]),
        model_writer=model,
        vocab_size=vocab_size,
        model_type="bpe",
        unk_id=0,
        bos_id=1,
        eos_id=2,
        pad_id=-1,
        byte_fallback=True,
        split_digits=True,
        remove_extra_whitespaces=False,
        normalization_rule_name="identity",
        hard_vocab_limit=False,
        minloglevel=2,
    )
    return model.getvalue()


def write_tokenizer(directory: Path, texts: Iterable[str], vocab_size: int) -> int:
    """tokenizer.model + the config files a Llama-2 tokenizer saved by TinyLLaVA has."""
    proto = train_sentencepiece(texts, vocab_size)
    (directory / "tokenizer.model").write_bytes(proto)
    special = {"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "pad_token": "<unk>"}
    added = {
        str(i): {
            "content": t,
            "lstrip": False,
            "normalized": False,
            "rstrip": False,
            "single_word": False,
            "special": True,
        }
        for i, t in enumerate(("<unk>", "<s>", "</s>"))
    }
    config = {
        **special,
        "add_bos_token": True,
        "add_eos_token": False,
        "added_tokens_decoder": added,
        "clean_up_tokenization_spaces": False,
        "legacy": False,
        "model_max_length": 2048,
        "padding_side": "right",
        "sp_model_kwargs": {},
        "tokenizer_class": "LlamaTokenizer",
        "use_default_system_prompt": False,
    }
    (directory / "tokenizer_config.json").write_text(json.dumps(config, indent=2))
    (directory / "special_tokens_map.json").write_text(json.dumps(special, indent=2))
    return spm.SentencePieceProcessor(model_proto=proto).get_piece_size()


def _linear(out_features: int, in_features: int, gen: torch.Generator) -> torch.Tensor:
    return torch.randn(out_features, in_features, generator=gen) / math.sqrt(in_features)


def _norm(features: int, gen: torch.Generator) -> torch.Tensor:
    return 1.0 + 0.2 * torch.randn(features, generator=gen)


def openelm_tensors(vocab: int, gen: torch.Generator) -> dict[str, torch.Tensor]:
    """``language_model.transformer.*`` as TinyLLaVA saves OpenELM (no lm_head: tied)."""
    prefix = "language_model.transformer."
    embeddings = 0.25 * torch.randn(vocab, HIDDEN, generator=gen)  # also the (tied) output head
    tensors = {f"{prefix}token_embeddings.weight": embeddings}
    for i, (q_heads, kv_heads, ffn) in enumerate(OPENELM_LAYERS):
        layer = f"{prefix}layers.{i}."
        packed = (q_heads + 2 * kv_heads) * OPENELM_HEAD_DIM
        tensors |= {
            f"{layer}attn_norm.weight": _norm(HIDDEN, gen),
            f"{layer}attn.qkv_proj.weight": _linear(packed, HIDDEN, gen),
            f"{layer}attn.q_norm.weight": _norm(OPENELM_HEAD_DIM, gen),
            f"{layer}attn.k_norm.weight": _norm(OPENELM_HEAD_DIM, gen),
            f"{layer}attn.out_proj.weight": _linear(HIDDEN, q_heads * OPENELM_HEAD_DIM, gen),
            f"{layer}ffn_norm.weight": _norm(HIDDEN, gen),
            f"{layer}ffn.proj_1.weight": _linear(2 * ffn, HIDDEN, gen),
            f"{layer}ffn.proj_2.weight": _linear(HIDDEN, ffn, gen),
        }
    tensors[f"{prefix}norm.weight"] = _norm(HIDDEN, gen)
    return tensors


def hf_text_config(family: str, vocab: int) -> dict[str, Any]:
    kwargs = {k: v for k, v in HF_TEXT[family].items() if not k.startswith("_")}
    config = CONFIG_MAPPING[family](
        hidden_size=HIDDEN,
        num_hidden_layers=2,
        vocab_size=vocab,
        max_position_embeddings=2048,
        bos_token_id=1,
        eos_token_id=2,
        pad_token_id=0,
        **kwargs,
    )
    return {**config.to_dict(), "_name_or_path": HF_TEXT[family]["_name_or_path"]}


def hf_tensors(text_config: dict[str, Any], gen: torch.Generator) -> dict[str, torch.Tensor]:
    """``language_model.*`` as ``save_pretrained`` writes a transformers decoder (a tied head
    stored once), with random values of a useful size."""
    config = CONFIG_MAPPING[text_config["model_type"]].from_dict(text_config)
    model = AutoModelForCausalLM.from_config(config)
    tied = {"lm_head.weight"} if config.tie_word_embeddings else set()
    return {
        f"language_model.{name}": _random_like(name, value, gen)
        for name, value in model.state_dict().items()
        if name not in tied
    }


def siglip_tensors(gen: torch.Generator) -> dict[str, torch.Tensor]:
    """SigLIP's weights under TinyLLaVA's ``vision_tower._vision_tower.vision_model.`` (post
    layernorm and pooling head included: stored, never used)."""
    model = SiglipVisionModel(SiglipVisionConfig(**VISION))
    return {
        f"vision_tower._vision_tower.vision_model.{name}": _random_like(name, value, gen)
        for name, value in model.state_dict().items()
    }


def _random_like(name: str, value: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    if value.ndim == 1:
        base = 1.0 if "norm" in name else 0.0
        return base + 0.2 * torch.randn(value.shape, generator=gen)
    fan_in = value[0].numel() if value.ndim > 1 else 1
    return torch.randn(value.shape, generator=gen) / math.sqrt(fan_in)


def connector_tensors(text_hidden: int, gen: torch.Generator) -> dict[str, torch.Tensor]:
    """mlp2x_gelu: ``connector._connector.{0,2}`` (Linear, GELU, Linear)."""
    vision = VISION["hidden_size"]
    return {
        "connector._connector.0.weight": _linear(text_hidden, vision, gen),
        "connector._connector.0.bias": 0.1 * torch.randn(text_hidden, generator=gen),
        "connector._connector.2.weight": _linear(text_hidden, text_hidden, gen),
        "connector._connector.2.bias": 0.1 * torch.randn(text_hidden, generator=gen),
    }


def tinyllava_config(text_config: dict[str, Any], vocab: int) -> dict[str, Any]:
    """config.json as TinyLLaVA's ``TinyLlavaConfig.save_pretrained`` writes it."""
    return {
        "architectures": ["TinyLlavaForConditionalGeneration"],
        "cache_dir": None,
        "connector_type": "mlp2x_gelu",
        "hidden_size": HIDDEN,
        "ignore_index": -100,
        "image_aspect_ratio": "square",
        "image_token_index": -200,
        "llm_model_name_or_path": text_config["_name_or_path"],
        "model_type": "tinyllava",
        "num_queries": 128,
        "num_resampler_layers": 3,
        "pad_token": "<unk>",
        "pad_token_id": 0,
        "resampler_hidden_size": 768,
        "text_config": text_config,
        "tokenizer_model_max_length": 2048,
        "tokenizer_name_or_path": "meta-llama/Llama-2-7b-hf",
        "tokenizer_padding_side": "right",
        "tokenizer_use_fast": False,
        "torch_dtype": "float16",
        "transformers_version": "4.40.1",
        "tune_type_connector": "full",
        "tune_type_llm": "lora",
        "tune_type_vision_tower": "lora",
        "tune_vision_tower_from_layer": 0,
        "use_cache": True,
        "vision_config": VISION,
        "vision_feature_layer": -2,
        "vision_feature_select_strategy": "patch",
        "vision_hidden_size": VISION["hidden_size"],
        "vision_model_name_or_path": "google/siglip-so400m-patch14-384",
        "vision_model_name_or_path2": "",
        "vocab_size": vocab,
    }


def write_checkpoint(
    directory: Path,
    texts: Iterable[str] = (),
    decoder: str = "openelm",
    seed: int = 0,
    vocab_size: int = 600,
) -> Path:
    """Write a complete tiny checkpoint into ``directory`` (created); returns it."""
    directory.mkdir(parents=True)
    vocab = write_tokenizer(directory, texts, vocab_size)
    gen = torch.Generator().manual_seed(seed)
    if decoder == "openelm":
        text_config = {**OPENELM_TEXT, "vocab_size": vocab}
        tensors = openelm_tensors(vocab, gen)
    else:
        text_config = hf_text_config(decoder, vocab)
        tensors = hf_tensors(text_config, gen)
    tensors |= siglip_tensors(gen) | connector_tensors(HIDDEN, gen)
    tensors = {name: value.to(torch.float16).contiguous() for name, value in tensors.items()}
    save_file(tensors, str(directory / "model.safetensors"), metadata={"format": "pt"})
    config = tinyllava_config(text_config, vocab)
    (directory / "config.json").write_text(json.dumps(config, indent=2))
    generation = {"bos_token_id": 1, "eos_token_id": 2, "pad_token_id": 0}
    (directory / "generation_config.json").write_text(json.dumps(generation, indent=2))
    return directory
