"""Bodies of the record endpoints: convert, validate, and one pair at a time."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt

from server.bodies.base import MODEL_FIELDS, OneModel, StageBody

Layout = Literal["per_view", "composite", "iso"]
Seed = Field(default=0, ge=0, le=2**31 - 1)
AnswerTokens = Field(default=None, ge=16, le=1_000_000)


class ConvertRequest(StageBody):
    format: Literal["tinyllava"] = "tinyllava"
    randomize_templates: StrictBool = True
    layout: Layout = "per_view"
    seed: StrictInt = Seed
    max_answer_tokens: StrictInt | None = AnswerTokens


class ValidateRequest(StageBody):
    NOT_FLAGS: ClassVar[frozenset[str]] = frozenset({"executor"})

    max_answer_tokens: StrictInt | None = AnswerTokens
    executor: Literal["local", "ray"] = Field(
        default="local",
        description="where the per-model work runs: local worker processes, or Ray (the "
        "service's --ray-address cluster, else a private Ray instance on this machine)",
    )


class GeneratePairRequest(StageBody, OneModel):
    NOT_FLAGS: ClassVar[frozenset[str]] = MODEL_FIELDS

    view: str = "front"
    layout: Layout = "per_view"
    resolution: StrictInt = Field(default=512, ge=64, le=2048)
    seed: StrictInt = Seed


class TrainingPairRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    record: dict[str, Any]
    dataset: str | None = None
    model: dict[str, Any] | None = None
