"""The SigLIP vision tower as TinyLLaVA uses it, and its image preprocessing.

Features are the encoder's hidden state after ``vision_feature_layer`` (-2: the second to last
layer), with the first patch dropped under the ``patch`` strategy (a leftover from CLIP's class
token: 729 patches become 728 image tokens at 384 px). Layers past the feature layer, the post
layernorm and the pooling head are stored in checkpoints but never used, so they are loaded and
not run. TinyLLaVA fetched the image processor from the tower's hub id; here it is built from
the tower's config (SigLIP's defaults: bicubic resize, scale to [-1, 1]) unless the checkpoint
directory carries a ``preprocessor_config.json``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from PIL import Image
from torch import Tensor, nn
from transformers import SiglipVisionConfig, SiglipVisionModel

PREPROCESSOR_FILE = "preprocessor_config.json"


class SiglipHolder(nn.Module):
    """Keeps SigLIP under ``vision_model``, the level TinyLLaVA's parameter names include
    (``vision_tower._vision_tower.vision_model.*``) and transformers 5 no longer has."""

    def __init__(self, vision_model: SiglipVisionModel) -> None:
        super().__init__()
        self.vision_model = vision_model


class VisionTower(nn.Module):
    """Pixel values to patch features ``[B, tokens, vision_hidden]``."""

    def __init__(self, vision_config: dict[str, Any], feature_layer: int, strategy: str) -> None:
        super().__init__()
        config = SiglipVisionConfig.from_dict(vision_config)
        model = SiglipVisionModel._from_config(
            config, attn_implementation="sdpa", dtype=torch.float32
        )
        self._vision_tower = SiglipHolder(model)
        layers = int(config.num_hidden_layers)
        self.layers_used = feature_layer if feature_layer >= 0 else layers + 1 + feature_layer
        self.drop_first_patch = strategy == "patch"

    @property
    def siglip(self) -> SiglipVisionModel:
        return self._vision_tower.vision_model

    def forward(self, pixel_values: Tensor) -> Tensor:
        tower = self.siglip
        hidden = tower.embeddings(pixel_values.to(tower.embeddings.patch_embedding.weight.dtype))
        for layer in tower.encoder.layers[: self.layers_used]:
            hidden = layer(hidden, None)
        return hidden[:, 1:] if self.drop_first_patch else hidden


class PadToSquare:
    """TinyLLaVA's ``pad`` aspect ratio: centre the image on a square of the processor's mean
    colour before resizing, so nothing is stretched."""

    def __init__(self, processor: Any) -> None:
        self.processor = processor

    def __call__(self, images: list[Image.Image], **kwargs: Any) -> Any:
        return self.processor(images=[self._square(image) for image in images], **kwargs)

    def _square(self, image: Image.Image) -> Image.Image:
        width, height = image.size
        if width == height:
            return image
        side = max(width, height)
        colour = tuple(int(c * 255) for c in self.processor.image_mean)  # as TinyLLaVA
        canvas = Image.new(image.mode, (side, side), colour)
        canvas.paste(image, ((side - width) // 2, (side - height) // 2))
        return canvas

    def save_pretrained(self, directory: Path) -> None:
        self.processor.save_pretrained(directory)


def build_image_processor(directory: Path, image_size: int, aspect_ratio: str) -> Any:
    """The checkpoint's own preprocessor config when present, else SigLIP's defaults."""
    from transformers import AutoImageProcessor
    from transformers.models.siglip.image_processing_pil_siglip import SiglipImageProcessorPil

    if (Path(directory) / PREPROCESSOR_FILE).is_file():
        processor = AutoImageProcessor.from_pretrained(directory, local_files_only=True)
    else:
        processor = SiglipImageProcessorPil(size={"height": image_size, "width": image_size})
    return PadToSquare(processor) if aspect_ratio == "pad" else processor
