"""The shared base of request bodies: field -> ``--flag value``, only for what is used."""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, field_validator, model_validator


class StageBody(BaseModel):
    """A request body whose fields map one to one onto a stage's flags.

    A field ``train_size`` becomes ``--train-size``; ``FLAGS`` renames where the stage's word
    differs, ``NOT_FLAGS`` lists fields the route uses itself. Booleans are ``--flag`` when
    true and ``--no-flag`` when false (the stage declares them with BooleanOptionalAction);
    lists are comma-joined; ``None`` is left out so the stage's default applies.
    """

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    FLAGS: ClassVar[dict[str, str]] = {}
    NOT_FLAGS: ClassVar[frozenset[str]] = frozenset()

    @field_validator("*", mode="after")
    @classmethod
    def _fits_a_command_line(cls, value: Any) -> Any:
        """A flag's value becomes a process argument, which cannot hold a NUL character
        (starting the stage would fail): refused here, naming the field."""
        values = value if isinstance(value, list | tuple) else (value,)
        if any(isinstance(v, str) and "\x00" in v for v in values):
            raise ValueError("must not contain a NUL character")
        return value

    def to_args(self, *, only_set: bool = False) -> list[str]:
        """The stage flags for this body; ``only_set`` passes only what the caller gave."""
        args: list[str] = []
        names = self.model_fields_set if only_set else type(self).model_fields
        for name in type(self).model_fields:
            if name not in names or name in self.NOT_FLAGS:
                continue
            value = getattr(self, name)
            if value is None:
                continue
            args += _flag(self.FLAGS.get(name, name.replace("_", "-")), value)
        return args


class OneModel(BaseModel):
    """A model given inline (DeepCAD JSON) or named in a dataset: exactly one of the two."""

    model: dict[str, Any] | None = None
    model_id: str | None = None
    dataset: str | None = None

    @model_validator(mode="after")
    def one_model(self) -> OneModel:
        if (self.model is None) == (self.dataset is None):
            raise ValueError("give either 'model' (DeepCAD JSON) or 'dataset' and 'model_id'")
        if self.dataset is not None and not self.model_id:
            raise ValueError("'model_id' is required with 'dataset'")
        return self


MODEL_FIELDS = frozenset({"model", "model_id", "dataset"})


def _flag(flag: str, value: Any) -> list[str]:
    if isinstance(value, bool):
        return [f"--{flag}" if value else f"--no-{flag}"]
    if isinstance(value, list | tuple):
        return [f"--{flag}", ",".join(str(v) for v in value)]
    return [f"--{flag}", str(value)]
