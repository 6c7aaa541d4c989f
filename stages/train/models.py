"""Base models: find one from a spec, load it as a ``VlmBundle``, and say clearly when we can't.

A spec is ``tiny`` (a small LLaVA built from configs, see ``tiny.py``), a local directory
holding a transformers checkpoint, or a hub id that is already in the local cache (nothing is
ever downloaded). ``resolve_base_model`` only reads files, so the server can check a request in
a second; ``load_base_model`` builds the model through ``LOADERS``, keyed by the checkpoint's
``model_type``: transformers' ``llava``, and TinyLLaVA's own ``tinyllava`` (the native loader in
``tinyllava/``, e.g. OpenECADv2-SigLIP-0.89B). A new family is one more loader there,
returning the ``VlmBundle`` of ``bundle.py``.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import torch
from torch import nn

from stages.train.bundle import BaseModelRef, Loader, LoraTargets, VlmBundle
from stages.train.config import ConfigError
from stages.train.prompt import PromptFormat
from stages.train.tinyllava.loader import load_tinyllava

TINY = "tiny"
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
_TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "tokenizer_config.json")
_IMAGE_PROCESSOR_FILES = ("preprocessor_config.json", "processor_config.json")
_PROCESSOR_FROM_CONFIG = frozenset({"tinyllava"})  # these build it from config.json


class BaseModelError(ConfigError):
    """The base model cannot be used; the detail says what to do instead."""

    def __init__(self, detail: str) -> None:
        super().__init__("base_model", detail)


# -- resolution (files only, no weights) -------------------------------------------------------
def resolve_base_model(spec: str) -> BaseModelRef:
    """Find ``spec`` without loading it; raise BaseModelError saying what to do otherwise."""
    spec = spec.strip()
    if spec == TINY:
        return BaseModelRef(spec=TINY, kind="tiny", model_type="llava")
    candidate = Path(spec).expanduser()
    if candidate.is_dir():
        return _checked_directory(spec, "local", candidate.resolve())
    if _HUB_ID.match(spec) and not spec.startswith((".", "/", "~")):
        snapshot = _cached_snapshot(spec)
        if snapshot is None:
            raise BaseModelError(
                f"{spec!r} is neither a local directory nor in the local model cache, and "
                "nothing is downloaded here: download it where there is network access "
                f"(`huggingface-cli download {spec}`) and copy the cache, pass a local "
                "directory holding the checkpoint, or use 'tiny'"
            )
        return _checked_directory(spec, "hub", snapshot)
    raise BaseModelError(
        f"no directory {spec!r}; give 'tiny', a directory holding a transformers "
        "checkpoint, or a hub id already in the local cache"
    )


def _cached_snapshot(repo_id: str) -> Path | None:
    from huggingface_hub import try_to_load_from_cache

    found = try_to_load_from_cache(repo_id, "config.json")
    return Path(found).parent.resolve() if isinstance(found, str) else None


def _checked_directory(spec: str, kind: str, path: Path) -> BaseModelRef:
    config_file = path / "config.json"
    if not config_file.is_file():
        raise BaseModelError(f"{spec!r} holds no config.json: it is not a transformers checkpoint")
    try:
        model_type = json.loads(config_file.read_text()).get("model_type", "")
    except (OSError, ValueError) as exc:
        raise BaseModelError(f"{spec!r}: unreadable config.json ({exc})") from exc
    if model_type not in LOADERS:
        raise BaseModelError(
            f"model type {model_type or 'unknown'!r} of {spec!r} is not supported yet; "
            f"supported: {', '.join(sorted(LOADERS))}. Convert the checkpoint to one of "
            "these (e.g. a transformers LLaVA checkpoint) or use 'tiny'"
        )
    names = set(os.listdir(path))
    if not names.intersection(_TOKENIZER_FILES):
        raise BaseModelError(f"{spec!r} has no tokenizer files: save the tokenizer beside it")
    if model_type not in _PROCESSOR_FROM_CONFIG and not names.intersection(_IMAGE_PROCESSOR_FILES):
        raise BaseModelError(
            f"{spec!r} has no preprocessor_config.json: save the image processor beside it"
        )
    return BaseModelRef(spec=spec, kind=kind, model_type=model_type, path=path)


# -- loading ------------------------------------------------------------------------------------
def load_base_model(
    ref: BaseModelRef, dtype: torch.dtype = torch.float32, image_size: int | None = None
) -> VlmBundle:
    """Load a resolved local checkpoint (on CPU; the loop moves it). ``tiny`` must have been
    built into a directory first (``tiny.build_tiny_checkpoint``)."""
    if ref.path is None:
        raise BaseModelError(f"{ref.spec!r} has no checkpoint directory yet")
    return LOADERS[ref.model_type](ref, dtype, image_size)


def _count_image_tokens(model: nn.Module, image_size: int) -> int:
    """Ask the vision path itself: the count depends on class tokens and selection strategy."""
    param = next(model.parameters())
    probe = torch.zeros(1, 3, image_size, image_size, dtype=param.dtype, device=param.device)
    with torch.no_grad():
        features = model.get_image_features(pixel_values=probe)
    features = getattr(features, "pooler_output", features)
    first = features[0] if isinstance(features, list | tuple) else features
    return int(first.shape[-2])


def load_llava(ref: BaseModelRef, dtype: torch.dtype, image_size: int | None) -> VlmBundle:
    """A transformers LLaVA checkpoint (``model_type`` llava) with its tokenizer and processor."""
    from transformers import AutoImageProcessor, AutoTokenizer, LlavaForConditionalGeneration

    model = LlavaForConditionalGeneration.from_pretrained(
        ref.path, dtype=dtype, local_files_only=True, attn_implementation="sdpa"
    )
    native_size = int(model.config.vision_config.image_size)
    if image_size is not None and image_size != native_size:
        raise ConfigError(
            "image_size", f"fixed at {native_size} px by the base model's vision tower"
        )
    tokenizer = AutoTokenizer.from_pretrained(ref.path, local_files_only=True)
    processor = AutoImageProcessor.from_pretrained(ref.path, local_files_only=True)
    return llava_bundle(ref, model, tokenizer, processor)


def llava_bundle(ref: BaseModelRef, model: nn.Module, tokenizer: Any, processor: Any) -> VlmBundle:
    """The bundle of a built ``LlavaForConditionalGeneration`` (benchmarks build one directly)."""
    projections = r"(q_proj|k_proj|v_proj|o_proj|gate_proj|up_proj|down_proj)"
    image_size = int(model.config.vision_config.image_size)
    return VlmBundle(
        ref=ref,
        model=model,
        tokenizer=tokenizer,
        image_processor=processor,
        prompt=PromptFormat(),
        image_token_id=int(model.config.image_token_index),
        num_image_tokens=_count_image_tokens(model, image_size),
        image_size=image_size,
        max_positions=int(model.config.text_config.max_position_embeddings),
        lora_targets=LoraTargets(
            language=rf".*language_model\..*\.{projections}",
            # encoder layers only: SigLIP's pooling head is stored but never used
            vision=r".*vision_tower\..*encoder\.layers\.\d+\..*\.(q_proj|k_proj|v_proj|out_proj|fc1|fc2)",
            fully_trained=("multi_modal_projector",),
        ),
        decoder_layers=model.model.language_model.layers,
    )


LOADERS: dict[str, Loader] = {"llava": load_llava, "tinyllava": load_tinyllava}
