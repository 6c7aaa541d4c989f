"""Bodies of the training endpoints. Every knob is optional: what a caller leaves out takes
the training stage's own default for the run's mode (``GET /training/info`` lists them), so
the defaults exist in one place."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt

from server.bodies.base import StageBody

Device = Literal["auto", "cpu", "cuda", "mps"]
Precision = Literal["auto", "fp32", "bf16", "fp16"]
Seed = Field(default=None, ge=0, le=2**31 - 1)


class TestRunRequest(StageBody):
    NOT_FLAGS: ClassVar[frozenset[str]] = frozenset({"dataset"})

    dataset: str
    train_samples: StrictInt | None = Field(default=None, ge=1, le=1_000_000)
    val_samples: StrictInt | None = Field(default=None, ge=1, le=1_000_000)
    epochs: StrictInt | None = Field(default=None, ge=1, le=1000)
    device: Device | None = None
    base_model: str | None = Field(default=None, min_length=1, max_length=4096)
    batch_size: StrictInt | None = Field(default=None, ge=1, le=1024)
    learning_rate: float | None = Field(default=None, gt=0, le=1)
    lora_r: StrictInt | None = Field(default=None, ge=1, le=1024)
    lora_alpha: StrictInt | None = Field(default=None, ge=1, le=4096)
    seed: StrictInt | None = Seed


class TrainingConfigBody(StageBody):
    """The ``config`` of ``POST /training/start``."""

    NOT_FLAGS: ClassVar[frozenset[str]] = frozenset({"use_lora"})

    base_model: str | None = Field(default=None, min_length=1, max_length=4096)
    use_lora: StrictBool = True
    lora_r: StrictInt | None = Field(default=None, ge=1, le=1024)
    lora_alpha: StrictInt | None = Field(default=None, ge=1, le=4096)
    lora_dropout: float | None = Field(default=None, ge=0, lt=1)
    lora_vision: StrictBool | None = None
    epochs: StrictInt | None = Field(default=None, ge=1, le=1000)
    batch_size: StrictInt | None = Field(default=None, ge=1, le=1024)
    gradient_accumulation: StrictInt | None = Field(default=None, ge=1, le=1024)
    learning_rate: float | None = Field(default=None, gt=0, le=1)
    warmup_ratio: float | None = Field(default=None, ge=0, lt=1)
    weight_decay: float | None = Field(default=None, ge=0, le=1)
    max_grad_norm: float | None = Field(default=None, gt=0)
    precision: Precision | None = None
    gradient_checkpointing: StrictBool | None = None
    device: Device | None = None
    save_every_steps: StrictInt | None = Field(default=None, ge=1)
    keep_last: StrictInt | None = Field(default=None, ge=1, le=100)
    train_samples: StrictInt | None = Field(default=None, ge=1)
    val_samples: StrictInt | None = Field(default=None, ge=1)
    seed: StrictInt | None = Seed


class TrainStartRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    dataset: str
    config: TrainingConfigBody = Field(default_factory=TrainingConfigBody)
