"""Bodies of the training endpoints. Every knob is optional: what a caller leaves out takes
the training stage's own default for the run's mode (``GET /training/info`` lists them), so
the defaults exist in one place."""

from __future__ import annotations

import os
from typing import Annotated, ClassVar, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictBool, StrictInt

from server.bodies.base import StageBody

Device = Literal["auto", "cpu", "cuda", "mps"]
Precision = Literal["auto", "fp32", "bf16", "fp16"]
Seed = Field(default=None, ge=0, le=2**31 - 1)
MAX_GPUS = 64  # per node; the host's own limit (its GPUs, the service's gpu slots) is checked
GPUS_DESCRIPTION = (
    "processes per node, each on its own GPU (gloo ranks on a CPU), under torchrun; each "
    "trains batch_size records of every global batch, and the job takes as many gpu slots"
)
NAME_MAX = 255  # bytes in one path component, on every file system the stage reads


def _components_fit(spec: str) -> str:
    """A base model is 'tiny', a hub id or a directory: a part longer than any file name can
    name nothing, and would fail the stage's directory check instead of a 422."""
    if any(len(os.fsencode(part)) > NAME_MAX for part in spec.split("/")):
        raise ValueError(f"each '/'-separated part may be at most {NAME_MAX} bytes")
    return spec


BaseModelSpec = Annotated[
    str,
    Field(min_length=1, max_length=4096, description="'tiny', a hub id or a local directory"),
    AfterValidator(_components_fit),
]


class TestRunRequest(StageBody):
    NOT_FLAGS: ClassVar[frozenset[str]] = frozenset({"dataset"})

    dataset: str
    train_samples: StrictInt | None = Field(default=None, ge=1, le=1_000_000)
    val_samples: StrictInt | None = Field(default=None, ge=1, le=1_000_000)
    epochs: StrictInt | None = Field(default=None, ge=1, le=1000)
    device: Device | None = None
    base_model: BaseModelSpec | None = None
    batch_size: StrictInt | None = Field(default=None, ge=1, le=1024)
    learning_rate: float | None = Field(default=None, gt=0, le=1)
    lora_r: StrictInt | None = Field(default=None, ge=1, le=1024)
    lora_alpha: StrictInt | None = Field(default=None, ge=1, le=4096)
    seed: StrictInt | None = Seed
    gpus: StrictInt | None = Field(default=None, ge=1, le=MAX_GPUS, description=GPUS_DESCRIPTION)


class TrainingConfigBody(StageBody):
    """The ``config`` of ``POST /training/start``."""

    NOT_FLAGS: ClassVar[frozenset[str]] = frozenset({"use_lora", "nnodes", "rdzv_endpoint"})

    base_model: BaseModelSpec | None = None
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
    eval_samples: StrictInt | None = Field(default=None, ge=0, le=10_000)
    eval_every_epochs: StrictInt | None = Field(default=None, ge=0, le=1000)
    seed: StrictInt | None = Seed
    gpus: StrictInt | None = Field(default=None, ge=1, le=MAX_GPUS, description=GPUS_DESCRIPTION)
    # Several machines: this server starts the run's node here; every other node runs the
    # same torchrun command (README: multi-node training), meeting at rdzv_endpoint.
    nnodes: StrictInt | None = Field(
        default=None, ge=1, le=1024, description="machines the run spans (torchrun --nnodes)"
    )
    rdzv_endpoint: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z0-9.\-\[\]:]{1,255}$",
        description="host:port of the torchrun rendezvous (c10d) every node meets at",
    )


class TrainStartRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    dataset: str
    config: TrainingConfigBody = Field(default_factory=TrainingConfigBody)
