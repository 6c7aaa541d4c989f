"""Every knob of a training run, as one typed value with per-mode defaults.

Two modes share one loop: ``test-run`` (a short run on a small model that must show the loss
falling) and ``full`` (the real fine-tune, OpenECAD's own recipe). Both default to the ``tiny``
base model; ``--base-model`` names a real one (a LLaVA or TinyLLaVA checkpoint directory, or a
cached hub id). A field the caller leaves unset takes its mode's default from
``MODE_DEFAULTS``; the resolved config is saved beside the checkpoints so ``--resume``
continues exactly the run that was started.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stages.protocol import UsageError

MODES = ("test-run", "full")
DEVICES = ("auto", "cpu", "cuda", "mps")
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
COMPILE_CHOICES = ("auto", "on", "off")

DEFAULT_MODE = "test-run"

# Fields that may differ when a run is resumed (where it runs, not what it computes).
RUNTIME_FIELDS = frozenset({"device", "num_workers", "compile", "resume"})
# Old names of fields, as configs saved by earlier versions spell them (read, never written).
RENAMED_FIELDS = {"grad_accum": "gradient_accumulation"}


class ConfigError(UsageError):
    """An invalid config value; ``field`` names it so a server can answer 422 on that field."""

    def __init__(self, field: str, detail: str) -> None:
        super().__init__(f"{field}: {detail}")
        self.field = field
        self.detail = detail


@dataclass(frozen=True)
class TrainConfig:
    """One training run. ``None`` sizes mean "all records"; ``image_size`` None means the
    base model's own (the tiny model then uses 224 px); ``num_workers`` None means 4 DataLoader
    workers on CUDA and none on a CPU; ``compile`` auto means on CUDA only."""

    dataset: Path
    output: Path
    mode: str = DEFAULT_MODE
    train_samples: int | None = 100
    val_samples: int | None = 20
    epochs: int = 5
    batch_size: int = 4
    gradient_accumulation: int = 1
    learning_rate: float = 5e-3
    warmup_ratio: float = 0.1
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0
    lora_r: int = 32
    lora_alpha: int = 128
    lora_dropout: float = 0.0
    lora_vision: bool = False
    base_model: str = "tiny"
    device: str = "auto"
    precision: str = "auto"
    gradient_checkpointing: bool = False
    image_size: int | None = None
    max_length: int = 2048
    log_every: int = 5
    save_every_steps: int = 0
    keep_last: int = 2
    seed: int = 0
    resume: bool = False
    group_by_length: bool = False
    compile: str = "auto"
    num_workers: int | None = None
    eval_samples: int = 0  # validation records the best checkpoint is scored on at the end
    eval_every_epochs: int = 0  # also score the model every N epochs (0: off)
    gpus: int = 1  # processes (GPUs, or gloo ranks on a CPU) per node, under torchrun

    def to_json(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["dataset"] = str(self.dataset)
        data["output"] = str(self.output)
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TrainConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        renamed = {RENAMED_FIELDS.get(k, k): v for k, v in data.items()}
        values = {k: v for k, v in renamed.items() if k in known}
        values["dataset"] = Path(values["dataset"])
        values["output"] = Path(values["output"])
        return cls(**values)


# Test-run: the tiny model, LoRA r 32 / alpha 128 without dropout, lr 5e-3: the recipe measured
# best on the demo's data (scripts/bench/tiny_recipe.py), the loss falls by about 80% in 5 epochs.
# Full: OpenECAD's recipe (LoRA r 128 / alpha 256, lr 1e-4 cosine, 3% warm-up, global batch 8).
MODE_DEFAULTS: dict[str, dict[str, Any]] = {
    "test-run": {},
    "full": {
        "train_samples": None,
        "val_samples": None,
        "epochs": 1,
        "batch_size": 4,
        "gradient_accumulation": 2,
        "learning_rate": 1e-4,
        "warmup_ratio": 0.03,
        "lora_r": 128,
        "lora_alpha": 256,
        "lora_dropout": 0.05,
        "log_every": 10,
        "save_every_steps": 500,
        "keep_last": 3,
        "group_by_length": True,
        "eval_samples": 8,
    },
}


# A test-run on the random tiny model needs a high learning rate to show learning within a few
# short epochs; on a pretrained base model the same rate would wreck it.
TEST_RUN_PRETRAINED_LEARNING_RATE = 2e-4


def build_config(
    dataset: Path, output: Path, mode: str | None = None, **overrides: Any
) -> TrainConfig:
    """Resolve ``overrides`` (``None`` = unset) over the mode's defaults (``mode`` None: the
    test-run), then validate. No default is decided anywhere else: the dataclass holds the
    test-run's, ``MODE_DEFAULTS`` what another mode changes."""
    mode = DEFAULT_MODE if mode is None else mode
    if mode not in MODES:
        raise ConfigError("mode", f"unknown mode {mode!r}; choose one of {', '.join(MODES)}")
    known = {f.name for f in dataclasses.fields(TrainConfig)}
    unknown = set(overrides) - known
    if unknown:
        raise ConfigError(sorted(unknown)[0], "unknown config field")
    values: dict[str, Any] = dict(MODE_DEFAULTS[mode])
    values.update({k: v for k, v in overrides.items() if v is not None})
    base_model = values.get("base_model", "tiny")
    if mode == "test-run" and base_model != "tiny" and "learning_rate" not in values:
        values["learning_rate"] = TEST_RUN_PRETRAINED_LEARNING_RATE
    config = TrainConfig(dataset=Path(dataset), output=Path(output), mode=mode, **values)
    validate(config)
    return config


def _require(ok: bool, field: str, detail: str) -> None:
    if not ok:
        raise ConfigError(field, detail)


def validate(c: TrainConfig) -> None:
    """Reject values that could only fail later, naming the field."""
    for name in ("train_samples", "val_samples"):
        value = getattr(c, name)
        _require(value is None or value >= 0, name, "must be 0 or more")
    _require(c.train_samples is None or c.train_samples >= 1, "train_samples", "must be at least 1")
    for name in (
        "epochs",
        "batch_size",
        "gradient_accumulation",
        "lora_r",
        "log_every",
        "keep_last",
    ):
        _require(getattr(c, name) >= 1, name, "must be at least 1")
    _require(c.learning_rate > 0, "learning_rate", "must be positive")
    _require(0 <= c.warmup_ratio < 1, "warmup_ratio", "must be in [0, 1)")
    _require(c.weight_decay >= 0, "weight_decay", "must be 0 or more")
    _require(c.max_grad_norm > 0, "max_grad_norm", "must be positive")
    _require(c.lora_alpha > 0, "lora_alpha", "must be positive")
    _require(0 <= c.lora_dropout < 1, "lora_dropout", "must be in [0, 1)")
    _require(c.device in DEVICES, "device", f"choose one of {', '.join(DEVICES)}")
    _require(c.precision in PRECISIONS, "precision", f"choose one of {', '.join(PRECISIONS)}")
    _require(c.compile in COMPILE_CHOICES, "compile", f"choose one of {', '.join(COMPILE_CHOICES)}")
    _require(
        c.image_size is None or (c.image_size >= 16 and c.image_size % 8 == 0),
        "image_size",
        "must be a multiple of 8, at least 16",
    )
    _require(c.max_length >= 32, "max_length", "must be at least 32 tokens")
    _require(c.save_every_steps >= 0, "save_every_steps", "must be 0 (off) or more")
    _require(c.eval_samples >= 0, "eval_samples", "must be 0 (off) or more")
    _require(c.eval_every_epochs >= 0, "eval_every_epochs", "must be 0 (off) or more")
    _require(
        not c.eval_every_epochs or c.eval_samples > 0,
        "eval_every_epochs",
        "needs eval_samples of at least 1",
    )
    _require(c.num_workers is None or c.num_workers >= 0, "num_workers", "must be 0 or more")
    _require(c.gpus >= 1, "gpus", "must be at least 1")
    _require(bool(c.base_model.strip()), "base_model", "must not be empty")


def save_config(config: TrainConfig, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(config.to_json(), indent=2) + "\n")
    tmp.replace(path)


def load_config(path: Path) -> TrainConfig:
    return TrainConfig.from_json(json.loads(path.read_text()))


def merge_for_resume(saved: TrainConfig, requested: TrainConfig) -> TrainConfig:
    """The saved run decides everything that changes the result; only where it runs may differ."""
    runtime = {name: getattr(requested, name) for name in RUNTIME_FIELDS}
    return dataclasses.replace(saved, **runtime)
