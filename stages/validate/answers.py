"""Does an answer rebuild a solid? Unwrap, interpret (never ``exec``), build, measure.

The volume and geometric key of the rebuilt solid are returned for the caller to compare with
the source model (volume) and across the split (key).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any

from stages.cad.model import CadError

VOLUME_TOLERANCE = 0.005  # an answer's solid may differ from its model's by 0.5%


@dataclass(frozen=True, slots=True)
class AnswerCheck:
    """``error`` is ``answer_unwrap``, ``answer_parse`` or ``answer_build``, else None."""

    error: str | None = None
    detail: str = ""
    volume: float | None = None
    key: Hashable | None = None


def check_answer(
    answer: str, model_id: str, key_of: Callable[[Any], Hashable] | None = None
) -> AnswerCheck:
    """Interpret ``answer``; ``key_of`` (``geometric_key``) keys the solid when given."""
    from stages.cad.openecad import parse_code, unwrap_answer, wrap_answer
    from stages.cad.solid import BUILD_TIME_LIMIT_S, build_solid

    try:
        code = unwrap_answer(answer)
    except (CadError, ValueError) as exc:
        return AnswerCheck("answer_unwrap", _describe(exc))
    if wrap_answer(code) != answer:
        return AnswerCheck("answer_unwrap", "the answer is not exactly OpenECAD's wrapper")
    try:
        model = parse_code(code, model_id)
    except (CadError, ValueError, RecursionError) as exc:
        return AnswerCheck("answer_parse", _describe(exc))
    try:
        solid = build_solid(model, time_limit=BUILD_TIME_LIMIT_S, mesh_extras=False)
    except CadError as exc:
        return AnswerCheck("answer_build", _describe(exc))
    except Exception as exc:  # a builder bug on one answer must not end the run
        return AnswerCheck("answer_build", f"{type(exc).__name__}: {exc}")
    return AnswerCheck(volume=solid.volume, key=key_of(solid) if key_of else None)


def source_volume(path: str) -> tuple[float | None, str]:
    """The volume of the model a record was made from, or why it has none."""
    from stages.cad.deepcad import load_deepcad
    from stages.cad.solid import BUILD_TIME_LIMIT_S, build_solid

    try:
        model = load_deepcad(path)
        return build_solid(model, time_limit=BUILD_TIME_LIMIT_S, mesh_extras=False).volume, ""
    except CadError as exc:
        return None, _describe(exc)
    except Exception as exc:  # as above: one model, not the run
        return None, f"{type(exc).__name__}: {exc}"


def _describe(exc: Exception) -> str:
    line = getattr(exc, "line", None)
    text = str(exc) or type(exc).__name__
    return f"line {line}: {text}" if line else text


def volume_matches(volume: float, reference: float, tolerance: float) -> bool:
    """Relative difference within ``tolerance`` (0.005 is 0.5%)."""
    return abs(volume - reference) <= tolerance * abs(reference)
