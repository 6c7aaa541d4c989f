"""An independent, deliberately plain reference of TinyLLaVA's forward pass.

Written from TinyLLaVA's and Apple's code (and ``notes/training.md``), one sample at a time,
with explicit patches, per-head loops and explicit rotary pairs, on the raw tensors of the
checkpoint file (float64). It shares no code with ``stages.train.tinyllava``.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

IMAGE = -200
IGNORE = -100


def rms(x: Tensor, weight: Tensor, eps: float = 1e-6) -> Tensor:
    return x / torch.sqrt((x * x).mean(-1, keepdim=True) + eps) * weight


def layer_norm(x: Tensor, weight: Tensor, bias: Tensor, eps: float = 1e-6) -> Tensor:
    mean = x.mean(-1, keepdim=True)
    var = ((x - mean) ** 2).mean(-1, keepdim=True)
    return (x - mean) / torch.sqrt(var + eps) * weight + bias


def gelu_tanh(x: Tensor) -> Tensor:
    return 0.5 * x * (1 + torch.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x**3)))


def gelu_erf(x: Tensor) -> Tensor:
    return 0.5 * x * (1 + torch.erf(x / math.sqrt(2)))


def silu(x: Tensor) -> Tensor:
    return x / (1 + torch.exp(-x))


def rotate(x: Tensor, position: int, base: float) -> Tensor:
    """Rotary embedding of one head vector: pair i with i + d/2 (rotate-half convention)."""
    half = x.shape[-1] // 2
    out = x.clone()
    for i in range(half):
        angle = position / base ** (2 * i / x.shape[-1])
        c, s = math.cos(angle), math.sin(angle)
        out[i] = x[i] * c - x[i + half] * s
        out[i + half] = x[i + half] * c + x[i] * s
    return out


def causal_attention(q: Tensor, k: Tensor, v: Tensor, q_heads: int, kv_heads: int) -> Tensor:
    """q ``[S, Hq, D]``, k/v ``[S, Hkv, D]``; query head h reads kv head h // (Hq / Hkv)."""
    seq, _, dim = q.shape
    out = torch.zeros(seq, q_heads, dim, dtype=q.dtype)
    for h in range(q_heads):
        kv = h // (q_heads // kv_heads)
        for t in range(seq):
            scores = torch.stack([q[t, h] @ k[s, kv] for s in range(t + 1)]) / math.sqrt(dim)
            weights = torch.softmax(scores, dim=0)
            out[t, h] = sum(weights[s] * v[s, kv] for s in range(t + 1))
    return out


def siglip_features(w: dict[str, Tensor], pixels: Tensor, vision: dict, layers_used: int) -> Tensor:
    """Patch features after ``layers_used`` encoder layers, first patch dropped."""
    p = "vision_tower._vision_tower.vision_model."
    patch, heads = vision["patch_size"], vision["num_attention_heads"]
    grid = vision["image_size"] // patch
    conv_w = w[f"{p}embeddings.patch_embedding.weight"]
    patches = []
    for row in range(grid):
        for col in range(grid):
            block = pixels[:, row * patch : (row + 1) * patch, col * patch : (col + 1) * patch]
            patches.append(conv_w.reshape(conv_w.shape[0], -1) @ block.reshape(-1))
    x = torch.stack(patches) + w[f"{p}embeddings.patch_embedding.bias"]
    x = x + w[f"{p}embeddings.position_embedding.weight"]
    for i in range(layers_used):
        lw = {
            k.split(f"encoder.layers.{i}.")[1]: v
            for k, v in w.items()
            if f"encoder.layers.{i}." in k
        }
        h = layer_norm(x, lw["layer_norm1.weight"], lw["layer_norm1.bias"])
        q, k, v = (
            (h @ lw[f"self_attn.{n}_proj.weight"].T + lw[f"self_attn.{n}_proj.bias"]).reshape(
                len(x), heads, -1
            )
            for n in "qkv"
        )
        out = torch.zeros_like(q)
        for head in range(heads):
            attn = torch.softmax(q[:, head] @ k[:, head].T / math.sqrt(q.shape[-1]), dim=-1)
            out[:, head] = attn @ v[:, head]
        x = x + out.reshape(len(x), -1) @ lw["self_attn.out_proj.weight"].T
        x = x + lw["self_attn.out_proj.bias"]
        h = layer_norm(x, lw["layer_norm2.weight"], lw["layer_norm2.bias"])
        h = gelu_tanh(h @ lw["mlp.fc1.weight"].T + lw["mlp.fc1.bias"])
        x = x + h @ lw["mlp.fc2.weight"].T + lw["mlp.fc2.bias"]
    return x[1:]


def connector(w: dict[str, Tensor], features: Tensor) -> Tensor:
    c = "connector._connector."
    hidden = gelu_erf(features @ w[f"{c}0.weight"].T + w[f"{c}0.bias"])
    return hidden @ w[f"{c}2.weight"].T + w[f"{c}2.bias"]


def merge(ids: list[int], embeddings: Tensor, image: Tensor) -> Tensor:
    """TinyLLaVA's merge: the one -200 placeholder replaced by the image's features."""
    at = ids.index(IMAGE)
    before, after = torch.tensor(ids[:at]), torch.tensor(ids[at + 1 :])
    return torch.cat([embeddings[before], image, embeddings[after]])


def merged_labels(labels: list[int], ids: list[int], image_tokens: int) -> list[int]:
    at = ids.index(IMAGE)
    return labels[:at] + [IGNORE] * image_tokens + labels[at + 1 :]


def openelm_logits(w: dict[str, Tensor], x: Tensor, layers: tuple, head_dim: int) -> Tensor:
    """OpenELM on one unpadded sequence of embeddings ``[S, D]`` (output tied to embeddings)."""
    p = "language_model.transformer."
    for i, (q_heads, kv_heads, ffn) in enumerate(layers):
        lp = f"{p}layers.{i}."
        h = rms(x, w[f"{lp}attn_norm.weight"])
        qkv = (h @ w[f"{lp}attn.qkv_proj.weight"].T).reshape(len(x), -1, head_dim)
        q, k, v = (
            qkv[:, :q_heads],
            qkv[:, q_heads : q_heads + kv_heads],
            qkv[:, q_heads + kv_heads :],
        )
        q, k = rms(q, w[f"{lp}attn.q_norm.weight"]), rms(k, w[f"{lp}attn.k_norm.weight"])
        q = torch.stack(
            [
                torch.stack([rotate(q[t, j], t, 10000.0) for j in range(q_heads)])
                for t in range(len(x))
            ]
        )
        k = torch.stack(
            [
                torch.stack([rotate(k[t, j], t, 10000.0) for j in range(kv_heads)])
                for t in range(len(x))
            ]
        )
        attn = causal_attention(q, k, v, q_heads, kv_heads).reshape(len(x), -1)
        x = x + attn @ w[f"{lp}attn.out_proj.weight"].T
        h = rms(x, w[f"{lp}ffn_norm.weight"]) @ w[f"{lp}ffn.proj_1.weight"].T
        x = x + (silu(h[:, :ffn]) * h[:, ffn:]) @ w[f"{lp}ffn.proj_2.weight"].T
    x = rms(x, w[f"{p}norm.weight"])
    return x @ w[f"{p}token_embeddings.weight"].T


def llama_logits(w: dict[str, Tensor], x: Tensor, text: dict) -> Tensor:
    """Llama (TinyLlama) on one unpadded sequence: pre-RMSNorm, rotary, GQA, SwiGLU."""
    p = "language_model.model."
    heads, kv_heads, dim = (
        text["num_attention_heads"],
        text["num_key_value_heads"],
        text["head_dim"],
    )
    eps = text["rms_norm_eps"]
    base = float((text.get("rope_parameters") or {}).get("rope_theta", 10000.0))
    for i in range(text["num_hidden_layers"]):
        lp = f"{p}layers.{i}."
        h = rms(x, w[f"{lp}input_layernorm.weight"], eps)
        q = (h @ w[f"{lp}self_attn.q_proj.weight"].T).reshape(len(x), heads, dim)
        k = (h @ w[f"{lp}self_attn.k_proj.weight"].T).reshape(len(x), kv_heads, dim)
        v = (h @ w[f"{lp}self_attn.v_proj.weight"].T).reshape(len(x), kv_heads, dim)
        q = torch.stack(
            [torch.stack([rotate(q[t, j], t, base) for j in range(heads)]) for t in range(len(x))]
        )
        k = torch.stack(
            [
                torch.stack([rotate(k[t, j], t, base) for j in range(kv_heads)])
                for t in range(len(x))
            ]
        )
        attn = causal_attention(q, k, v, heads, kv_heads).reshape(len(x), -1)
        x = x + attn @ w[f"{lp}self_attn.o_proj.weight"].T
        h = rms(x, w[f"{lp}post_attention_layernorm.weight"], eps)
        gate, up = h @ w[f"{lp}mlp.gate_proj.weight"].T, h @ w[f"{lp}mlp.up_proj.weight"].T
        x = x + (silu(gate) * up) @ w[f"{lp}mlp.down_proj.weight"].T
    x = rms(x, w[f"{p}norm.weight"], eps)
    return x @ w["language_model.lm_head.weight"].T


def batch_loss(logits: list[Tensor], labels: list[list[int]]) -> Tensor:
    """Each position predicts the next label; one mean over the batch's learned tokens."""
    total, count = torch.zeros((), dtype=torch.float64), 0
    for sample_logits, sample_labels in zip(logits, labels, strict=True):
        for t in range(len(sample_labels) - 1):
            target = sample_labels[t + 1]
            if target != IGNORE:
                total = total - torch.log_softmax(sample_logits[t], dim=-1)[target]
                count += 1
    return total / count
