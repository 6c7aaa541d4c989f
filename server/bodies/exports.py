"""Body of the export endpoint: which checkpoint of a training job, and the saved precision."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from server.bodies.base import StageBody
from server.checkpoints import CHECKPOINT_NAME


class ExportRequest(StageBody):
    """Every field is optional: the best checkpoint (the final adapter when none has a
    validation loss), saved in the base model's own stored dtype."""

    NOT_FLAGS: ClassVar[frozenset[str]] = frozenset({"checkpoint_name"})

    checkpoint_name: str | None = Field(
        default=None,
        max_length=64,
        pattern=CHECKPOINT_NAME.pattern,
        description="best, final or step-NNNNNNNN (best by default)",
    )
    dtype: Literal["fp32", "fp16", "bf16"] | None = Field(
        default=None, description="precision of the saved weights (the base model's by default)"
    )
