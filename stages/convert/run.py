"""The convert stage's work: a rendered dataset folder to its train and val record files.

Plan first (which models of the split have which images: one directory listing, no image is
opened), then write each model's code once on the worker pool, then measure answers against
the token budget and lay out the records. Models without a usable file, images not rendered
and over-long answers are skipped and counted, never fatal; each model left out without any
record is named with its reason in ``skipped.json`` (its ``conversion`` entry), so validation
can tell it from a model that went missing. A run where no model got a record fails
(``all_failed``) before writing anything; a file that cannot be written fails the run as
``write_failed``.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stages.convert.codegen import ModelAnswer, answer_for_model, answer_lost
from stages.convert.notices import CappedWarnings
from stages.convert.templates import prompt_text
from stages.dataset.layout import (
    IMAGES_FOLDER,
    MODELS_FOLDER,
    RECORD_FILES,
    SKIPS_FILE,
    DatasetError,
    ImageSlot,
    find_model_files,
    image_slots,
    list_images,
    read_split,
    record_file,
)
from stages.dataset.manifest import CONVERSION
from stages.dataset.records import Record, make_record, write_records
from stages.dataset.skips import write_skips
from stages.dataset.tokens import TokenCounter
from stages.protocol import Reporter, require_some_succeeded, writing
from stages.workpool import parallel_map


@dataclass(frozen=True, slots=True)
class ConvertOptions:
    layout: str
    views: tuple[str, ...]
    randomize_templates: bool
    seed: int
    max_answer_tokens: int
    workers: int


@dataclass(frozen=True, slots=True)
class PlannedModel:
    side: str  # "train" or "val"
    model_id: str
    source: Path
    slots: tuple[ImageSlot, ...]  # only those whose image exists


@dataclass(slots=True)
class Tally:
    """What was skipped: images (missing), records (too long) and models (by reason), and
    each model left out without any record (id -> reason)."""

    missing_images: int = 0
    dropped_too_long: int = 0
    failed_models: Counter[str] = field(default_factory=Counter)
    models: int = 0  # distinct models of the split
    left_out: dict[str, str] = field(default_factory=dict)


def plan_models(
    dataset: Path, options: ConvertOptions, tally: Tally, warnings: CappedWarnings
) -> list[PlannedModel]:
    """The split's models that have a file and at least one image, in split order."""
    split = read_split(dataset)
    files = find_model_files(dataset)
    images = list_images(dataset)
    in_train = set(split["train"])
    planned: list[PlannedModel] = []
    for side in RECORD_FILES:
        for model_id in split[side]:
            if side == "val" and model_id in in_train:
                warnings.warn(model_id, "listed as train and validation: kept in train", "in_both")
                continue
            tally.models += 1
            source = files.get(model_id)
            if source is None:
                tally.failed_models["missing_model"] += 1
                tally.left_out[model_id] = "missing_model"
                warnings.warn(model_id, f"no {MODELS_FOLDER} file for this model", "missing_model")
                continue
            wanted = image_slots(model_id, options.layout, options.views)
            present = tuple(slot for slot in wanted if slot.file_name in images)
            if len(present) < len(wanted):
                tally.missing_images += len(wanted) - len(present)
                names = ", ".join(s.file_name for s in wanted if s not in present)
                warnings.warn(model_id, f"no {IMAGES_FOLDER}/{names}", "missing_images")
            if present:
                planned.append(PlannedModel(side, model_id, source, present))
            else:
                tally.left_out[model_id] = "missing_images"
    return planned


def write_answers(
    planned: list[PlannedModel],
    options: ConvertOptions,
    reporter: Reporter,
    tally: Tally,
    warnings: CappedWarnings,
) -> dict[str, str]:
    """Each planned model's wrapped code, by id; failures are counted and warned about."""
    answers: dict[str, str] = {}
    jobs = [(model.model_id, str(model.source)) for model in planned]
    outcome: ModelAnswer
    for outcome in parallel_map(
        answer_for_model, jobs, options.workers, chunksize=64, crashed=answer_lost
    ):
        if outcome.answer is None:
            reason = outcome.reason or "code_failed"
            tally.failed_models[reason] += 1
            tally.left_out[outcome.model_id] = reason
            warnings.warn(outcome.model_id, outcome.detail or reason, reason)
            reporter.advance(ok=False)
        else:
            answers[outcome.model_id] = outcome.answer
            reporter.advance(ok=True)
    return answers


def lay_out_records(
    planned: list[PlannedModel],
    answers: dict[str, str],
    token_counts: dict[str, int],
    options: ConvertOptions,
    tally: Tally,
    warnings: CappedWarnings,
) -> dict[str, list[Record]]:
    """The records of each side, skipping models whose answer is over the token budget."""
    records: dict[str, list[Record]] = {side: [] for side in RECORD_FILES}
    for model in planned:
        answer = answers.get(model.model_id)
        if answer is None:
            continue
        tokens = token_counts[model.model_id]
        if tokens > options.max_answer_tokens:
            tally.dropped_too_long += len(model.slots)
            tally.left_out[model.model_id] = "too_long"
            message = f"answer is {tokens} tokens (budget {options.max_answer_tokens})"
            warnings.warn(model.model_id, message, "too_long")
            continue
        for slot in model.slots:
            prompt = prompt_text(
                options.layout,
                slot.view,
                randomize=options.randomize_templates,
                seed=options.seed,
                record_id=slot.record_id,
            )
            records[model.side].append(make_record(slot.record_id, slot.file_name, prompt, answer))
    return records


def convert_dataset(
    dataset: Path, options: ConvertOptions, counter: TokenCounter, reporter: Reporter
) -> dict[str, Any]:
    """Write the dataset's record files and return the stage's result object."""
    tally = Tally()
    warnings = CappedWarnings(reporter)
    planned = plan_models(dataset, options, tally, warnings)
    if not planned and tally.missing_images:
        raise DatasetError(
            f"no image for the {options.layout} layout in {IMAGES_FOLDER}/ "
            f"({tally.missing_images} missing): render the dataset for this layout first"
        )
    reporter.start(len(planned), unit="models")
    answers = write_answers(planned, options, reporter, tally, warnings)
    ids = list(answers)
    token_counts = dict(zip(ids, counter.count([answers[i] for i in ids]), strict=True))
    records = lay_out_records(planned, answers, token_counts, options, tally, warnings)
    warnings.flush()
    result = conversion_result(records, tally, options, counter)
    recorded = tally.models - len(tally.left_out)  # every other model has a record
    left_out = Counter(tally.left_out.values())
    require_some_succeeded(tally.models, recorded, left_out, result=result)
    for side in RECORD_FILES:
        with writing(record_file(dataset, side), result):
            write_records(record_file(dataset, side), records[side])
    with writing(dataset / SKIPS_FILE, result):
        write_skips(dataset, CONVERSION, tally.left_out)
    return result


def conversion_result(
    records: dict[str, list[Record]],
    tally: Tally,
    options: ConvertOptions,
    counter: TokenCounter,
) -> dict[str, Any]:
    """The stage's result object."""
    written = [r for side in RECORD_FILES for r in records[side]]
    answer_chars = sum(len(r["conversations"][1]["value"]) for r in written)
    return {
        "train_file": RECORD_FILES["train"],
        "val_file": RECORD_FILES["val"],
        "train_conversations": len(records["train"]),
        "val_conversations": len(records["val"]),
        "dropped_too_long": tally.dropped_too_long,
        "missing_images": tally.missing_images,
        "failed_models": dict(sorted(tally.failed_models.items())),
        "layout": options.layout,
        "views": list(options.views) if options.layout == "per_view" else None,
        "token_counter": counter.name,
        "max_answer_tokens": options.max_answer_tokens,
        "avg_answer_chars": round(answer_chars / len(written), 1) if written else 0,
    }
