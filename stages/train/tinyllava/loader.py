"""A TinyLLaVA checkpoint as the training module's ``VlmBundle`` (the ``tinyllava`` loader).

Registered in ``stages.train.models.LOADERS``. The model's own modules (and transformers'
with them) are imported inside the functions: ``models`` imports this one, and resolving a
base model must stay cheap.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import torch

from stages.train.bundle import BaseModelRef, LoraTargets, VlmBundle
from stages.train.config import ConfigError

if TYPE_CHECKING:
    from stages.train.tinyllava.config import TinyLlavaConfig
    from stages.train.tinyllava.model import TinyLlavaModel


def vision_lora_pattern(layers_used: int) -> str:
    """LoRA on the SigLIP encoder layers that feed the features: the layers after the feature
    layer and the pooling head are stored but never run, so adapters there would never learn."""
    layers = "|".join(str(i) for i in range(layers_used))
    return (
        rf".*vision_tower\._vision_tower\.vision_model\.encoder\.layers\.({layers})\."
        r"(self_attn\.(q_proj|k_proj|v_proj|out_proj)|mlp\.(fc1|fc2))"
    )


# Matched by name suffix in peft: the inner Sequential, so the outer ``connector`` (whose
# name is also a suffix of ``connector._connector``) is not wrapped twice.
CONNECTOR_MODULE = "_connector"


def load_tinyllava_model(
    directory: Path, dtype: torch.dtype = torch.float32
) -> tuple[TinyLlavaModel, TinyLlavaConfig]:
    """Build the model from ``config.json`` and load every stored weight into it (strict)."""
    from transformers.initialization import no_init_weights

    from stages.train.tinyllava.config import read_config
    from stages.train.tinyllava.model import TinyLlavaModel
    from stages.train.tinyllava.weights import load_strict, read_tensors

    config = read_config(directory)
    with no_init_weights():  # every value is overwritten by the checkpoint's
        model = TinyLlavaModel(config)
    load_strict(model, read_tensors(config.directory), str(config.directory))
    return model.to(dtype).eval(), config


def load_tinyllava(ref: BaseModelRef, dtype: torch.dtype, image_size: int | None) -> VlmBundle:
    """The ``LOADERS["tinyllava"]`` entry: model, tokenizer, image processor, chat template."""
    from stages.train.tinyllava.chat import chat_for
    from stages.train.tinyllava.decoders import decoder_family
    from stages.train.tinyllava.tokenizer import load_tokenizer
    from stages.train.tinyllava.vision import build_image_processor

    if ref.path is None:
        raise ConfigError("base_model", f"{ref.spec!r} has no checkpoint directory")
    model, config = load_tinyllava_model(ref.path, dtype)
    if image_size is not None and image_size != config.image_size:
        raise ConfigError(
            "image_size", f"fixed at {config.image_size} px by the base model's vision tower"
        )
    family = decoder_family(config.text_model_type)
    decoder_positions = int(config.text_config.get("max_position_embeddings") or 0) or int(
        config.text_config.get("max_context_length") or config.max_length
    )
    return VlmBundle(
        ref=ref,
        model=model,
        tokenizer=load_tokenizer(config),
        image_processor=build_image_processor(
            config.directory, config.image_size, config.image_aspect_ratio
        ),
        prompt=chat_for(config, ref.spec),
        image_token_id=config.image_token_index,
        num_image_tokens=config.num_image_tokens,
        image_size=config.image_size,
        max_positions=min(config.max_length, decoder_positions),
        lora_targets=LoraTargets(
            language=family.lora_pattern,
            vision=vision_lora_pattern(model.vision_tower.layers_used),
            fully_trained=(CONNECTOR_MODULE,),
        ),
        decoder_layers=family.layers(model.language_model),
        extra={"tinyllava_config": config},
    )
