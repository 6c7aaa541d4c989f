"""Score a (fine-tuned) checkpoint on a dataset's validation records.

``python -m stages.train.evaluate --checkpoint DIR [--adapter DIR] --dataset DIR [--samples N]``

For each of the first N usable validation records the model generates code from the record's
image and prompt (greedy, up to the end token); the code is scored against the record's answer
(``stages.cad.openecad.score``: parse/build validity, volume IoU, Chamfer distance, curve and
loop count accuracy). Emits ``start``, ``progress``, ``warning`` (records whose reference does
not build), ``result`` (the summary) and ``done``; ``--output`` writes every generation as JSON
lines.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
from collections.abc import Callable, Iterable
from itertools import islice
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing is ever downloaded

from stages.protocol import CancelFlag, OneLineParser, Reporter, UsageError, run_stage
from stages.train.config import DEVICES, PRECISIONS

DEFAULT_SAMPLES = 50
DEFAULT_MAX_NEW_TOKENS = 2048  # capped by the context left after the prompt

Generate = Callable[[Any], tuple[str, Any]]  # record -> (text, Generation)


def build_parser() -> argparse.ArgumentParser:
    p = OneLineParser(
        prog="python -m stages.train.evaluate",
        description="generate code for validation records and score it",
    )
    p.add_argument("--checkpoint", required=True, help="base model: a directory or cached hub id")
    p.add_argument("--adapter", type=Path, help="a trained adapter to merge into it")
    p.add_argument("--dataset", type=Path, required=True, help="directory with val.json, images/")
    p.add_argument("--samples", type=int, default=DEFAULT_SAMPLES, help="records scored")
    p.add_argument("--max-new-tokens", type=int, default=DEFAULT_MAX_NEW_TOKENS)
    p.add_argument("--device", choices=DEVICES, default="auto")
    p.add_argument("--precision", choices=PRECISIONS, default="auto")
    p.add_argument("--output", type=Path, help="write each generation and its scores (JSON lines)")
    return p


def score_records(records: Iterable[Any], generate: Generate, reporter: Reporter) -> list[dict]:
    """Generate and score each record; a reference that does not build is a counted warning."""
    from stages.cad.model import CadError
    from stages.cad.openecad.score import score_code

    rows: list[dict[str, Any]] = []
    for record in records:
        text, generation = generate(record)
        try:
            score = score_code(text, record.answer)
        except CadError as exc:
            reporter.warning(record.id, f"reference does not build: {exc}", reason="bad_reference")
            reporter.advance(ok=False)
            continue
        rows.append(
            {
                "id": record.id,
                "generated": text,
                "stopped": generation.stopped,
                "new_tokens": len(generation.token_ids),
                **{k: score[k] for k in ("invalid", "error", "iou", "chamfer")},
                **{k: score[k] for k in ("curve_accuracy", "loop_accuracy")},
                "parsed": score["counts"]["generated"] is not None,
            }
        )
        reporter.advance(ok=not score["invalid"])
    return rows


def summarize_rows(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The code score's summary plus how often the code parsed and the model stopped."""
    from stages.cad.openecad.score import summarize

    def rate(key: str) -> float | None:
        return sum(bool(row[key]) for row in rows) / len(rows) if rows else None

    return {
        **summarize(rows),
        "parse_rate": rate("parsed"),
        "stop_rate": rate("stopped"),
        "mean_new_tokens": sum(r["new_tokens"] for r in rows) / len(rows) if rows else None,
    }


def _check_arguments(args: argparse.Namespace) -> None:
    if args.samples < 1:
        raise UsageError("--samples must be at least 1")
    if args.max_new_tokens < 1:
        raise UsageError("--max-new-tokens must be at least 1")
    if args.adapter is not None and not (args.adapter / "adapter_config.json").is_file():
        raise UsageError(f"--adapter {args.adapter} holds no adapter_config.json")


def _body(args: argparse.Namespace, reporter: Reporter, cancel: CancelFlag) -> dict[str, Any]:
    _check_arguments(args)  # before the heavy imports: a typo is answered at once
    import torch
    from PIL import Image

    from stages.train.data import IMAGES_DIR, iter_records, read_split
    from stages.train.devices import resolve_runtime
    from stages.train.lora import load_adapter
    from stages.train.models import load_base_model, resolve_base_model
    from stages.train.tinyllava.generate import generate_answer

    runtime = resolve_runtime(args.device, args.precision)
    raw_val = read_split(args.dataset, "val")
    ref = resolve_base_model(args.checkpoint)
    if ref.path is None:
        raise UsageError("--checkpoint must be a checkpoint directory or a cached hub id")
    bundle = load_base_model(ref, runtime.dtype)
    model = bundle.model
    if args.adapter is not None:
        model = load_adapter(bundle, args.adapter).merge_and_unload()
    model.to(runtime.device).eval()

    def skip(item: str, message: str, reason: str) -> None:
        reporter.warning(f"val/{item}", message, reason=reason)

    records = list(islice(iter_records(raw_val, args.dataset / IMAGES_DIR, skip), args.samples))

    def precision() -> contextlib.AbstractContextManager[Any]:
        if runtime.precision == "fp32":
            return contextlib.nullcontext()
        return torch.autocast(runtime.device.type, dtype=runtime.dtype)

    def generate(record: Any) -> tuple[str, Any]:
        with Image.open(record.image) as image, precision():
            return generate_answer(
                bundle, model, image, record.human, args.max_new_tokens, runtime.device
            )

    reporter.start(len(records), unit="samples")
    rows = score_records(records, generate, reporter)
    if args.output is not None:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return {
        **summarize_rows(rows),
        "checkpoint": ref.describe(),
        "adapter": str(args.adapter.resolve()) if args.adapter else None,
        "device": str(runtime.device),
        "precision": runtime.precision,
        "generations_file": str(args.output.resolve()) if args.output else None,
    }


def main(argv: list[str] | None = None) -> int:
    return run_stage("evaluate", build_parser(), _body, argv)


if __name__ == "__main__":
    raise SystemExit(main())
