"""Every stored weight is placed; anything missing, extra or misshapen is an error."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from stages.train.tinyllava.loader import load_tinyllava_model
from stages.train.tinyllava.weights import WeightsError

QKV_1 = "language_model.transformer.layers.1.attn.qkv_proj.weight"


def copy_with(source: Path, target: Path, edit) -> Path:
    """A copy of ``source`` whose tensors went through ``edit(dict) -> dict``."""
    shutil.copytree(source, target)
    tensors = load_file(target / "model.safetensors")
    save_file(edit(dict(tensors)), str(target / "model.safetensors"))
    return target


def test_every_stored_tensor_lands_in_the_model(openelm_checkpoint: Path) -> None:
    stored = load_file(openelm_checkpoint / "model.safetensors")
    model, _ = load_tinyllava_model(openelm_checkpoint)
    state = model.state_dict()
    assert set(state) == set(stored)
    for name, value in stored.items():
        assert torch.equal(state[name], value.float()), name


def test_a_missing_tensor_is_an_error_naming_it(openelm_checkpoint: Path, tmp_path: Path) -> None:
    def drop(tensors: dict) -> dict:
        return {name: value for name, value in tensors.items() if name != QKV_1}

    broken = copy_with(openelm_checkpoint, tmp_path / "c", drop)
    with pytest.raises(WeightsError, match=r"1 missing: .*layers\.1\.attn\.qkv_proj"):
        load_tinyllava_model(broken)


def test_an_unexpected_tensor_is_an_error(openelm_checkpoint: Path, tmp_path: Path) -> None:
    def add(tensors: dict) -> dict:
        return {**tensors, "language_model.lm_head.weight": torch.zeros(2, 2)}

    broken = copy_with(openelm_checkpoint, tmp_path / "c", add)
    with pytest.raises(WeightsError, match=r"1 unexpected: language_model\.lm_head\.weight"):
        load_tinyllava_model(broken)


def test_uniform_head_counts_do_not_fit_openelm(openelm_checkpoint: Path, tmp_path: Path) -> None:
    """Layer 1 stored as if it had layer 0's heads (2 query, 1 key-value): a shape error."""

    def shrink(tensors: dict) -> dict:
        tensors[QKV_1] = tensors[QKV_1][: (2 + 2 * 1) * 16].clone()
        return tensors

    broken = copy_with(openelm_checkpoint, tmp_path / "c", shrink)
    with pytest.raises(
        WeightsError, match=r"wrong shape: .*qkv_proj.weight \(64, 64\) != \(128, 64\)"
    ):
        load_tinyllava_model(broken)


def test_bin_and_sharded_checkpoints_load_the_same(
    openelm_checkpoint: Path, tmp_path: Path
) -> None:
    tensors = load_file(openelm_checkpoint / "model.safetensors")
    names = sorted(tensors)

    as_bin = tmp_path / "bin"
    shutil.copytree(openelm_checkpoint, as_bin)
    (as_bin / "model.safetensors").unlink()
    torch.save(tensors, as_bin / "pytorch_model.bin")

    sharded = tmp_path / "sharded"
    shutil.copytree(openelm_checkpoint, sharded)
    (sharded / "model.safetensors").unlink()
    halves = {
        "model-00001-of-00002.safetensors": names[::2],
        "model-00002-of-00002.safetensors": names[1::2],
    }
    for file, part in halves.items():
        save_file({n: tensors[n] for n in part}, str(sharded / file))
    weight_map = {n: file for file, part in halves.items() for n in part}
    (sharded / "model.safetensors.index.json").write_text(json.dumps({"weight_map": weight_map}))

    reference, _ = load_tinyllava_model(openelm_checkpoint)
    for directory in (as_bin, sharded):
        model, _ = load_tinyllava_model(directory)
        for (name, a), (_, b) in zip(
            reference.state_dict().items(), model.state_dict().items(), strict=True
        ):
            assert torch.equal(a, b), f"{directory.name}: {name}"


def test_a_tied_head_stored_once_is_shared(checkpoint_for) -> None:
    directory = checkpoint_for("gemma")
    assert "language_model.lm_head.weight" not in load_file(directory / "model.safetensors")
    model, _ = load_tinyllava_model(directory)
    decoder = model.language_model
    assert decoder.lm_head.weight is decoder.model.embed_tokens.weight
