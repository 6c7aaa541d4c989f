"""The parameters of a reconstruction: which checkpoint reads the image, how long it may
write, and how the rebuilt solid is drawn.

They arrive as text (multipart form fields, or the query string beside a raw image body), so
numbers are parsed from strings and ``views`` may be one comma-separated value or repeated.
The image itself is checked in ``server.routes.inference``.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from server.bodies.training import BaseModelSpec

DEFAULT_MAX_NEW_TOKENS = 2048  # the evaluation's default; capped by the context left
DEFAULT_RESOLUTION = 512


class ReconstructRequest(BaseModel):
    """``checkpoint`` is a training job id (with ``checkpoint_name`` best, final or
    step-NNNNNNNN; best by default), a checkpoint folder under the service's checkpoints
    root, or a base model (a local directory or a cached hub id)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    checkpoint: Annotated[
        BaseModelSpec,
        Field(description="a training job id, a checkpoint folder under checkpoints/, or a base "
              "model (a local directory or a cached hub id)"),
    ]  # fmt: skip
    checkpoint_name: str | None = Field(default=None, max_length=64)
    max_new_tokens: int = Field(
        default=DEFAULT_MAX_NEW_TOKENS, ge=1, le=32_768, description="most tokens generated"
    )
    views: list[str] | None = Field(
        default=None,
        min_length=1,
        max_length=16,
        description="views of the rebuilt solid (comma-separated or repeated); the renderer's "
        "defaults when left out",
    )
    resolution: int = Field(default=DEFAULT_RESOLUTION, description="side of each view in px")
    prompt: str | None = Field(
        default=None,
        min_length=1,
        max_length=2000,
        description="the text after the image in the human turn (OpenECAD's own by default)",
    )

    @field_validator("views", mode="before")
    @classmethod
    def _split_views(cls, value: Any) -> Any:
        values = value if isinstance(value, list) else [value]
        if all(isinstance(v, str) for v in values):
            return [name.strip() for v in values for name in v.split(",") if name.strip()]
        return value

    @field_validator("checkpoint", "checkpoint_name", "prompt", mode="after")
    @classmethod
    def _no_nul(cls, value: str | None) -> str | None:
        if value is not None and "\x00" in value:
            raise ValueError("must not contain a NUL character")
        return value


def field_schemas() -> dict[str, dict[str, Any]]:
    """Each parameter's JSON schema as text fields carry it (no nulls; ``views`` one string),
    from the model's own schema."""
    fields: dict[str, dict[str, Any]] = {}
    for name, schema in ReconstructRequest.model_json_schema()["properties"].items():
        schema = {k: v for k, v in schema.items() if k != "title"}
        choices = [c for c in schema.pop("anyOf", []) if c.get("type") != "null"]
        if choices:
            schema = {**choices[0], **schema}
        if name == "views":
            schema = {"type": "string", "description": schema.get("description", "")}
        schema.pop("default", None)
        fields[name] = schema
    return fields


def form_schema() -> dict[str, Any]:
    """The multipart form's JSON schema: the image file beside the parameters."""
    required = ReconstructRequest.model_json_schema().get("required", [])
    image = {"type": "string", "format": "binary", "description": "a PNG or JPEG image"}
    return {
        "type": "object",
        "required": ["image", *required],
        "properties": {"image": image, **field_schemas()},
    }
