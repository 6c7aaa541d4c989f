"""`python -m stages.cad score GENERATED.py REFERENCE.py`: score generated code.

Prints ``score_code``'s JSON (invalid, iou, chamfer, curve and loop accuracies, counts). A
generated program that does not parse or build is scored as invalid (exit 0); a reference
that cannot be read, parsed or built prints ``{"error": reason, "detail": ...}`` and exits 2.
"""

from __future__ import annotations

import argparse
import json

from stages.cad.model import CadError
from stages.cad.openecad.files import read_code_file
from stages.cad.openecad.score import CHAMFER_POINTS, score_code

EXIT_BAD_INPUT = 2


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("generated", help="the generated program (or answer)")
    parser.add_argument("reference", help="the reference program (or answer)")
    parser.add_argument(
        "--points", type=int, default=CHAMFER_POINTS, help="surface samples per shape"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the surface sampling")


def run(args: argparse.Namespace) -> int:
    if args.points < 1:
        print(json.dumps({"error": "bad_argument", "detail": "--points must be positive"}))
        return EXIT_BAD_INPUT
    try:
        reference = read_code_file(args.reference)
    except CadError as exc:
        print(json.dumps({"error": exc.reason, "detail": exc.detail}))
        return EXIT_BAD_INPUT
    unreadable = None
    try:
        generated = read_code_file(args.generated)
    except CadError as exc:
        generated, unreadable = "", str(exc)
    try:
        scores = score_code(generated, reference, points=args.points, seed=args.seed)
    except CadError as exc:
        print(json.dumps({"error": exc.reason, "detail": f"reference: {exc.detail}"}))
        return EXIT_BAD_INPUT
    if unreadable is not None:
        scores["error"] = unreadable
    print(json.dumps(scores))
    return 0
