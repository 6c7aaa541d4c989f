"""``python -m stages.extract``: pick a train/val subset whose every model builds, and write it
as a dataset folder (models, split, ``models.json`` and manifest: see ``stages.dataset.layout``)
atomically, its manifest marking extraction completed. ``models.json`` holds each chosen
model's split, volume (m^3), number of solids and geometric key, as checking found them.

Sizes are met exactly: a model that does not parse, fails a filter, does not build in time,
or duplicates a train model's geometry in validation is skipped (a counted warning) and
replaced by the next one of its split; when a split runs out the stage fails with one line
and exit 2, leaving nothing behind.

The candidates are checked in ``--workers`` local processes, or as Ray tasks with
``--executor ray`` (``--ray-address`` joins a cluster; see ``stages.executors``).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from stages.dataset.manifest import COMPLETED, EXTRACTION, new_manifest
from stages.dataset.model_facts import ModelFacts
from stages.executors import add_executor_arguments, executor_from_args
from stages.extract.check import DEFAULT_TIME_LIMIT, CheckSettings, checking_pool
from stages.extract.sampling import TRAIN, VALIDATION
from stages.extract.selection import Selection, SplitFiller
from stages.extract.sources import ROOT_VARIABLE, SOURCE_KINDS, Source, open_source
from stages.extract.writer import DatasetWriter
from stages.protocol import (
    CancelFlag,
    OneLineParser,
    Reporter,
    UsageError,
    positive_float,
    positive_int,
    run_stage,
)


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="python -m stages.extract", description=__doc__)
    parser.add_argument("--source", choices=SOURCE_KINDS, required=True)
    parser.add_argument("--root", help=f"DeepCAD root (default: ${ROOT_VARIABLE})")
    parser.add_argument("--train-size", type=positive_int, required=True)
    parser.add_argument("--val-size", type=positive_int, required=True)
    parser.add_argument("--output", required=True, help="the dataset folder to create")
    parser.add_argument("--name", help="dataset name in the manifest (default: the folder name)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-extrudes", type=positive_int, help="most extrudes (per profile)")
    parser.add_argument("--max-curves", type=positive_int, help="most curves in the whole model")
    parser.add_argument(
        "--unique-keys",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="keep one model per geometric key overall",
    )
    parser.add_argument("--workers", type=positive_int, default=len(os.sched_getaffinity(0)))
    parser.add_argument(
        "--time-limit", type=positive_float, default=DEFAULT_TIME_LIMIT,
        help="seconds one model may take to build",
    )  # fmt: skip
    add_executor_arguments(parser)
    return parser


def extract(args: argparse.Namespace, reporter: Reporter, cancel: CancelFlag) -> dict[str, Any]:
    started = time.monotonic()
    source = open_source(
        args.source,
        args.root,
        seed=args.seed,
        train_size=args.train_size,
        val_size=args.val_size,
        workers=args.workers,
    )
    _check_sizes(source, args.train_size, args.val_size)
    output = Path(args.output).absolute()
    settings = CheckSettings(args.time_limit, args.max_extrudes, args.max_curves)
    with contextlib.closing(source), DatasetWriter(output) as writer:
        reporter.start(args.train_size + args.val_size, unit="models")
        with checking_pool(settings, args.workers, executor_from_args(args)) as pool:
            filler = SplitFiller(
                pool, reporter, lambda _split, c: writer.add_model(c), unique_keys=args.unique_keys
            )
            selection = filler.run(source, args.train_size, args.val_size)
        manifest = _manifest(args, source, selection)
        writer.commit(
            {TRAIN: selection.train, VALIDATION: selection.validation},
            manifest,
            _model_facts(selection),
        )
    models = len(selection.train) + len(selection.validation)
    seconds = time.monotonic() - started
    return {
        "output_path": str(output),
        "train": len(selection.train),
        "val": len(selection.validation),
        "models": models,
        "skipped": dict(selection.skipped),
        "duplicates_dropped": selection.duplicates_dropped,
        "checked": selection.checked,
        "replaced": selection.replaced,
        "seconds": round(seconds, 3),
        "models_per_s": round(models / seconds, 1) if seconds > 0 else None,
    }


def _check_sizes(source: Source, train_size: int, val_size: int) -> None:
    for split, size, flag in (
        (TRAIN, train_size, "--train-size"),
        (VALIDATION, val_size, "--val-size"),
    ):
        available = source.available(split)
        if available is not None and size > available:
            raise UsageError(
                f"{flag} {size} is larger than the source's {split} split ({available} models)"
            )


def _model_facts(selection: Selection) -> dict[str, dict[str, Any]]:
    """``models.json``: each chosen model's split and what building it found."""
    facts: dict[str, dict[str, Any]] = {}
    for split, ids in ((TRAIN, selection.train), (VALIDATION, selection.validation)):
        for model_id in ids:
            check = selection.checks[model_id]
            facts[model_id] = ModelFacts(split, check.volume, check.solids, check.key).as_json()
    return facts


def _manifest(args: argparse.Namespace, source: Source, selection: Selection) -> dict[str, Any]:
    output = Path(args.output)
    manifest = new_manifest(
        args.name or output.name,
        source={"kind": source.kind, "root": str(source.root) if source.root else None},
        train_size=args.train_size,
        val_size=args.val_size,
        seed=args.seed,
        filters={
            "max_extrudes": args.max_extrudes,
            "max_curves": args.max_curves,
            "unique_keys": args.unique_keys,
            "time_limit_s": args.time_limit,
        },
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        counts={
            "train": len(selection.train),
            "val": len(selection.validation),
            "models": len(selection.train) + len(selection.validation),
            "skipped": dict(selection.skipped),
            "duplicates_dropped": selection.duplicates_dropped,
            "checked": selection.checked,
            "replaced": selection.replaced,
        },
    )
    manifest["stages"][EXTRACTION] = COMPLETED
    return manifest


def main(argv: list[str] | None = None) -> int:
    return run_stage("extract", build_parser(), extract, argv)


if __name__ == "__main__":
    sys.exit(main())
