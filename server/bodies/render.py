"""Bodies of the rendering endpoints: a dataset, one model, a batch of models."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import Field, StrictBool, StrictInt, model_validator

from server.bodies.base import MODEL_FIELDS, OneModel, StageBody

MAX_BATCH_MODELS = 10_000


class RenderOptions(StageBody):
    """What to draw. Views and resolution are checked against what the host's renderer can
    do when the request arrives (``server.routes.render``); ``views`` left out means the
    renderer's default views."""

    NOT_FLAGS: ClassVar[frozenset[str]] = frozenset()

    views: list[str] | None = Field(default=None, min_length=1)
    resolution: StrictInt = 512
    composite: StrictBool = False


class DatasetRenderRequest(RenderOptions):
    FLAGS: ClassVar[dict[str, str]] = {"batch_size": "recycle-after"}
    NOT_FLAGS: ClassVar[frozenset[str]] = frozenset({"executor"})

    batch_size: StrictInt = Field(
        default=100,
        ge=1,
        le=10_000,
        description="models each render process draws before it is replaced by a fresh one "
        "(bounds the memory a long run's OpenGL context can grow to)",
    )
    workers: StrictInt | None = Field(default=None, ge=1, le=256)
    executor: Literal["local", "ray"] = Field(
        default="local",
        description="where the per-model work runs: local worker processes, or Ray (the "
        "service's --ray-address cluster, else a private Ray instance on this machine)",
    )


class RenderViewsRequest(RenderOptions, OneModel):
    NOT_FLAGS: ClassVar[frozenset[str]] = MODEL_FIELDS | {"response"}

    response: Literal["base64", "url"] = "base64"


class BatchRenderRequest(RenderOptions):
    NOT_FLAGS: ClassVar[frozenset[str]] = frozenset({"models", "dataset", "model_ids"})

    models: list[dict[str, Any]] | None = Field(default=None, max_length=MAX_BATCH_MODELS)
    dataset: str | None = None
    model_ids: list[str] | None = Field(default=None, max_length=MAX_BATCH_MODELS)

    @model_validator(mode="after")
    def one_source(self) -> BatchRenderRequest:
        if (self.models is None) == (self.dataset is None):
            raise ValueError(
                "give either 'models' (DeepCAD JSON objects) or 'dataset' and 'model_ids'"
            )
        if self.dataset is not None and not self.model_ids:
            raise ValueError("'model_ids' is required with 'dataset'")
        if self.models is not None and not self.models:
            raise ValueError("'models' must not be empty")
        return self
