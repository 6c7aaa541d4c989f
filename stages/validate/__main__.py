"""``python -m stages.validate --dataset DIR``: check every record of ``train.json`` and
``val.json`` (schema, ``<image>``, turns, ids, images, answers rebuilding their models, leakage,
token budget) and write ``DIR/validation.json``.

Bad data never fails the run: it is reported in the result (``valid``: false, with
``problems``). Only a missing dataset folder or bad flags exit 2, and a report that cannot be
written (``write_failed``) exit 1.

The expected image size is the manifest's ``render.resolution`` (what the render stage drew),
else ``--resolution``, else the most common size. The token budget is ``--max-answer-tokens``,
else the one the dataset was converted with (manifest ``conversion.max_answer_tokens``), else
the default of 1170.

The run keeps the manifest's ``validation`` entry: ``in_progress`` while it runs, ``completed``
with the folder's size and the result's ``valid`` and ``validation`` (whether the data is valid
or not), ``failed`` when it ends any other way.

The models are checked in ``--workers`` local processes, or as Ray tasks with
``--executor ray`` (``--ray-address`` joins a cluster; see ``stages.executors``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from stages.dataset.manifest import (
    VALIDATION,
    read_manifest_or_empty,
    stage_completed,
    stage_run,
)
from stages.dataset.tokens import DEFAULT_MAX_ANSWER_TOKENS, stage_token_counter
from stages.executors import add_executor_arguments, executor_from_args
from stages.protocol import CancelFlag, Reporter, UsageError, run_stage
from stages.validate.run import ValidateOptions, validate_dataset
from stages.workpool import default_workers


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m stages.validate", description=__doc__)
    parser.add_argument("--dataset", required=True, type=Path, help="the dataset folder")
    parser.add_argument("--resolution", type=int, help="expected image size in pixels")
    parser.add_argument("--max-answer-tokens", type=int, help="the answer token budget")
    parser.add_argument(
        "--tokenizer", type=Path, help="a local tokenizer folder to count tokens with"
    )
    parser.add_argument("--workers", type=int, default=0, help="processes (0: one per core)")
    add_executor_arguments(parser)
    return parser


def _positive_int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def options_from(args: argparse.Namespace) -> ValidateOptions:
    if not args.dataset.is_dir():
        raise UsageError(f"dataset folder {args.dataset} does not exist")
    for flag in ("resolution", "max_answer_tokens"):
        value = getattr(args, flag)
        if value is not None and value < 1:
            raise UsageError(f"--{flag.replace('_', '-')} must be positive, got {value}")
    if args.workers < 0:
        raise UsageError(f"--workers must be 0 or more, got {args.workers}")
    manifest = read_manifest_or_empty(args.dataset)
    rendered = _positive_int((manifest.get("render") or {}).get("resolution"))
    converted = _positive_int((manifest.get("conversion") or {}).get("max_answer_tokens"))
    if rendered is not None:
        resolution, source = rendered, "manifest"
    elif args.resolution is not None:
        resolution, source = args.resolution, "flag"
    else:
        resolution, source = None, "most common"
    return ValidateOptions(
        resolution=resolution,
        resolution_source=source,
        max_answer_tokens=args.max_answer_tokens or converted or DEFAULT_MAX_ANSWER_TOKENS,
        workers=args.workers or default_workers(),
        executor=executor_from_args(args),
    )


def body(args: argparse.Namespace, reporter: Reporter, cancel: CancelFlag) -> dict[str, Any]:
    with stage_run(args.dataset, VALIDATION):
        options = options_from(args)
        counter = stage_token_counter(args.tokenizer)
        result = validate_dataset(args.dataset, options, counter, reporter)
        stage_completed(
            args.dataset,
            VALIDATION,
            validation={"valid": result["valid"], "validation": result["validation"]},
        )
    return result


def main(argv: list[str] | None = None) -> int:
    return run_stage("validate", build_parser(), body, argv)


if __name__ == "__main__":
    sys.exit(main())
