"""The TinyLLaVA vision-language model: vision tower, connector, decoder, loss.

Module names are TinyLLaVA's (``language_model``, ``vision_tower._vision_tower``,
``connector._connector``), so checkpoints load by name and adapters name the same modules.

Sequences arrive with the image already expanded: ``num_image_tokens`` copies of the
placeholder id (-200) where TinyLLaVA's text holds one. Each copy's embedding is replaced by
one connector output, in order, which yields exactly the sequence TinyLLaVA's own merge splices
together, while lengths, padding and labels stay plain per-token tensors the training loop and
the collator already handle (right padding, labels -100 on image, prompt and padding).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from transformers.modeling_outputs import CausalLMOutputWithPast

from stages.train.prompt import IGNORE_INDEX
from stages.train.tinyllava.config import TinyLlavaConfig
from stages.train.tinyllava.connector import Connector
from stages.train.tinyllava.decoders import decoder_family
from stages.train.tinyllava.vision import VisionTower


class TinyLlavaModel(nn.Module):
    def __init__(self, config: TinyLlavaConfig) -> None:
        super().__init__()
        self.language_model = decoder_family(config.text_model_type).build(config.text_config)
        self.vision_tower = VisionTower(
            config.vision_config,
            config.vision_feature_layer,
            config.vision_feature_select_strategy,
        )
        self.connector = Connector(
            config.connector_type, config.vision_hidden_size, config.text_hidden_size
        )
        self.image_token_index = config.image_token_index
        self.num_image_tokens = config.num_image_tokens
        # peft stores this as the adapter's base model: an absolute checkpoint directory.
        self.name_or_path = str(config.directory)

    def encode_images(self, pixel_values: Tensor) -> Tensor:
        """``[B, 3, H, W]`` pixels to ``[B, num_image_tokens, text_hidden]`` features."""
        return self.connector(self.vision_tower(pixel_values))

    def embed(self, input_ids: Tensor, pixel_values: Tensor | None) -> Tensor:
        """Token embeddings with the image placeholders replaced by image features."""
        is_image = input_ids == self.image_token_index
        embeddings = self.language_model.get_input_embeddings()
        embeds = embeddings(input_ids.masked_fill(is_image, 0))
        if pixel_values is None:  # decoding steps after the prompt: no image in them
            torch._assert_async(~is_image.any(), "image placeholders but no pixel_values")
            return embeds
        counts_ok = (is_image.sum(dim=1) == self.num_image_tokens).all()
        torch._assert_async(counts_ok, "each sequence needs num_image_tokens placeholders")
        features = self.encode_images(pixel_values).to(embeds.dtype)
        scale = getattr(embeddings, "embed_scale", None)
        if scale is not None:
            # Gemma scales every input embedding by sqrt(hidden): inside the model in the
            # transformers TinyLLaVA used (so image features too), in the embedding module now.
            features = features * scale.to(features.dtype)
        return embeds.masked_scatter(is_image.unsqueeze(-1), features)

    def forward(
        self,
        input_ids: Tensor,
        attention_mask: Tensor | None = None,
        pixel_values: Tensor | None = None,
        labels: Tensor | None = None,
        past_key_values: Any = None,
        use_cache: bool = False,
        logits_to_keep: int = 0,
        position_ids: Tensor | None = None,
    ) -> CausalLMOutputWithPast:
        """``position_ids`` (``[B, S]``) with a zero-padded ``attention_mask`` decode a
        left-padded batch; each row's image placeholders are replaced in order, so padding on
        the left moves them, never mixes them."""
        output = self.language_model(
            inputs_embeds=self.embed(input_ids, pixel_values),
            attention_mask=attention_mask,
            position_ids=position_ids,
            past_key_values=past_key_values,
            use_cache=use_cache,
            logits_to_keep=logits_to_keep,
        )
        loss = causal_lm_loss(output.logits, labels) if labels is not None else None
        return CausalLMOutputWithPast(
            loss=loss, logits=output.logits, past_key_values=output.past_key_values
        )

    def activation_checkpointing_enable(
        self, activation_checkpointing_kwargs: dict[str, Any] | None = None
    ) -> None:
        """Recompute activations in the backward pass, in decoder and vision tower alike."""
        kwargs = activation_checkpointing_kwargs or {"use_reentrant": False}
        self.language_model.activation_checkpointing_enable(activation_checkpointing_kwargs=kwargs)
        self.vision_tower.siglip.activation_checkpointing_enable(
            activation_checkpointing_kwargs=kwargs
        )

    def gradient_checkpointing_enable(
        self, gradient_checkpointing_kwargs: dict[str, Any] | None = None
    ) -> None:
        """The same switch under transformers' older name."""
        self.activation_checkpointing_enable(gradient_checkpointing_kwargs)


def causal_lm_loss(logits: Tensor, labels: Tensor) -> Tensor:
    """Mean cross-entropy of each position's prediction of the next label, one mean over the
    whole batch's learned tokens (TinyLLaVA's loss), in float32 at least."""
    wide = torch.promote_types(logits.dtype, torch.float32)
    return F.cross_entropy(
        logits[:, :-1].flatten(0, 1).to(wide), labels[:, 1:].flatten(), ignore_index=IGNORE_INDEX
    )
