"""The language models TinyLLaVA pairs with a vision tower, keyed by ``text_config.model_type``.

OpenELM is built natively (``openelm.py``); Llama (TinyLlama), Qwen2, Phi and Gemma come from
transformers' own classes, whose parameter names are the ones TinyLLaVA saved
(``language_model.model.layers.N...``, ``language_model.lm_head``). Each family also says which
modules LoRA adapts and where its decoder layers are (for compiling them one by one).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from stages.train.tinyllava.config import CheckpointError
from stages.train.tinyllava.openelm import OpenElmForCausalLM, openelm_dims

_HF_PROJECTIONS = r"(q_proj|k_proj|v_proj|o_proj|dense|gate_proj|up_proj|down_proj|fc1|fc2)"


@dataclass(frozen=True)
class DecoderFamily:
    """How to build one family from its config dict, and what LoRA targets in it."""

    build: Callable[[dict[str, Any]], nn.Module]
    layers: Callable[[nn.Module], nn.ModuleList]
    lora_pattern: str  # full match on module names inside the VLM


def _build_openelm(text: dict[str, Any]) -> nn.Module:
    try:
        dims = openelm_dims(text)
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"OpenELM text_config is incomplete or invalid ({exc})") from exc
    return OpenElmForCausalLM(dims)


def _build_transformers(text: dict[str, Any]) -> nn.Module:
    from transformers import CONFIG_MAPPING, AutoModelForCausalLM

    config = CONFIG_MAPPING[text["model_type"]].from_dict(text)
    model = AutoModelForCausalLM.from_config(
        config, attn_implementation="sdpa", dtype=torch.float32
    )
    model.tie_weights()  # skipped when built under no_init_weights
    return model


OPENELM = DecoderFamily(
    build=_build_openelm,
    layers=lambda model: model.transformer.layers,
    lora_pattern=r".*language_model\.transformer\.layers\.\d+\."
    r"(attn\.(qkv_proj|out_proj)|ffn\.(proj_1|proj_2))",
)
TRANSFORMERS = DecoderFamily(
    build=_build_transformers,
    layers=lambda model: model.model.layers,
    lora_pattern=rf".*language_model\.model\.layers\.\d+\.(self_attn|mlp)\.{_HF_PROJECTIONS}",
)
DECODERS: dict[str, DecoderFamily] = {
    "openelm": OPENELM,
    "llama": TRANSFORMERS,
    "qwen2": TRANSFORMERS,
    "phi": TRANSFORMERS,
    "gemma": TRANSFORMERS,
}


def decoder_family(model_type: str) -> DecoderFamily:
    if model_type not in DECODERS:
        raise CheckpointError(
            f"TinyLLaVA decoder {model_type!r} is not supported; supported: "
            f"{', '.join(sorted(DECODERS))}"
        )
    return DECODERS[model_type]
