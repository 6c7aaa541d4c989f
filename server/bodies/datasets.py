"""Bodies of the dataset endpoints: extraction."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, StrictBool, StrictInt

from server.bodies.base import StageBody

MAX_MODELS = 1_000_000
Seed = Field(default=0, ge=0, le=2**31 - 1)


class ExtractRequest(StageBody):
    NOT_FLAGS: ClassVar[frozenset[str]] = frozenset({"output_name", "executor"})

    source: Literal["deepcad", "synthetic"] = "synthetic"
    train_size: StrictInt = Field(ge=1, le=MAX_MODELS)
    val_size: StrictInt = Field(ge=1, le=MAX_MODELS)
    output_name: str
    seed: StrictInt = Seed
    max_extrudes: StrictInt | None = Field(default=None, ge=1, le=100)
    max_curves: StrictInt | None = Field(default=None, ge=1, le=10_000)
    unique_keys: StrictBool = False
    executor: Literal["local", "ray"] = Field(
        default="local",
        description="where the per-model work runs: local worker processes, or Ray (the "
        "service's --ray-address cluster, else a private Ray instance on this machine)",
    )
