"""Bodies of the evaluation endpoints: which checkpoint scores which dataset's records."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field, StrictInt

from server.bodies.base import StageBody
from server.bodies.training import BaseModelSpec, Device


class EvaluateRequest(StageBody):
    """``checkpoint`` is a training job id (with ``checkpoint_name`` best, final or
    step-NNNNNNNN; best by default), a checkpoint folder under the service's checkpoints
    root, or a base model (a hub id or a local directory)."""

    NOT_FLAGS: ClassVar[frozenset[str]] = frozenset({"dataset", "checkpoint", "checkpoint_name"})

    dataset: str
    checkpoint: BaseModelSpec
    checkpoint_name: str | None = Field(default=None, max_length=64)
    samples: StrictInt | None = Field(default=None, ge=1, le=100_000)
    views: list[str] | None = Field(
        default=None, min_length=1, max_length=16, description="score only records of these views"
    )
    max_new_tokens: StrictInt | None = Field(default=None, ge=1, le=32_768)
    batch_size: StrictInt | None = Field(default=None, ge=1, le=256)
    device: Device | None = None
