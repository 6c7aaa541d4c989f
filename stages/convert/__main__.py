"""``python -m stages.convert --dataset DIR``: TinyLLaVA ``train.json``/``val.json`` for a
rendered dataset (models from ``cad_json/``, split from ``split.json``, images in ``images/``).

Layouts: ``per_view`` (one record per rendered view, the prompt naming the view),
``composite`` (one per model on ``<id>_composite.png``), ``iso`` (one per model on
``<id>_iso.png``). The default answer budget is 1170 tokens: 2048 context - 728 image tokens -
about 150 for the system text and prompt (see ``stages.dataset.tokens``).

The run keeps the manifest's ``conversion`` entry: ``in_progress`` while it runs, ``completed``
with the record counts, the folder's size and the options used (validation back to
``pending``), ``failed`` when it ends any other way: bad input (exit 2), a batch where no model
got a record (``all_failed``) or a file that cannot be written (``write_failed``), both exit 1.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from stages.convert.run import ConvertOptions, convert_dataset
from stages.dataset.layout import LAYOUTS, DatasetError
from stages.dataset.manifest import (
    CONVERSION,
    read_manifest_or_empty,
    stage_completed,
    stage_run,
)
from stages.dataset.tokens import DEFAULT_MAX_ANSWER_TOKENS, stage_token_counter
from stages.protocol import CancelFlag, Reporter, UsageError, run_stage
from stages.render import DEFAULT_VIEWS, parse_views
from stages.workpool import default_workers

FORMATS = ("tinyllava",)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m stages.convert", description=__doc__)
    parser.add_argument("--dataset", required=True, type=Path, help="the dataset folder")
    parser.add_argument("--format", default="tinyllava", help="record format (only tinyllava)")
    parser.add_argument("--layout", default="per_view", help=f"one of {', '.join(LAYOUTS)}")
    parser.add_argument(
        "--views",
        help="per_view layout: the views to make records for, comma separated (default: the "
        "views the dataset was rendered with, else front,top,right)",
    )
    parser.add_argument(
        "--randomize-templates",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="pick each record's prompt wording at random (fixed by --seed)",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed for the prompt choice")
    parser.add_argument(
        "--max-answer-tokens",
        type=int,
        default=DEFAULT_MAX_ANSWER_TOKENS,
        help=f"drop records whose answer is longer (default {DEFAULT_MAX_ANSWER_TOKENS})",
    )
    parser.add_argument(
        "--tokenizer", type=Path, help="a local tokenizer folder to count tokens with"
    )
    parser.add_argument("--workers", type=int, default=0, help="processes (0: one per core)")
    return parser


def checked_views(text: str | None, dataset: Path) -> tuple[str, ...]:
    """The views asked for, else those the manifest says were rendered, else the default;
    checked against the render stage's view names (records are made on its images)."""
    if text is None:
        rendered = (read_manifest_or_empty(dataset).get("render") or {}).get("views")
        if isinstance(rendered, list):
            rendered = ",".join(str(view) for view in rendered)
        text = rendered if isinstance(rendered, str) and rendered else ",".join(DEFAULT_VIEWS)
    try:
        return parse_views(text)
    except ValueError as exc:
        raise UsageError(f"--views: {exc}") from exc


def options_from(args: argparse.Namespace) -> ConvertOptions:
    """Check the arguments; any problem is a UsageError (one line, exit 2)."""
    if args.format not in FORMATS:
        raise UsageError(f"--format must be one of {', '.join(FORMATS)}, got {args.format!r}")
    if args.layout not in LAYOUTS:
        raise UsageError(f"--layout must be one of {', '.join(LAYOUTS)}, got {args.layout!r}")
    if args.max_answer_tokens < 1:
        raise UsageError(f"--max-answer-tokens must be positive, got {args.max_answer_tokens}")
    if args.workers < 0:
        raise UsageError(f"--workers must be 0 or more, got {args.workers}")
    if not args.dataset.is_dir():
        raise UsageError(f"dataset folder {args.dataset} does not exist")
    return ConvertOptions(
        layout=args.layout,
        views=checked_views(args.views, args.dataset),
        randomize_templates=args.randomize_templates,
        seed=args.seed,
        max_answer_tokens=args.max_answer_tokens,
        workers=args.workers or default_workers(),
    )


def body(args: argparse.Namespace, reporter: Reporter, cancel: CancelFlag) -> dict[str, Any]:
    with stage_run(args.dataset, CONVERSION):
        options = options_from(args)
        counter = stage_token_counter(args.tokenizer)
        try:
            result = convert_dataset(args.dataset, options, counter, reporter)
        except DatasetError as exc:
            raise UsageError(str(exc)) from exc
        stage_completed(
            args.dataset,
            CONVERSION,
            counts={
                "conversations": {
                    "train": result["train_conversations"],
                    "val": result["val_conversations"],
                }
            },
            conversion={
                "format": args.format,
                "randomize_templates": options.randomize_templates,
                "layout": options.layout,
                "seed": options.seed,
                "max_answer_tokens": options.max_answer_tokens,
            },
            reset_later=True,
        )
    return result


def main(argv: list[str] | None = None) -> int:
    return run_stage("convert", build_parser(), body, argv)


if __name__ == "__main__":
    sys.exit(main())
