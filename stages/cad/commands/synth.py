"""`python -m stages.cad synth --count N --seed S --out DIR`: write synthetic DeepCAD models.

Writes ``DIR/cad_json/NNNN/NNNNNNNN.json`` and ``DIR/train_val_test_split.json`` through the
stage protocol: progress per model written, one warning per rejected candidate (with its gate
reason), and a result with the counts. Bad arguments print one line and exit 2.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from stages.cad.synth import DEFAULT_VARIETY, FAMILIES, Variety, write_dataset
from stages.protocol import CancelFlag, Reporter, UsageError, add_progress_argument, run_stage

SPLIT_FILE = "train_val_test_split.json"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--count", type=int, required=True, help="models to write")
    parser.add_argument("--seed", type=int, default=0, help="same seed, same models")
    parser.add_argument("--out", type=Path, required=True, help="dataset folder to create")
    parser.add_argument(
        "--split",
        default="0.8,0.1,0.1",
        help="train,validation,test fractions (default 0.8,0.1,0.1)",
    )
    parser.add_argument(
        "--families",
        default="",
        help=f"comma-separated part families to draw (default all: {', '.join(FAMILIES)})",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=0,
        help="processes building and checking candidates (0: one per CPU core)",
    )
    parser.add_argument(
        "--overwrite", action="store_true", help="write into a folder that holds a dataset"
    )
    add_progress_argument(parser)


def run(args: argparse.Namespace) -> int:
    # run_stage parses its own argv: the arguments are parsed already, so hand it only the
    # progress mode and let the body read the parsed namespace.
    parser = argparse.ArgumentParser(prog="python -m stages.cad synth")
    return run_stage(
        "synth",
        parser,
        lambda _, reporter, cancel: synthesise(args, reporter, cancel),
        argv=["--progress", args.progress],
    )


def synthesise(args: argparse.Namespace, reporter: Reporter, cancel: CancelFlag) -> dict[str, Any]:
    """The stage body: check the arguments, then generate, gate and write the models."""
    split = _split(args.split)
    variety = _variety(args.families)
    if args.count < 1:
        raise UsageError(f"--count must be at least 1, got {args.count}")
    if args.workers < 0:
        raise UsageError(f"--workers must not be negative, got {args.workers}")
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} is not a folder")
    if (out / SPLIT_FILE).exists() and not args.overwrite:
        raise UsageError(f"{out} already holds a dataset (use --overwrite)")
    workers = args.workers or os.cpu_count() or 1
    reporter.start(args.count, unit="models")

    def rejected(candidate: str, error: Exception) -> None:
        reason = getattr(error, "reason", "rejected")
        reporter.warning(candidate, str(error), reason=reason)

    counts = write_dataset(
        out,
        args.count,
        args.seed,
        split,
        variety,
        workers=min(workers, args.count),
        on_model=lambda _: reporter.advance(ok=True),
        on_reject=rejected,
    )
    return {"out": str(out), "seed": args.seed, **counts}


def _split(text: str) -> tuple[float, float, float]:
    try:
        train, validation, test = (float(p) for p in text.split(","))
    except ValueError as exc:
        raise UsageError(f"--split {text!r} is not three numbers") from exc
    parts = (train, validation, test)
    if any(not 0.0 <= p <= 1.0 for p in parts) or abs(sum(parts) - 1) > 1e-6:
        raise UsageError(f"--split {text!r} must be three fractions that sum to 1")
    return parts


def _variety(text: str) -> Variety:
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        return DEFAULT_VARIETY
    unknown = sorted(set(names) - set(FAMILIES))
    if unknown:
        raise UsageError(f"unknown families {', '.join(unknown)} (known: {', '.join(FAMILIES)})")
    return DEFAULT_VARIETY.with_families(names)
