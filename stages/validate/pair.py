"""``python -m stages.validate.pair --record FILE.json [--images DIR] [--model FILE.json]``:
check one record as the dataset validation would.

Prints ``{"valid", "checks", "problems"}``; a check is true (passed), false (failed) or null
(not run: no image folder, no source model, or the record's shape prevents it). Exits 0 whether
the record is valid or not, and 2 only when an input file cannot be read.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, NoReturn

from stages.dataset.layout import model_id_of_image
from stages.dataset.tokens import DEFAULT_MAX_ANSWER_TOKENS, EstimatedCounter
from stages.protocol import JsonErrorParser, exit_usage_json
from stages.validate.answers import VOLUME_TOLERANCE, check_answer, source_volume, volume_matches
from stages.validate.checks import (
    Problem,
    answers_of,
    image_token_problems,
    record_label,
    schema_problems,
    turn_problems,
)
from stages.validate.images import check_image

CHECKS = ("schema", "image_token", "turns", "image", "answer", "volume", "token_budget")


def build_parser() -> argparse.ArgumentParser:
    parser = JsonErrorParser(prog="python -m stages.validate.pair", description=__doc__)
    parser.add_argument("--record", required=True, type=Path, help="a JSON file with one record")
    parser.add_argument("--images", type=Path, help="the folder the record's image is in")
    parser.add_argument("--model", type=Path, help="the DeepCAD JSON file it was made from")
    parser.add_argument(
        "--max-answer-tokens", type=int, default=DEFAULT_MAX_ANSWER_TOKENS, help="token budget"
    )
    return parser


def unreadable(message: str) -> NoReturn:
    exit_usage_json("stages.validate.pair", "bad_input", message)


def read_record(path: Path) -> Any:
    """The record in the file (a one-record list is accepted too)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        unreadable(f"cannot read {path}: {exc}")
    if isinstance(data, list) and len(data) == 1:
        return data[0]
    return data


def validate_record(
    record: Any, images: Path | None, model: Path | None, max_answer_tokens: int
) -> dict[str, Any]:
    label = record_label(record, "record", 0)
    checks: dict[str, bool | None] = dict.fromkeys(CHECKS)
    problems = schema_problems(record, label)
    checks["schema"] = not problems
    if problems:
        return report(checks, problems)

    turns = record["conversations"]
    found = image_token_problems(turns, label)
    checks["image_token"] = not found
    problems += found
    found = turn_problems(turns, label)
    checks["turns"] = not found
    problems += found

    if images is not None:
        image = check_image(str(images / record["image"]))
        checks["image"] = image.error is None
        if image.error:
            problems.append(Problem(image.error, label, f"{record['image']}: {image.detail}"))

    answers = answers_of(record)
    built = [check_answer(answer, model_id_of_image(record["image"])) for answer in answers]
    checks["answer"] = bool(built) and all(b.error is None for b in built)
    problems += [Problem(b.error, label, b.detail) for b in built if b.error]
    if not built:
        problems.append(Problem("turns", label, "the record has no gpt answer"))

    if model is not None:
        reference, why = source_volume(str(model))
        if reference is None:
            problems.append(
                Problem("source_unbuildable", label, f"the model does not build: {why}")
            )
            checks["volume"] = False
        elif checks["answer"]:
            mismatched = [
                b for b in built if not volume_matches(b.volume or 0.0, reference, VOLUME_TOLERANCE)
            ]
            checks["volume"] = not mismatched
            for b in mismatched:
                detail = f"answer builds {b.volume:.6g} m^3, the model is {reference:.6g} m^3"
                problems.append(Problem("volume_mismatch", label, detail))

    lengths = EstimatedCounter().count(answers)
    checks["token_budget"] = all(n <= max_answer_tokens for n in lengths)
    for n in lengths:
        if n > max_answer_tokens:
            detail = f"answer is {n} tokens, budget {max_answer_tokens}"
            problems.append(Problem("token_budget", label, detail))
    return report(checks, problems)


def report(checks: dict[str, bool | None], problems: list[Problem]) -> dict[str, Any]:
    return {
        "valid": not problems,
        "checks": checks,
        "problems": [p.as_dict() for p in problems],
    }


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    record = read_record(args.record)
    if args.images is not None and not args.images.is_dir():
        unreadable(f"image folder {args.images} does not exist")
    if args.model is not None and not args.model.is_file():
        unreadable(f"no such model file: {args.model}")
    result = validate_record(record, args.images, args.model, args.max_answer_tokens)
    print(json.dumps(result, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
