"""A TinyLLaVA checkpoint resolves and loads through the training module, with no network."""

from __future__ import annotations

import re
import shutil
import socket
from pathlib import Path

import pytest
import torch

from stages.train.config import ConfigError
from stages.train.models import load_base_model, resolve_base_model
from stages.train.tinyllava.chat import OPENECAD_SYSTEM
from tests.train.tinyllava.checkpoints import IMAGE_TOKENS


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args, **kwargs):
        raise AssertionError("the loader tried to reach the network")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def test_a_checkpoint_directory_loads_as_a_bundle(openelm_checkpoint: Path, no_network) -> None:
    ref = resolve_base_model(str(openelm_checkpoint))
    assert (ref.kind, ref.model_type, ref.path) == ("local", "tinyllava", openelm_checkpoint)
    bundle = load_base_model(ref, torch.float32)

    assert (bundle.image_token_id, bundle.num_image_tokens) == (-200, IMAGE_TOKENS)
    assert (bundle.image_size, bundle.max_positions) == (32, 2048)
    assert bundle.prompt.system == OPENECAD_SYSTEM
    pixels = bundle.pixel_values([_image()])
    assert pixels.shape == (1, 3, 32, 32)
    with torch.no_grad():
        assert bundle.model.encode_images(pixels).shape == (1, IMAGE_TOKENS, 64)
    assert len(bundle.decoder_layers) == 3
    assert bundle.model.name_or_path == str(openelm_checkpoint)


def test_lora_targets_name_every_projection_and_nothing_else(openelm_checkpoint: Path) -> None:
    bundle = load_base_model(resolve_base_model(str(openelm_checkpoint)))
    names = [name for name, _ in bundle.model.named_modules()]
    language = [n for n in names if re.fullmatch(bundle.lora_targets.language, n)]
    vision = [n for n in names if re.fullmatch(bundle.lora_targets.vision, n)]
    assert len(language) == 3 * 4  # qkv_proj, out_proj, proj_1, proj_2 per layer
    assert len(vision) == 2 * 6  # q, k, v, out, fc1, fc2 of the 2 layers the features use
    assert all(
        isinstance(bundle.model.get_submodule(n), torch.nn.Linear) for n in language + vision
    )
    assert [n for n in names if n.endswith(bundle.lora_targets.fully_trained[0])] == [
        "connector._connector"
    ]


def test_a_hub_id_already_in_the_cache_loads(openelm_checkpoint, tmp_path, monkeypatch, no_network):
    import huggingface_hub.constants

    repo = tmp_path / "hub" / "models--Yuan-Che--OpenECADv2-tiny"
    shutil.copytree(openelm_checkpoint, repo / "snapshots" / "0123abcd")
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("0123abcd")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))

    ref = resolve_base_model("Yuan-Che/OpenECADv2-tiny")
    assert (ref.kind, ref.model_type) == ("hub", "tinyllava")
    assert load_base_model(ref).num_image_tokens == IMAGE_TOKENS


def test_another_image_size_is_refused(openelm_checkpoint: Path) -> None:
    with pytest.raises(ConfigError, match="fixed at 32 px"):
        load_base_model(resolve_base_model(str(openelm_checkpoint)), image_size=64)


def _image():
    from PIL import Image

    return Image.new("RGB", (48, 40), "white")
