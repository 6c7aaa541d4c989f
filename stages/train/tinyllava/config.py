"""A TinyLLaVA checkpoint's ``config.json`` as typed values, checked before any weight is read.

TinyLLaVA stores the decoder's and the vision tower's full configs inside its own
(``text_config``, ``vision_config``) next to hub ids it would download them from
(``llm_model_name_or_path``, ``vision_model_name_or_path``). Only the stored configs are used
here: the hub ids are kept for naming, never fetched.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stages.train.config import ConfigError

CONFIG_FILE = "config.json"
MODEL_TYPE = "tinyllava"
IMAGE_TOKEN_INDEX = -200  # TinyLLaVA's placeholder id: outside every vocabulary
SELECT_STRATEGIES = ("patch", "cls_patch")
ASPECT_RATIOS = ("square", "pad")


class CheckpointError(ConfigError):
    """The checkpoint cannot be used as it is; reported against the ``base_model`` field."""

    def __init__(self, detail: str) -> None:
        super().__init__("base_model", detail)


@dataclass(frozen=True)
class TinyLlavaConfig:
    """What the model, tokenizer and image preprocessing are built from."""

    directory: Path
    raw: dict[str, Any]
    text_config: dict[str, Any]
    vision_config: dict[str, Any]
    connector_type: str
    vision_feature_layer: int
    vision_feature_select_strategy: str
    image_token_index: int
    max_length: int
    padding_side: str
    image_aspect_ratio: str
    pad_token: str | None

    @property
    def text_model_type(self) -> str:
        return str(self.text_config.get("model_type", ""))

    @property
    def text_hidden_size(self) -> int:
        text = self.text_config
        return int(text.get("hidden_size") or text["model_dim"])  # OpenELM calls it model_dim

    @property
    def vision_hidden_size(self) -> int:
        return int(self.vision_config["hidden_size"])

    @property
    def image_size(self) -> int:
        return int(self.vision_config["image_size"])

    @property
    def num_image_tokens(self) -> int:
        """Patches of one image, less the first when TinyLLaVA drops it (``patch``)."""
        patches = (self.image_size // int(self.vision_config["patch_size"])) ** 2
        return patches - 1 if self.vision_feature_select_strategy == "patch" else patches

    @property
    def names(self) -> list[str]:
        """Every name this checkpoint goes by (to recognise an OpenECAD one)."""
        keys = ("_name_or_path", "llm_model_name_or_path", "name_or_path")
        return [self.directory.name, *(str(self.raw[k]) for k in keys if self.raw.get(k))]


def read_config(directory: Path) -> TinyLlavaConfig:
    """Read and check ``directory/config.json``; CheckpointError says what is wrong."""
    path = Path(directory) / CONFIG_FILE
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"{path}: unreadable ({exc})") from exc
    if not isinstance(raw, dict) or raw.get("model_type") != MODEL_TYPE:
        raise CheckpointError(f"{path} is not a TinyLLaVA config (model_type {MODEL_TYPE!r})")
    text, vision = raw.get("text_config"), raw.get("vision_config")
    if not isinstance(text, dict) or not text.get("model_type"):
        raise CheckpointError(f"{path} holds no text_config with a model_type")
    if not isinstance(vision, dict) or vision.get("model_type") != "siglip_vision_model":
        found = vision.get("model_type") if isinstance(vision, dict) else None
        raise CheckpointError(
            f"{path}: vision tower {found!r} is not supported; only SigLIP towers are"
        )
    config = TinyLlavaConfig(
        directory=Path(directory).resolve(),
        raw=raw,
        text_config=text,
        vision_config=vision,
        connector_type=str(raw.get("connector_type") or ""),
        vision_feature_layer=int(raw.get("vision_feature_layer", -2)),
        vision_feature_select_strategy=str(raw.get("vision_feature_select_strategy", "patch")),
        image_token_index=int(raw.get("image_token_index", IMAGE_TOKEN_INDEX)),
        max_length=int(raw.get("tokenizer_model_max_length") or 2048),
        padding_side=str(raw.get("tokenizer_padding_side") or "right"),
        image_aspect_ratio=str(raw.get("image_aspect_ratio") or "square"),
        pad_token=raw.get("pad_token"),
    )
    _check(config, path)
    return config


def _check(config: TinyLlavaConfig, path: Path) -> None:
    if config.vision_feature_select_strategy not in SELECT_STRATEGIES:
        raise CheckpointError(
            f"{path}: vision_feature_select_strategy "
            f"{config.vision_feature_select_strategy!r} is not one of {SELECT_STRATEGIES}"
        )
    if config.image_token_index >= 0:
        raise CheckpointError(f"{path}: image_token_index must be negative (TinyLLaVA uses -200)")
    if config.image_aspect_ratio not in ASPECT_RATIOS:
        raise CheckpointError(
            f"{path}: image_aspect_ratio {config.image_aspect_ratio!r} is not one of "
            f"{ASPECT_RATIOS}"
        )
    if config.padding_side != "right":
        raise CheckpointError(f"{path}: only right padding is supported (TinyLLaVA's default)")
    layers = int(config.vision_config.get("num_hidden_layers", 0))
    if not -layers - 1 <= config.vision_feature_layer <= layers:
        raise CheckpointError(
            f"{path}: vision_feature_layer {config.vision_feature_layer} is outside the "
            f"tower's {layers} layers"
        )
