"""A training run scoring itself with the evaluation stage's own scoring: its best checkpoint
(lowest validation loss) on the first ``eval_samples`` validation records at the end, and
the model as it is every ``eval_every_epochs`` epochs, each a ``metric`` event of kind
``evaluation`` (so the job's status shows it beside the losses).

Generation stops at the end token or at 1.5 times the longest reference answer (plus a margin):
code that much longer than every reference cannot be right, and a model that has not learned
to stop would otherwise run to the end of its context on every record.
"""

from __future__ import annotations

from itertools import islice
from pathlib import Path
from typing import Any

from stages.protocol import Reporter
from stages.train.config import TrainConfig
from stages.train.data import IMAGES_DIR, iter_records, read_split
from stages.train.eval_samples import SampleLog
from stages.train.evaluate import GenerationSession, score_with, summarize_rows
from stages.train.runs import RunLayout

ANSWER_ROOM = 1.5
ANSWER_MARGIN = 16
BATCH_SIZE = 8
FLAT_METRICS = ("iou", "chamfer", "curve_accuracy", "loop_accuracy")


def evaluation_records(config: TrainConfig) -> list[Any]:
    quiet = lambda *_: None  # noqa: E731 (the training itself already warned about these)
    raw_val = read_split(config.dataset, "val")
    usable = iter_records(raw_val, config.dataset / IMAGES_DIR, quiet)
    return list(islice(usable, config.eval_samples))


def answer_room(bundle: Any, records: list[Any]) -> int:
    longest = max((len(bundle.tokenizer(r.answer)["input_ids"]) for r in records), default=0)
    return int(longest * ANSWER_ROOM) + ANSWER_MARGIN


def score_model(
    bundle: Any,
    model: Any,
    runtime: Any,
    config: TrainConfig,
    layout: RunLayout,
    reporter: Reporter,
    *,
    label: str,
    step: int,
    epoch: int,
) -> dict[str, Any]:
    """Score ``model`` as it is now; its samples go to ``<run>/evaluation/<label>/``."""
    records = evaluation_records(config)
    was_training = model.training
    model.eval()
    try:
        session = GenerationSession(bundle, model, runtime, answer_room(bundle, records))
        log = SampleLog(layout.root / "evaluation" / label)
        log.start_fresh()
        rows = score_with(session, records, Reporter("evaluate", "none"), BATCH_SIZE, log)
    finally:
        model.train(was_training)
    summary = {**summarize_rows(rows), **session.throughput(), "checkpoint": label}
    reporter.metric(kind="evaluation", step=step, epoch=epoch, **flat(summary))
    summary["samples_file"] = str(Path(log.path))
    return summary


def flat(summary: dict[str, Any]) -> dict[str, Any]:
    """The numbers of a summary as one level (``iou_mean``, ``chamfer_median``...)."""
    out = {k: v for k, v in summary.items() if k not in FLAT_METRICS}
    for metric in FLAT_METRICS:
        for stat in ("mean", "median"):
            out[f"{metric}_{stat}"] = (summary.get(metric) or {}).get(stat)
    return out
