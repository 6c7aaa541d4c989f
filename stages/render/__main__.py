"""The render stage: DeepCAD models to orthographic PNG views.

Dataset mode::

    python -m stages.render --input DIR [--output DIR] [--views front,top,right]
        [--resolution 512] [--workers N] [--composite] [--time-limit S]
        [--models ID,ID,... | --list FILE] [--executor {local,ray}] [--ray-address HOST:PORT]
        [--progress json]

renders every model under ``DIR/cad_json/`` (recursively) to
``OUTPUT/images/<model_id>_<view>.png`` (``OUTPUT`` defaults to ``DIR``), skipping images
already written. When ``OUTPUT`` holds a manifest, the run keeps its ``rendering`` entry:
``in_progress`` while it runs, ``completed`` with the image count, the folder's size and the
``render`` settings (conversion and validation back to ``pending``), ``failed`` when it ends
any other way: a write that failed (``write_failed``: no new model is started) or a batch where
every model failed (``all_failed``) ends ``failed`` with exit code 1, after the result. The
models that failed are also the ``rendering`` entry of the dataset's ``skipped.json``, with
their reasons.
Rendering only some models (``--models``, ``--list``) leaves the manifest and that file alone.
Single-model mode::

    python -m stages.render --model FILE.json --output DIR [--views ...] [--resolution N]

writes ``DIR/<model_id>_<view>.png`` and prints the result as JSON. Bad input (unknown view,
resolution out of range, no models, a single model that does not build) is one line on stderr
and exit code 2.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from stages.dataset.layout import MODELS_FOLDER, SKIPS_FILE, count_images
from stages.dataset.manifest import RENDERING, has_manifest, stage_completed, stage_run
from stages.dataset.skips import write_skips
from stages.executors import add_executor_arguments, executor_from_args
from stages.protocol import (
    CancelFlag,
    OneLineParser,
    Reporter,
    UsageError,
    positive_int,
    run_stage,
    writing,
)
from stages.render.settings import (
    DEFAULT_RESOLUTION,
    DEFAULT_TIME_LIMIT_S,
    MAX_RESOLUTION,
    MIN_RESOLUTION,
    RenderSettings,
)
from stages.render.views import DEFAULT_VIEWS, VIEWS
from stages.render.worker import RECYCLE_AFTER

STAGE = "render"


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="python -m stages.render",
        description="Render orthographic views of DeepCAD models as PNG images.",
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--input", type=Path, help=f"dataset folder holding {MODELS_FOLDER}/")
    source.add_argument("--model", type=Path, help="render one DeepCAD JSON file")
    parser.add_argument(
        "--output", type=Path, help="output folder (dataset mode: defaults to --input)"
    )
    parser.add_argument(
        "--views",
        default=",".join(DEFAULT_VIEWS),
        help=f"comma-separated views out of {', '.join(VIEWS)} (default %(default)s)",
    )
    parser.add_argument(
        "--resolution",
        type=int,
        default=DEFAULT_RESOLUTION,
        help=f"image side in pixels, {MIN_RESOLUTION}..{MAX_RESOLUTION} (default %(default)s)",
    )
    parser.add_argument("--workers", type=int, help="render processes (default: one per core)")
    parser.add_argument(
        "--recycle-after",
        type=positive_int,
        default=RECYCLE_AFTER,
        help="models one render process draws before a fresh one replaces it (default "
        "%(default)s): bounds how far a long run's OpenGL memory can grow",
    )
    parser.add_argument(
        "--composite",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="also write a 2x2 iso/front/top/right image",
    )
    parser.add_argument(
        "--time-limit",
        type=float,
        default=DEFAULT_TIME_LIMIT_S,
        help="seconds allowed to build one model's solid (default %(default)s)",
    )
    add_executor_arguments(parser)
    only = parser.add_mutually_exclusive_group()
    only.add_argument("--models", help="only these model ids, comma separated")
    only.add_argument("--list", type=Path, help="only the model ids listed in this file")
    return parser


def settings_from_args(args: argparse.Namespace) -> RenderSettings:
    try:
        return RenderSettings.checked(
            views=args.views,
            resolution=args.resolution,
            composite=args.composite,
            time_limit=args.time_limit,
        )
    except ValueError as exc:
        raise UsageError(str(exc)) from exc


def requested_ids(args: argparse.Namespace) -> list[str] | None:
    """The ids given with --models or --list, or None for the whole dataset."""
    from stages.render.catalog import read_id_list

    if args.models is not None:
        ids = [part.strip() for part in args.models.split(",") if part.strip()]
    elif args.list is not None:
        try:
            ids = read_id_list(args.list)
        except OSError as exc:
            raise UsageError(f"cannot read model list {args.list}: {exc.strerror or exc}") from exc
    else:
        return None
    if not ids:
        raise UsageError("the model list is empty")
    return ids


def body(args: argparse.Namespace, reporter: Reporter, cancel: CancelFlag) -> dict[str, Any]:
    if args.model is not None:
        return render_one(args, reporter)
    output = args.output if args.output is not None else args.input
    if args.models is not None or args.list is not None:
        return render_models(args, output, reporter)  # chosen models: not the dataset's rendering
    with stage_run(output, RENDERING):
        result = render_models(args, output, reporter)
        if has_manifest(output):  # a dataset's: a plain folder gets nothing but images
            with writing(output / SKIPS_FILE, result):
                write_skips(output, RENDERING, result["failed_models"])
        stage_completed(
            output,
            RENDERING,
            counts={"images": count_images(output)},
            render={
                "views": result["views"],
                "resolution": result["resolution"],
                "composite": result["composite"],
            },
            reset_later=True,
        )
    return result


def render_one(args: argparse.Namespace, reporter: Reporter) -> dict[str, Any]:
    from stages.render.single import render_model_file

    settings = settings_from_args(args)
    if args.output is None:
        raise UsageError("--model needs --output DIR")
    return render_model_file(args.model, args.output, settings, reporter)


def render_models(args: argparse.Namespace, output: Path, reporter: Reporter) -> dict[str, Any]:
    from stages.render.batch import render_dataset
    from stages.workpool import default_workers

    settings = settings_from_args(args)
    workers = default_workers() if args.workers is None else args.workers
    if workers < 1:
        raise UsageError(f"--workers must be at least 1, not {workers}")
    only = requested_ids(args)
    return render_dataset(
        args.input,
        output,
        settings,
        reporter,
        workers=workers,
        only=only,
        recycle_after=args.recycle_after,
        executor=executor_from_args(args),
    )


def main(argv: list[str] | None = None) -> int:
    return run_stage(STAGE, build_parser(), body, argv)


if __name__ == "__main__":
    sys.exit(main())
