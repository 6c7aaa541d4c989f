"""``python -m stages.convert.pair --model FILE.json --output DIR``: one training record for
one model, with its image rendered into DIR.

Prints one JSON object ``{"record", "image_path", "code", "answer_tokens"}``; the record's
``image`` is relative to DIR, as dataset records are relative to ``images/``. A model that
cannot be used prints ``{"error": reason, "detail": ...}`` and exits 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, NoReturn

from stages.cad.model import CadError
from stages.convert.templates import prompt_text
from stages.dataset.layout import COMPOSITE, ISO, LAYOUTS, image_slots
from stages.dataset.records import make_record
from stages.dataset.tokens import DEFAULT_MAX_ANSWER_TOKENS, EstimatedCounter
from stages.protocol import JsonErrorParser, UsageError, exit_usage_json
from stages.render import RenderSettings, render_model_views


class PairError(Exception):
    """Why no record can be made: ``reason`` is a short key, as CadError's."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


def build_parser() -> argparse.ArgumentParser:
    parser = JsonErrorParser(prog="python -m stages.convert.pair", description=__doc__)
    parser.add_argument("--model", required=True, type=Path, help="a DeepCAD JSON file")
    parser.add_argument("--output", required=True, type=Path, help="folder for the image")
    parser.add_argument("--view", default="front", help="per_view layout: the view to draw")
    parser.add_argument("--resolution", type=int, default=512, help="image side in pixels")
    parser.add_argument("--seed", type=int, help="pick the prompt wording at random by seed")
    parser.add_argument("--layout", default="per_view", help=f"one of {', '.join(LAYOUTS)}")
    return parser


def render_image(source: Path, output: Path, view: str, layout: str, resolution: int) -> Path:
    """Draw the layout's image of ``source`` into ``output`` with the render stage."""
    composite = layout == COMPOSITE
    try:
        settings = RenderSettings.checked(
            views=(view,), resolution=resolution, composite=composite, skip_existing=False
        )
    except ValueError as exc:
        raise PairError("bad_input", str(exc)) from exc
    try:
        images = render_model_views(source, output, settings)
    except UsageError as exc:
        raise PairError("render_failed", str(exc)) from exc
    return images[COMPOSITE if composite else view]


def make_pair(args: argparse.Namespace) -> dict[str, Any]:
    from stages.cad.deepcad import load_deepcad
    from stages.cad.openecad import wrap_answer, write_code
    from stages.cad.solid import build_solid

    if args.layout not in LAYOUTS:
        raise PairError("bad_input", f"--layout must be one of {', '.join(LAYOUTS)}")
    if not args.model.is_file():
        raise PairError("bad_input", f"no such model file: {args.model}")
    try:
        model = load_deepcad(args.model)
        build_solid(model)  # fail with the model's own reason before drawing anything
        code = write_code(model)
    except CadError as exc:
        raise PairError(exc.reason, exc.detail or str(exc)) from exc
    answer = wrap_answer(code)
    view = ISO if args.layout == ISO else args.view
    slot = image_slots(model.id, args.layout, (view,))[0]
    image = render_image(args.model, args.output, view, args.layout, args.resolution)
    prompt = prompt_text(
        args.layout,
        slot.view,
        randomize=args.seed is not None,
        seed=args.seed or 0,
        record_id=slot.record_id,
    )
    tokens = EstimatedCounter().count([answer])[0]
    return {
        "record": make_record(slot.record_id, image.name, prompt, answer),
        "image_path": str(image.resolve()),
        "code": code,
        "answer_tokens": tokens,
        "within_budget": tokens <= DEFAULT_MAX_ANSWER_TOKENS,
    }


def fail(error: PairError) -> NoReturn:
    exit_usage_json("stages.convert.pair", error.reason, error.detail)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        pair = make_pair(args)
    except PairError as exc:
        fail(exc)
    print(json.dumps(pair, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
