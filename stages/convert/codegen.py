"""One model's answer text: its DeepCAD file, parsed, written as OpenECAD v2 code, wrapped.

This is the unit of work a convert worker runs, once per model however many records (views)
the model gets. It never raises for a bad model: the outcome carries the CadError reason, so
one broken model is a counted warning in a batch.
"""

from __future__ import annotations

from dataclasses import dataclass

from stages.cad.model import CadError


@dataclass(frozen=True, slots=True)
class ModelAnswer:
    """``answer`` is set exactly when ``reason`` is not."""

    model_id: str
    answer: str | None = None
    reason: str | None = None
    detail: str = ""


def answer_for_model(job: tuple[str, str]) -> ModelAnswer:
    """``(model_id, path to its cad_json file)`` -> the wrapped code, or why there is none."""
    from stages.cad.deepcad import load_deepcad
    from stages.cad.openecad import wrap_answer, write_code

    model_id, path = job
    try:
        model = load_deepcad(path)
        if not model.extrudes:
            raise CadError("no_geometry", "model has no extrude with a profile")
        return ModelAnswer(model_id, answer=wrap_answer(write_code(model)))
    except CadError as exc:
        return ModelAnswer(model_id, reason=exc.reason, detail=exc.detail or str(exc))
    except Exception as exc:  # a writer bug on one model must not end the batch
        return ModelAnswer(model_id, reason="code_failed", detail=f"{type(exc).__name__}: {exc}")


def answer_lost(job: tuple[str, str], message: str) -> ModelAnswer:
    """The outcome for a model whose worker died writing it (a crash in native code)."""
    return ModelAnswer(job[0], reason="worker_crashed", detail=message)
