"""What a training run's directory holds, read from its files alone (no torch).

The training stage and the server share it: the stage to keep and record the best checkpoint,
the server to list checkpoints and to find the adapter an evaluation or reconstruction loads.
A run directory (CKPT_DIR) holds ``train_config.json``, ``base_model/`` (the tiny model, built
for the run), ``checkpoints/step-NNNNNNNN/`` (peft adapter plus training state), ``adapter/``
(the final adapter), ``results.json`` and ``loss_curve.png``.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CHECKPOINT_PREFIX = "step-"
STATE_FILE = "trainer_state.json"
ADAPTER_CONFIG = "adapter_config.json"


@dataclass(frozen=True)
class RunLayout:
    """The files of one run under its output directory (CKPT_DIR)."""

    root: Path

    @property
    def config_file(self) -> Path:
        return self.root / "train_config.json"

    @property
    def base_model_dir(self) -> Path:
        return self.root / "base_model"

    @property
    def checkpoints_dir(self) -> Path:
        return self.root / "checkpoints"

    @property
    def adapter_dir(self) -> Path:
        return self.root / "adapter"

    @property
    def loss_curve(self) -> Path:
        return self.root / "loss_curve.png"

    @property
    def results_file(self) -> Path:
        return self.root / "results.json"

    def saved_config(self) -> dict[str, Any]:
        """The run's resolved config as saved (``{}`` before the run wrote it)."""
        return _read_json(self.config_file) or {}


@dataclass(frozen=True)
class CheckpointInfo:
    """One complete checkpoint: where it is, when in the run, and how it scored."""

    name: str
    path: Path
    step: int
    epochs_done: int
    val_loss: float | None  # the validation loss of the epoch it ends, if it ends one
    size_bytes: int

    def as_json(self, best: bool) -> dict[str, Any]:
        return {
            "name": self.name,
            "step": self.step,
            "epoch": self.epochs_done,
            "val_loss": self.val_loss,
            "size_bytes": self.size_bytes,
            "best": best,
        }


def step_of(path: Path) -> int:
    return int(path.name[len(CHECKPOINT_PREFIX) :])


def checkpoint_dirs(layout: RunLayout) -> list[Path]:
    """Complete checkpoints, oldest first (temporary directories start with a dot)."""
    if not layout.checkpoints_dir.is_dir():
        return []
    found = [
        p
        for p in layout.checkpoints_dir.iterdir()
        if p.is_dir()
        and p.name.startswith(CHECKPOINT_PREFIX)
        and p.name[len(CHECKPOINT_PREFIX) :].isdigit()
        and (p / STATE_FILE).is_file()
    ]
    return sorted(found, key=step_of)


def checkpoint_info(path: Path) -> CheckpointInfo:
    state = _read_json(path / STATE_FILE) or {}
    step = int(state.get("step", step_of(path)))
    epochs = state.get("epochs") or []
    ended = [e for e in epochs if isinstance(e, dict) and e.get("step") == step]
    val_loss = ended[-1].get("val_loss") if ended else None
    if not isinstance(val_loss, int | float) or not math.isfinite(val_loss):
        val_loss = None
    size = sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
    return CheckpointInfo(path.name, path, step, len(epochs), val_loss, size)


def checkpoint_infos(layout: RunLayout) -> list[CheckpointInfo]:
    return [checkpoint_info(path) for path in checkpoint_dirs(layout)]


def best_of(infos: list[CheckpointInfo]) -> CheckpointInfo | None:
    """The checkpoint with the lowest validation loss (the latest of equals), if any has one."""
    scored = [info for info in infos if info.val_loss is not None]
    return min(reversed(scored), key=lambda info: info.val_loss) if scored else None


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
