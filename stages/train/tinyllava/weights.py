"""Checkpoint tensors by TinyLLaVA's parameter names: read, load strictly, save.

Weights come as ``model.safetensors`` or ``pytorch_model.bin``, single or sharded (with the
usual ``*.index.json``). Loading is strict: a missing key, an unexpected key or a wrong shape is
an error naming them, never a warning, so a model never trains on half-random weights. Tied
parameters (an output head sharing the embedding) may be stored under either name.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import Tensor, nn

from stages.train.tinyllava.config import CheckpointError

SAFETENSORS = "model.safetensors"
BIN = "pytorch_model.bin"
_LAYOUTS = ((SAFETENSORS, f"{SAFETENSORS}.index.json"), (BIN, f"{BIN}.index.json"))
_SHOWN = 5  # key names quoted per kind of problem


class WeightsError(CheckpointError):
    """The stored tensors do not fit the model built from the config."""


def weight_files(directory: Path) -> list[Path]:
    """The weight files of a checkpoint directory, safetensors preferred."""
    directory = Path(directory)
    for single, index in _LAYOUTS:
        if (directory / single).is_file():
            return [directory / single]
        if (directory / index).is_file():
            try:
                weight_map = json.loads((directory / index).read_text())["weight_map"]
            except (OSError, ValueError, KeyError) as exc:
                raise WeightsError(f"{directory / index}: unreadable ({exc})") from exc
            shards = [directory / name for name in sorted(set(weight_map.values()))]
            absent = [shard.name for shard in shards if not shard.is_file()]
            if absent:
                raise WeightsError(f"{directory}: missing weight shards {absent[:_SHOWN]}")
            return shards
    raise WeightsError(f"{directory} holds no {SAFETENSORS} or {BIN}")


def read_tensors(directory: Path) -> dict[str, Tensor]:
    """Every stored tensor by name (on the CPU, in its stored dtype)."""
    tensors: dict[str, Tensor] = {}
    for path in weight_files(directory):
        if path.suffix == ".safetensors":
            part = load_file(path)
        else:
            part = torch.load(path, map_location="cpu", weights_only=True)
        repeated = sorted(set(part).intersection(tensors))
        if repeated:
            raise WeightsError(f"{path.name} repeats tensors of another shard: {repeated[:_SHOWN]}")
        tensors.update(part)
    return tensors


def tied_groups(model: nn.Module) -> list[list[str]]:
    """Names that share one parameter, in registration order (the first is the one saved)."""
    names_by_param: dict[int, list[str]] = defaultdict(list)
    for name, param in model.named_parameters(remove_duplicate=False):
        names_by_param[id(param)].append(name)
    return [names for names in names_by_param.values() if len(names) > 1]


def load_strict(model: nn.Module, tensors: dict[str, Tensor], source: str) -> None:
    """Copy ``tensors`` into ``model``; WeightsError lists what is missing, unexpected or of
    the wrong shape."""
    expected = model.state_dict()
    filled = dict(tensors)
    for group in tied_groups(model):
        stored = [name for name in group if name in filled]
        for name in group:
            if stored:
                filled.setdefault(name, filled[stored[0]])
    missing = sorted(set(expected) - set(filled))
    unexpected = sorted(set(filled) - set(expected))
    wrong = [
        f"{name} {tuple(filled[name].shape)} != {tuple(value.shape)}"
        for name, value in expected.items()
        if name in filled and filled[name].shape != value.shape
    ]
    problems = [
        f"{len(found)} {kind}: {', '.join(found[:_SHOWN])}"
        for kind, found in (
            ("missing", missing),
            ("unexpected", unexpected),
            ("wrong shape", wrong),
        )
        if found
    ]
    if problems:
        raise WeightsError(f"{source} does not fit its config: {'; '.join(problems)}")
    model.load_state_dict(filled, strict=True)


def save_tensors(model: nn.Module, directory: Path, dtype: torch.dtype = torch.float16) -> Path:
    """``model.safetensors`` by the model's own (TinyLLaVA's) names, floats in ``dtype``, each
    tied parameter once."""
    aliases = {name for group in tied_groups(model) for name in group[1:]}
    tensors = {
        name: (value.to(dtype) if value.is_floating_point() else value).detach().contiguous()
        for name, value in model.state_dict().items()
        if name not in aliases
    }
    path = Path(directory) / SAFETENSORS
    save_file(tensors, str(path), metadata={"format": "pt"})
    return path
