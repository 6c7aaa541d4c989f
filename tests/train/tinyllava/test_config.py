"""config.json is read as TinyLLaVA wrote it; OpenELM's per-layer shapes come out as Apple's."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from stages.train.tinyllava.config import CheckpointError, read_config
from stages.train.tinyllava.loader import load_tinyllava_model
from stages.train.tinyllava.model import TinyLlavaModel
from stages.train.tinyllava.openelm import openelm_dims
from tests.train.tinyllava.checkpoints import IMAGE_TOKENS, OPENELM_LAYERS, OPENELM_TEXT

# apple/OpenELM-450M's config (the decoder of OpenECADv2-SigLIP-0.89B)
OPENELM_450M = {
    "model_dim": 1536,
    "num_transformer_layers": 20,
    "head_dim": 64,
    "num_gqa_groups": 4,
    "qkv_multipliers": [0.5, 1.0],
    "ffn_multipliers": [0.5, 4.0],
    "ffn_dim_divisor": 256,
    "normalize_qk_projections": True,
    "share_input_output_layers": True,
    "vocab_size": 32000,
}


def test_openelm_450m_widths_run_from_12_to_24_heads_and_768_to_6144() -> None:
    dims = openelm_dims(OPENELM_450M)
    assert dims.num_layers == 20
    assert (dims.query_heads[0], dims.kv_heads[0], dims.ffn_dims[0]) == (12, 3, 768)
    assert (dims.query_heads[-1], dims.kv_heads[-1], dims.ffn_dims[-1]) == (24, 6, 6144)
    assert list(dims.query_heads) == sorted(dims.query_heads)
    assert all(q == 4 * kv for q, kv in zip(dims.query_heads, dims.kv_heads, strict=True))
    assert dims.tied_output and dims.qk_norm


def test_stored_per_layer_lists_give_the_hand_computed_widths() -> None:
    dims = openelm_dims({**OPENELM_TEXT, "vocab_size": 600})
    assert tuple(zip(dims.query_heads, dims.kv_heads, dims.ffn_dims, strict=True)) == OPENELM_LAYERS


def test_the_checkpoint_config_is_read(openelm_checkpoint: Path) -> None:
    config = read_config(openelm_checkpoint)
    assert config.text_model_type == "openelm"
    assert config.connector_type == "mlp2x_gelu"
    assert (config.vision_feature_layer, config.vision_feature_select_strategy) == (-2, "patch")
    assert config.image_token_index == -200
    assert config.num_image_tokens == IMAGE_TOKENS
    assert (config.text_hidden_size, config.vision_hidden_size, config.max_length) == (64, 32, 2048)


def edited_copy(source: Path, target: Path, edit) -> Path:
    shutil.copytree(source, target)
    raw = json.loads((target / "config.json").read_text())
    edit(raw)
    (target / "config.json").write_text(json.dumps(raw))
    return target


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda c: c.update(model_type="llava"), "not a TinyLLaVA config"),
        (lambda c: c["vision_config"].update(model_type="clip_vision_model"), "only SigLIP"),
        (lambda c: c.update(connector_type="qformer"), "connector 'qformer' is not supported"),
        (
            lambda c: c["text_config"].update(model_type="stablelm_epoch"),
            "decoder 'stablelm_epoch'",
        ),
        (
            lambda c: c.update(vision_feature_select_strategy="cls"),
            "vision_feature_select_strategy",
        ),
        (lambda c: c.update(tokenizer_padding_side="left"), "right padding"),
    ],
)
def test_unsupported_checkpoints_are_refused_clearly(openelm_checkpoint, tmp_path, edit, message):
    broken = edited_copy(openelm_checkpoint, tmp_path / "c", edit)
    with pytest.raises(CheckpointError, match=message):
        load_tinyllava_model(broken)


def test_the_real_openecad_shape_has_089b_parameters_and_728_image_tokens(tmp_path: Path) -> None:
    """OpenECADv2-SigLIP-0.89B's config (OpenELM-450M, SigLIP so400m at 384 px), built on the
    meta device: no memory, only shapes."""
    text = {**OPENELM_450M, "max_context_length": 2048}
    vision = {
        "model_type": "siglip_vision_model", "hidden_size": 1152, "intermediate_size": 4304,
        "num_hidden_layers": 27, "num_attention_heads": 16, "image_size": 384, "patch_size": 14,
    }  # fmt: skip
    config = {"model_type": "tinyllava", "connector_type": "mlp2x_gelu"}
    config |= {"text_config": {"model_type": "openelm", **text}, "vision_config": vision}
    (tmp_path / "config.json").write_text(json.dumps(config))
    with torch.device("meta"):
        model = TinyLlavaModel(read_config(tmp_path))
    parameters = sum(p.numel() for p in model.parameters())
    assert round(parameters / 1e9, 2) == 0.89
    assert model.num_image_tokens == 728
    connector = [tuple(p.shape) for p in model.connector.parameters()]
    assert connector == [(1536, 1152), (1536,), (1536, 1536), (1536,)]
