"""The validate stage's work: every record, image and answer of a converted dataset.

Records are read and checked for structure here; the expensive part (decoding every image,
interpreting each model's answers once and building its source model once) runs on the worker
pool, one model per task; what needs the whole dataset (ids, leakage, the expected image size,
token lengths) is decided here afterwards. A source model that ``models.json`` lists (extraction
built it and recorded its volume) is not built again; without the file, or for a model it does
not list, the source is built as before. Every model of the dataset, with records or without,
is checked for its rendered images and a record (``stages.validate.coverage``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stages.atomic import write_json_atomic
from stages.dataset.layout import (
    MODELS_FOLDER,
    RECORD_FILES,
    REPORT_FILE,
    DatasetError,
    find_model_files,
    images_dir,
    list_images,
    read_split,
)
from stages.dataset.manifest import read_manifest_or_empty, rendered_images
from stages.dataset.model_facts import ModelFacts, read_model_facts
from stages.dataset.skips import read_skips
from stages.dataset.tokens import TokenCounter
from stages.executors import LOCAL_EXECUTOR, Executor, parallel_map
from stages.protocol import Reporter, writing
from stages.validate.answers import VOLUME_TOLERANCE, volume_matches
from stages.validate.checks import Problem, flags_for
from stages.validate.coverage import check_coverage, dataset_models, left_out_warning
from stages.validate.leakage import leakage_problems
from stages.validate.loading import Entry, duplicate_id_problems, load_records
from stages.validate.report import cap_problems, summary_warnings, token_percentiles
from stages.validate.work import ModelJob, ModelReport, check_model, report_lost


@dataclass(frozen=True, slots=True)
class ValidateOptions:
    resolution: int | None  # the expected image size; None: the most common one
    resolution_source: str  # "manifest", "flag" or "most common"
    max_answer_tokens: int
    workers: int
    executor: Executor = LOCAL_EXECUTOR


def model_files(dataset: Path, warnings: list[str]) -> dict[str, Path]:
    try:
        return find_model_files(dataset)
    except DatasetError as exc:
        warnings.append(f"{exc}: answers cannot be compared with their models")
        return {}


def model_jobs(
    dataset: Path, entries: list[Entry], files: dict[str, Path], facts: dict[str, ModelFacts]
) -> list[ModelJob]:
    """One job per model, holding each of its images and distinct answers once, and its
    source's volume when ``models.json`` records it."""
    images: dict[str, dict[str, None]] = {}
    answers: dict[str, dict[str, None]] = {}
    for entry in entries:
        path = str(images_dir(dataset) / entry.image)
        images.setdefault(entry.model_id, {})[path] = None
        answers.setdefault(entry.model_id, {}).update(dict.fromkeys(entry.answers))
    return [
        ModelJob(
            model_id,
            str(files[model_id]) if model_id in files else None,
            tuple(images[model_id]),
            tuple(answers[model_id]),
            facts[model_id].volume if model_id in facts else None,
        )
        for model_id in images
    ]


def run_model_checks(
    jobs: list[ModelJob],
    workers: int,
    reporter: Reporter,
    executor: Executor = LOCAL_EXECUTOR,
) -> dict[str, ModelReport]:
    reporter.start(len(jobs), unit="models")
    reports: dict[str, ModelReport] = {}
    results = parallel_map(
        check_model, jobs, workers, chunksize=4, crashed=report_lost, executor=executor
    )
    for report in results:
        reports[report.model_id] = report
        ok = report.source_error == "" and not any(
            check.error for check in (*report.images, *report.answers)
        )
        reporter.advance(ok=ok)
    return reports


def expected_size(
    options: ValidateOptions, reports: dict[str, ModelReport]
) -> tuple[tuple[int, int] | None, str]:
    if options.resolution is not None:
        return (options.resolution, options.resolution), options.resolution_source
    sizes = Counter(i.size for r in reports.values() for i in r.images if i.size is not None)
    return (sizes.most_common(1)[0][0] if sizes else None), "most common"


def entry_problems(
    entry: Entry,
    job: ModelJob,
    report: ModelReport,
    size: tuple[int, int] | None,
    dataset: Path,
) -> list[Problem]:
    """The image, source and answer problems of one record, from its model's report."""
    problems: list[Problem] = []
    path = str(images_dir(dataset) / entry.image)
    image = next(i for i in report.images if i.path == path)
    if image.error:
        problems.append(Problem(image.error, entry.label, f"{entry.image}: {image.detail}"))
    elif size is not None and image.size != size:
        width, height = image.size or (0, 0)
        detail = f"{entry.image} is {width}x{height}, expected {size[0]}x{size[1]}"
        problems.append(Problem("image_resolution", entry.label, detail))
    if job.source is None:
        detail = f"no {MODELS_FOLDER} file for model {entry.model_id}"
        problems.append(Problem("source_missing", entry.label, detail))
    elif report.source_volume is None:
        detail = f"model {entry.model_id} does not build: {report.source_error}"
        problems.append(Problem("source_unbuildable", entry.label, detail))
    for answer in entry.answers:
        check = report.answers[job.answers.index(answer)]
        if check.error:
            problems.append(Problem(check.error, entry.label, check.detail))
        elif (
            report.source_volume is not None
            and check.volume is not None
            and not volume_matches(check.volume, report.source_volume, VOLUME_TOLERANCE)
        ):
            detail = (
                f"answer builds {check.volume:.6g} m^3, model {entry.model_id} "
                f"is {report.source_volume:.6g} m^3"
            )
            problems.append(Problem("volume_mismatch", entry.label, detail))
    return problems


def budget_problems(
    entries: list[Entry], counter: TokenCounter, limit: int
) -> tuple[list[Problem], list[int]]:
    """Answers over ``limit`` tokens, and every answer's length (for percentiles)."""
    distinct = list(dict.fromkeys(a for e in entries for a in e.answers))
    lengths = dict(zip(distinct, counter.count(distinct), strict=True))
    problems: list[Problem] = []
    per_record: list[int] = []
    for entry in entries:
        for answer in entry.answers:
            per_record.append(lengths[answer])
            if lengths[answer] > limit:
                detail = f"answer is {lengths[answer]} tokens, budget {limit}"
                problems.append(Problem("token_budget", entry.label, detail))
    return problems, per_record


def validate_dataset(
    dataset: Path, options: ValidateOptions, counter: TokenCounter, reporter: Reporter
) -> dict[str, Any]:
    """Check everything, write ``validation.json`` and return the stage's result object."""
    warnings: list[str] = []
    loaded = load_records(dataset)
    problems = list(loaded.problems) + duplicate_id_problems(loaded.ids)
    if loaded.counts.get("val", 0) == 0:
        warnings.append(
            f"{RECORD_FILES['val']} holds no records: nothing to measure generalisation on"
        )
    try:
        split: dict[str, list[str]] | None = read_split(dataset)
    except DatasetError as exc:
        warnings.append(f"{exc}: leakage checked between the record files only")
        split = None

    entries = loaded.entries
    files = model_files(dataset, warnings)
    facts, warning = read_model_facts(dataset)
    skips, skips_warning = read_skips(dataset)
    warnings += [w for w in (warning, skips_warning) if w]
    jobs = model_jobs(dataset, entries, files, facts)
    reports = run_model_checks(jobs, options.workers, reporter, options.executor)
    size, size_source = expected_size(options, reports)
    jobs_by_model = {job.model_id: job for job in jobs}
    for entry in entries:
        job = jobs_by_model[entry.model_id]
        problems += entry_problems(entry, job, reports[entry.model_id], size, dataset)

    keys: dict[str, Hashable] = {}
    for job in jobs:
        for answer, check in zip(job.answers, reports[job.model_id].answers, strict=True):
            if check.key is not None:
                keys[answer] = check.key
    problems += leakage_problems(entries, split, keys)
    over_budget, lengths = budget_problems(entries, counter, options.max_answer_tokens)
    problems += over_budget
    models = dataset_models(split, facts, files)
    rendered = rendered_images(read_manifest_or_empty(dataset))
    if rendered is None:
        warnings.append("the manifest records no render: models' images are not checked")
    coverage = check_coverage(
        models, entries, list_images(dataset), rendered, skips, loaded.unread, files
    )
    problems += coverage.problems
    left_out = coverage.left_out_counts()

    counts = Counter(problem.check for problem in problems)
    images = [image for report in reports.values() for image in report.images]
    flags = flags_for(counts)
    validation: dict[str, Any] = {
        "format_valid": flags["format_valid"],
        "all_images_exist": flags["all_images_exist"],
        "images_checked": sum(1 for image in images if image.error != "image_missing"),
        "total_images": len(images),
        **flags,
    }
    texts = [entry.text_chars for entry in entries]
    stats = {
        "train_samples": loaded.counts.get("train", 0),
        "val_samples": loaded.counts.get("val", 0),
        "avg_text_length": round(sum(texts) / len(texts)) if texts else 0,
        "image_resolution": f"{size[0]}x{size[1]}" if size else None,
        "image_resolution_from": size_source,
        "answer_tokens": token_percentiles(lengths),
        "token_counter": counter.name,
        "max_answer_tokens": options.max_answer_tokens,
        "models_checked": len(jobs),
        "answers_interpreted": sum(len(job.answers) for job in jobs),
        "sources_recorded": sum(1 for j in jobs if j.source and j.recorded_volume is not None),
        "sources_built": sum(1 for j in jobs if j.source and j.recorded_volume is None),
        "models_in_dataset": len(models),
        "models_left_out": left_out,
    }
    result = {
        "validation": validation,
        "stats": stats,
        "warnings": warnings + left_out_warning(left_out) + summary_warnings(counts),
        "problems": [p.as_dict() for p in cap_problems(problems)],
        "problems_total": len(problems),
        "problem_counts": dict(counts.most_common()),
        "valid": not problems,
    }
    with writing(dataset / REPORT_FILE, result):
        write_json_atomic(dataset / REPORT_FILE, result)
    return result
