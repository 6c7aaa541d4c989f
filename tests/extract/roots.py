"""Small DeepCAD roots for tests, made in a temporary folder from the real samples (linked,
never copied into the repository)."""

from __future__ import annotations

import json
import os
from pathlib import Path

from tests.conftest import DEEPCAD_SAMPLES

# What a split entry's file holds: a sample's stem (linked), raw text, or None (no file).
Content = str | None


def sample(stem: str) -> Path:
    return DEEPCAD_SAMPLES / f"{stem}.json"


def path_of(root: Path, model_id: str) -> Path:
    return root / "cad_json" / model_id[:4] / f"{model_id}.json"


def layout_root(root: Path, splits: dict[str, list[tuple[str, Content]]]) -> Path:
    """A DeepCAD root with ``cad_json/NNNN/<id>.json`` and ``train_val_test_split.json``.

    ``splits`` maps a split name to (model id, content): a sample stem is linked to the real
    file, any other text is written as the file, None leaves the file missing.
    """
    listing: dict[str, list[str]] = {"train": [], "validation": [], "test": []}
    for split, models in splits.items():
        for model_id, content in models:
            listing[split].append(f"{model_id[:4]}/{model_id}")
            if content is None or path_of(root, model_id).exists():
                continue
            path = path_of(root, model_id)
            path.parent.mkdir(parents=True, exist_ok=True)
            if sample(content).is_file():
                os.symlink(sample(content), path)
            else:
                path.write_text(content, encoding="utf-8")
    (root / "cad_json").mkdir(parents=True, exist_ok=True)
    (root / "train_val_test_split.json").write_text(json.dumps(listing), encoding="utf-8")
    return root


def copies_root(root: Path, train: int, val: int) -> Path:
    """A large root of links to the buildable samples, cycling through them."""
    stems = [p.stem for p in sorted(DEEPCAD_SAMPLES.glob("*.json")) if p.stem != "00000176"]
    models = {
        "train": [(f"{i:08d}", stems[i % len(stems)]) for i in range(train)],
        "validation": [(f"{90000000 + i:08d}", stems[i % len(stems)]) for i in range(val)],
    }
    return layout_root(root, models)
