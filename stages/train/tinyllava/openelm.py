"""Apple's OpenELM decoder (OpenECAD 0.89B's language model) in plain torch.

OpenELM is not in transformers, and its hub code is remote code. What makes it different from
Llama: every layer has its own number of query/key-value heads and its own feed-forward width
(derived from ``qkv_multipliers``/``ffn_multipliers`` exactly as Apple's config class does),
one packed ``qkv_proj`` per layer split as query heads, key heads, value heads, per-head RMS
norms on queries and keys before the rotary embedding, a gated FFN ``proj_2(silu(a) * b)`` with
``a, b`` the halves of ``proj_1``, and the output projection tied to ``token_embeddings``.
Module names match TinyLLaVA's checkpoints (``transformer.layers.N.attn.qkv_proj`` ...).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from numbers import Number
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint
from transformers.modeling_outputs import CausalLMOutputWithPast

RMS_EPS = 1e-6
ACTIVATIONS = {"swish": F.silu, "silu": F.silu, "gelu": F.gelu, "relu": F.relu}


def make_divisible(value: float, divisor: int, min_value: int | None = None) -> int:
    """Round ``value`` to a multiple of ``divisor`` (never more than 10% down): Apple's rule
    for head and FFN widths, reproduced exactly so the widths match the stored weights."""
    min_value = divisor if min_value is None else min_value
    rounded = max(min_value, int(value + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * value:
        rounded += divisor
    return int(rounded)


def _per_layer(multipliers: Any, layers: int) -> list[float]:
    """A number (same for every layer), a (first, last) pair spread linearly, or one per layer."""
    if isinstance(multipliers, Number):
        return [float(multipliers)] * layers
    values = list(multipliers)
    if len(values) == 2:
        return [round(v, 2) for v in np.linspace(values[0], values[1], num=layers, dtype=float)]
    if len(values) == layers:
        return [float(v) for v in values]
    raise ValueError(f"{len(values)} multipliers for {layers} layers")


@dataclass(frozen=True)
class OpenElmDims:
    """The shapes of one OpenELM decoder, per layer where OpenELM varies them."""

    model_dim: int
    head_dim: int
    vocab_size: int
    query_heads: tuple[int, ...]
    kv_heads: tuple[int, ...]
    ffn_dims: tuple[int, ...]
    glu: bool
    activation: str
    qk_norm: bool
    tied_output: bool
    rope_base: float
    max_context_length: int

    @property
    def num_layers(self) -> int:
        return len(self.query_heads)


def openelm_dims(text: Mapping[str, Any]) -> OpenElmDims:
    """The decoder's shapes from its config dict, as Apple's ``OpenELMConfig`` computes them
    (stored per-layer head lists are recomputed there too, so they are not trusted here)."""
    layers, model_dim = int(text["num_transformer_layers"]), int(text["model_dim"])
    head_dim, groups = int(text["head_dim"]), int(text.get("num_gqa_groups") or 1)
    query_dims = [
        make_divisible(model_dim * m, divisor=head_dim * groups)
        for m in _per_layer(text.get("qkv_multipliers", 1.0), layers)
    ]
    query_heads = [dim // head_dim for dim in query_dims]
    ffn_dims = [
        make_divisible(m * model_dim, divisor=int(text.get("ffn_dim_divisor", 256)))
        for m in _per_layer(text.get("ffn_multipliers", 4.0), layers)
    ]
    activation = str(text.get("activation_fn_name", "swish"))
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation {activation!r} is not supported")
    return OpenElmDims(
        model_dim=model_dim,
        head_dim=head_dim,
        vocab_size=int(text["vocab_size"]),
        query_heads=tuple(query_heads),
        kv_heads=tuple(heads // groups for heads in query_heads),
        ffn_dims=tuple(ffn_dims),
        glu=bool(text.get("ffn_with_glu", True)),
        activation=activation,
        qk_norm=bool(text.get("normalize_qk_projections", False)),
        tied_output=bool(text.get("share_input_output_layers", False)),
        rope_base=float(text.get("rope_freq_constant", 10000)),
        max_context_length=int(text.get("max_context_length", 2048)),
    )


def compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """Norms and rotary embeddings run in float32 at least (as OpenELM does for bf16/fp16)."""
    return torch.promote_types(dtype, torch.float32)


class RMSNorm(nn.Module):
    """Normalised in float32 (at least), scaled in the input's dtype (as OpenELM does)."""

    def __init__(self, features: int, eps: float = RMS_EPS) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(features))

    def forward(self, x: Tensor) -> Tensor:
        wide = x.to(compute_dtype(x.dtype))
        normed = wide * torch.rsqrt(wide.pow(2).mean(-1, keepdim=True) + self.eps)
        return normed.type_as(x) * self.weight


def rotary_tables(positions: Tensor, head_dim: int, base: float, dtype: torch.dtype) -> Tensor:
    """cos and sin (``[2, B, 1, S, head_dim]``, broadcast over heads) for ``positions``
    (``[B, S]``, or ``[1, S]`` shared by the batch): per row, so left-padded rows rotate
    from their own first token."""
    exponents = torch.arange(0, head_dim, 2, device=positions.device, dtype=dtype) / head_dim
    inv_freq = 1.0 / (base**exponents)
    angles = positions.to(dtype)[..., None] * inv_freq
    angles = torch.cat((angles, angles), dim=-1)[:, None]
    return torch.stack((angles.cos(), angles.sin()))


def apply_rotary(x: Tensor, tables: Tensor) -> Tensor:
    """Rotate-half over the whole head, computed in the tables' (wide) dtype."""
    wide = x.to(tables.dtype)
    first, second = wide.chunk(2, dim=-1)
    rotated = wide * tables[0] + torch.cat((-second, first), dim=-1) * tables[1]
    return rotated.type_as(x)


class OpenElmCache:
    """Keys (already rotated) and values per layer, for incremental decoding."""

    def __init__(self, num_layers: int) -> None:
        self.keys: list[Tensor | None] = [None] * num_layers
        self.values: list[Tensor | None] = [None] * num_layers

    def get_seq_length(self) -> int:
        first = self.keys[0]
        return 0 if first is None else int(first.shape[-2])

    def update(self, layer: int, key: Tensor, value: Tensor) -> tuple[Tensor, Tensor]:
        old_key, old_value = self.keys[layer], self.values[layer]
        if old_key is not None and old_value is not None:
            key, value = torch.cat((old_key, key), dim=-2), torch.cat((old_value, value), dim=-2)
        self.keys[layer], self.values[layer] = key, value
        return key, value


class Attention(nn.Module):
    """Grouped-query attention with this layer's own head counts."""

    def __init__(self, dims: OpenElmDims, layer: int) -> None:
        super().__init__()
        self.layer = layer
        self.head_dim = dims.head_dim
        self.q_heads, self.kv_heads = dims.query_heads[layer], dims.kv_heads[layer]
        packed = (self.q_heads + 2 * self.kv_heads) * self.head_dim
        self.qkv_proj = nn.Linear(dims.model_dim, packed, bias=False)
        self.q_norm = RMSNorm(self.head_dim) if dims.qk_norm else None
        self.k_norm = RMSNorm(self.head_dim) if dims.qk_norm else None
        self.out_proj = nn.Linear(self.q_heads * self.head_dim, dims.model_dim, bias=False)

    def forward(
        self, x: Tensor, tables: Tensor, mask: Tensor | None, cache: OpenElmCache | None
    ) -> Tensor:
        batch, length, _ = x.shape
        qkv = self.qkv_proj(x).view(batch, length, -1, self.head_dim).transpose(1, 2)
        query, key, value = qkv.split((self.q_heads, self.kv_heads, self.kv_heads), dim=1)
        if self.q_norm is not None and self.k_norm is not None:
            query, key = self.q_norm(query), self.k_norm(key)
        query, key = apply_rotary(query, tables), apply_rotary(key, tables)
        if cache is not None:
            key, value = cache.update(self.layer, key, value)
        out = F.scaled_dot_product_attention(
            query,
            key,
            value,
            attn_mask=mask,
            is_causal=mask is None and length > 1,
            enable_gqa=self.q_heads != self.kv_heads,
        )
        return self.out_proj(out.transpose(1, 2).reshape(batch, length, -1))


class FeedForward(nn.Module):
    """``proj_2(act(a) * b)`` with ``a, b`` the halves of ``proj_1`` (or plain, without GLU)."""

    def __init__(self, dims: OpenElmDims, layer: int) -> None:
        super().__init__()
        width = dims.ffn_dims[layer]
        self.glu = dims.glu
        self.act = ACTIVATIONS[dims.activation]
        self.proj_1 = nn.Linear(dims.model_dim, 2 * width if dims.glu else width, bias=False)
        self.proj_2 = nn.Linear(width, dims.model_dim, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        hidden = self.proj_1(x)
        if self.glu:
            gate, up = hidden.chunk(2, dim=-1)
            return self.proj_2(self.act(gate) * up)
        return self.proj_2(self.act(hidden))


class DecoderLayer(nn.Module):
    """Pre-norm attention then pre-norm FFN, each with a residual."""

    def __init__(self, dims: OpenElmDims, layer: int) -> None:
        super().__init__()
        self.attn_norm = RMSNorm(dims.model_dim)
        self.attn = Attention(dims, layer)
        self.ffn_norm = RMSNorm(dims.model_dim)
        self.ffn = FeedForward(dims, layer)

    def forward(
        self, x: Tensor, tables: Tensor, mask: Tensor | None, cache: OpenElmCache | None = None
    ) -> Tensor:
        x = x + self.attn(self.attn_norm(x), tables, mask, cache)
        return x + self.ffn(self.ffn_norm(x))


def attention_mask_for(
    attention_mask: Tensor | None, length: int, past: int, device: Any
) -> Tensor | None:
    """A boolean ``[B, 1, S, T]`` mask (causal, padded keys hidden), or None when SDPA's own
    causal path applies (no padding and no cached prefix, or a single new token). A padding
    query still sees itself: a row with no key at all is zeros in torch's CPU kernels but need
    not be in others, and a NaN in a padded key's value poisons every row (0 * NaN) even
    where that key is masked."""
    if attention_mask is None and (past == 0 or length == 1):
        return None
    total = past + length
    causal = torch.ones(length, total, dtype=torch.bool, device=device).tril(diagonal=past)
    if attention_mask is None:
        return causal[None, None]
    itself = causal & ~causal.tril(diagonal=past - 1)
    return (causal & attention_mask.bool()[:, None, None, :total]) | itself


class OpenElmModel(nn.Module):
    """Embeddings, decoder layers and the final norm (``transformer.*`` in checkpoints)."""

    def __init__(self, dims: OpenElmDims) -> None:
        super().__init__()
        self.dims = dims
        self.token_embeddings = nn.Embedding(dims.vocab_size, dims.model_dim)
        self.layers = nn.ModuleList(DecoderLayer(dims, i) for i in range(dims.num_layers))
        self.norm = RMSNorm(dims.model_dim)
        self.gradient_checkpointing = False
        self.checkpoint_kwargs: dict[str, Any] = {"use_reentrant": False}

    def forward(
        self,
        inputs_embeds: Tensor,
        attention_mask: Tensor | None = None,
        cache: OpenElmCache | None = None,
        position_ids: Tensor | None = None,
    ) -> Tensor:
        length = inputs_embeds.shape[1]
        past = cache.get_seq_length() if cache is not None else 0
        device = inputs_embeds.device
        if position_ids is None:  # no padding: positions follow the cache
            position_ids = torch.arange(past, past + length, device=device)[None]
        tables = rotary_tables(
            position_ids,
            self.dims.head_dim,
            self.dims.rope_base,
            compute_dtype(inputs_embeds.dtype),
        )
        mask = attention_mask_for(attention_mask, length, past, device)
        hidden = inputs_embeds
        for layer in self.layers:
            if self.gradient_checkpointing and self.training:
                hidden = checkpoint(layer, hidden, tables, mask, **self.checkpoint_kwargs)
            else:
                hidden = layer(hidden, tables, mask, cache)
        return self.norm(hidden)


class OpenElmForCausalLM(nn.Module):
    """OpenELM with its output head; the same call signature as transformers' causal LMs, so
    the VLM drives every decoder family alike."""

    def __init__(self, dims: OpenElmDims) -> None:
        super().__init__()
        self.transformer = OpenElmModel(dims)
        self.lm_head = (
            None if dims.tied_output else nn.Linear(dims.model_dim, dims.vocab_size, bias=False)
        )

    def get_input_embeddings(self) -> nn.Embedding:
        return self.transformer.token_embeddings

    def activation_checkpointing_enable(
        self, activation_checkpointing_kwargs: dict[str, Any] | None = None
    ) -> None:
        """Recompute each layer's activations in the backward pass (transformers' name)."""
        self.transformer.gradient_checkpointing = True
        self.transformer.checkpoint_kwargs = dict(
            activation_checkpointing_kwargs or {"use_reentrant": False}
        )

    def forward(
        self,
        inputs_embeds: Tensor,
        attention_mask: Tensor | None = None,
        past_key_values: OpenElmCache | None = None,
        use_cache: bool = False,
        logits_to_keep: int = 0,
        position_ids: Tensor | None = None,
    ) -> CausalLMOutputWithPast:
        """``attention_mask`` (``[B, past + S]``, zeros on padding) and ``position_ids``
        (``[B, S]``) let left-padded batches decode with the cache."""
        cache = past_key_values
        if use_cache and cache is None:
            cache = OpenElmCache(len(self.transformer.layers))
        hidden = self.transformer(
            inputs_embeds, attention_mask, cache if use_cache else None, position_ids
        )
        if logits_to_keep:
            hidden = hidden[:, -logits_to_keep:]
        weight = self.transformer.token_embeddings.weight if self.lm_head is None else None
        logits = F.linear(hidden, weight) if weight is not None else self.lm_head(hidden)
        return CausalLMOutputWithPast(logits=logits, past_key_values=cache if use_cache else None)
