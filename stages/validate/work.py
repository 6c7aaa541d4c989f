"""One model's share of a validation: its images decoded, each distinct answer interpreted
once and its source model built once, however many records (views) use them. A source model
whose volume extraction recorded (``models.json``) is not built again.

This is the unit a validate worker runs; it never raises for bad data.
"""

from __future__ import annotations

from dataclasses import dataclass

from stages.validate.answers import AnswerCheck, check_answer, source_volume
from stages.validate.images import ImageCheck, check_image


@dataclass(frozen=True, slots=True)
class ModelJob:
    model_id: str
    source: str | None  # its cad_json file; None when the dataset has none
    images: tuple[str, ...]  # absolute paths, each once
    answers: tuple[str, ...]  # distinct answer texts
    recorded_volume: float | None = None  # the source's volume from models.json, if listed


@dataclass(frozen=True, slots=True)
class ModelReport:
    model_id: str
    images: tuple[ImageCheck, ...]
    answers: tuple[AnswerCheck, ...]  # in the job's answer order
    source_volume: float | None
    source_error: str  # why there is no source volume ("" when there is one or no source)


def check_model(job: ModelJob) -> ModelReport:
    from stages.cad.key import geometric_key

    images = tuple(check_image(path) for path in job.images)
    answers = tuple(check_answer(answer, job.model_id, geometric_key) for answer in job.answers)
    if job.source is None:
        volume, error = None, ""
    elif job.recorded_volume is not None:
        volume, error = job.recorded_volume, ""
    else:
        volume, error = source_volume(job.source)
    return ModelReport(job.model_id, images, answers, volume, error)


def report_lost(job: ModelJob, message: str) -> ModelReport:
    """The report for a model whose worker died on it (a crash in native code, the OOM killer):
    its images are checked here, its answers and source count as not building."""
    images = tuple(check_image(path) for path in job.images)
    answers = tuple(AnswerCheck(error="answer_build", detail=message) for _ in job.answers)
    source_error = message if job.source is not None and job.recorded_volume is None else ""
    return ModelReport(job.model_id, images, answers, job.recorded_volume, source_error)
