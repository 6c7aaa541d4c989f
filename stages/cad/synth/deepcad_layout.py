"""The on-disk layout of a DeepCAD-style dataset: model paths, the split file, atomic writes.

Like the DeepCAD download: ``cad_json/NNNN/NNNNNNNN.json`` (NNNN = the first four digits of the
eight-digit id) and ``train_val_test_split.json`` with ids like ``"0000/00000001"``.
"""

from __future__ import annotations

import json
import math
import random
from pathlib import Path
from typing import Any

from stages.atomic import write_text_atomic
from stages.dataset.layout import model_file

SPLIT_NAMES = ("train", "validation", "test")


def model_path(root: Path, model_id: str) -> Path:
    """A DeepCAD root keeps its models where a dataset does: ``cad_json/NNNN/<id>.json``."""
    return model_file(root, model_id)


def split_entry(model_id: str) -> str:
    """How the split file names a model: folder, slash, file stem."""
    return f"{model_id[:4]}/{model_id}"


def write_json_atomic(path: Path, data: Any) -> None:
    """Write a model or split file atomically, in DeepCAD's one-space indentation."""
    write_text_atomic(path, json.dumps(data, indent=1, allow_nan=False) + "\n", durable=False)


def check_split(split: tuple[float, float, float]) -> None:
    """Raise ValueError unless ``split`` is three non-negative fractions summing to 1."""
    if len(split) != 3 or any(not math.isfinite(f) or f < 0 for f in split):
        raise ValueError(f"split must be three non-negative fractions, got {split}")
    if abs(sum(split) - 1.0) > 1e-6:
        raise ValueError(f"split fractions must sum to 1, got {sum(split):g}")


def assign_split(
    model_ids: list[str], split: tuple[float, float, float], seed: int
) -> dict[str, list[str]]:
    """Deal the ids into train/validation/test in the given shares (rounded, the rest to
    test), shuffled by ``seed``; each list is sorted like DeepCAD's."""
    check_split(split)
    shuffled = list(model_ids)
    random.Random(seed).shuffle(shuffled)
    n_train = round(len(shuffled) * split[0])
    n_validation = min(round(len(shuffled) * split[1]), len(shuffled) - n_train)
    cuts = (shuffled[:n_train], shuffled[n_train : n_train + n_validation])
    parts = (*cuts, shuffled[n_train + n_validation :])
    return {
        name: sorted(split_entry(i) for i in ids)
        for name, ids in zip(SPLIT_NAMES, parts, strict=True)
    }
