"""``models.json``: what extraction found building each chosen model, so that later stages need
not build it again.

The file maps a model id to ``{"split": "train" | "validation", "volume": m^3, "solids": int,
"key": str}``. Extraction writes it; validation compares answers with the recorded volumes. A
dataset extracted before the file existed simply has none.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from stages.dataset.layout import MODELS_INDEX


@dataclass(frozen=True, slots=True)
class ModelFacts:
    """One entry of ``models.json``."""

    split: str
    volume: float  # m^3
    solids: int
    key: str

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def read_model_facts(dataset: Path) -> tuple[dict[str, ModelFacts], str | None]:
    """``models.json``'s facts by model id (entries not of its shape are left out), and a
    warning when the file exists but cannot be used. No file is no facts and no warning."""
    path = dataset / MODELS_INDEX
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}, None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        return {}, f"cannot read {MODELS_INDEX} ({exc}): source models are built again"
    if not isinstance(data, dict):
        return {}, f"{MODELS_INDEX} is not an object: source models are built again"
    facts = {}
    for model_id, entry in data.items():
        fact = _model_fact(entry)
        if fact is not None:
            facts[model_id] = fact
    return facts, None


def _model_fact(entry: Any) -> ModelFacts | None:
    if not isinstance(entry, dict):
        return None
    split, volume, solids, key = (entry.get(k) for k in ("split", "volume", "solids", "key"))
    if not (
        isinstance(split, str)
        and isinstance(volume, int | float)
        and not isinstance(volume, bool)
        and math.isfinite(volume)
        and volume > 0.0
        and isinstance(solids, int)
        and not isinstance(solids, bool)
        and isinstance(key, str)
    ):
        return None
    return ModelFacts(split, float(volume), solids, key)
