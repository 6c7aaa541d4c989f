"""Score a (fine-tuned) checkpoint on a dataset's validation records.

``python -m stages.train.evaluate --checkpoint DIR [--adapter DIR] --dataset DIR [--samples N]
[--batch-size B] [--views V,..] [--output DIR [--resume]] [--check]``

For each of the first N usable validation records the model generates code from the record's
image and prompt (greedy, up to the end token, B records decoded together: the same tokens as
one by one); the code is scored against the record's answer
(``stages.cad.openecad.score``: parse/build validity, volume IoU, Chamfer distance, curve and
loop count accuracy). Emits ``start``, ``progress``, ``warning`` (records whose reference does
not build), ``result`` (the summary, with the generation throughput) and ``done``. ``--output``
keeps every sample as it is scored, with the generated solid drawn in its reference's views
(``stages.train.eval_samples``); ``--resume`` skips the samples it already holds. ``--check``
only checks the arguments and the checkpoint (files, no weights) and says so.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import time
from collections.abc import Callable, Iterable, Iterator
from itertools import islice
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing is ever downloaded

from stages.protocol import CancelFlag, OneLineParser, Reporter, UsageError, run_stage
from stages.train.config import DEVICES, PRECISIONS, ConfigError
from stages.train.eval_samples import SampleLog, draw_generated, record_view, reference_views

DEFAULT_SAMPLES = 50
DEFAULT_MAX_NEW_TOKENS = 2048  # capped by the context left after the prompt
DEFAULT_BATCH_SIZE = 8
DEFAULT_RENDER_RESOLUTION = 256  # the generated solids' views: beside the reference, not print

Generate = Callable[[Any], tuple[str, Any]]  # record -> (text, Generation)
# records -> one (text, Generation) each, in order
GenerateMany = Callable[[list[Any]], list[tuple[str, Any]]]


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
    p.add_argument(
        "--batch-size", type=int, default=DEFAULT_BATCH_SIZE, help="records decoded together"
    )
    p.add_argument("--device", choices=DEVICES, default="auto")
    p.add_argument("--precision", choices=PRECISIONS, default="auto")
    p.add_argument("--views", type=_view_list, help="score only records of these views")
    p.add_argument("--output", type=Path, help="folder for the scored samples and their views")
    p.add_argument("--render-resolution", type=int, default=DEFAULT_RENDER_RESOLUTION)
    p.add_argument("--resume", action="store_true", help="skip the samples --output holds")
    p.add_argument("--check", action="store_true", help="check the arguments and stop")
    return p


def _view_list(text: str) -> list[str]:
    from stages.dataset.layout import COMPOSITE
    from stages.render.views import VIEWS

    views = [v for v in text.split(",") if v]
    unknown = [v for v in views if v not in (*VIEWS, COMPOSITE)]
    if not views or unknown:
        raise argparse.ArgumentTypeError(f"unknown view {unknown[0] if unknown else text!r}")
    return views


def score_records(records: Iterable[Any], generate: Generate, reporter: Reporter) -> list[dict]:
    """Generate and score each record; a reference that does not build is a counted warning."""
    return score_generations(((record, generate(record)) for record in records), reporter)


def generate_in_batches(
    records: list[Any], generate_many: GenerateMany, batch_size: int
) -> Iterator[tuple[Any, tuple[str, Any]]]:
    """Each record with its generation, in order, generated ``batch_size`` records at a time
    (lazily: a batch is scored and reported before the next one is generated)."""
    for start in range(0, len(records), batch_size):
        chunk = records[start : start + batch_size]
        yield from zip(chunk, generate_many(chunk), strict=True)


def score_generations(
    generated: Iterable[tuple[Any, tuple[str, Any]]],
    reporter: Reporter,
    on_row: Callable[[Any, dict[str, Any]], None] | None = None,
) -> list[dict]:
    """Score each (record, (text, generation)); a reference that does not build is a counted
    warning. ``on_row(record, row)`` sees (and may add to) each row as it is scored."""
    from stages.cad.model import CadError
    from stages.cad.openecad.score import score_code

    rows: list[dict[str, Any]] = []
    for record, (text, generation) in generated:
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
        if on_row is not None:
            on_row(record, rows[-1])
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
    if args.batch_size < 1:
        raise UsageError("--batch-size must be at least 1")
    if args.resume and args.output is None:
        raise UsageError("--resume needs --output")
    if args.adapter is not None and not (args.adapter / "adapter_config.json").is_file():
        raise UsageError(f"--adapter {args.adapter} holds no adapter_config.json")


def _body(args: argparse.Namespace, reporter: Reporter, cancel: CancelFlag) -> dict[str, Any]:
    _check_arguments(args)  # before the heavy imports: a typo is answered at once
    from stages.train.data import IMAGES_DIR, iter_records, read_split
    from stages.train.models import BaseModelError, resolve_base_model

    raw_val = read_split(args.dataset, "val")
    try:
        ref = resolve_base_model(args.checkpoint)
    except BaseModelError as exc:
        raise ConfigError("checkpoint", exc.detail) from exc
    if ref.path is None:
        raise ConfigError("checkpoint", "a checkpoint directory or a cached hub id is needed")
    if args.check:
        return {"ok": True, "base_model": ref.describe(), "val_records": len(raw_val)}

    def skip(item: str, message: str, reason: str) -> None:
        reporter.warning(f"val/{item}", message, reason=reason)

    images_dir = args.dataset / IMAGES_DIR
    usable = iter_records(raw_val, images_dir, skip)
    if args.views:
        usable = (r for r in usable if record_view(r.image) in args.views)
    records = list(islice(usable, args.samples))
    log = SampleLog(args.output) if args.output is not None else None
    done: list[dict[str, Any]] = []
    if log is not None and args.resume:
        done = log.done_rows()
    elif log is not None:
        log.start_fresh()
    done_ids = {row["id"] for row in done}
    todo = [record for record in records if record.id not in done_ids]

    reporter.start(len(records), unit="samples")
    reporter.advance(n=len(records) - len(todo), reused=True)
    session = GenerationSession.load(args)
    rows = score_with(session, todo, reporter, args.batch_size, log, args.render_resolution)
    kept = [row for row in done if row["id"] in {r.id for r in records}]
    return {
        **summarize_rows(kept + rows),
        **session.throughput(),
        "checkpoint": ref.describe(),
        "adapter": str(args.adapter.resolve()) if args.adapter else None,
        "device": str(session.runtime.device),
        "precision": session.runtime.precision,
        "batch_size": args.batch_size,
        "samples_file": str(log.path.resolve()) if log else None,
    }


def score_with(
    session: GenerationSession,
    records: list[Any],
    reporter: Reporter,
    batch_size: int,
    log: SampleLog | None = None,
    render_resolution: int = DEFAULT_RENDER_RESOLUTION,
) -> list[dict[str, Any]]:
    """Generate for ``records`` in batches and score each; with ``log``, every row is written
    as it is scored, its generated solid drawn beside its reference's views."""
    images_dir = records[0].image.parent if records else Path()
    on_row = _row_writer(log, images_dir, render_resolution, reporter) if log else None
    batches = generate_in_batches(records, session.generate_many, batch_size)
    return score_generations(batches, reporter, on_row)


class GenerationSession:
    """A loaded model generating batches, timing them (generation alone)."""

    def __init__(self, bundle: Any, model: Any, runtime: Any, max_new_tokens: int) -> None:
        self.bundle, self.model, self.runtime = bundle, model, runtime
        self.max_new_tokens = max_new_tokens
        self.seconds = 0.0
        self.records = 0
        self.tokens = 0

    @classmethod
    def load(cls, args: argparse.Namespace) -> GenerationSession:
        """The base model with the adapter merged in, on the device asked for."""
        from stages.train.devices import resolve_runtime
        from stages.train.lora import load_adapter
        from stages.train.models import load_base_model, resolve_base_model

        runtime = resolve_runtime(args.device, args.precision)
        bundle = load_base_model(resolve_base_model(args.checkpoint), runtime.dtype)
        model = bundle.model
        if args.adapter is not None:
            model = load_adapter(bundle, args.adapter).merge_and_unload()
        return cls(bundle, model.to(runtime.device).eval(), runtime, args.max_new_tokens)

    def _precision(self) -> contextlib.AbstractContextManager[Any]:
        import torch

        if self.runtime.precision == "fp32":
            return contextlib.nullcontext()
        return torch.autocast(self.runtime.device.type, dtype=self.runtime.dtype)

    def generate_many(self, chunk: list[Any]) -> list[tuple[str, Any]]:
        from PIL import Image

        from stages.train.tinyllava.generate import generate_batch

        started = time.perf_counter()
        with contextlib.ExitStack() as stack, self._precision():
            images = [stack.enter_context(Image.open(record.image)) for record in chunk]
            humans = [record.human for record in chunk]
            out = generate_batch(
                self.bundle, self.model, images, humans, self.max_new_tokens, self.runtime.device
            )
        self.seconds += time.perf_counter() - started
        self.records += len(chunk)
        self.tokens += sum(len(generation.token_ids) for _text, generation in out)
        return out

    def throughput(self) -> dict[str, Any]:
        rate = (lambda n: round(n / self.seconds, 3)) if self.seconds > 0 else (lambda n: None)
        return {
            "generation_seconds": round(self.seconds, 3),
            "records_per_s": rate(self.records),
            "tokens_per_s": rate(self.tokens),
        }


def _row_writer(
    log: SampleLog, images_dir: Path, resolution: int, reporter: Reporter
) -> Callable[[Any, dict[str, Any]], None]:
    """Each scored row gets its reference's views and the generated solid drawn in them, and
    is written at once. The renderer starts on first use; without one, rows have no views."""
    renderer: list[Any] = []

    def write(record: Any, row: dict[str, Any]) -> None:
        model_id, references = reference_views(images_dir, record.image)
        row.update(model_id=model_id, image=record.image.name, reference_images=references)
        row["generated_images"] = {}
        if not row["invalid"] and references:
            if not renderer:
                renderer.append(_open_renderer(reporter))
            if renderer[0] is not None:
                row["generated_images"] = draw_generated(
                    renderer[0], row["generated"], log.images, record.id, list(references),
                    resolution,
                )  # fmt: skip
        log.append([row])

    return write


def _open_renderer(reporter: Reporter) -> Any:
    try:
        from stages.render.renderer import OrthoRenderer

        return OrthoRenderer()
    except Exception as exc:  # no GL here: scores still count, only the pictures are missing
        reporter.warning("renderer", f"generated solids are not drawn: {exc}", "no_renderer")
        return None


def main(argv: list[str] | None = None) -> int:
    return run_stage("evaluate", build_parser(), _body, argv)


if __name__ == "__main__":
    raise SystemExit(main())
